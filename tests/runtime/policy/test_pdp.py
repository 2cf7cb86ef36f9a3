"""The decision point: the enforced version decides, shadows are logged only, errors deny, and
fresh inventory data counts at the next request."""

from __future__ import annotations

import pytest

from governance.models import User
from inventory.models import Integration
from runtime.models import PolicyDecision, PolicyEntitySnapshot, PolicyStatus, PolicyVersion
from runtime.policy import pdp
from tests.runtime.policy.support import PolicyWorld, build_policy_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(owner: User) -> PolicyWorld:
    return build_policy_world(owner)


def test_the_seeded_version_is_the_one_enforced() -> None:
    enforced = PolicyVersion.objects.get(status=PolicyStatus.ENFORCED)
    assert enforced.number == 1 and "permit-within-active-grants" in enforced.cedar_text


def test_a_held_scope_is_allowed_and_logged_with_its_reason(world: PolicyWorld) -> None:
    [outcome] = pdp.decide([world.request("read")], point="api")
    assert outcome.allowed and outcome.enforced.reasons == ["permit-within-active-grants"]
    row = PolicyDecision.objects.get(decision_id=outcome.decision_id)
    assert row.decision == "allow" and row.integration_id == world.integration.pk
    assert row.resource == 'Scope::"crm:read"' and row.policy_version.number == 1
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
