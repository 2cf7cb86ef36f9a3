"""The audit trail: append-only, hash-chained events written in the transaction of the change.

``audit_record`` is the only way to write an event. It must run inside the caller's
``transaction.atomic()`` block (DESIGN.md invariant 1), so the event commits or rolls back with
the change it records. Writers are serialised while they extend the chain: on PostgreSQL with a
transaction-scoped advisory lock, on SQLite by its IMMEDIATE transactions (one writer at a time).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from django.utils import timezone

from governance import context
from governance.actors import Actor
from governance.models import AuditEvent, User

GENESIS_HASH = "0" * 64
# Arbitrary constant naming the advisory lock that serialises chain writers on PostgreSQL.
_CHAIN_LOCK_ID = 7_311_420_001


def to_json(value: Any) -> Any:
    """JSON-safe copy of ``value`` exactly as it will read back from the database."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def snapshot(obj: models.Model, fields: Sequence[str]) -> dict[str, Any]:
    """The values of ``fields`` on ``obj`` for an event's before/after (foreign keys as ids)."""
    data: dict[str, Any] = {}
    for name in fields:
        field = obj._meta.get_field(name)
        if isinstance(field, models.ForeignKey):
            data[name] = getattr(obj, field.attname)
        else:
            data[name] = getattr(obj, name)
    return to_json(data)


def _fmt_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def compute_hash(event: AuditEvent) -> str:
    payload = {
        "created_at": _fmt_time(event.created_at),
        "actor_username": event.actor_username,
        "actor_kind": event.actor_kind,
        "owner_username": event.owner_username,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_repr": event.target_repr,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
        "request_id": event.request_id,
        "client_ip": event.client_ip,
        "prev_hash": event.prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class EventSpec:
    """One event to write with ``audit_record_many``."""

    action: str
    target: models.Model | None = None
    target_type: str = ""
    target_id: str = ""
    target_repr: str = ""
    owner: User | None = None
    before: Any = None
    after: Any = None
    reason: str = ""


# Called with the events just written, inside the same transaction (webhooks subscribe here so
# that every audited change can become an outbound event atomically). Register in AppConfig.ready.
_LISTENERS: list[Callable[[list[AuditEvent]], None]] = []


def register_listener(listener: Callable[[list[AuditEvent]], None]) -> None:
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def _lock_chain() -> None:
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_ID])


def _last_hash() -> str:
    last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    return last or GENESIS_HASH


def _target_fields(spec: EventSpec) -> tuple[str, str, str]:
    if spec.target is not None:
        meta = spec.target._meta
        return f"{meta.app_label}.{meta.model_name}", str(spec.target.pk), str(spec.target)[:255]
    return spec.target_type, spec.target_id, spec.target_repr[:255]


def _build(actor: Actor, spec: EventSpec, prev_hash: str, now: datetime) -> AuditEvent:
    ctx = context.current()
    owner = spec.owner if spec.owner is not None else actor.on_behalf_of
    target_type, target_id, target_repr = _target_fields(spec)
    event = AuditEvent(
        created_at=now,
        actor=actor.user,
        actor_username=actor.user.username,
        actor_kind=actor.kind,
        owner=owner,
        owner_username=owner.username if owner is not None else "",
        action=spec.action,
        target_type=target_type,
        target_id=target_id,
        target_repr=target_repr,
        before=to_json(spec.before),
        after=to_json(spec.after),
        reason=spec.reason,
        request_id=ctx.request_id,
        client_ip=ctx.client_ip,
        prev_hash=prev_hash,
    )
    event.hash = compute_hash(event)
    return event


def audit_record(
    *,
    actor: Actor | User,
    action: str,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str = "",
    target_repr: str = "",
    owner: User | None = None,
    before: Any = None,
    after: Any = None,
    reason: str = "",
) -> AuditEvent:
    """Append one event. ``owner`` is the accountable human; for a system actor it defaults to
    the actor's ``on_behalf_of``."""
    spec = EventSpec(
        action=action,
        target=target,
        target_type=target_type,
        target_id=target_id,
        target_repr=target_repr,
        owner=owner,
        before=before,
        after=after,
        reason=reason,
    )
    return audit_record_many(actor=actor, events=[spec])[0]


def audit_record_many(*, actor: Actor | User, events: Iterable[EventSpec], batch_size: int = 1000) -> list[AuditEvent]:
    """Append many events in one transaction with bulk inserts (campaign deadlines, kill switch)."""
    resolved = Actor.coerce(actor)
    _lock_chain()
    prev = _last_hash()
    now = timezone.now()
    built: list[AuditEvent] = []
    for spec in events:
        event = _build(resolved, spec, prev, now)
        prev = event.hash
        built.append(event)
    for start in range(0, len(built), batch_size):
        AuditEvent.objects.bulk_create(built[start : start + batch_size])
    for listener in _LISTENERS:
        listener(built)
    return built


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    problem: str

    def __str__(self) -> str:
        return f"audit event #{self.event_id}: {self.problem}"


def verify_chain(*, chunk_size: int = 2000) -> tuple[int, ChainBreak | None]:
    """Walk the chain in id order; return how many events were checked and the first break."""
    prev_hash = GENESIS_HASH
    prev_id: int | None = None
    checked = 0
    for event in _iterate(chunk_size):
        if event.prev_hash != prev_hash:
            where = f"after #{prev_id}" if prev_id is not None else "at the start of the trail"
            return checked, ChainBreak(
                event.pk,
                f"does not follow the event before it ({where}): an event was removed or inserted there",
            )
        if compute_hash(event) != event.hash:
            return checked, ChainBreak(event.pk, "its content was altered after it was written")
        prev_hash = event.hash
        prev_id = event.pk
        checked += 1
    return checked, None


def _iterate(chunk_size: int) -> Iterator[AuditEvent]:
    last_id = 0
    while True:
        batch = list(AuditEvent.objects.filter(id__gt=last_id).order_by("id")[:chunk_size])
        if not batch:
            return
        yield from batch
        last_id = batch[-1].pk


def verify_and_record(*, chunk_size: int = 2000) -> tuple[int, ChainBreak | None]:
    """Walk the chain and keep the result for the home page (see ``AuditChainCheck``)."""
    from governance.models import AuditChainCheck

    checked, broken = verify_chain(chunk_size=chunk_size)
    AuditChainCheck.objects.create(
        events_checked=checked,
        intact=broken is None,
        broken_event_id=broken.event_id if broken else None,
        problem=broken.problem if broken else "",
    )
    return checked, broken
