"""The audit trail: append-only, hash-chained events written in the transaction of the change.

``audit_record`` is the only way to write an event. It must run inside the caller's
``transaction.atomic()`` block, so the event commits or rolls back with the change it records.
Writers are serialised while they extend the chain: on PostgreSQL with a transaction-scoped
advisory lock, on SQLite by its IMMEDIATE transactions (one writer at a time).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from django.utils import timezone

from governance import context
from governance.actors import Actor
from governance.models import ActorKind, AuditEvent, User

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


# The fields an event's hash covers. A copy of the trail elsewhere (the SIEM stream) carries
# exactly these, as ``hash_payload`` writes them, so that anyone can recompute the hash.
HASHED_FIELDS = (
    "created_at",
    "actor_username",
    "actor_kind",
    "owner_username",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "before",
    "after",
    "reason",
    "request_id",
    "client_ip",
    "prev_hash",
)


def hash_payload(fields: Mapping[str, Any]) -> dict[str, Any]:
    """What an event's hash is computed over, from its ``HASHED_FIELDS`` (an event's attributes
    or a ``values()`` row): the time in UTC to the microsecond."""
    payload = {name: fields[name] for name in HASHED_FIELDS}
    payload["created_at"] = _fmt_time(payload["created_at"])
    return payload


def compute_hash(event: AuditEvent) -> str:
    payload = hash_payload({name: getattr(event, name) for name in HASHED_FIELDS})
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


class MissingAccountableOwner(ValueError):
    """An event would name no accountable human: a programming error, refused before writing."""


def accountable_human(actor: Actor | User) -> User | None:
    """Who answers for what ``actor`` does when nothing else owns the target: the person acting,
    the owner the system acts for, or the human responsible for a service account (its
    ``manager``; the account itself when it has none). None for the system acting for nobody."""
    resolved = Actor.coerce(actor)
    if resolved.on_behalf_of is not None:
        return resolved.on_behalf_of
    if resolved.kind == ActorKind.HUMAN:
        return resolved.user
    if resolved.kind == ActorKind.INTEGRATION:
        return resolved.user.manager or resolved.user
    return None


def _owner_of(actor: Actor, spec: EventSpec) -> User:
    """Every event names an accountable human, the person who answers for it: ``spec.owner``, or
    by default the acting person (the acting admin where nothing else owns the target). The
    system must say on whose behalf it acts."""
    owner = spec.owner if spec.owner is not None else accountable_human(actor)
    if owner is None:
        raise MissingAccountableOwner(
            f"'{spec.action}' by the system names no accountable owner: pass owner= or act as "
            "Actor.system(on_behalf_of=<the accountable person>)."
        )
    return owner


def _build(actor: Actor, spec: EventSpec, prev_hash: str, now: datetime) -> AuditEvent:
    ctx = context.current()
    owner = _owner_of(actor, spec)
    target_type, target_id, target_repr = _target_fields(spec)
    event = AuditEvent(
        created_at=now,
        actor=actor.user,
        actor_username=actor.user.username,
        actor_kind=actor.kind,
        owner=owner,
        owner_username=owner.username,
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
    """Append one event. ``owner`` is the accountable human; it defaults to the actor's
    ``accountable_human`` (the acting person, or whom the system acts for). An event that would
    name nobody raises ``MissingAccountableOwner``."""
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


# Logs kept outside this chain but sealed into it (the runtime's token log, in batches) verify
# themselves: each verifier returns (entries checked, the first problem or None), and
# ``manage.py verify_audit`` runs them after the chain walk. Register in AppConfig.ready.
_VERIFIERS: dict[str, Callable[[], tuple[int, str | None]]] = {}


def register_verifier(name: str, verifier: Callable[[], tuple[int, str | None]]) -> None:
    _VERIFIERS[name] = verifier


def registered_verifiers() -> list[tuple[str, Callable[[], tuple[int, str | None]]]]:
    return list(_VERIFIERS.items())


@dataclass(frozen=True)
class ChainBreak:
    """The first thing wrong with the trail: an event (``event_id``) or, for a checkpoint whose
    signature fails, no event at all."""

    event_id: int | None
    problem: str

    def __str__(self) -> str:
        if self.event_id is None:
            return self.problem
        return f"audit event #{self.event_id}: {self.problem}"


def verify_chain(
    *, chunk_size: int = 2000, after_id: int = 0, after_hash: str = GENESIS_HASH, upto_id: int | None = None
) -> tuple[int, ChainBreak | None]:
    """Walk the chain in id order; return how many events were checked and the first break.
    ``after_id``/``after_hash`` start the walk after an event already vouched for (a signed
    checkpoint's head), so a new checkpoint checks only what was written since the last one;
    ``upto_id`` stops it at the head about to be signed."""
    prev_hash = after_hash
    prev_id: int | None = after_id or None
    checked = 0
    for event in _iterate(chunk_size, after_id, upto_id):
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


def _iterate(chunk_size: int, after_id: int = 0, upto_id: int | None = None) -> Iterator[AuditEvent]:
    last_id = after_id
    bound = AuditEvent.objects.all() if upto_id is None else AuditEvent.objects.filter(id__lte=upto_id)
    while True:
        batch = list(bound.filter(id__gt=last_id).order_by("id")[:chunk_size])
        if not batch:
            return
        yield from batch
        last_id = batch[-1].pk
