"""The token log: every issuance and every refusal at the token endpoint, tamper-evident without
a global lock on the hot path.

Why not one audit event per exchange: the audit trail is a single hash chain, and extending it
takes a global lock (an advisory lock on PostgreSQL, the write lock on SQLite) for the whole
transaction. Every exchange would queue behind every other one and behind every audited change
in the portal. So the log is written in two steps:

1. ``record`` (on the hot path) appends one ``TokenEvent`` with a plain INSERT. Its ``digest`` is
   the SHA-256 of a canonical serialisation of every field but ``batch``, computed before the
   insert; nothing is read, nothing is locked, so any number of web processes append at once.
2. ``seal`` (the worker, every minute) takes the unsealed events in id order, in chunks, and makes
   each chunk a ``TokenEventBatch``: digest = SHA-256(previous batch's digest + each event's
   digest, in id order). The batch is chained to the one before it, and each batch is written
   into the audit chain as ONE audit event (``runtime.token_events_sealed``) carrying its
   digest, so the signed checkpoints of the audit chain now vouch for the token log as well.
   Only sealers take the sealer's lock (two workers sealing at once: the second waits, then
   sees what the first sealed). Then, in one transaction for the whole run, the issued events of
   the batches not yet applied feed usage back to the inventory (uses per grant, bindings
   proven) and the batches are marked applied: one write per grant per run (so per minute), and
   a sealer killed in between leaves them for the next run, which counts them once.

What protects an event before it is sealed: its own digest only. It shows an event changed by
mistake or by someone who did not recompute it, but someone who can write the database could
alter or delete an unsealed event and its digest together; that window lasts until the next seal
(a minute). From then on the event is bound into a batch, the batch into the batch chain, and
the chain into the audit trail and its checkpoints: changing, removing or inserting a sealed
event breaks ``verify_token_log`` (run by ``manage.py verify_audit``). Event ids are not required
to be contiguous (a rolled-back insert leaves a gap; on PostgreSQL an event may commit after a
later id was sealed and is sealed in the next batch), which is why a batch lists its events by
``batch``, not by an id range.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from governance.actors import Actor, system_user
from governance.audit import audit_record
from governance.models import AuditEvent, User
from governance.roles import Role
from inventory.models import Integration
from inventory.services import grant_usage_record, workload_bindings_verified
from runtime.models import TokenEvent, TokenEventBatch, TokenOutcome

GENESIS_DIGEST = "0" * 64
SEAL_ACTION = "runtime.token_events_sealed"
# Arbitrary constant naming the advisory lock that serialises sealers on PostgreSQL (SQLite's
# IMMEDIATE transactions already let one writer in at a time). Never taken by ``record``.
_SEAL_LOCK_ID = 7_311_420_003
SEAL_CHUNK = 500
# Events one run seals at most. Memory is bounded by the chunk, not by this; this only bounds a
# run's time (about 0.03 s per 1,000 events here, so well within the worker's timeout). It must
# exceed what the endpoint appends in a minute at its peak (tens of thousands), or a busy
# portal's backlog — and the window in which an event is unsealed — grows without end.
SEAL_MAX_EVENTS = 1_000_000
# Column widths of TokenEvent: values are cut to them before the digest is computed, so the
# digest covers exactly what the database keeps.
_WIDTHS = {"error": 40, "workload_issuer": 300, "workload_subject": 300, "audience": 300, "jti": 64, "task": 200}


@dataclass
class TokenAttempt:
    """What the token endpoint learned about one request, filled in as it goes: written as the
    event of its issuance or its refusal whatever step it stopped at."""

    integration: Integration | None = None
    owner: User | None = None
    acting_for: User | None = None
    workload_issuer: str = ""
    workload_subject: str = ""
    chain: list[int] = field(default_factory=list)
    audience: str = ""
    scopes_requested: list[str] = field(default_factory=list)
    scopes_granted: list[str] = field(default_factory=list)
    grant_ids: list[int] = field(default_factory=list)
    jti: str = ""
    expires_at: datetime | None = None
    task: str = ""


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def event_digest(event: TokenEvent) -> str:
    """SHA-256 of the event's canonical JSON (sorted keys, no spaces), every field but ``id``
    and ``batch``."""
    payload = {
        "at": _time(event.at),
        "outcome": event.outcome,
        "error": event.error,
        "reason": event.reason,
        "integration": event.integration_id,
        "owner": event.owner_id,
        "acting_for": event.acting_for_id,
        "workload_issuer": event.workload_issuer,
        "workload_subject": event.workload_subject,
        "chain": list(event.chain),
        "audience": event.audience,
        "scopes_requested": list(event.scopes_requested),
        "scopes_granted": list(event.scopes_granted),
        "grant_ids": list(event.grant_ids),
        "jti": event.jti,
        "expires_at": _time(event.expires_at),
        "task": event.task,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def batch_digest(previous: str, event_digests: Iterable[str]) -> str:
    """SHA-256 over the previous batch's digest and each event's digest, in id order."""
    hasher = hashlib.sha256(previous.encode("ascii"))
    for digest in event_digests:
        hasher.update(digest.encode("ascii"))
    return hasher.hexdigest()


def record(attempt: TokenAttempt, *, outcome: str, error: str = "", reason: str = "") -> TokenEvent:
    """Append the event of one issuance (``outcome`` issued) or refusal (``refused``, with the
    RFC ``error`` code and the ``reason`` given to the client). One INSERT, no lock: see the
    module doc for what protects it until it is sealed."""
    values: dict[str, Any] = {
        "error": error,
        "workload_issuer": attempt.workload_issuer,
        "workload_subject": attempt.workload_subject,
        "audience": attempt.audience,
        "jti": attempt.jti,
        "task": attempt.task,
    }
    cut = {name: str(value)[: _WIDTHS[name]] for name, value in values.items()}
    event = TokenEvent(
        at=timezone.now(),
        outcome=outcome,
        reason=reason,
        integration=attempt.integration,
        owner=attempt.owner,
        acting_for=attempt.acting_for,
        chain=list(attempt.chain),
        scopes_requested=list(attempt.scopes_requested),
        scopes_granted=list(attempt.scopes_granted) if outcome == TokenOutcome.ISSUED else [],
        grant_ids=list(attempt.grant_ids) if outcome == TokenOutcome.ISSUED else [],
        expires_at=attempt.expires_at if outcome == TokenOutcome.ISSUED else None,
        **cut,
    )
    if outcome != TokenOutcome.ISSUED:
        event.jti = ""
    event.digest = event_digest(event)
    event.save(force_insert=True)
    return event


# --- Sealing --------------------------------------------------------------------------------


class TokenLogTampered(Exception):
    """An unsealed event no longer matches its digest: the sealer refuses to vouch for it."""


def _lock_sealer() -> None:
    if not connection.in_atomic_block:
        raise RuntimeError("sealing must run inside a transaction")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SEAL_LOCK_ID])


def _accountable_owner(events: Sequence[TokenEvent]) -> User:
    """Who answers for a sealed batch: the accountable owner named most often in it (the batch's
    events name each their own). A batch of refusals that identified nobody answers to the IAM
    admins, who keep the trusted issuers: the longest-standing active one."""
    counts = Counter(event.owner_id for event in events if event.owner_id is not None)
    if counts:
        owner_id = min(counts, key=lambda pk: (-counts[pk], pk))
        return User.objects.get(pk=owner_id)
    admins = Group.objects.filter(name=Role.IAM_ADMIN).first()
    admin = admins.user_set.filter(is_active=True).order_by("pk").first() if admins is not None else None
    return admin or User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first() or system_user()


def _usage_of(
    events: Iterable[TokenEvent],
) -> tuple[dict[int, tuple[int, datetime]], dict[int, tuple[datetime, datetime]]]:
    """From the issued events: grant id -> (uses, last use) and integration id -> (first, last)
    proof of its workload identity, each grant and integration once."""
    uses: dict[int, tuple[int, datetime]] = {}
    proven: dict[int, tuple[datetime, datetime]] = {}
    for event in events:
        if event.outcome != TokenOutcome.ISSUED:
            continue
        for grant_id in event.grant_ids:
            count, last = uses.get(grant_id, (0, event.at))
            uses[grant_id] = (count + 1, max(last, event.at))
        if event.integration_id is not None:
            first, last = proven.get(event.integration_id, (event.at, event.at))
            proven[event.integration_id] = (min(first, event.at), max(last, event.at))
    return uses, proven


def _seal_chunk(limit: int) -> TokenEventBatch | None:
    with transaction.atomic():
        _lock_sealer()
        previous = TokenEventBatch.objects.order_by("-id").values_list("digest", flat=True).first() or GENESIS_DIGEST
        events = list(TokenEvent.objects.filter(batch__isnull=True).order_by("id")[:limit])
        if not events:
            return None
        for event in events:
            if event_digest(event) != event.digest:
                raise TokenLogTampered(f"token event #{event.pk} was altered before it was sealed; refusing to seal it")
        issued = sum(1 for event in events if event.outcome == TokenOutcome.ISSUED)
        batch = TokenEventBatch.objects.create(
            sealed_at=timezone.now(),
            first_event_id=events[0].pk,
            last_event_id=events[-1].pk,
            count=len(events),
            previous_digest=previous,
            digest=batch_digest(previous, (event.digest for event in events)),
        )
        owner = _accountable_owner(events)
        audit = audit_record(
            actor=Actor.system(on_behalf_of=owner),
            action=SEAL_ACTION,
            target=batch,
            owner=owner,
            after={
                "batch": batch.pk,
                "count": batch.count,
                "first_event_id": batch.first_event_id,
                "last_event_id": batch.last_event_id,
                "issued": issued,
                "refused": len(events) - issued,
                "previous_digest": previous,
                "digest": batch.digest,
            },
        )
        TokenEventBatch.objects.filter(pk=batch.pk).update(audit_event_id=audit.pk)
        TokenEvent.objects.filter(pk__in=[event.pk for event in events]).update(batch=batch)
    return batch


def usage_apply() -> int:
    """Feed the issued events of every sealed batch whose usage is not applied yet back to the
    inventory (uses per grant, bindings proven), in one transaction: one write per grant and per
    integration however many batches a run sealed — with the seal every minute, at most one
    write per grant per minute. A run killed before it commits leaves the batches unapplied, and
    the next run applies them, once. Returns how many batches were applied."""
    with transaction.atomic():
        _lock_sealer()
        last = TokenEventBatch.objects.filter(usage_applied=False).order_by("-id").values_list("id", flat=True).first()
        if last is None:
            return 0
        pending = TokenEventBatch.objects.filter(usage_applied=False, id__lte=last)
        issued = (
            TokenEvent.objects.filter(batch__in=pending, outcome=TokenOutcome.ISSUED)
            .only("at", "outcome", "grant_ids", "integration_id")
            .order_by()
            .iterator(chunk_size=2000)
        )
        uses, proven = _usage_of(issued)
        if uses:
            grant_usage_record(uses)
        if proven:
            workload_bindings_verified(proven)
        return pending.update(usage_applied=True)


def seal(*, max_events: int = SEAL_MAX_EVENTS, chunk_size: int = SEAL_CHUNK) -> list[TokenEventBatch]:
    """Seal up to ``max_events`` unsealed events, oldest first, in batches of ``chunk_size``
    (each its own transaction and audit event), then apply their usage (``usage_apply``, once
    for the whole run). Idempotent: what is sealed is not sealed again, and a run killed half-way
    leaves whole batches only, their usage applied by the next run. Raises ``TokenLogTampered``
    (loudly, sealing nothing more) when an unsealed event was altered."""
    batches: list[TokenEventBatch] = []
    sealed = 0
    while sealed < max_events:
        batch = _seal_chunk(min(chunk_size, max_events - sealed))
        if batch is None:
            break
        batches.append(batch)
        sealed += batch.count
    usage_apply()
    return batches


# --- Verification ---------------------------------------------------------------------------


def _batch_problem(batch: TokenEventBatch, previous: str, sealed: dict[str, Any] | None) -> str | None:
    """What is wrong with one batch, given the digest it must follow and its audit event's
    ``after`` (the next sealing event of the audit trail, in the same order as the batches)."""
    if batch.previous_digest != previous:
        return f"token batch #{batch.pk} does not follow the batch before it: a batch was removed or inserted"
    events = list(TokenEvent.objects.filter(batch=batch).order_by("id"))
    for event in events:
        if event_digest(event) != event.digest:
            return f"token event #{event.pk} (batch #{batch.pk}) was altered after it was written"
    if len(events) != batch.count or batch_digest(previous, (event.digest for event in events)) != batch.digest:
        return f"token batch #{batch.pk} no longer holds the events it sealed: events were removed, added or altered"
    if sealed is None or sealed.get("batch") != batch.pk or sealed.get("digest") != batch.digest:
        return f"token batch #{batch.pk} has no audit event carrying its digest: it was not sealed into the audit trail"
    return None


def _paged(queryset: QuerySet[Any], column: str | None, size: int = 1000) -> Iterator[Any]:
    """The rows (or one column of them) in id order, read a page at a time by id: two walks can
    interleave without holding database cursors open."""
    last_id = 0
    while True:
        page = queryset.filter(id__gt=last_id).order_by("id")
        rows = list(page.values_list("id", column)[:size]) if column else [(row.pk, row) for row in page[:size]]
        if not rows:
            return
        for _pk, value in rows:
            yield value
        last_id = rows[-1][0]


def verify_token_log() -> tuple[int, str | None]:
    """Recompute every event's digest, every batch's digest and the chain of batches, and check
    that each batch's audit event carries its digest (the audit chain itself is verified by
    ``governance.audit.verify_chain``). Batches and their audit events were written one by one
    under the sealer's lock, so both are walked in id order side by side. Returns how many events
    were checked and the first problem, or None."""
    # The batches as they stand now; a seal committing meanwhile is left for the next check.
    upto_batch = TokenEventBatch.objects.order_by("-id").values_list("id", flat=True).first() or 0
    seals = (
        after if isinstance(after, dict) else {}
        for after in _paged(AuditEvent.objects.filter(action=SEAL_ACTION), "after")
    )
    checked = 0
    previous = GENESIS_DIGEST
    for batch in _paged(TokenEventBatch.objects.filter(id__lte=upto_batch), None):
        problem = _batch_problem(batch, previous, next(seals, None))
        if problem is not None:
            return checked, problem
        checked += batch.count
        previous = batch.digest
    for leftover in seals:
        # Sealed after the walk began (the batch is there now), or a batch that was deleted.
        if not TokenEventBatch.objects.filter(pk=leftover.get("batch") or 0, id__gt=upto_batch).exists():
            return (
                checked,
                f"the audit trail records token batch #{leftover.get('batch')}, which is gone from the token log",
            )
    for event in _paged(TokenEvent.objects.filter(batch__isnull=True), None):
        if event_digest(event) != event.digest:
            return checked, f"token event #{event.pk} (not sealed yet) was altered after it was written"
        checked += 1
    return checked, None
