"""The token log: every answer of the token endpoint appended without a lock, sealed by the
worker in batches into the audit chain, verified end to end, and fed back as usage — once."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from governance import scheduling
from governance.audit import registered_verifiers, verify_chain
from governance.models import AuditEvent, User
from inventory.models import GrantUsageDay, Integration, WorkloadBinding
from runtime import log, tasks
from runtime.exchange import token_exchange
from runtime.log import GENESIS_DIGEST, TokenAttempt, TokenLogTampered, event_digest, record, seal, verify_token_log
from runtime.models import TokenEvent, TokenEventBatch
from tests.runtime.exchange_support import World, build_world
from tests.runtime.exchange_support import _issuer_key_caches as _issuer_key_caches  # noqa: F401 (autouse)
from tests.runtime.issuer_support import TestIssuer

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(test_issuer: TestIssuer, owner: User) -> World:
    return build_world(test_issuer, owner)


def refusal_event(owner: User | None = None, integration: Integration | None = None) -> TokenEvent:
    attempt = TokenAttempt(integration=integration, owner=owner, workload_issuer="https://idp", workload_subject="x")
    return record(attempt, outcome="refused", error="invalid_request", reason="The workload token has expired.")


def sha(*parts: str) -> str:
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def test_an_event_is_appended_with_the_digest_of_what_the_database_keeps(world: World) -> None:
    token_exchange(world.params(task="Answer ticket 42"))
    event = TokenEvent.objects.get()

    assert event.batch is None
    assert event_digest(event) == event.digest
    assert event.owner == world.owner


def test_record_writes_one_row_and_takes_no_lock(world: World, django_assert_num_queries: Any) -> None:
    attempt = TokenAttempt(integration=world.integration, owner=world.owner, chain=[world.integration.pk])
    with django_assert_num_queries(1):
        record(attempt, outcome="refused", error="invalid_scope", reason="Scope not granted.")


def test_sealing_chains_batches_and_writes_one_audit_event_per_batch(world: World) -> None:
    first = [refusal_event(world.owner, world.integration) for _ in range(3)]
    (batch,) = seal()
    assert (batch.count, batch.first_event_id, batch.last_event_id) == (3, first[0].pk, first[-1].pk)
    assert batch.previous_digest == GENESIS_DIGEST
    assert batch.digest == sha(GENESIS_DIGEST, *(event.digest for event in first))

    second = [refusal_event(world.owner, world.integration) for _ in range(2)]
    (next_batch,) = seal()
    assert next_batch.previous_digest == batch.digest
    assert next_batch.digest == sha(batch.digest, *(event.digest for event in second))

    audits = list(AuditEvent.objects.filter(action="runtime.token_events_sealed").order_by("id"))
    assert [(audit.after or {})["digest"] for audit in audits] == [batch.digest, next_batch.digest]
    after = audits[0].after or {}
    assert after["count"] == 3 and after["refused"] == 3
    assert audits[0].owner == world.owner and audits[0].actor_kind == "system"
    assert TokenEventBatch.objects.get(pk=batch.pk).audit_event_id == audits[0].pk
    assert verify_chain()[1] is None


def test_a_batch_answers_to_the_owner_named_most_in_it(world: World, make_user: Callable[..., User]) -> None:
    other = make_user("other")
    refusal_event(other)
    refusal_event(world.owner)
    refusal_event(world.owner)
    seal()
    assert AuditEvent.objects.get(action="runtime.token_events_sealed").owner == world.owner


def test_a_batch_naming_nobody_answers_to_an_iam_admin(world: World, iam_admin: User) -> None:
    refusal_event()
    seal()
    assert AuditEvent.objects.get(action="runtime.token_events_sealed").owner == iam_admin


def test_sealing_again_seals_nothing_twice(world: World) -> None:
    refusal_event(world.owner)
    assert len(seal()) == 1
    assert seal() == []
    assert TokenEventBatch.objects.count() == 1


def test_sealing_works_in_chunks(world: World) -> None:
    events = [refusal_event(world.owner) for _ in range(5)]
    batches = seal(chunk_size=2)

    assert [batch.count for batch in batches] == [2, 2, 1]
    assert AuditEvent.objects.filter(action="runtime.token_events_sealed").count() == 3
    assert set(TokenEvent.objects.values_list("batch_id", flat=True)) == {batch.pk for batch in batches}
    assert [event.pk for event in events] == list(TokenEvent.objects.order_by("id").values_list("id", flat=True))
    assert verify_token_log() == (5, None)


def test_seal_respects_max_events(world: World) -> None:
    for _ in range(3):
        refusal_event(world.owner)
    assert sum(batch.count for batch in seal(max_events=2, chunk_size=10)) == 2
    assert TokenEvent.objects.filter(batch__isnull=True).count() == 1


def test_a_backlog_of_more_than_a_busy_minute_is_sealed_in_one_run() -> None:
    """At the endpoint's peak a minute brings tens of thousands of events: one run drains them."""
    now = timezone.now()
    events = [TokenEvent(at=now, outcome="refused", error="invalid_request", reason="x") for _ in range(30_000)]
    for event in events:
        event.digest = event_digest(event)
    TokenEvent.objects.bulk_create(events, batch_size=2000)

    assert sum(batch.count for batch in seal(chunk_size=5000)) == 30_000
    assert not TokenEvent.objects.filter(batch__isnull=True).exists()


# --- Verification -------------------------------------------------------------------------------


def sealed_log(world: World) -> list[TokenEvent]:
    events = [refusal_event(world.owner) for _ in range(3)]
    seal(chunk_size=2)
    refusal_event(world.owner)  # one not sealed yet
    return events


def test_an_intact_log_verifies(world: World) -> None:
    sealed_log(world)
    assert verify_token_log() == (4, None)


def test_verification_detects_a_tampered_sealed_event(world: World) -> None:
    events = sealed_log(world)
    TokenEvent.objects.filter(pk=events[1].pk).update(reason="Nothing happened here.")
    _checked, problem = verify_token_log()
    assert problem is not None and f"token event #{events[1].pk}" in problem and "altered" in problem


def test_verification_detects_a_tampered_event_whose_digest_was_recomputed(world: World) -> None:
    events = sealed_log(world)
    event = TokenEvent.objects.get(pk=events[0].pk)
    event.scopes_granted = ["crm:admin"]
    TokenEvent.objects.filter(pk=event.pk).update(scopes_granted=["crm:admin"], digest=event_digest(event))
    _checked, problem = verify_token_log()
    assert problem is not None and "no longer holds the events it sealed" in problem


def test_verification_detects_a_removed_event(world: World) -> None:
    events = sealed_log(world)
    TokenEvent.objects.filter(pk=events[2].pk).delete()
    assert "no longer holds the events it sealed" in str(verify_token_log()[1])


def test_verification_detects_a_removed_last_batch(world: World) -> None:
    sealed_log(world)
    last = TokenEventBatch.objects.order_by("-id").first()
    assert last is not None
    last_id = last.pk
    TokenEvent.objects.filter(batch=last).update(batch=None)
    last.delete()
    assert f"token batch #{last_id}, which is gone" in str(verify_token_log()[1])


def test_verification_detects_a_tampered_unsealed_event(world: World) -> None:
    sealed_log(world)
    unsealed = TokenEvent.objects.get(batch__isnull=True)
    TokenEvent.objects.filter(pk=unsealed.pk).update(error="")
    assert "not sealed yet" in str(verify_token_log()[1])


def test_the_sealer_refuses_to_vouch_for_a_tampered_event(world: World) -> None:
    event = refusal_event(world.owner)
    TokenEvent.objects.filter(pk=event.pk).update(reason="edited")
    with pytest.raises(TokenLogTampered):
        seal()
    assert not TokenEventBatch.objects.exists()


def test_verify_audit_covers_the_token_log(world: World, capsys: Any) -> None:
    assert ("token log", verify_token_log) in registered_verifiers()
    events = sealed_log(world)
    call_command("verify_audit")
    assert "The token log is intact: 4 entries verified." in capsys.readouterr().out

    TokenEvent.objects.filter(pk=events[0].pk).update(task="rewritten")
    with pytest.raises(CommandError, match="The token log is broken"):
        call_command("verify_audit")


# --- Usage fed back -------------------------------------------------------------------------------


def test_usage_is_written_once_per_grant_per_seal(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[int, tuple[int, Any]]] = []
    real = log.grant_usage_record

    def spy(usage: dict[int, tuple[int, Any]]) -> int:
        calls.append(dict(usage))
        return real(usage)

    monkeypatch.setattr(log, "grant_usage_record", spy)
    for _ in range(3):
        token_exchange(world.params(scope="crm:read"))
    token_exchange(world.params())  # read and write
    refusal_event(world.owner, world.integration)

    seal()

    read, write = world.grants["read"], world.grants["write"]
    assert len(calls) == 1 and {pk: uses for pk, (uses, _last) in calls[0].items()} == {read.pk: 4, write.pk: 1}
    assert GrantUsageDay.objects.get(grant=read).uses == 4
    assert GrantUsageDay.objects.get(grant=write).uses == 1
    read.refresh_from_db()
    assert read.last_used_at is not None
    binding = WorkloadBinding.objects.get(integration=world.integration)
    assert binding.first_verified_at is not None and binding.last_verified_at is not None

    seal()
    assert GrantUsageDay.objects.get(grant=read).uses == 4  # nothing counted twice


def test_a_sealer_killed_before_its_usage_commits_counts_nothing_and_the_retry_counts_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_exchange(world.params(scope="crm:read"))

    def killed(_times: Any) -> int:
        raise RuntimeError("worker killed")

    monkeypatch.setattr(log, "workload_bindings_verified", killed)
    with pytest.raises(RuntimeError):
        seal()
    # The batch is sealed (its own transaction); its usage is not applied, and nothing was counted.
    batch = TokenEventBatch.objects.get()
    assert AuditEvent.objects.filter(action="runtime.token_events_sealed").count() == 1
    assert not batch.usage_applied and not GrantUsageDay.objects.exists()

    monkeypatch.undo()
    seal()
    seal()
    assert GrantUsageDay.objects.get(grant=world.grants["read"]).uses == 1
    assert TokenEventBatch.objects.get().usage_applied


def test_usage_is_written_once_per_grant_per_run_however_many_batches(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        token_exchange(world.params(scope="crm:read"))
    writes: list[dict[int, Any]] = []
    record_usage = log.grant_usage_record

    def counted(usage: dict[int, Any]) -> int:
        writes.append(dict(usage))
        return record_usage(usage)

    monkeypatch.setattr(log, "grant_usage_record", counted)
    assert len(seal(chunk_size=1)) == 3
    assert [list(usage) for usage in writes] == [[world.grants["read"].pk]]
    assert GrantUsageDay.objects.get(grant=world.grants["read"]).uses == 3


def test_refusals_feed_no_usage(world: World, owner: User) -> None:
    Integration.objects.filter(pk=world.integration.pk).update(status="suspended")
    with pytest.raises(Exception, match="suspended"):
        token_exchange(world.params())
    seal()
    assert not GrantUsageDay.objects.exists()
    assert WorkloadBinding.objects.get(integration=world.integration).first_verified_at is None


def test_the_seal_task_runs_every_minute(world: World) -> None:
    assert any(
        task.func == "runtime.tasks.token_log_seal" and task.cron == "* * * * *" for task in scheduling.registered()
    )
    refusal_event(world.owner)
    refusal_event(world.owner)
    assert tasks.token_log_seal() == 2
    assert tasks.token_log_seal() == 0
