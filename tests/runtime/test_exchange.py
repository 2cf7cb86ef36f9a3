"""The token exchange core: who gets which token for which system, for how long, and every way
it says no — each answer recorded in the token log with the accountable owner."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from approvals.campaigns.models import Campaign, CampaignDefinition, CampaignStatus, ReviewItem
from approvals.models import AccessRequest, RequestType
from approvals.services import default_workflows_ensure, request_decide
from governance.models import User
from inventory.models import Grant, Integration, ResourceSystem, Scope
from runtime import principals, tokens
from runtime.errors import ExchangeRefused
from runtime.exchange import ACCESS_TOKEN_TYPE, token_exchange
from runtime.models import TokenEvent
from tests.runtime.exchange_support import (
    CRM_AUDIENCE,
    NAMESPACE_CLAIM,
    SUBJECT,
    World,
    bind,
    build_world,
    grant,
    make_integration,
)
from tests.runtime.exchange_support import _issuer_key_caches as _issuer_key_caches  # noqa: F401 (autouse)
from tests.runtime.issuer_support import TestIssuer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _still_clock() -> Any:
    """Time stands still in each test: lifetimes are whole seconds, compared exactly."""
    with time_machine.travel(timezone.now(), tick=False):
        yield


@pytest.fixture
def world(test_issuer: TestIssuer, owner: User) -> World:
    return build_world(test_issuer, owner)


def issued(world: World, **params: str) -> dict[str, Any]:
    """Exchange and return the verified claims of the access token (and the response as _response)."""
    response = token_exchange(world.params(**params))
    claims = tokens.verify(response["access_token"])
    return {**claims, "_response": response}


def refusal(params: dict[str, str]) -> ExchangeRefused:
    with pytest.raises(ExchangeRefused) as caught:
        token_exchange(params)
    return caught.value


def last_event() -> TokenEvent:
    return TokenEvent.objects.order_by("-id").first()  # type: ignore[return-value]


# --- Acting as itself ---------------------------------------------------------------------------


def test_an_integration_acting_as_itself_gets_its_scopes_on_the_system(world: World) -> None:
    claims = issued(world)
    response = claims["_response"]
    integration = world.integration

    assert response["issued_token_type"] == ACCESS_TOKEN_TYPE and response["token_type"] == "Bearer"
    assert response["expires_in"] == 300  # the workload token's own remaining life caps it
    assert response["scope"] == "crm:read crm:write"
    assert jwt.get_unverified_header(response["access_token"])["typ"] == "at+jwt"
    assert claims["iss"] == settings.RUNTIME_ISSUER and claims["aud"] == CRM_AUDIENCE
    assert claims["sub"] == claims["client_id"] == f"integration:{integration.pk}"
    assert claims["act"] == {"sub": f"integration:{integration.pk}"}
    assert claims["owner"] == world.owner.username
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] == claims["iat"]


def test_the_issuance_is_recorded_with_the_owner_identity_and_grants(world: World) -> None:
    claims = issued(world, scope="crm:read", task="Answer ticket 42")
    event = last_event()

    assert (event.outcome, event.error) == ("issued", "")
    assert (event.integration, event.owner, event.acting_for) == (world.integration, world.owner, None)
    assert (event.workload_issuer, event.workload_subject) == (world.test_issuer.issuer, SUBJECT)
    assert event.chain == [world.integration.pk] and event.audience == CRM_AUDIENCE
    assert (event.scopes_requested, event.scopes_granted) == (["crm:read"], ["crm:read"])
    assert event.grant_ids == [world.grants["read"].pk]
    assert event.jti == claims["jti"] and int(event.expires_at.timestamp()) == claims["exp"]  # type: ignore[union-attr]
    assert event.task == "Answer ticket 42" and event.digest


def test_requested_scopes_are_intersected_with_the_grants(world: World) -> None:
    Scope.objects.create(system=world.crm, name="export", code="crm:export")
    claims = issued(world, scope="crm:read crm:export")

    assert claims["scope"] == "crm:read"
    assert last_event().reason == "Not granted: crm:export."


def test_the_system_is_named_by_its_code_or_default_audience(world: World) -> None:
    hr = ResourceSystem.objects.create(code="hr", name="HR")
    grant(world.integration, Scope.objects.create(system=hr, name="read", code="hr:read"))

    assert issued(world, audience="crm")["aud"] == CRM_AUDIENCE
    assert issued(world, audience="", resource="urn:ai-governance:system:hr")["aud"] == "urn:ai-governance:system:hr"


def test_the_token_is_signed_with_the_systems_algorithm(world: World) -> None:
    ResourceSystem.objects.filter(pk=world.crm.pk).update(token_algorithm="RS256")
    response = token_exchange(world.params())

    assert jwt.get_unverified_header(response["access_token"])["alg"] == "RS256"
    assert tokens.verify(response["access_token"])["aud"] == CRM_AUDIENCE


# --- Lifetimes ----------------------------------------------------------------------------------


def long_lived_token(world: World, seconds: int = 3000) -> str:
    now = int(time.time())
    return world.test_issuer.sign(world.test_issuer.claims(SUBJECT, exp=now + seconds, **NAMESPACE_CLAIM))


@pytest.mark.parametrize(("tier", "lifetime"), [("low", 900), ("medium", 900), ("high", 600), ("critical", 300)])
def test_lifetime_is_capped_at_15_minutes_and_by_tier(world: World, tier: str, lifetime: int) -> None:
    Integration.objects.filter(pk=world.integration.pk).update(risk_tier=tier)
    assert token_exchange(world.params(long_lived_token(world)))["expires_in"] == lifetime


def test_lifetime_never_outlives_the_workload_token(world: World) -> None:
    assert token_exchange(world.params(long_lived_token(world, seconds=120)))["expires_in"] == 120


def test_lifetime_never_outlives_a_grant_it_carries(world: World) -> None:
    Grant.objects.filter(pk=world.grants["read"].pk).update(expires_at=timezone.now() + timedelta(seconds=90))
    response = token_exchange(world.params(long_lived_token(world), scope="crm:read"))
    assert response["expires_in"] == 90


# --- Refusals -------------------------------------------------------------------------------------


def assert_recorded_refusal(world: World, error: str, text: str, params: dict[str, str] | None = None) -> TokenEvent:
    refused = refusal(params or world.params())
    assert refused.error == error, refused.description
    assert text in refused.description
    event = last_event()
    assert (event.outcome, event.error, event.reason) == ("refused", error, refused.description)
    assert event.jti == "" and event.scopes_granted == []
    return event


@pytest.mark.parametrize("status", ["draft", "pending", "suspended", "retired", "rejected"])
def test_an_integration_not_active_is_refused(world: World, status: str) -> None:
    Integration.objects.filter(pk=world.integration.pk).update(status=status)
    event = assert_recorded_refusal(world, "unauthorized_client", "only an active integration obtains tokens")
    assert (event.integration, event.owner) == (world.integration, world.owner)


def test_a_deactivated_owner_is_refused(world: World) -> None:
    User.objects.filter(pk=world.owner.pk).update(is_active=False)
    event = assert_recorded_refusal(
        world, "unauthorized_client", "business owner of integration Support agent is deactivated"
    )
    assert event.owner == world.owner


def test_an_invalid_workload_token_is_refused_and_recorded_with_who_it_claimed_to_be(world: World) -> None:
    token = world.test_issuer.sign(world.test_issuer.claims(SUBJECT, **NAMESPACE_CLAIM), algorithm="none")
    event = assert_recorded_refusal(world, "invalid_request", "never accepted", world.params(token))
    assert (event.workload_issuer, event.workload_subject) == (world.test_issuer.issuer, SUBJECT)
    assert event.integration is None and event.owner is None


def test_an_expired_workload_token_is_refused(world: World) -> None:
    params = world.params()
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        assert_recorded_refusal(world, "invalid_request", "has expired", params)


def test_a_revoked_grant_is_refused(world: World) -> None:
    Grant.objects.filter(pk=world.grants["read"].pk).update(status="revoked", ended_at=timezone.now())
    assert_recorded_refusal(
        world, "invalid_grant", "crm:read to Support agent was revoked", world.params(scope="crm:read")
    )


def test_an_expired_grant_is_refused(world: World) -> None:
    Grant.objects.filter(pk=world.grants["read"].pk).update(status="expired", ended_at=timezone.now())
    assert_recorded_refusal(world, "invalid_grant", "crm:read to Support agent expired", world.params(scope="crm:read"))


def test_a_grant_past_its_expiry_not_yet_swept_is_refused(world: World) -> None:
    Grant.objects.filter(pk=world.grants["read"].pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert_recorded_refusal(world, "invalid_grant", "expired on", world.params(scope="crm:read"))


def test_a_scope_not_granted_is_refused(world: World) -> None:
    Scope.objects.create(system=world.crm, name="export", code="crm:export")
    assert_recorded_refusal(world, "invalid_scope", "does not hold crm:export", world.params(scope="crm:export"))


def test_an_unknown_scope_or_one_of_another_system_is_refused(world: World) -> None:
    hr = ResourceSystem.objects.create(code="hr", name="HR")
    Scope.objects.create(system=hr, name="read", code="hr:read")
    assert_recorded_refusal(world, "invalid_scope", "no scope crm:nothing", world.params(scope="crm:nothing"))
    assert_recorded_refusal(world, "invalid_scope", "a scope of HR, not of CRM", world.params(scope="hr:read"))


def test_an_audience_not_covered_by_any_grant_is_refused(world: World) -> None:
    ResourceSystem.objects.create(code="hr", name="HR")
    assert_recorded_refusal(world, "invalid_target", "Audience not covered", world.params(audience="hr"))


def test_an_unknown_audience_is_refused(world: World) -> None:
    assert_recorded_refusal(world, "invalid_target", "No resource system", world.params(audience="https://nowhere"))


def overdue_review(world: World, grant_row: Grant, *, per_integration: bool = False) -> ReviewItem:
    definition = CampaignDefinition.objects.create(name="Quarterly", owner=world.owner)
    campaign = Campaign.objects.create(
        definition=definition,
        name="Q3",
        owner=world.owner,
        status=CampaignStatus.ACTIVE,
        granularity="integration" if per_integration else "grant",
        default_action="revoke",
        apply_mode="immediate",
        second_stage="none",
        deadline=timezone.now() - timedelta(days=1),
    )
    return ReviewItem.objects.create(
        campaign=campaign,
        integration=world.integration,
        grant=None if per_integration else grant_row,
        grant_ids=[grant_row.pk] if per_integration else [],
    )


@pytest.mark.parametrize("per_integration", [False, True])
def test_recertification_overdue_is_refused(world: World, per_integration: bool) -> None:
    overdue_review(world, world.grants["read"], per_integration=per_integration)
    assert_recorded_refusal(world, "access_denied", "Recertification overdue", world.params(scope="crm:read"))
    assert issued(world)["scope"] == "crm:write"  # the other grant is still usable


def test_a_review_still_within_its_deadline_does_not_block(world: World) -> None:
    item = overdue_review(world, world.grants["read"])
    Campaign.objects.filter(pk=item.campaign_id).update(deadline=timezone.now() + timedelta(days=3))
    assert issued(world, scope="crm:read")["scope"] == "crm:read"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"subject_token_type": "urn:ietf:params:oauth:token-type:saml2"}, "invalid_request"),
        ({"subject_token": ""}, "invalid_request"),
        ({"audience": ""}, "invalid_request"),
        ({"task": "x" * 201}, "invalid_request"),
        ({"task": "two\nlines"}, "invalid_request"),
        ({"requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}, "invalid_request"),
        ({"actor_token_type": "urn:ietf:params:oauth:token-type:jwt"}, "invalid_request"),
        ({"resource": "https://other.example.com"}, "invalid_target"),
    ],
)
def test_malformed_requests_are_refused_and_recorded(world: World, params: dict[str, str], error: str) -> None:
    assert refusal(world.params(**params)).error == error
    assert last_event().error == error


# --- Acting for a user ----------------------------------------------------------------------------


@pytest.fixture
def idp(make_test_issuer: Callable[..., TestIssuer]) -> TestIssuer:
    """The company's identity provider, trusted for user tokens (keys pasted)."""
    issuer = make_test_issuer()
    issuer.trusted_issuer(kind="static_jwks")
    return issuer


@pytest.fixture
def alice(make_user: Callable[..., User]) -> User:
    return make_user("alice")


def for_user(world: World, user_token: str, **extra: str) -> dict[str, str]:
    return world.params(
        user_token,
        subject_token_type="urn:ietf:params:oauth:token-type:id_token",
        actor_token=world.workload_token(),
        actor_token_type="urn:ietf:params:oauth:token-type:jwt",
        **extra,
    )


def test_an_integration_acting_for_a_user_gets_a_token_about_that_user(
    world: World, idp: TestIssuer, alice: User
) -> None:
    Integration.objects.filter(pk=world.integration.pk).update(acts_for_users=True)
    response = token_exchange(for_user(world, idp.token("00u-alice", preferred_username="alice")))
    claims = tokens.verify(response["access_token"])

    assert claims["sub"] == f"user:{alice.pk}" and claims["preferred_username"] == "alice"
    assert claims["act"] == {"sub": f"integration:{world.integration.pk}"}
    assert claims["client_id"] == f"integration:{world.integration.pk}"
    event = last_event()
    assert (event.acting_for, event.owner, event.integration) == (alice, world.owner, world.integration)


def test_a_user_is_found_by_verified_email_too(world: World, idp: TestIssuer, alice: User) -> None:
    Integration.objects.filter(pk=world.integration.pk).update(acts_for_users=True)
    response = token_exchange(for_user(world, idp.token("00u-alice", email="ALICE@example.com")))
    assert tokens.verify(response["access_token"])["sub"] == f"user:{alice.pk}"

    unverified = idp.token("00u-alice", email="alice@example.com", email_verified=False)
    assert refusal(for_user(world, unverified)).error == "invalid_request"


@pytest.mark.parametrize("flag", ["false", "False", 0, None, "yes"])
def test_an_email_the_issuer_does_not_plainly_vouch_for_finds_nobody(
    world: World, idp: TestIssuer, alice: User, flag: Any
) -> None:
    Integration.objects.filter(pk=world.integration.pk).update(acts_for_users=True)
    token = idp.token("00u-alice", email="alice@example.com", email_verified=flag)
    assert "names no portal user" in refusal(for_user(world, token)).description
    assert (
        tokens.verify(
            token_exchange(for_user(world, idp.token("00u-alice", email="alice@example.com", email_verified="true")))[
                "access_token"
            ]
        )["sub"]
        == f"user:{alice.pk}"
    )


def test_delegation_is_refused_for_an_integration_not_acting_for_users(
    world: World, idp: TestIssuer, alice: User
) -> None:
    params = for_user(world, idp.token("00u-alice", preferred_username="alice"))
    assert_recorded_refusal(world, "unauthorized_client", "Delegation not allowed", params)


def test_acting_for_a_deactivated_user_is_refused(world: World, idp: TestIssuer, alice: User) -> None:
    Integration.objects.filter(pk=world.integration.pk).update(acts_for_users=True)
    User.objects.filter(pk=alice.pk).update(is_active=False)
    params = for_user(world, idp.token("00u-alice", preferred_username="alice"))
    event = assert_recorded_refusal(world, "access_denied", "not an active person", params)
    assert event.acting_for == alice


def test_a_workload_identity_is_not_a_users_token(world: World) -> None:
    Integration.objects.filter(pk=world.integration.pk).update(acts_for_users=True)
    assert_recorded_refusal(
        world, "invalid_request", "workload identity, not a user", for_user(world, world.workload_token())
    )


def test_a_user_token_is_verified_like_any_token(world: World, idp: TestIssuer, alice: User) -> None:
    Integration.objects.filter(pk=world.integration.pk).update(acts_for_users=True)
    forged = idp.sign(idp.claims("00u-alice", preferred_username="alice"), algorithm="HS256")
    assert_recorded_refusal(world, "invalid_request", "subject token", for_user(world, forged))


# --- Chains of integrations -----------------------------------------------------------------------


@pytest.fixture
def callee(world: World, owner: User) -> Integration:
    """A second integration, B, with its own identity and a grant on the CRM."""
    integration = make_integration(owner, "Billing agent")
    bind(integration, world.issuer, "system:serviceaccount:ai:billing")
    grant(integration, world.scopes["read"])
    return integration


def chained(
    world: World, subject_token: str, actor_subject: str = "system:serviceaccount:ai:billing"
) -> dict[str, str]:
    return world.params(
        subject_token,
        subject_token_type=ACCESS_TOKEN_TYPE,
        actor_token=world.workload_token(actor_subject),
        actor_token_type="urn:ietf:params:oauth:token-type:jwt",
    )


def test_a_registered_call_nests_the_actors_and_keeps_the_subject(world: World, callee: Integration) -> None:
    caller = world.integration
    caller.invokes.add(callee)
    caller_token = token_exchange(world.params())["access_token"]

    claims = tokens.verify(token_exchange(chained(world, caller_token))["access_token"])

    assert claims["sub"] == f"integration:{caller.pk}"
    assert claims["client_id"] == f"integration:{callee.pk}"
    assert claims["act"] == {"sub": f"integration:{callee.pk}", "act": {"sub": f"integration:{caller.pk}"}}
    assert claims["scope"] == "crm:read"  # the callee's own grants
    event = last_event()
    assert event.chain == [caller.pk, callee.pk] and event.integration == callee


def test_a_call_along_an_unregistered_edge_is_refused(world: World, callee: Integration) -> None:
    caller_token = token_exchange(world.params())["access_token"]
    assert_recorded_refusal(world, "unauthorized_client", "Chain not registered", chained(world, caller_token))


def test_an_edge_registered_the_other_way_round_does_not_count(world: World, callee: Integration) -> None:
    callee.invokes.add(world.integration)
    caller_token = token_exchange(world.params())["access_token"]
    assert refusal(chained(world, caller_token)).error == "unauthorized_client"


def test_a_suspended_caller_stops_the_chain(world: World, callee: Integration) -> None:
    world.integration.invokes.add(callee)
    caller_token = token_exchange(world.params())["access_token"]
    Integration.objects.filter(pk=world.integration.pk).update(status="suspended")
    assert_recorded_refusal(
        world, "unauthorized_client", "Calling integration Support agent is suspended", chained(world, caller_token)
    )


def test_a_user_carried_along_a_chain_needs_delegation_at_each_hop(
    world: World, callee: Integration, idp: TestIssuer, alice: User
) -> None:
    Integration.objects.filter(pk=world.integration.pk).update(acts_for_users=True)
    world.integration.invokes.add(callee)
    user_token = token_exchange(for_user(world, idp.token("00u-alice", preferred_username="alice")))["access_token"]

    assert_recorded_refusal(world, "unauthorized_client", "Delegation not allowed", chained(world, user_token))
    Integration.objects.filter(pk=callee.pk).update(acts_for_users=True)
    claims = tokens.verify(token_exchange(chained(world, user_token))["access_token"])
    assert claims["sub"] == f"user:{alice.pk}" and claims["preferred_username"] == "alice"
    assert last_event().acting_for == alice


def test_a_portal_token_naming_no_actor_is_refused(world: World, callee: Integration) -> None:
    world.integration.invokes.add(callee)
    now = int(time.time())
    bare = tokens.mint(
        {
            "iss": settings.RUNTIME_ISSUER,
            "aud": CRM_AUDIENCE,
            "sub": f"integration:{world.integration.pk}",
            "client_id": "portal",  # a portal token that no integration obtained
            "iat": now,
            "exp": now + 300,
            "jti": "b" * 32,
        }
    )
    assert_recorded_refusal(world, "invalid_request", "names no acting integration", chained(world, bare))


def test_chains_are_capped(world: World, callee: Integration, owner: User, monkeypatch: pytest.MonkeyPatch) -> None:
    third = make_integration(owner, "Ledger agent")
    bind(third, world.issuer, "system:serviceaccount:ai:ledger")
    grant(third, world.scopes["read"])
    world.integration.invokes.add(callee)
    callee.invokes.add(third)
    first = token_exchange(world.params())["access_token"]
    second = token_exchange(chained(world, first))["access_token"]

    claims = tokens.verify(token_exchange(chained(world, second, "system:serviceaccount:ai:ledger"))["access_token"])
    assert claims["act"]["act"]["act"] == {"sub": f"integration:{world.integration.pk}"}

    monkeypatch.setattr(principals, "MAX_CHAIN", 2)
    params = chained(world, second, "system:serviceaccount:ai:ledger")
    assert_recorded_refusal(world, "unauthorized_client", "longer than 2 integrations", params)


# --- Just-in-time elevation -----------------------------------------------------------------------


def test_a_jit_scope_without_a_task_asks_for_one(world: World) -> None:
    assert_recorded_refusal(world, "access_denied", "ask again with a task", world.params(scope="crm:admin"))
    assert not AccessRequest.objects.filter(type=RequestType.JIT_ELEVATION).exists()


def test_jit_elevation_end_to_end(world: World, reviewer: User) -> None:
    default_workflows_ensure()
    params = world.params(scope="crm:admin", task="Merge duplicate accounts for ticket 7")

    event = assert_recorded_refusal(world, "access_denied", "elevation request #", params)
    elevation = AccessRequest.objects.get(type=RequestType.JIT_ELEVATION, integration=world.integration)
    assert f"#{elevation.pk}" in event.reason and f"/approvals/requests/{elevation.pk}/" in event.reason
    assert event.task == "Merge duplicate accounts for ticket 7"

    again = refusal(world.params(scope="crm:admin", task="Merge them again"))
    assert f"elevation request #{elevation.pk}" in again.description
    assert AccessRequest.objects.filter(type=RequestType.JIT_ELEVATION).count() == 1  # not opened twice

    request_decide(actor=reviewer, request=elevation, decision="approve")
    assert issued(world, scope="crm:admin")["scope"] == "crm:admin"
