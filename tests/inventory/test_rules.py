"""Service rules: secrets refused, risk explained and raised, kill switch, chain walk, orphans."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from governance.actors import Actor
from governance.exceptions import Conflict, IllegalTransition, NotAllowed, ValidationFailed
from governance.models import AuditEvent, OutboundEmail
from governance.roles import Role
from governance.services import user_deactivate
from inventory import risk, services
from inventory.credentials import secret_problem
from inventory.models import Grant, Integration, Scope
from inventory.signals import integration_disabled, integration_risk_raised, integration_submitted
from tests.inventory.conftest import grant_all

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "value",
    [
        "sk-proj-4f9aXk2LmN8pQr7StUv",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "xoxb-2934-2394-abcdefghijkl",
        "AKIAIOSFODNN7EXAMPLE",
        "-----BEGIN RSA PRIVATE KEY-----",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "password=hunter2",
        "q8Zt3VbN9xLk2Pw7RmY4sHd6FgJ1cA5e",
    ],
)
def test_secret_looking_values_are_recognised(value: str) -> None:
    assert secret_problem(value)


@pytest.mark.parametrize(
    "value",
    [
        "key-2024-01",
        "6f1c2a9e-8b7d-4c3e-9f2a-1b2c3d4e5f60",
        "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
        "svc-refund-agent",
        "Iv1.8a61f9b3a7aba766",
        "spiffe://example.org/ns/ai/sa/agent",
    ],
)
def test_ids_and_fingerprints_are_accepted(value: str) -> None:
    assert secret_problem(value) is None


def test_register_refuses_a_secret_credential_and_names_the_field(owner: Any, make_integration: Any) -> None:
    with pytest.raises(ValidationFailed) as err:
        make_integration(
            owner,
            credentials=[
                {"type": "api_key", "identifier": "ok-id"},
                {"type": "api_key", "identifier": "AKIAIOSFODNN7EXAMPLE"},
            ],
        )
    assert "credentials.1.identifier" in err.value.errors
    assert not Integration.objects.exists()


def test_business_owner_is_required(owner: Any, make_integration: Any) -> None:
    with pytest.raises(ValidationFailed) as err:
        make_integration(owner, business_owner=None)
    assert "business_owner" in err.value.errors


def test_risk_factors_explain_the_score(owner: Any, make_integration: Any) -> None:
    integ = make_integration(
        owner,
        scopes=("hrdb:admin",),
        acts_for_users=True,
        autonomy="autonomous",
        vendor="Acme",
        workload_identity="",
        credentials=[{"type": "api_key", "identifier": "key-1"}],
    )
    codes = [f["code"] for f in integ.risk_factors]
    assert codes == [
        "delegated_user_context",
        "autonomous",
        "admin_scopes",
        "restricted_data",
        "third_party_vendor",
        "shared_secrets_only",
        "credential_never_expires",
    ]
    assert integ.risk_score == sum(f["points"] for f in integ.risk_factors)
    assert integ.risk_tier == "critical"
    assert all(f["reason"].endswith(".") for f in integ.risk_factors)


def test_credential_not_rotated_in_90_days_is_a_factor(owner: Any, make_integration: Any) -> None:
    now = timezone.now()
    integ = make_integration(
        owner,
        credentials=[
            {
                "type": "certificate",
                "identifier": "SHA256:abc",
                "created_at": now,
                "expires_at": now + timedelta(days=365),
            }
        ],
    )
    assert "credential_not_rotated" not in [f["code"] for f in integ.risk_factors]
    with time_machine.travel(now + timedelta(days=91)):
        result = risk.assess(risk.input_from(integ))
    assert "credential_not_rotated" in [f["code"] for f in result.factors]


def test_tiers_follow_the_documented_thresholds() -> None:
    assert [risk.tier_for(s) for s in (0, 19, 20, 39, 40, 59, 60, 200)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "critical",
        "critical",
    ]


def test_chain_walk_terminates_on_cycles_and_sees_granted_scopes(
    owner: Any, reviewer: Any, make_integration: Any
) -> None:
    a = make_integration(owner, name="A")
    b = make_integration(owner, name="B")
    c = make_integration(owner, name="C")
    services.integration_update(actor=owner, integration=a, values={"invokes": [b]})
    services.integration_update(actor=owner, integration=b, values={"invokes": [c]})
    services.integration_update(actor=owner, integration=c, values={"invokes": [a]})  # a cycle
    assert risk.downstream_ids([b.pk], exclude=a.pk) == [b.pk, c.pk]
    assert sorted(risk.upstream_ids(a.pk)) == sorted([b.pk, c.pk])
    # C is granted a critical scope it never requested: the chain still reaches it.
    with transaction.atomic():
        services.grant_create_many(
            actor=Actor.system(on_behalf_of=owner),
            integration=c,
            scopes=[Scope.objects.get(code="hrdb:compensation.read")],
            source_type="tests",
            source_id="x",
            approvers=[reviewer],
            expires_at=None,
        )
    reach = risk.chain_reach([b.pk], exclude=a.pk)
    assert [s.code for s in reach.sensitive_scopes] == ["hrdb:compensation.read"]
    result = risk.assess(risk.input_from(a))
    assert "chain_reaches_sensitive_data" in [f["code"] for f in result.factors]


def test_raising_the_tier_of_a_live_integration_sends_risk_raised(
    owner: Any, reviewer: Any, make_integration: Any
) -> None:
    sensitive = make_integration(owner, name="HR workflow", scopes=("hrdb:compensation.read",))
    assistant = make_integration(owner, name="Assistant")
    grant_all(assistant, reviewer)
    assert assistant.risk_tier == "low"
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kw: Any) -> None:
        seen.append({"id": kw["integration"].pk, "old": kw["old_tier"], "new": kw["new_tier"]})

    integration_risk_raised.connect(receiver)
    try:
        services.integration_update(actor=owner, integration=assistant, values={"invokes": [sensitive]})
    finally:
        integration_risk_raised.disconnect(receiver)
    assert seen == [{"id": assistant.pk, "old": "low", "new": "medium"}]
    assert AuditEvent.objects.filter(action="integration.risk_raised", target_id=str(assistant.pk)).count() == 1


def test_a_draft_whose_tier_rises_sends_nothing(owner: Any, make_integration: Any) -> None:
    integ = make_integration(owner)
    seen: list[Any] = []
    integration_risk_raised.connect(lambda sender, **kw: seen.append(kw), weak=False, dispatch_uid="t-draft")
    try:
        services.integration_update(actor=owner, integration=integ, values={"autonomy": "autonomous"})
    finally:
        integration_risk_raised.disconnect(dispatch_uid="t-draft")
    assert seen == []


def test_upstream_integration_is_rescored_when_downstream_gains_scopes(
    owner: Any, reviewer: Any, make_integration: Any
) -> None:
    downstream = make_integration(owner, name="Down")
    upstream = make_integration(owner, name="Up", invokes=[downstream])
    assert upstream.risk_tier == "low"
    services.integration_update(
        actor=owner,
        integration=downstream,
        values={"requested_scopes": [*downstream.requested_scopes.all(), Scope.objects.get(code="hrdb:admin")]},
    )
    upstream.refresh_from_db()
    assert "chain_reaches_sensitive_data" in [f["code"] for f in upstream.risk_factors]


def test_submit_sends_integration_submitted_and_grants_nothing(owner: Any, make_integration: Any) -> None:
    integ = make_integration(owner)
    seen: list[Any] = []
    integration_submitted.connect(
        lambda sender, **kw: seen.append([s.code for s in kw["scopes"]]), weak=False, dispatch_uid="t-sub"
    )
    try:
        services.integration_submit(actor=owner, integration=integ)
    finally:
        integration_submitted.disconnect(dispatch_uid="t-sub")
    integ.refresh_from_db()
    assert integ.status == "pending" and seen == [["msgraph:User.Read"]]
    assert not Grant.objects.filter(integration=integ).exists()
    with pytest.raises(IllegalTransition):
        services.integration_submit(actor=owner, integration=integ)


def test_submit_without_scopes_is_refused(owner: Any, make_integration: Any) -> None:
    integ = make_integration(owner, scopes=())
    with pytest.raises(ValidationFailed) as err:
        services.integration_submit(actor=owner, integration=integ)
    assert "requested_scopes" in err.value.errors


def test_suspend_revokes_every_grant_at_once_audited_and_owners_emailed(
    owner: Any, reviewer: Any, iam_admin: Any, make_user: Any, make_integration: Any
) -> None:
    tech = make_user("tech", Role.BUSINESS_USER)
    integ = make_integration(
        owner, scopes=("msgraph:User.Read", "msgraph:Mail.Read", "hrdb:admin"), technical_owner=tech
    )
    grant_all(integ, reviewer)
    disabled: list[Any] = []
    integration_disabled.connect(lambda sender, **kw: disabled.append(kw["status"]), weak=False, dispatch_uid="t-dis")
    try:
        with pytest.raises(ValidationFailed):
            services.integration_suspend(actor=iam_admin, integration=integ, reason=" ")
        services.integration_suspend(actor=iam_admin, integration=integ, reason="Leaked key")
    finally:
        integration_disabled.disconnect(dispatch_uid="t-dis")
    integ.refresh_from_db()
    assert integ.status == "suspended"
    grants = list(Grant.objects.filter(integration=integ))
    assert len(grants) == 3 and {g.status for g in grants} == {"revoked"}
    assert len({g.ended_at for g in grants}) == 1  # one moment, one transaction
    assert (
        AuditEvent.objects.filter(action="integration.suspended", target_id=str(integ.pk), reason="Leaked key").count()
        == 1
    )
    assert AuditEvent.objects.filter(action="grant.revoked").count() == 3
    suspended = OutboundEmail.objects.filter(key__startswith="integration-suspended:")
    assert sorted(suspended.values_list("to_address", flat=True)) == [
        "owner@example.com",
        "tech@example.com",
    ]
    assert disabled == ["suspended"]
    # It comes back only through a new request.
    services.integration_reactivate(actor=owner, integration=integ)
    integ.refresh_from_db()
    assert integ.status == "pending"
    assert AuditEvent.objects.filter(action="integration.reactivation_requested").count() == 1


def test_only_owners_and_iam_admins_revoke_a_grant_whoever_calls_the_service(
    owner: Any, reviewer: Any, auditor: Any, iam_admin: Any, make_integration: Any
) -> None:
    integ = make_integration(owner, scopes=("msgraph:User.Read", "msgraph:Mail.Read"))
    grant_all(integ, reviewer)
    first, second = Grant.objects.filter(integration=integ).order_by("pk")
    for refused in (reviewer, auditor):
        with pytest.raises(NotAllowed):
            services.grant_revoke(actor=refused, grant=first, reason="Not needed")
    assert not AuditEvent.objects.filter(action="grant.revoked").exists()
    services.grant_revoke(actor=owner, grant=first, reason="Not needed")
    services.grant_revoke(actor=iam_admin, grant=second, reason="Not needed")
    assert set(Grant.objects.filter(integration=integ).values_list("status", flat=True)) == {"revoked"}
    assert AuditEvent.objects.filter(action="grant.revoked").count() == 2


def test_outsider_cannot_suspend_through_the_service(owner: Any, outsider: Any, make_integration: Any) -> None:
    integ = make_integration(owner)
    with pytest.raises(NotAllowed):
        services.integration_suspend(actor=outsider, integration=integ, reason="x")


def test_retire_is_final(owner: Any, make_integration: Any) -> None:
    integ = make_integration(owner)
    services.integration_retire(actor=owner, integration=integ, reason="Replaced")
    with pytest.raises(Conflict):
        services.integration_update(actor=owner, integration=integ, values={"name": "Back"})


def test_deactivating_an_owner_flags_their_integrations_orphaned(
    owner: Any, iam_admin: Any, make_integration: Any, web_as: Any
) -> None:
    integ = make_integration(owner)
    user_deactivate(actor=iam_admin, user=owner, reason="Left the company")
    integ.refresh_from_db()
    assert integ.orphaned
    assert AuditEvent.objects.filter(action="integration.orphaned", target_id=str(integ.pk)).exists()
    page = web_as(iam_admin).get("/inventory/orphaned/")
    assert integ.name in page.content.decode()


def test_accepting_a_transfer_clears_the_orphan_flag(
    owner: Any, iam_admin: Any, make_user: Any, make_integration: Any
) -> None:
    integ = make_integration(owner)
    user_deactivate(actor=iam_admin, user=owner, reason="Left")
    heir = make_user("heir", Role.BUSINESS_USER)
    t = services.ownership_transfer_propose(actor=iam_admin, integration=integ, to_user=heir)
    assert OutboundEmail.objects.filter(to_address="heir@example.com").exists()
    services.ownership_transfer_accept(actor=heir, transfer=t)
    integ.refresh_from_db()
    assert integ.business_owner == heir and not integ.orphaned


def test_scope_catalog_is_kept_by_iam_admins_only(owner: Any, iam_admin: Any) -> None:
    with pytest.raises(NotAllowed):
        services.resource_system_save(actor=owner, values={"code": "x", "name": "X"})
    system = services.resource_system_save(actor=iam_admin, values={"code": "x", "name": "X"})
    scope = services.scope_save(
        actor=iam_admin, system=system, values={"name": "read", "sensitivity": "low", "access": "read"}
    )
    assert scope.code == "x:read"
    assert AuditEvent.objects.filter(action="scope.created", actor_username="admin").exists()


def test_daily_risk_refresh_catches_credentials_that_aged(owner: Any, reviewer: Any, make_integration: Any) -> None:
    from inventory.tasks import risk_refresh_all

    now = timezone.now()
    integ = make_integration(
        owner,
        acts_for_users=True,
        credentials=[
            {
                "type": "certificate",
                "identifier": "SHA256:abc",
                "created_at": now,
                "expires_at": now + timedelta(days=400),
            }
        ],
    )
    grant_all(integ, reviewer)
    assert integ.risk_tier == "low"  # 15 points
    history_rows = integ.history.count()
    assert risk_refresh_all() == 0 and integ.history.count() == history_rows  # nothing changed: no noise
    seen: list[Any] = []
    integration_risk_raised.connect(
        lambda sender, **kw: seen.append(kw["new_tier"]), weak=False, dispatch_uid="t-daily"
    )
    try:
        with time_machine.travel(now + timedelta(days=120)):
            assert risk_refresh_all() == 1
            assert risk_refresh_all() == 0  # idempotent
    finally:
        integration_risk_raised.disconnect(dispatch_uid="t-daily")
    integ.refresh_from_db()
    assert "credential_not_rotated" in [f["code"] for f in integ.risk_factors]
    assert integ.risk_tier == "medium" and seen == ["medium"]
