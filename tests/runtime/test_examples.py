"""The two runtime examples, run for real against a live portal: ``examples/agent_client.py``
trades a workload token from a live test issuer at ``/oauth/token`` and calls
``examples/resource_server.py``, which checks the portal's token with the published keys and
introspects its high-risk call. The kill switch then stops the same token at introspection and
stops the next exchange."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.conf import settings as django_settings

from governance.models import User
from governance.roles import Role
from inventory.services import integration_suspend
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
def resource_server(portal: str, make_user: Callable[..., User]) -> Iterator[Any]:
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
    yield f"http://127.0.0.1:{httpd.server_port}/records"
    httpd.shutdown()


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
