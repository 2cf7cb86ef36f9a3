"""The decision log: every decision appended without a lock, sealed in batches into the audit
chain, verified end to end, and purged after its retention without breaking verification."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext

from governance import scheduling
from governance.audit import registered_verifiers, verify_chain
from governance.models import AuditEvent, User
from governance.roles import Role
from runtime import tasks
from runtime.models import PolicyDecision, PolicyDecisionBatch, PolicyEntitySnapshot
from runtime.policy import log, pdp
from runtime.policy.log import (
    PURGE_ACTION,
    SEAL_ACTION,
    DecisionLogTampered,
    decision_digest,
    purge,
    seal,
    verify_decision_log,
)
from runtime.sealing import GENESIS_DIGEST
from tests.runtime.policy.support import PolicyWorld, build_policy_world

pytestmark = pytest.mark.django_db

T0 = datetime.fromisoformat("2026-03-03T10:00:00+00:00")  # a Tuesday, in business hours


@pytest.fixture
def world(owner: User) -> PolicyWorld:
    return build_policy_world(owner)


def decided(world: PolicyWorld, count: int = 1, *, at: datetime = T0, scope: str = "read") -> list[PolicyDecision]:
    """``count`` decisions at ``at`` (the clock moved there too), as the decision API makes them."""
    with time_machine.travel(at, tick=False):
        outcomes = pdp.decide([world.request(scope, at=at) for _ in range(count)], point="api")
    ids = [outcome.decision_id for outcome in outcomes]
    return list(PolicyDecision.objects.filter(decision_id__in=ids).order_by("id"))


def sealed_at(when: datetime, **options: Any) -> list[PolicyDecisionBatch]:
    with time_machine.travel(when, tick=False):
        return seal(**options)


def sha(*parts: str) -> str:
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def rewrite_audit_event(event: AuditEvent, **after: Any) -> None:
    """What someone with write access to the database could do (the ORM refuses it)."""
    QuerySet.update(AuditEvent.objects.filter(pk=event.pk), after={**(event.after or {}), **after})


def remove_audit_events(action: str) -> None:
    events = AuditEvent.objects.filter(action=action)
    events._raw_delete(events.db)


# --- Sealing ---------------------------------------------------------------------------------------


def test_sealing_covers_every_decision_and_chains_the_batches(world: PolicyWorld) -> None:
    rows = decided(world, 3) + decided(world, 2, scope="admin")
    first, second, third = seal(chunk_size=2)

    assert [batch.count for batch in (first, second, third)] == [2, 2, 1]
    assert not PolicyDecision.objects.filter(batch__isnull=True).exists()
    assert (first.first_decision_id, third.last_decision_id) == (rows[0].pk, rows[-1].pk)
    assert first.previous_digest == GENESIS_DIGEST
    assert first.digest == sha(GENESIS_DIGEST, rows[0].digest, rows[1].digest)
    assert (second.previous_digest, third.previous_digest) == (first.digest, second.digest)
    assert third.digest == sha(second.digest, rows[4].digest)


def test_each_batch_is_one_audit_event_naming_the_owner(world: PolicyWorld) -> None:
    decided(world, 2)
    decided(world, 1, scope="admin")
    (batch,) = seal()

    event = AuditEvent.objects.get(action=SEAL_ACTION)
    after = event.after or {}
    assert (after["batch"], after["digest"], after["count"]) == (batch.pk, batch.digest, 3)
    assert (after["allowed"], after["denied"]) == (2, 1)
    assert event.owner == world.owner and event.actor_kind == "system"
    assert PolicyDecisionBatch.objects.get(pk=batch.pk).audit_event_id == event.pk
    assert verify_chain()[1] is None


def test_sealing_again_seals_nothing_twice(world: PolicyWorld) -> None:
    decided(world, 2)
    assert len(seal()) == 1
    assert seal() == []
    decided(world, 1)
    (batch,) = seal()
    assert batch.count == 1 and PolicyDecisionBatch.objects.count() == 2


def test_the_sealer_refuses_to_vouch_for_an_altered_decision(world: PolicyWorld) -> None:
    (row,) = decided(world, 1, scope="admin")
    PolicyDecision.objects.filter(pk=row.pk).update(decision="allow")
    with pytest.raises(DecisionLogTampered, match=f"policy decision #{row.pk} was altered"):
        seal()
    assert not PolicyDecisionBatch.objects.exists()


def test_the_seal_task_runs_every_minute(world: PolicyWorld) -> None:
    assert any(
        task.func == "runtime.tasks.policy_log_seal" and task.cron == "* * * * *" for task in scheduling.registered()
    )
    decided(world, 3)
    assert tasks.policy_log_seal() == 3
    assert tasks.policy_log_seal() == 0


# --- Verification ----------------------------------------------------------------------------------


def sealed_log(world: PolicyWorld) -> list[PolicyDecision]:
    """Five decisions in three batches, and one not sealed yet."""
    rows = decided(world, 4) + decided(world, 1, scope="admin")
    seal(chunk_size=2)
    decided(world, 1)
    return list(PolicyDecision.objects.filter(pk__in=[row.pk for row in rows]).order_by("id"))


def test_an_intact_log_verifies(world: PolicyWorld) -> None:
    sealed_log(world)
    assert verify_decision_log() == (6, None)


def test_verification_detects_an_edited_decision(world: PolicyWorld) -> None:
    rows = sealed_log(world)
    PolicyDecision.objects.filter(pk=rows[4].pk).update(decision="allow")
    _checked, problem = verify_decision_log()
    assert problem == f"policy decision #{rows[4].pk} (batch #{rows[4].batch_id}) was altered after it was written"


def test_verification_detects_an_edit_whose_digest_was_recomputed(world: PolicyWorld) -> None:
    rows = sealed_log(world)
    row = PolicyDecision.objects.get(pk=rows[4].pk)
    row.decision, row.reasons = "allow", ["permit-within-active-grants"]
    PolicyDecision.objects.filter(pk=row.pk).update(
        decision=row.decision, reasons=row.reasons, digest=decision_digest(row)
    )
    assert "no longer holds the decisions it sealed" in str(verify_decision_log()[1])


def test_verification_detects_a_deleted_decision(world: PolicyWorld) -> None:
    rows = sealed_log(world)
    PolicyDecision.objects.filter(pk=rows[1].pk).delete()
    assert f"decision batch #{rows[0].batch_id} no longer holds the decisions it sealed" in str(
        verify_decision_log()[1]
    )


def test_verification_detects_a_decision_inserted_into_a_sealed_batch(world: PolicyWorld) -> None:
    rows = sealed_log(world)
    unsealed = PolicyDecision.objects.get(batch__isnull=True)
    PolicyDecision.objects.filter(pk=unsealed.pk).update(batch=rows[0].batch_id)
    assert "no longer holds the decisions it sealed" in str(verify_decision_log()[1])


def test_verification_detects_a_broken_chain(world: PolicyWorld) -> None:
    rows = sealed_log(world)
    PolicyDecisionBatch.objects.filter(decisions=rows[2]).update(previous_digest=GENESIS_DIGEST)
    assert f"decision batch #{rows[2].batch_id} does not follow the batch before it" in str(verify_decision_log()[1])


def test_verification_detects_a_removed_batch(world: PolicyWorld) -> None:
    rows = sealed_log(world)
    middle = PolicyDecisionBatch.objects.get(decisions=rows[2])
    PolicyDecision.objects.filter(batch=middle).delete()
    middle.delete()
    assert "does not follow the batch before it" in str(verify_decision_log()[1])


def test_verification_detects_a_removed_last_batch(world: PolicyWorld) -> None:
    rows = sealed_log(world)
    last = PolicyDecisionBatch.objects.get(decisions=rows[4])
    last_id = last.pk
    PolicyDecision.objects.filter(batch=last).update(batch=None)
    last.delete()
    assert f"decision batch #{last_id}, which is gone from the decision log" in str(verify_decision_log()[1])


def test_verification_detects_a_seal_event_that_disagrees(world: PolicyWorld) -> None:
    rows = sealed_log(world)
    batch = PolicyDecisionBatch.objects.get(decisions=rows[2])
    assert batch.audit_event_id is not None
    rewrite_audit_event(AuditEvent.objects.get(pk=batch.audit_event_id), count=7)
    assert f"decision batch #{batch.pk} has no audit event carrying its digest" in str(verify_decision_log()[1])


def test_verification_detects_an_altered_unsealed_decision(world: PolicyWorld) -> None:
    sealed_log(world)
    PolicyDecision.objects.filter(batch__isnull=True).update(trace="rewritten")
    assert "(not sealed yet) was altered" in str(verify_decision_log()[1])


def test_verify_audit_covers_the_decision_log(world: PolicyWorld, capsys: Any) -> None:
    assert ("decision log", verify_decision_log) in registered_verifiers()
    rows = sealed_log(world)
    call_command("verify_audit")
    assert "The decision log is intact: 6 entries verified." in capsys.readouterr().out

    PolicyDecision.objects.filter(pk=rows[0].pk).update(resource='Scope::"crm:admin"')
    with pytest.raises(CommandError, match="The decision log is broken"):
        call_command("verify_audit")


# --- Retention -------------------------------------------------------------------------------------

DAY = timedelta(days=1)


def aged_log(world: PolicyWorld) -> tuple[list[PolicyDecision], list[PolicyDecision]]:
    """Three old decisions in two batches (T0), two recent ones in one batch (T0 + 100 days)."""
    old = decided(world, 2) + decided(world, 1, scope="admin")
    sealed_at(T0 + timedelta(minutes=1), chunk_size=2)
    recent = decided(world, 2, at=T0 + 100 * DAY)
    sealed_at(T0 + 100 * DAY + timedelta(minutes=1))
    return old, recent


def purged_at(when: datetime, **options: Any) -> Any:
    with time_machine.travel(when, tick=False):
        return purge(**options)


def test_purge_removes_whole_sealed_batches_past_the_retention_and_is_audited(
    world: PolicyWorld, iam_admin: User, settings: Any
) -> None:
    settings.RUNTIME_DECISION_RETENTION_DAYS = 180
    old, recent = aged_log(world)
    batches = list(PolicyDecisionBatch.objects.order_by("id"))

    result = purged_at(T0 + 181 * DAY)

    assert (result.batches, result.decisions, result.events) == (2, 3, 1)
    assert list(PolicyDecision.objects.order_by("id")) == recent
    event = AuditEvent.objects.get(action=PURGE_ACTION)
    after = event.after or {}
    assert (after["first_batch"], after["last_batch"], after["batches"], after["decisions"]) == (
        batches[0].pk,
        batches[1].pk,
        2,
        3,
    )
    assert (after["first_decision_id"], after["last_decision_id"]) == (old[0].pk, old[-1].pk)
    assert (after["previous_digest"], after["digest"]) == (GENESIS_DIGEST, batches[1].digest)
    assert event.owner == iam_admin and event.actor_kind == "system"
    assert verify_decision_log() == (2, None)
    assert verify_chain()[1] is None


def test_the_purge_answers_to_a_human_iam_admin_never_a_service_account(world: PolicyWorld, make_user: Any) -> None:
    # An API client given the IAM admin role, registered before the person.
    make_user("automation", Role.IAM_ADMIN, is_service_account=True)
    person = make_user("ivan", Role.IAM_ADMIN)
    aged_log(world)
    purged_at(T0 + 181 * DAY)
    assert AuditEvent.objects.get(action=PURGE_ACTION).owner == person


def test_after_a_purge_new_batches_chain_on_and_verify(world: PolicyWorld) -> None:
    aged_log(world)
    purged_at(T0 + 181 * DAY)
    decided(world, 2, at=T0 + 181 * DAY)
    (batch,) = sealed_at(T0 + 181 * DAY + timedelta(minutes=1))
    assert batch.previous_digest == PolicyDecisionBatch.objects.order_by("id").first().digest  # type: ignore[union-attr]

    # Every batch gone: the next one follows the digest the purge recorded.
    purged_at(T0 + 400 * DAY)
    assert not PolicyDecisionBatch.objects.exists()
    last_purged = (AuditEvent.objects.filter(action=PURGE_ACTION).order_by("-id").first().after or {})["digest"]  # type: ignore[union-attr]
    decided(world, 1, at=T0 + 400 * DAY)
    (after_all,) = sealed_at(T0 + 400 * DAY + timedelta(minutes=1))
    assert after_all.previous_digest == last_purged
    assert verify_decision_log() == (1, None)
    assert AuditEvent.objects.filter(action=PURGE_ACTION).count() == 2


def test_purge_keeps_a_batch_holding_any_decision_within_the_retention(world: PolicyWorld) -> None:
    decided(world, 1)
    decided(world, 1, at=T0 + 10 * DAY)
    sealed_at(T0 + 10 * DAY)
    assert purged_at(T0 + 185 * DAY).decisions == 0
    assert PolicyDecision.objects.count() == 2
    assert purged_at(T0 + 191 * DAY).decisions == 2


def test_purge_never_removes_unsealed_decisions(world: PolicyWorld) -> None:
    aged_log(world)
    (unsealed,) = decided(world, 1)  # as old as the purged ones, but not sealed yet
    purged_at(T0 + 400 * DAY)
    assert list(PolicyDecision.objects.all()) == [unsealed]
    assert verify_decision_log() == (1, None)


def test_purge_works_in_chunks_each_audited(world: PolicyWorld) -> None:
    decided(world, 5)
    sealed_at(T0, chunk_size=1)
    result = purged_at(T0 + 181 * DAY, max_decisions=2)
    assert (result.batches, result.decisions, result.events) == (5, 5, 3)
    purges = [event.after or {} for event in AuditEvent.objects.filter(action=PURGE_ACTION).order_by("id")]
    assert [purge["batches"] for purge in purges] == [2, 2, 1]
    assert [purge["previous_digest"] for purge in purges[1:]] == [purge["digest"] for purge in purges[:-1]]
    assert verify_decision_log() == (0, None)


def test_a_backlog_of_one_decision_batches_is_purged_in_bounded_runs(
    world: PolicyWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quiet portal seals a batch of one decision a minute: however many have expired, one purge
    transaction takes a bounded number of batches, and no statement lists more than a page of
    ids (SQLite refuses a statement with too many)."""
    monkeypatch.setattr(log, "PURGE_MAX_BATCHES", 3)
    monkeypatch.setattr(log, "_PURGE_PAGE", 2)
    decided(world, 5)
    sealed_at(T0, chunk_size=1)
    with CaptureQueriesContext(connection) as queries:
        result = purged_at(T0 + 181 * DAY)
    assert (result.batches, result.decisions, result.events) == (5, 5, 2)
    lists = [found for query in queries for found in re.findall(r" IN \(([^()]*)\)", query["sql"])]
    assert lists and max(len(found.split(",")) for found in lists) <= 2
    assert verify_decision_log() == (0, None)


def test_purge_runs_again_without_removing_more(world: PolicyWorld) -> None:
    aged_log(world)
    purged_at(T0 + 181 * DAY)
    assert purged_at(T0 + 181 * DAY + timedelta(hours=1)).events == 0
    assert AuditEvent.objects.filter(action=PURGE_ACTION).count() == 1


def test_purge_refuses_to_erase_a_batch_that_no_longer_verifies(world: PolicyWorld) -> None:
    old, _recent = aged_log(world)
    PolicyDecision.objects.filter(pk=old[2].pk).update(decision="allow")
    with pytest.raises(DecisionLogTampered, match=f"policy decision #{old[2].pk}"):
        purged_at(T0 + 181 * DAY)
    assert PolicyDecision.objects.count() == 5 and not AuditEvent.objects.filter(action=PURGE_ACTION).exists()


def test_purge_removes_snapshots_no_decision_refers_to(world: PolicyWorld) -> None:
    old, recent = aged_log(world)
    kept = {row.snapshot_id for row in recent}
    gone = {row.snapshot_id for row in old} - kept
    assert gone  # a scope's entity slice differs: admin was asked only at T0

    result = purged_at(T0 + 181 * DAY)

    assert result.snapshots == len(gone)
    assert set(PolicyEntitySnapshot.objects.values_list("sha256", flat=True)) == kept

    # The same entity data decided on again is stored again: the decision never points at nothing.
    (again,) = decided(world, 1, at=T0 + 182 * DAY, scope="admin")
    assert again.snapshot_id in gone and PolicyEntitySnapshot.objects.filter(sha256=again.snapshot_id).exists()


def test_verification_after_a_purge_detects_the_first_remaining_batch_removed(world: PolicyWorld) -> None:
    aged_log(world)
    decided(world, 1, at=T0 + 101 * DAY)
    sealed_at(T0 + 101 * DAY)
    purged_at(T0 + 181 * DAY)
    first = PolicyDecisionBatch.objects.order_by("id").first()
    assert first is not None
    PolicyDecision.objects.filter(batch=first).delete()
    first.delete()
    assert "does not follow the batch before it" in str(verify_decision_log()[1])


def test_verification_detects_a_purge_event_that_was_removed(world: PolicyWorld) -> None:
    aged_log(world)
    purged_at(T0 + 181 * DAY)
    remove_audit_events(PURGE_ACTION)
    assert "does not follow the batch before it" in str(verify_decision_log()[1])


def test_verification_detects_a_rewritten_purge(world: PolicyWorld) -> None:
    aged_log(world)
    purged_at(T0 + 181 * DAY)
    real = AuditEvent.objects.get(action=PURGE_ACTION)
    rewrite_audit_event(real, previous_digest="f" * 64)
    assert f"the purge recorded by audit event #{real.pk} does not follow" in str(verify_decision_log()[1])


def test_the_purge_task_runs_daily_with_the_retention_setting(world: PolicyWorld, settings: Any) -> None:
    assert any(task.func == "runtime.tasks.policy_decisions_purge" for task in scheduling.registered())
    aged_log(world)
    settings.RUNTIME_DECISION_RETENTION_DAYS = 30
    with time_machine.travel(T0 + 31 * DAY, tick=False):
        assert tasks.policy_decisions_purge() == 3
        assert tasks.policy_decisions_purge() == 0
