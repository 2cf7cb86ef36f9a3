"""Introspection (RFC 7662): resource-server accounts learn whether a portal token is live now.
Inactive at once for a suspended integration, a revoked or expired grant, a deactivated owner or
acting-for user, a revoked jti, an unknown jti, and anything that does not verify."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance.models import User
from governance.roles import Role
from inventory import services as inventory
from inventory.models import Grant
from runtime.models import TokenRevocation
from tests.runtime.access_token_support import Agent, api_key, make_agent, post_form

URL = "/oauth/introspect"


@pytest.fixture
def resource_server(make_user: Callable[..., User]) -> User:
    return make_user("crm-gateway", Role.RESOURCE_SERVER, is_service_account=True)


@pytest.fixture
def agent(owner: User) -> Agent:
    return make_agent(owner)


@pytest.fixture
def introspect(client: Any, resource_server: User) -> Callable[[str], Any]:
    key = api_key(resource_server)

    def call(token: str) -> Any:
        response = post_form(client, URL, {"token": token}, HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
        return response.json()

    return call


def test_a_live_token_is_active_with_its_claims(agent: Agent, introspect: Callable[[str], Any]) -> None:
    issued = agent.issue()
    answer = introspect(issued.token)
    assert answer["active"] is True and answer["token_type"] == "Bearer"
    for name in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "act", "owner"):
        assert answer[name] == issued.claims[name]


def test_the_kill_switch_makes_tokens_inactive_at_once(
    agent: Agent, owner: User, introspect: Callable[[str], Any]
) -> None:
    issued = agent.issue()
    assert introspect(issued.token)["active"] is True
    inventory.integration_suspend(actor=owner, integration=agent.integration, reason="Leaked its workload key.")
    assert introspect(issued.token) == {"active": False}


def test_a_revoked_grant_makes_tokens_inactive(agent: Agent, owner: User, introspect: Callable[[str], Any]) -> None:
    issued = agent.issue()
    inventory.grant_revoke(actor=owner, grant=agent.grants["write"], reason="No longer needed.")
    assert introspect(issued.token) == {"active": False}


def test_a_grant_past_its_expiry_makes_tokens_inactive(agent: Agent, introspect: Callable[[str], Any]) -> None:
    issued = agent.issue()
    Grant.objects.filter(pk=agent.grants["read"].pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert introspect(issued.token) == {"active": False}


def test_a_deactivated_owner_makes_tokens_inactive(agent: Agent, owner: User, introspect: Callable[[str], Any]) -> None:
    issued = agent.issue()
    User.objects.filter(pk=owner.pk).update(is_active=False)
    assert introspect(issued.token) == {"active": False}


def test_a_deactivated_user_acted_for_makes_tokens_inactive(
    agent: Agent, make_user: Callable[..., User], introspect: Callable[[str], Any]
) -> None:
    customer = make_user("customer", Role.BUSINESS_USER)
    issued = agent.issue(acting_for=customer)
    assert introspect(issued.token)["sub"] == "customer"
    User.objects.filter(pk=customer.pk).update(is_active=False)
    assert introspect(issued.token) == {"active": False}


def test_a_suspended_caller_in_the_chain_makes_tokens_inactive(
    agent: Agent, make_user: Callable[..., User], introspect: Callable[[str], Any]
) -> None:
    caller = make_agent(
        make_user("orchestrator-owner", Role.BUSINESS_USER), name="Orchestrator", system=agent.scopes["read"].system
    )
    issued = agent.issue(chain=[caller.integration.pk, agent.integration.pk])
    assert introspect(issued.token)["active"] is True
    inventory.integration_suspend(actor=caller.owner, integration=caller.integration, reason="Compromised.")
    assert introspect(issued.token) == {"active": False}


def test_a_revoked_jti_is_inactive(agent: Agent, introspect: Callable[[str], Any]) -> None:
    issued = agent.issue()
    TokenRevocation.objects.create(jti=issued.claims["jti"], expires_at=timezone.now() + timedelta(minutes=10))
    assert introspect(issued.token) == {"active": False}


def test_an_unknown_jti_expired_or_garbage_token_is_inactive(agent: Agent, introspect: Callable[[str], Any]) -> None:
    issued = agent.issue()
    unlogged = agent.issue()
    unlogged.event.delete()
    assert introspect(unlogged.token) == {"active": False}
    assert introspect("garbage") == {"active": False}
    with time_machine.travel(timezone.now() + timedelta(minutes=11), tick=False):
        assert introspect(issued.token) == {"active": False}


def test_an_issuance_logged_under_no_grant_is_inactive(agent: Agent, introspect: Callable[[str], Any]) -> None:
    """Every token is issued under at least one grant: a logged issuance naming none is not
    trusted to be live (there is nothing left to check it against)."""
    issued = agent.issue()
    issued.event.grant_ids = []
    issued.event.save(update_fields=["grant_ids"])
    assert introspect(issued.token) == {"active": False}


def test_reviewers_and_auditors_may_not_introspect(agent: Agent, client: Any, reviewer: User, auditor: User) -> None:
    token = agent.issue().token
    for person in (reviewer, auditor):
        response = post_form(client, URL, {"token": token}, HTTP_AUTHORIZATION=f"Bearer {api_key(person)}")
        assert response.status_code == 403 and "active" not in response.json()


def test_introspection_runs_a_fixed_number_of_queries(agent: Agent, client: Any, resource_server: User) -> None:
    key = api_key(resource_server)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    post_form(client, URL, {"token": agent.issue().token}, **headers)  # warms the key caches
    counts = []
    for chain in ([agent.integration.pk], [agent.integration.pk + 1000, agent.integration.pk]):
        issued = agent.issue(chain=chain)
        with CaptureQueriesContext(connection) as queries:
            post_form(client, URL, {"token": issued.token}, **headers)
        counts.append(len(queries))
    # The API token, its roles, the issuance with its people and revocation, its grants; and the
    # other integrations of the chain when there are any.
    assert counts == [4, 5]


def test_token_and_bearer_api_tokens_both_authenticate(agent: Agent, client: Any, resource_server: User) -> None:
    key = api_key(resource_server)
    issued = agent.issue()
    for scheme in ("Bearer", "Token"):
        response = post_form(client, URL, {"token": issued.token}, HTTP_AUTHORIZATION=f"{scheme} {key}")
        assert response.json()["active"] is True


def test_iam_admins_may_introspect(agent: Agent, client: Any, iam_admin: User) -> None:
    response = post_form(client, URL, {"token": agent.issue().token}, HTTP_AUTHORIZATION=f"Bearer {api_key(iam_admin)}")
    assert response.status_code == 200 and response.json()["active"] is True


def test_anonymous_callers_get_401_with_a_challenge(agent: Agent, client: Any) -> None:
    response = post_form(client, URL, {"token": agent.issue().token})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"] == "invalid_client"
    bad = post_form(client, URL, {"token": "x"}, HTTP_AUTHORIZATION="Bearer gp_not-a-key")
    assert bad.status_code == 401


def test_a_business_user_gets_403(agent: Agent, client: Any, outsider: User) -> None:
    response = post_form(client, URL, {"token": agent.issue().token}, HTTP_AUTHORIZATION=f"Bearer {api_key(outsider)}")
    assert response.status_code == 403 and response.json()["error"] == "insufficient_scope"
    assert "active" not in response.json()


def test_a_signed_in_session_is_not_enough(agent: Agent, client: Any, iam_admin: User) -> None:
    client.force_login(iam_admin)
    assert post_form(client, URL, {"token": agent.issue().token}).status_code == 401


def test_the_token_field_is_required_and_get_is_refused(client: Any, resource_server: User) -> None:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api_key(resource_server)}"}
    missing = post_form(client, URL, {}, **headers)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    assert client.get(URL, **headers).status_code == 405
