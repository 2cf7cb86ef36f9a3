"""Workload identity from an independent issuer: panva's ``oidc-provider`` (a certified OpenID
provider, run as a real process) issues ``client_credentials`` JWT access tokens whose audience
is the portal's token endpoint (a resource indicator). Registered through the portal's API as a
trusted OpenID Connect issuer (keys through its discovery document and JWKS, fetched through the
outbound client), it vouches for an integration bound to one of its clients:

- the provider's token is exchanged at ``/oauth/token`` for a portal token;
- the provider restarts with new keys: the portal refetches its JWKS on the unknown ``kid`` (at
  most once per cooldown) and goes on;
- a token for a client bound to no integration, or for another audience, is refused.

The provider never calls the portal: ``client_credentials`` needs no redirect."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from governance.models import User
from governance.roles import Role
from inventory import issuer_keys
from inventory.models import Integration, ResourceSystem, Scope
from runtime.exchange import GRANT_TYPE, JWT_TOKEN_TYPE
from runtime.models import TokenEvent, TokenOutcome
from tests.interop.conftest import IdentityProvider, service_client
from tests.interop.verifiers import portal as live
from tests.runtime.access_token_support import api_key
from tests.runtime.exchange_support import CRM_AUDIENCE, grant, make_integration

BOUND_CLIENT, BOUND_SECRET = "support-agent", "support-agent-secret"
UNBOUND_CLIENT, UNBOUND_SECRET = "nightly-job", "nightly-job-secret"
ELSEWHERE = "https://elsewhere.example.com/api"


def _api(portal: str, method: str, path: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A JSON call to the portal's API with an API token; the status and the JSON answer."""
    request = urllib.request.Request(f"{portal}{path}", data=json.dumps(body).encode(), method=method)
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Token {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def portal(transactional_db: None, live_server: Any, settings: Any) -> str:
    issuer_keys.forget()
    return live.configure(settings, str(live_server.url))


@pytest.fixture
def provider(portal: str, idp_factory: Callable[..., IdentityProvider], settings: Any) -> IdentityProvider:
    """The provider, issuing JWT access tokens for the portal's token endpoint (and for one other
    API), allow-listed for the portal's outbound fetches (loopback and its port, in tests only)."""
    idp = idp_factory(
        clients=[service_client(BOUND_CLIENT, BOUND_SECRET), service_client(UNBOUND_CLIENT, UNBOUND_SECRET)],
        resource_servers={
            settings.RUNTIME_TOKEN_AUDIENCE: {"scope": "", "access_token_ttl": 600, "jwt_alg": "RS256"},
            ELSEWHERE: {"scope": "", "access_token_ttl": 600, "jwt_alg": "RS256"},
        },
    )
    settings.OUTBOUND_ALLOWED_HOSTS = [*settings.OUTBOUND_ALLOWED_HOSTS, f"127.0.0.1:{idp.port}"]
    return idp


@pytest.fixture
def integration(portal: str, provider: IdentityProvider, make_user: Callable[..., User]) -> Integration:
    """An integration holding ``crm:read`` on the CRM, bound to the provider's client
    ``support-agent``; the issuer and the binding are made through the API by an IAM admin."""
    admin_key = api_key(make_user("ivy", Role.IAM_ADMIN))
    status, issuer = _api(
        portal,
        "POST",
        "/api/v1/trusted-issuers/",
        admin_key,
        {"name": "oidc-provider under test", "kind": "oidc", "issuer": provider.issuer},
    )
    assert status == 201, issuer
    crm = ResourceSystem.objects.create(code="crm", name="CRM", audience=CRM_AUDIENCE)
    agent = make_integration(make_user("olivia", Role.BUSINESS_USER), "Support agent")
    grant(agent, Scope.objects.create(system=crm, name="read", code="crm:read"))
    status, binding = _api(
        portal,
        "PUT",
        f"/api/v1/integrations/{agent.pk}/workload-binding/",
        admin_key,
        {"issuer_id": issuer["id"], "subject": BOUND_CLIENT, "required_claims": {"client_id": BOUND_CLIENT}},
    )
    assert status == 200, binding
    return agent


def _provider_token(provider: IdentityProvider, client: str, secret: str, audience: str = "") -> str:
    token: str = provider.client_credentials_token(client, secret, audience or settings.RUNTIME_TOKEN_AUDIENCE)[
        "access_token"
    ]
    return token


def _exchange(portal: str, workload_token: str) -> tuple[int, dict[str, Any]]:
    form = {
        "grant_type": GRANT_TYPE,
        "subject_token": workload_token,
        "subject_token_type": JWT_TOKEN_TYPE,
        "audience": CRM_AUDIENCE,
    }
    return live.post_form(f"{portal}/oauth/token", form)


def test_a_provider_token_is_exchanged_but_not_for_an_unbound_client_or_another_audience(
    portal: str, provider: IdentityProvider, integration: Integration
) -> None:
    workload = _provider_token(provider, BOUND_CLIENT, BOUND_SECRET)
    header, claims = jwt.get_unverified_header(workload), jwt.decode(workload, options={"verify_signature": False})
    assert (header["typ"], header["alg"], header["kid"] in provider.signing_kids()) == ("at+jwt", "RS256", True)
    assert (claims["iss"], claims["sub"], claims["aud"]) == (
        provider.issuer,
        BOUND_CLIENT,
        settings.RUNTIME_TOKEN_AUDIENCE,
    )

    status, answer = _exchange(portal, workload)
    assert status == 200, (answer, provider.log())
    assert (answer["token_type"], answer["scope"]) == ("Bearer", "crm:read")
    issued = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert (issued["sub"], issued["aud"], issued["owner"]) == (f"integration:{integration.pk}", CRM_AUDIENCE, "olivia")
    event = TokenEvent.objects.get(jti=issued["jti"])
    assert (event.outcome, event.integration_id) == (TokenOutcome.ISSUED, integration.pk)
    assert (event.workload_issuer, event.workload_subject) == (provider.issuer, BOUND_CLIENT)

    # A client of the same provider bound to no integration.
    status, answer = _exchange(portal, _provider_token(provider, UNBOUND_CLIENT, UNBOUND_SECRET))
    assert (status, answer["error"]) == (400, "invalid_request"), answer
    assert answer["error_description"] == (
        f"The workload identity {UNBOUND_CLIENT} from oidc-provider under test is not bound to any integration."
    )
    refused = TokenEvent.objects.get(outcome=TokenOutcome.REFUSED)
    assert (refused.workload_issuer, refused.workload_subject, refused.integration_id) == (
        provider.issuer,
        UNBOUND_CLIENT,
        None,
    )
    # The bound client's token, issued for another API (resource indicator), is not for the portal.
    status, answer = _exchange(portal, _provider_token(provider, BOUND_CLIENT, BOUND_SECRET, ELSEWHERE))
    assert (status, answer["error"]) == (400, "invalid_request"), answer
    assert answer["error_description"] == (
        f"The workload token is not meant for the portal (aud does not name {settings.RUNTIME_TOKEN_AUDIENCE})."
    )


def test_the_portal_refetches_the_providers_keys_after_a_restart_with_new_keys(
    portal: str, provider: IdentityProvider, integration: Integration
) -> None:
    # The portal's clock stands still until the cooldown is passed on purpose (the provider's
    # keeps running; a token from a few seconds "ahead" is within the issuer's clock skew).
    started = timezone.now()
    with time_machine.travel(started, tick=False):
        assert _exchange(portal, _provider_token(provider, BOUND_CLIENT, BOUND_SECRET))[0] == 200
        old_kids = provider.signing_kids()

        provider.restart(rotate_keys=True)
        rotated = _provider_token(provider, BOUND_CLIENT, BOUND_SECRET)
        assert jwt.get_unverified_header(rotated)["kid"] not in old_kids

        # Within the cooldown after the last fetch, an unknown kid fetches nothing: refused.
        status, answer = _exchange(portal, rotated)
        assert (status, answer["error"]) == (400, "invalid_request"), answer
        assert "unknown key id" in answer["error_description"]

    # Once the cooldown has passed, the same token makes the portal refetch, and it is accepted;
    # so is the next token, from the keys now held.
    later = timezone.now() + timedelta(seconds=settings.RUNTIME_KEY_REFETCH_COOLDOWN_SECONDS + 1)
    with time_machine.travel(later):
        status, answer = _exchange(portal, rotated)
        assert status == 200, (answer, provider.log())
        assert _exchange(portal, _provider_token(provider, BOUND_CLIENT, BOUND_SECRET))[0] == 200
    integration.refresh_from_db()
    held = {key["kid"] for key in integration.workload_binding.issuer.jwks["keys"]}
    assert held == set(provider.signing_kids()) and not held & set(old_kids)
