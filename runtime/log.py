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
``batch``, not by an id range. The sealing and verification machinery is shared with the policy
decision log (``runtime.sealing``); what is the token log's own is its events, their digest and
the usage fed back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance.models import User
from inventory.models import Integration
from inventory.services import grant_usage_record, workload_bindings_verified
from runtime.models import TokenEvent, TokenEventBatch, TokenOutcome
from runtime.policy.log import Pending
from runtime.sealing import GENESIS_DIGEST as GENESIS_DIGEST
from runtime.sealing import SealedLog
from runtime.sealing import batch_digest as batch_digest

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
    # The runtime policy's say: the enforced version's number, the ids of the policies that
    # decided (permits of what was issued, forbids of what was refused) and the decision ids.
    policy_version: int | None = None
    policy_reasons: list[str] = field(default_factory=list)
    policy_decisions: list[str] = field(default_factory=list)
    # Scopes the grants allowed but the policy refused, each with why (goes into the reason).
    policy_left_out: list[str] = field(default_factory=list)
    # The policy decisions made for this attempt, written with its record.
    policy_log: Pending | None = None


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def event_digest(event: TokenEvent) -> str:
    """SHA-256 of the event's canonical JSON (sorted keys, no spaces), every field but ``id``
    and ``batch``."""
    payload: dict[str, Any] = {
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
    # Events from before the policy decided carry none of this: their digests stay as sealed.
    if event.policy_version is not None or event.policy_decisions:
        payload["policy"] = {
            "version": event.policy_version,
            "reasons": list(event.policy_reasons),
            "decisions": list(event.policy_decisions),
        }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
        policy_version=attempt.policy_version,
        policy_reasons=list(attempt.policy_reasons),
        policy_decisions=list(attempt.policy_decisions),
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


def _tally(events: Sequence[TokenEvent]) -> dict[str, int]:
    issued = sum(1 for event in events if event.outcome == TokenOutcome.ISSUED)
    return {"issued": issued, "refused": len(events) - issued}


TOKEN_LOG = SealedLog(
    entry_model=TokenEvent,
    batch_model=TokenEventBatch,
    entry_digest=event_digest,
    seal_action=SEAL_ACTION,
    lock_id=_SEAL_LOCK_ID,
    first_field="first_event_id",
    last_field="last_event_id",
    entry_label="token event",
    entries_label="events",
    batch_label="token batch",
    log_label="token log",
    tally=_tally,
    tampered=TokenLogTampered,
)


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


def usage_apply() -> int:
    """Feed the issued events of every sealed batch whose usage is not applied yet back to the
    inventory (uses per grant, bindings proven), in one transaction: one write per grant and per
    integration however many batches a run sealed — with the seal every minute, at most one
    write per grant per minute. A run killed before it commits leaves the batches unapplied, and
    the next run applies them, once. Returns how many batches were applied."""
    with transaction.atomic():
        TOKEN_LOG.lock()
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
    batches = TOKEN_LOG.seal(max_entries=max_events, chunk_size=chunk_size)
    usage_apply()
    return batches


# --- Verification ---------------------------------------------------------------------------


def verify_token_log() -> tuple[int, str | None]:
    """Recompute every event's digest, every batch's digest and the chain of batches, and check
    that each batch's audit event carries its digest (``runtime.sealing``). Returns how many
    events were checked and the first problem, or None."""
    return TOKEN_LOG.verify()
