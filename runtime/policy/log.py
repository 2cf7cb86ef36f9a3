"""The decision log: every runtime policy decision, appended without a global lock (one bulk
INSERT per call; the entity slices stored once per distinct content), sealed, verified and
purged after its retention.

Tamper evidence is the token log's design, with the same machinery (``runtime.sealing``): each
decision carries the digest of its own fields; the worker seals the unsealed decisions every
minute into batches chained by digest, each batch one audit event
(``runtime.policy_decisions_sealed``); ``verify_decision_log`` (run by ``manage.py
verify_audit``) recomputes all of it. Until it is sealed a decision is protected by its own
digest only: someone who can write the database could alter it and its digest together within
that minute.

Retention (``RUNTIME_DECISION_RETENTION_DAYS``): ``purge`` removes whole sealed batches, oldest
first, whose decisions are all older than the retention, each purge transaction one audit event
(``policy_decisions.purged``) carrying the range it removed and the digest of the last batch
removed. The chain then starts from that digest: verification holds the first remaining batch
against it, and skips the seal events of the batches removed. Unsealed decisions are never
purged, and a batch that no longer verifies is never purged (the purge refuses, loudly: it would
erase the evidence). Entity snapshots no remaining decision refers to go with them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from governance.actors import Actor
from governance.audit import audit_record
from governance.models import AuditEvent
from runtime.models import PolicyDecision, PolicyDecisionBatch, PolicyEntitySnapshot
from runtime.sealing import GENESIS, Anchor, SealedLog, fallback_owner, paged

# Snapshots this process knows are stored (bounded): the steady state writes none. Forgotten
# every hour, so that a snapshot the retention sweep deleted (nothing referred to it) is stored
# again by the next decision that uses it.
_KNOWN_SNAPSHOTS: set[str] = set()
_KNOWN_MAX = 50_000
_KNOWN_SECONDS = 3600.0
_KNOWN_UNTIL = [0.0]


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def decision_digest(row: PolicyDecision) -> str:
    """SHA-256 of the decision's canonical JSON: every field but ``id`` and ``batch``."""
    payload = {
        "at": _time(row.at),
        "decision_id": row.decision_id,
        "point": row.point,
        "caller": row.caller_id,
        "integration": row.integration_id,
        "owner": row.owner_id,
        "principal": row.principal,
        "action": row.action,
        "resource": row.resource,
        "context": row.context,
        "snapshot": row.snapshot_id,
        "decision": row.decision,
        "reasons": list(row.reasons),
        "errors": list(row.errors),
        "policy_version": row.policy_version_id,
        "shadow": row.shadow,
        "latency_us": row.latency_us,
        "trace": row.trace,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _store_snapshots(snapshots: Mapping[str, str]) -> set[str]:
    """Insert the snapshots this process does not know to be stored; the keys it inserted."""
    now = time.monotonic()
    if now >= _KNOWN_UNTIL[0]:
        _KNOWN_SNAPSHOTS.clear()
        _KNOWN_UNTIL[0] = now + _KNOWN_SECONDS
    new = {sha: text for sha, text in snapshots.items() if sha not in _KNOWN_SNAPSHOTS}
    if new:
        PolicyEntitySnapshot.objects.bulk_create(
            [PolicyEntitySnapshot(sha256=sha, entities=json.loads(text)) for sha, text in new.items()],
            ignore_conflicts=True,
        )
    return set(new)


def _remember(keys: set[str]) -> None:
    if len(_KNOWN_SNAPSHOTS) > _KNOWN_MAX:
        _KNOWN_SNAPSHOTS.clear()
    _KNOWN_SNAPSHOTS.update(keys)


def forget_snapshots() -> None:
    """Drop this process's memory of stored snapshots (tests roll their rows back)."""
    _KNOWN_SNAPSHOTS.clear()


@dataclass
class Pending:
    """Decisions made and not yet written, with the entity snapshots they refer to."""

    rows: list[PolicyDecision] = field(default_factory=list)
    snapshots: dict[str, str] = field(default_factory=dict)


def append(rows: Sequence[PolicyDecision], snapshots: Mapping[str, str]) -> list[PolicyDecision]:
    """Write decisions and the snapshots they refer to that may not be stored yet, in one
    transaction (or in the caller's: a token endpoint writes them with its own record). The
    process remembers the snapshots as stored only once that commits."""
    with transaction.atomic(savepoint=False):
        inserted = _store_snapshots(snapshots)
        for row in rows:
            row.digest = decision_digest(row)
        written = PolicyDecision.objects.bulk_create(list(rows))
        if inserted:
            transaction.on_commit(lambda: _remember(inserted))
    return written


# --- Sealing ----------------------------------------------------------------------------------

SEAL_ACTION = "runtime.policy_decisions_sealed"
PURGE_ACTION = "policy_decisions.purged"
# Arbitrary constant naming the advisory lock that serialises this log's sealers and purges on
# PostgreSQL: its own, so the decision log and the token log never wait for each other.
_SEAL_LOCK_ID = 7_311_420_004
SEAL_CHUNK = 500
# Decisions one run seals at most: like the token log's, above what a busy minute appends, so
# the backlog (and the window in which a decision is unsealed) cannot grow without end.
SEAL_MAX_DECISIONS = 1_000_000
# Decisions one purge transaction (and so one audit event) removes at most: a daily run of a
# steady portal is one transaction; a backlog is split so no transaction holds SQLite's write
# lock, and with it every decision being appended, for long.
PURGE_MAX_DECISIONS = 50_000
# Batches one purge transaction removes at most: a quiet portal seals a batch of one or two
# decisions a minute, so a backlog of them would otherwise be tens of thousands of batches held
# in memory at once.
PURGE_MAX_BATCHES = 2_000
# Batches read or deleted per statement while purging (no statement carries a longer list of
# ids than a database accepts); snapshots checked per statement.
_PURGE_PAGE = 200
_SNAPSHOT_PAGE = 1000


class DecisionLogTampered(Exception):
    """A decision no longer matches its digest (before sealing), or a batch about to be purged no
    longer verifies: the sealer and the purge refuse to vouch for it or to erase it."""


def _tally(rows: Sequence[PolicyDecision]) -> dict[str, int]:
    allowed = sum(1 for row in rows if row.decision == "allow")
    return {"allowed": allowed, "denied": len(rows) - allowed}


def _purge_record(after: object) -> dict[str, Any]:
    return after if isinstance(after, dict) else {}


def purge_anchor() -> Anchor:
    """Where the batch chain starts now: after the batches the newest purge removed (its audit
    event records the last one's digest and seal event), or at the genesis digest."""
    newest = AuditEvent.objects.filter(action=PURGE_ACTION).order_by("-id").values_list("after", flat=True).first()
    if newest is None:
        return GENESIS
    after = _purge_record(newest)
    return Anchor(digest=str(after.get("digest") or ""), last_seal_event_id=int(after.get("last_seal_event") or 0))


DECISION_LOG = SealedLog(
    entry_model=PolicyDecision,
    batch_model=PolicyDecisionBatch,
    entry_digest=decision_digest,
    seal_action=SEAL_ACTION,
    lock_id=_SEAL_LOCK_ID,
    first_field="first_decision_id",
    last_field="last_decision_id",
    entry_label="policy decision",
    entries_label="decisions",
    batch_label="decision batch",
    log_label="decision log",
    tally=_tally,
    tampered=DecisionLogTampered,
    anchor=purge_anchor,
)


def seal(*, max_decisions: int = SEAL_MAX_DECISIONS, chunk_size: int = SEAL_CHUNK) -> list[PolicyDecisionBatch]:
    """Seal up to ``max_decisions`` unsealed decisions, oldest first, in batches of
    ``chunk_size``, each its own transaction and audit event. Idempotent; raises
    ``DecisionLogTampered`` (sealing nothing more) when an unsealed decision was altered."""
    return DECISION_LOG.seal(max_entries=max_decisions, chunk_size=chunk_size)


# --- Verification ---------------------------------------------------------------------------------


def _purges_problem() -> str | None:
    """The purges, oldest first, each continue the chain where the one before left it: a purge
    event cannot be dropped or made up to hide removed batches (the audit chain vouches for the
    events themselves)."""
    previous, last_batch = GENESIS.digest, 0
    for event in paged(AuditEvent.objects.filter(action=PURGE_ACTION), None, size=200):
        record = _purge_record(event.after)
        if record.get("previous_digest") != previous or int(record.get("first_batch") or 0) <= last_batch:
            return f"the purge recorded by audit event #{event.pk} does not follow the purge before it"
        previous, last_batch = str(record.get("digest")), int(record.get("last_batch") or 0)
    return None


def verify_decision_log() -> tuple[int, str | None]:
    """Check the purges follow each other, then every decision's digest, every batch's digest and
    the chain of batches from where the newest purge left it, and that each batch's audit event
    carries its digest. Returns how many decisions were checked and the first problem, or None."""
    problem = _purges_problem()
    if problem is not None:
        return 0, problem
    return DECISION_LOG.verify()


# --- Retention --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    batches: int = 0
    decisions: int = 0
    snapshots: int = 0
    events: int = 0


def _expired_prefix(cutoff: datetime, max_decisions: int) -> list[PolicyDecisionBatch]:
    """The oldest batches, in id order, up to the first that holds a decision at or after
    ``cutoff``, at most ``max_decisions`` decisions (at least one batch) and ``PURGE_MAX_BATCHES``
    batches: only a prefix may go, or the chain would have a hole."""
    prefix: list[PolicyDecisionBatch] = []
    total, last_id = 0, 0
    while True:
        page = list(PolicyDecisionBatch.objects.filter(id__gt=last_id).order_by("id")[:_PURGE_PAGE])
        if not page:
            return prefix
        young = set(
            PolicyDecision.objects.filter(batch__in=[batch.pk for batch in page], at__gte=cutoff)
            .order_by()
            .values_list("batch_id", flat=True)
            .distinct()
        )
        for batch in page:
            if batch.pk in young or len(prefix) >= PURGE_MAX_BATCHES:
                return prefix
            if prefix and total + batch.count > max_decisions:
                return prefix
            prefix.append(batch)
            total += batch.count
        last_id = page[-1].pk


def _refuse_unverified(batches: Sequence[PolicyDecisionBatch]) -> None:
    """Each batch about to go still verifies (decisions, digest, chain from the anchor, seal
    event): a purge never erases the evidence of tampering."""
    seal_ids = [batch.audit_event_id for batch in batches if batch.audit_event_id is not None]
    seals: dict[int, Any] = {}
    for start in range(0, len(seal_ids), _PURGE_PAGE):
        page = seal_ids[start : start + _PURGE_PAGE]
        seals.update(AuditEvent.objects.filter(pk__in=page, action=SEAL_ACTION).values_list("pk", "after"))
    previous = purge_anchor().digest
    for batch in batches:
        sealed = seals.get(batch.audit_event_id) if batch.audit_event_id is not None else None
        problem = DECISION_LOG.batch_problem(batch, previous, sealed if isinstance(sealed, dict) else None)
        if problem is not None:
            raise DecisionLogTampered(f"Refusing to purge the decision log: {problem}.")
        previous = batch.digest


def _purge_chunk(cutoff: datetime, retention_days: int, max_decisions: int) -> dict[str, Any] | None:
    """Remove one run of expired batches (their decisions first) and record it as one audit event,
    in one transaction under the sealer's lock. None when nothing has expired."""
    with transaction.atomic():
        DECISION_LOG.lock()
        batches = _expired_prefix(cutoff, max_decisions)
        if not batches:
            return None
        _refuse_unverified(batches)
        ids = [batch.pk for batch in batches]
        removed, times = 0, list[datetime]()
        for start in range(0, len(ids), _PURGE_PAGE):
            page = ids[start : start + _PURGE_PAGE]
            span = PolicyDecision.objects.filter(batch__in=page).aggregate(oldest=Min("at"), newest=Max("at"))
            times += [value for value in (span["oldest"], span["newest"]) if value is not None]
            removed += PolicyDecision.objects.filter(batch__in=page).delete()[0]
            PolicyDecisionBatch.objects.filter(pk__in=page).delete()
        first, last = batches[0], batches[-1]
        after = {
            "first_batch": first.pk,
            "last_batch": last.pk,
            "batches": len(batches),
            "decisions": removed,
            "first_decision_id": first.first_decision_id,
            "last_decision_id": last.last_decision_id,
            "oldest": min(times, default=None),
            "newest": max(times, default=None),
            "cutoff": cutoff,
            "retention_days": retention_days,
            "previous_digest": first.previous_digest,
            "digest": last.digest,
            "last_seal_event": last.audit_event_id,
        }
        owner = fallback_owner()
        audit_record(
            actor=Actor.system(on_behalf_of=owner),
            action=PURGE_ACTION,
            target_type="runtime.policydecisionbatch",
            target_id=str(last.pk),
            target_repr=f"decision batches #{first.pk} to #{last.pk}",
            owner=owner,
            after=after,
            reason=f"Older than the decision log's retention of {retention_days} days.",
        )
    return after


def snapshots_sweep(*, before: datetime) -> int:
    """Delete the entity snapshots stored before ``before`` that no decision refers to any more,
    a page at a time (each page its own short transaction). Younger ones stay even when nothing
    refers to them yet: a decision being appended stores its snapshot a moment before itself.
    Returns how many were deleted."""
    removed, last_key = 0, ""
    while True:
        keys = list(
            PolicyEntitySnapshot.objects.filter(sha256__gt=last_key, created_at__lt=before)
            .order_by("sha256")
            .values_list("sha256", flat=True)[:_SNAPSHOT_PAGE]
        )
        if not keys:
            if removed:
                forget_snapshots()  # this process's memory; the others forget within the hour
            return removed
        in_use = PolicyDecision.objects.filter(snapshot__in=keys).order_by().values("snapshot_id")
        with transaction.atomic():
            removed += PolicyEntitySnapshot.objects.filter(sha256__in=keys).exclude(sha256__in=in_use).delete()[0]
        last_key = keys[-1]


def purge(*, retention_days: int | None = None, max_decisions: int = PURGE_MAX_DECISIONS) -> PurgeResult:
    """Remove the sealed batches whose decisions are all older than ``retention_days`` (default
    ``RUNTIME_DECISION_RETENTION_DAYS``; below 1, nothing is removed), oldest first, each run of
    at most ``max_decisions`` decisions (and ``PURGE_MAX_BATCHES`` batches) one transaction and one
    ``policy_decisions.purged`` audit event; then the snapshots nothing refers to any more.
    Idempotent: a second run finds nothing expired, and a run killed half-way leaves whole,
    audited purges only. Raises
    ``DecisionLogTampered`` (removing nothing more) when a batch due to go no longer verifies."""
    days = settings.RUNTIME_DECISION_RETENTION_DAYS if retention_days is None else retention_days
    if days < 1:
        return PurgeResult()
    cutoff = timezone.now() - timedelta(days=days)
    batches = decisions = events = 0
    while (after := _purge_chunk(cutoff, days, max_decisions)) is not None:
        batches, decisions, events = batches + after["batches"], decisions + after["decisions"], events + 1
    return PurgeResult(batches, decisions, snapshots_sweep(before=cutoff), events)
