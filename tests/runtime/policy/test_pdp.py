"""The decision point: the enforced version decides, shadows are logged only, errors deny, and
fresh inventory data counts at the next request."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from governance.models import User
from inventory.models import Grant, Integration, Scope
from runtime.models import PolicyDecision, PolicyEntitySnapshot, PolicyStatus, PolicyVersion
from runtime.policy import pdp, source, testing
from runtime.policy.defaults import default_text
from runtime.policy.pdp import PolicyRequest
from tests.runtime.policy.support import WEEKDAY_MORNING, PolicyWorld, build_policy_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(owner: User) -> PolicyWorld:
    return build_policy_world(owner)


def test_the_seeded_version_is_the_one_enforced() -> None:
    enforced = PolicyVersion.objects.get(status=PolicyStatus.ENFORCED)
    assert enforced.number == 1 and "permit-within-active-grants" in enforced.cedar_text
    # Its tests were run once after the migrations, so its page shows their results.
    assert enforced.tests_passed and len(enforced.test_results) == 20 and enforced.tests_run_at is not None


def test_a_held_scope_is_allowed_and_logged_with_its_reason(world: PolicyWorld) -> None:
    [outcome] = pdp.decide([world.request("read")], point="api")
    assert outcome.allowed and outcome.enforced.reasons == ["permit-within-active-grants"]
    row = PolicyDecision.objects.get(decision_id=outcome.decision_id)
    assert row.decision == "allow" and row.integration_id == world.integration.pk
    assert row.resource == 'Scope::"crm:read"' and row.policy_version_id == PolicyVersion.objects.get(number=1).pk
    assert PolicyEntitySnapshot.objects.filter(sha256=row.snapshot_id).exists()


def test_a_scope_not_held_is_denied_by_default(world: PolicyWorld) -> None:
    [outcome] = pdp.decide([world.request("admin")], point="api")
    assert not outcome.allowed and outcome.enforced.reasons == []
    assert "deny by default" in outcome.explanation()


def test_a_suspension_counts_at_the_next_request(world: PolicyWorld) -> None:
    assert pdp.decide([world.request("read")], point="api")[0].allowed
    Integration.objects.filter(pk=world.integration.pk).update(status="suspended")
    [outcome] = pdp.decide([world.request("read")], point="api")
    assert not outcome.allowed and outcome.enforced.reasons == ["forbid-inactive-integration"]


def test_a_delegated_user_deactivated_is_denied(world: PolicyWorld, make_user: Any) -> None:
    person = make_user("dana")
    assert pdp.decide([world.request("read", delegated_user=person)], point="api")[0].allowed
    User.objects.filter(pk=person.pk).update(is_active=False)
    person.refresh_from_db()
    [outcome] = pdp.decide([world.request("read", delegated_user=person)], point="api")
    assert outcome.enforced.reasons == ["forbid-delegation-for-deactivated-user"]


def test_chains_deeper_than_three_are_denied(world: PolicyWorld) -> None:
    assert pdp.decide([world.request("read", chain_depth=3)], point="api")[0].allowed
    [outcome] = pdp.decide([world.request("read", chain_depth=4)], point="api")
    assert outcome.enforced.reasons == ["forbid-deep-chains"]


def test_an_autonomous_integration_on_restricted_data_gets_no_admin_scope(world: PolicyWorld) -> None:
    Grant.objects.create(integration=world.integration, scope=world.scopes["admin"], source_type="t", source_id="2")
    Scope.objects.filter(pk=world.scopes["admin"].pk).update(sensitivity="high")
    world.scopes["admin"].refresh_from_db()
    Integration.objects.filter(pk=world.integration.pk).update(data_classifications=["restricted"])
    assert pdp.decide([world.request("admin")], point="api")[0].allowed  # human in the loop
    Integration.objects.filter(pk=world.integration.pk).update(autonomy="autonomous")
    [outcome] = pdp.decide([world.request("admin")], point="api")
    assert outcome.enforced.reasons == ["forbid-autonomous-admin-on-restricted-data"]


def test_a_deactivated_owner_stops_the_integration(world: PolicyWorld) -> None:
    User.objects.filter(pk=world.owner.pk).update(is_active=False)
    [outcome] = pdp.decide([world.request("read")], point="api")
    assert outcome.enforced.reasons == ["forbid-unaccountable-integration"]


def test_critical_scopes_follow_the_policy_time_zone(world: PolicyWorld, settings: Any) -> None:
    Grant.objects.create(integration=world.integration, scope=world.scopes["admin"], source_type="t", source_id="2")
    evening_utc = datetime.fromisoformat("2026-11-24T19:00:00+00:00")  # 19:00 UTC, 11:00 in Los Angeles
    assert not pdp.decide([world.request("admin", at=evening_utc)], point="api")[0].allowed
    settings.RUNTIME_POLICY_TIME_ZONE = "America/Los_Angeles"
    [outcome] = pdp.decide([world.request("admin", at=evening_utc)], point="api")
    assert outcome.allowed and outcome.enforced.reasons == ["permit-within-active-grants"]


def test_every_stored_test_of_the_default_set_passes() -> None:
    version = PolicyVersion.objects.get(number=1)
    results = testing.run_tests(source.load(version.cedar_text), testing.checked_tests(version.tests))
    assert len(results) == 20 and all(result.passed for result in results), [r.as_dict() for r in results]


def test_the_seeded_version_matches_the_shipped_default() -> None:
    assert PolicyVersion.objects.get(number=1).cedar_text == default_text()


def test_a_version_the_schema_no_longer_validates_denies_everything(world: PolicyWorld, settings: Any) -> None:
    """Its forbid reads a caller attribute the deployment then declares with another type: the
    version decides nothing any more, even in a process that parsed it before."""
    settings.RUNTIME_POLICY_CONTEXT_ATTRIBUTES = {"ticket_closed": "Bool"}
    text = default_text() + (
        '\n@id("no-work-on-closed-tickets")\n@description("Closed tickets need nothing.")\n'
        "forbid (principal, action, resource) when { context.caller has ticket_closed && context.caller.ticket_closed };\n"
    )
    PolicyVersion.objects.filter(status=PolicyStatus.ENFORCED).update(status=PolicyStatus.RETIRED)
    PolicyVersion.objects.create(
        number=2, title="t", cedar_text=text, sha256=source.text_sha256(text), status="enforced"
    )
    assert pdp.decide([world.request("read")], point="api")[0].allowed

    settings.RUNTIME_POLICY_CONTEXT_ATTRIBUTES = {"ticket_closed": "Long"}
    [outcome] = pdp.decide([world.request("read")], point="api")
    assert not outcome.allowed and "policy v2 no longer validates" in outcome.enforced.errors[0]
    row = PolicyDecision.objects.get(decision_id=outcome.decision_id)
    assert (row.decision, row.errors) == ("deny", outcome.enforced.errors)


def test_entity_data_the_schema_refuses_is_a_logged_deny(world: PolicyWorld) -> None:
    loaded = world.loaded()
    loaded.risk_tier = None  # type: ignore[assignment]  # what no inventory row holds: the schema wants a String
    request = PolicyRequest(integration=loaded, action="exchange_token", scope=world.scopes["read"], at=WEEKDAY_MORNING)
    [outcome] = pdp.decide([request], point="api")
    assert not outcome.allowed and outcome.enforced.errors == ["the entity data could not be read"]
    assert PolicyDecision.objects.get(decision_id=outcome.decision_id).decision == "deny"


@pytest.mark.parametrize(
    ("delegated", "field"),
    [("dana", "delegated_user"), ({"actve": False}, "delegated_user"), ({"active": "no"}, "delegated_user.active")],
)
def test_a_policy_test_naming_its_delegated_user_wrongly_is_refused(delegated: Any, field: str) -> None:
    """Read as "acting for nobody", such a test would check another rule than the one it names."""
    test = {"name": "t", "action": "use_scope", "context": {"delegated_user": delegated}, "expect": "deny"}
    with pytest.raises(testing.PolicyTestsInvalid) as refused:
        testing.checked_tests([test])
    assert refused.value.field == f"tests[0].context.{field}"
    assert testing.checked_tests([{**test, "context": {"delegated_user": {"active": False}}}])
