"""The two runtime examples, run for real against a live portal: ``examples/agent_client.py``
trades a workload token from a live test issuer at ``/oauth/token`` and calls
``examples/resource_server.py``, which checks the portal's token with the published keys and
introspects its high-risk call. The kill switch then stops the same token at introspection and
stops the next exchange."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings as django_settings

from governance.models import User
from governance.roles import Role
from inventory.services import integration_suspend
from runtime import keys
from tests.runtime.access_token_support import api_key
from tests.runtime.exchange_support import CRM_AUDIENCE, World, build_world
from tests.runtime.issuer_support import TestIssuer

EXAMPLES = Path(django_settings.BASE_DIR) / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"portal_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def portal(transactional_db: None, live_server: Any, settings: Any) -> str:
    """The live portal, named by its own address (its issuer, token endpoint and audience)."""
    url = str(live_server.url)
    settings.SITE_URL = url
    settings.RUNTIME_ISSUER = url
    settings.RUNTIME_TOKEN_AUDIENCE = f"{url}/oauth/token"
    return url


@pytest.fixture
def world(portal: str, test_issuer: TestIssuer, make_user: Callable[..., User]) -> World:
    return build_world(test_issuer, make_user("olivia", Role.BUSINESS_USER))


@pytest.fixture
def resource(portal: str, make_user: Callable[..., User]) -> Iterator[tuple[Any, str]]:
    """The example resource server (the object, to reach into) and its ``/records`` URL."""
    module = _load("resource_server")
    account = make_user("crm-api", "resource_server")
    server = module.ResourceServer(
        portal=portal,
        audience=CRM_AUDIENCE,
        introspection_token=api_key(account),
        read_scope="crm:read",
        write_scope="crm:write",
    )
    httpd = module.serve(server, 0)
    yield server, f"http://127.0.0.1:{httpd.server_port}/records"
    httpd.shutdown()


@pytest.fixture
def resource_server(resource: tuple[Any, str]) -> str:
    return resource[1]


def test_an_agent_exchanges_its_workload_token_and_calls_a_resource_server(
    portal: str, world: World, resource_server: str
) -> None:
    agent = _load("agent_client")
    answer = agent.exchange(
        portal, workload_token=world.workload_token(), audience=CRM_AUDIENCE, task="Answer ticket 42"
    )
    assert answer["token_type"] == "Bearer"
    assert sorted(answer["scope"].split()) == ["crm:read", "crm:write"]
    assert 0 < answer["expires_in"] <= 900

    status, body = agent.call(resource_server, answer["access_token"])
    assert status == 200, body
    assert body["integration"] == f"integration:{world.integration.pk}"
    assert body["owner"] == "olivia"
    assert body["introspected"] is False

    status, body = agent.call(resource_server, answer["access_token"], method="POST")
    assert (status, body["introspected"]) == (200, True)


def test_a_token_narrowed_to_read_cannot_write(portal: str, world: World, resource_server: str) -> None:
    agent = _load("agent_client")
    answer = agent.exchange(portal, workload_token=world.workload_token(), audience=CRM_AUDIENCE, scope="crm:read")
    status, body = agent.call(resource_server, answer["access_token"], method="POST")
    assert status == 403
    assert body["error"] == "insufficient_scope"


def test_the_kill_switch_stops_a_live_token_at_introspection_and_the_next_exchange(
    portal: str, world: World, resource_server: str, make_user: Callable[..., User]
) -> None:
    agent = _load("agent_client")
    answer = agent.exchange(portal, workload_token=world.workload_token(), audience=CRM_AUDIENCE)
    admin = make_user("ivy", Role.IAM_ADMIN)
    integration_suspend(actor=admin, integration=world.integration, reason="Leaked prompt logs.")

    status, body = agent.call(resource_server, answer["access_token"], method="POST")
    assert status == 401
    assert "no longer active" in body["error_description"]
    with pytest.raises(agent.ExchangeRefused) as refused:
        agent.exchange(portal, workload_token=world.workload_token(), audience=CRM_AUDIENCE)
    assert "suspended" in refused.value.description


def test_the_agent_command_line_reports_a_refusal(portal: str, world: World, capsys: Any) -> None:
    agent = _load("agent_client")
    code = agent.main(
        ["--portal", portal, "--workload-token", world.workload_token(), "--audience", "https://unknown.example.com"]
    )
    assert code == 1
    assert "invalid_target" in capsys.readouterr().err


def _portal_claims(portal: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": portal,
        "aud": CRM_AUDIENCE,
        "sub": "integration:1",
        "client_id": "integration:1",
        "scope": "crm:read crm:write",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    return {**claims, **overrides}


def _signed(claims: dict[str, Any], **header: Any) -> str:
    """A token signed with the portal's own current ES256 key, with any header and claims."""
    key = keys.signing_key("ES256")
    headers = {"kid": key.kid, "typ": "at+jwt", **header}
    return jwt.encode(claims, key.private_key, algorithm="ES256", headers=headers)


def test_the_resource_server_checks_typ_iss_aud_and_exp(portal: str, resource_server: str) -> None:
    """Each token is signed by the portal's published key; one claim or header is wrong."""
    agent = _load("agent_client")
    assert agent.call(resource_server, _signed(_portal_claims(portal)))[0] == 200
    refused = {
        "typ": _signed(_portal_claims(portal), typ="JWT"),
        "iss": _signed(_portal_claims(portal, iss="https://other-portal.example.com")),
        "aud": _signed(_portal_claims(portal, aud="https://elsewhere.example.com/api")),
        "exp": _signed(_portal_claims(portal, iat=int(time.time()) - 900, exp=int(time.time()) - 60)),
    }
    for check, token in refused.items():
        status, body = agent.call(resource_server, token)
        assert (status, body["error"]) == (401, "invalid_token"), check


def test_the_resource_server_takes_the_algorithm_from_the_key_not_the_token(portal: str, resource_server: str) -> None:
    """An RS256 token naming the portal's ES256 key: refused with a 401, never verified with
    the algorithm the token chose."""
    agent = _load("agent_client")
    kid = keys.signing_key("ES256").kid
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_portal_claims(portal), stranger, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})
    status, body = agent.call(resource_server, token)
    assert (status, body["error"]) == (401, "invalid_token")


def test_a_write_is_refused_when_introspection_fails_or_answers_oddly(
    portal: str, world: World, resource: tuple[Any, str]
) -> None:
    """Fail closed: a portal that cannot be asked, refuses the question, or answers anything but
    ``active: true`` means no write."""
    server, url = resource
    agent = _load("agent_client")
    token = agent.exchange(portal, workload_token=world.workload_token(), audience=CRM_AUDIENCE)["access_token"]
    assert agent.call(url, token, method="POST")[0] == 200

    server.introspection_token = "gp_not-a-key"
    status, body = agent.call(url, token, method="POST")
    assert status == 503 and body["error"] == "temporarily_unavailable"

    odd = _serve_json({"active": "false"})
    server.introspection_token, server.keys.introspection_endpoint = "any", odd
    status, body = agent.call(url, token, method="POST")
    assert (status, body["error"]) == (401, "invalid_token")


def _serve_json(answer: dict[str, Any]) -> str:
    """A local endpoint answering ``answer`` to every POST (a stand-in for a misbehaving portal)."""
    payload = json.dumps(answer).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_port}/introspect"
