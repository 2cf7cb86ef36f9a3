"""Revocation (RFC 7009): by the integration itself (its workload token), its owners or IAM
admins; 200 for unknown tokens; audited; introspection goes inactive at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from governance.models import AuditEvent, User
from governance.roles import Role
from inventory.models import Integration
from runtime.introspection import introspect
from runtime.models import TokenRevocation
from tests.runtime.access_token_support import Agent, api_key, make_agent, post_form
from tests.runtime.exchange_support import SUBJECT, _issuer_key_caches, bind  # noqa: F401 (autouse fixture)
from tests.runtime.issuer_support import TestIssuer

URL = "/oauth/revoke"


@pytest.fixture
def agent(owner: User) -> Agent:
    return make_agent(owner)


def _revoke(client: Any, token: str, **headers: Any) -> Any:
    return post_form(client, URL, {"token": token, "token_type_hint": "access_token"}, **headers)


def test_an_owner_revokes_with_an_api_token_and_introspection_goes_inactive(
    agent: Agent, owner: User, client: Any
) -> None:
    issued = agent.issue()
    assert introspect(issued.token)["active"] is True
    response = _revoke(client, issued.token, HTTP_AUTHORIZATION=f"Bearer {api_key(owner)}")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert introspect(issued.token) == {"active": False}
    revocation = TokenRevocation.objects.get(jti=issued.claims["jti"])
    assert revocation.revoked_by == owner and revocation.expires_at == issued.event.expires_at
    event = AuditEvent.objects.get(action="access_token.revoked")
    assert event.owner == owner and event.after == {
        "jti": issued.claims["jti"],
        "expires_at": revocation.expires_at.isoformat().replace("+00:00", "Z"),
        "revoked_by": owner.username,
    }
    assert event.target_id == str(agent.integration.pk)


def test_revoking_twice_writes_one_revocation_and_one_event(agent: Agent, owner: User, client: Any) -> None:
    issued = agent.issue()
    headers = {"HTTP_AUTHORIZATION": f"Token {api_key(owner)}"}
    assert _revoke(client, issued.token, **headers).status_code == 200
    assert _revoke(client, issued.token, **headers).status_code == 200
    assert TokenRevocation.objects.count() == 1
    assert AuditEvent.objects.filter(action="access_token.revoked").count() == 1


def test_an_iam_admin_revokes_by_session(agent: Agent, client: Any, iam_admin: User) -> None:
    issued = agent.issue()
    client.force_login(iam_admin)
    assert _revoke(client, issued.token).status_code == 200
    assert introspect(issued.token) == {"active": False}
    assert AuditEvent.objects.get(action="access_token.revoked").owner == agent.owner


def test_a_session_without_csrf_token_is_refused(agent: Agent, iam_admin: User) -> None:
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(iam_admin)
    issued = agent.issue()
    assert _revoke(browser, issued.token).status_code == 403
    assert not TokenRevocation.objects.exists()


def test_the_integration_revokes_its_own_token_with_its_workload_token(
    client: Any, owner: User, test_issuer: TestIssuer
) -> None:
    agent = make_agent(owner)
    bind(agent.integration, test_issuer.trusted_issuer(kind="static_jwks"), SUBJECT, claims={})
    issued = agent.issue()
    workload = test_issuer.token(SUBJECT)
    assert _revoke(client, issued.token, HTTP_AUTHORIZATION=f"Bearer {workload}").status_code == 200
    assert introspect(issued.token) == {"active": False}
    event = AuditEvent.objects.get(action="access_token.revoked")
    assert event.actor_kind == "system" and event.owner == owner
    assert event.after is not None and SUBJECT in event.after["revoked_by"]


def test_an_integration_cannot_revoke_another_integrations_token(
    client: Any, owner: User, make_user: Callable[..., User], test_issuer: TestIssuer
) -> None:
    mine = make_agent(owner)
    bind(mine.integration, test_issuer.trusted_issuer(kind="static_jwks"), SUBJECT, claims={})
    other = make_agent(make_user("other-owner", Role.BUSINESS_USER), name="Other", system=mine.scopes["read"].system)
    issued = other.issue()
    response = _revoke(client, issued.token, HTTP_AUTHORIZATION=f"Bearer {test_issuer.token(SUBJECT)}")
    assert response.status_code == 403 and response.json()["error"] == "unauthorized_client"
    assert introspect(issued.token)["active"] is True


def test_an_invalid_workload_token_is_401(agent: Agent, client: Any) -> None:
    response = _revoke(client, agent.issue().token, HTTP_AUTHORIZATION="Bearer eyJhbGciOiJub25lIn0.e30.")
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_an_address_over_its_failure_limit_is_refused_before_its_workload_token_is_checked(
    client: Any, owner: User, test_issuer: TestIssuer, settings: Any
) -> None:
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "auth_failure": "2/min"}
    agent = make_agent(owner)
    bind(agent.integration, test_issuer.trusted_issuer(kind="static_jwks"), SUBJECT, claims={})
    issued = agent.issue()
    address = {"REMOTE_ADDR": "10.77.0.1"}
    forged = "Bearer eyJhbGciOiJub25lIn0.e30."
    codes = [_revoke(client, issued.token, HTTP_AUTHORIZATION=forged, **address).status_code for _ in range(2)]
    assert codes == [401, 401]
    valid = f"Bearer {test_issuer.token(SUBJECT)}"
    refused = _revoke(client, issued.token, HTTP_AUTHORIZATION=valid, **address)
    assert refused.status_code == 429 and refused.json()["error"] == "slow_down"
    assert int(refused["Retry-After"]) > 0
    assert not TokenRevocation.objects.exists()
    # Another address is not concerned.
    assert _revoke(client, issued.token, HTTP_AUTHORIZATION=valid, REMOTE_ADDR="10.77.0.2").status_code == 200


def test_unknown_expired_or_garbage_tokens_answer_200(agent: Agent, owner: User, client: Any) -> None:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api_key(owner)}"}
    unlogged = agent.issue()
    unlogged.event.delete()
    assert _revoke(client, unlogged.token, **headers).status_code == 200
    assert _revoke(client, "garbage", **headers).status_code == 200
    assert not TokenRevocation.objects.exists()


def test_a_business_user_who_does_not_own_it_gets_403(agent: Agent, client: Any, outsider: User) -> None:
    issued = agent.issue()
    response = _revoke(client, issued.token, HTTP_AUTHORIZATION=f"Bearer {api_key(outsider)}")
    assert response.status_code == 403
    assert not TokenRevocation.objects.exists()


def test_reviewers_and_auditors_may_not_revoke(agent: Agent, client: Any, reviewer: User, auditor: User) -> None:
    issued = agent.issue()
    for person in (reviewer, auditor):
        assert _revoke(client, issued.token, HTTP_AUTHORIZATION=f"Bearer {api_key(person)}").status_code == 403


def test_anonymous_callers_get_401(agent: Agent, client: Any) -> None:
    response = _revoke(client, agent.issue().token)
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")


def test_the_token_field_is_required(client: Any, owner: User) -> None:
    response = post_form(client, URL, {}, HTTP_AUTHORIZATION=f"Bearer {api_key(owner)}")
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_revocation_of_a_suspended_integrations_token_still_records_it(agent: Agent, owner: User, client: Any) -> None:
    issued = agent.issue()
    Integration.objects.filter(pk=agent.integration.pk).update(status="suspended")
    assert _revoke(client, issued.token, HTTP_AUTHORIZATION=f"Bearer {api_key(owner)}").status_code == 200
    assert TokenRevocation.objects.filter(jti=issued.claims["jti"]).exists()
