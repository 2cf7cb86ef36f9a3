"""The audit trail: append-only, hash-chained events written in the transaction of the change.

``audit_record`` and ``audit_record_many`` (or its two halves, ``audit_prepare`` then
``audit_append``) are the only ways to write events. They must run inside the caller's
``transaction.atomic()`` block, so the events commit or roll back with the change they record.
Writers are serialised while they extend the chain: on PostgreSQL with a transaction-scoped
advisory lock, on SQLite by its IMMEDIATE transactions (one writer at a time).
"""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple, overload

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, connections, models
from django.db.models.base import ModelState
from django.utils import timezone

from governance import context
from governance.actors import Actor
from governance.models import ActorKind, AuditEvent, User

GENESIS_HASH = "0" * 64
# Arbitrary constant naming the advisory lock that serialises chain writers on PostgreSQL.
_CHAIN_LOCK_ID = 7_311_420_001


def to_json(value: Any) -> Any:
    """JSON-safe copy of ``value`` exactly as it will read back from the database (floats as
    jsonb gives them back; NaN and infinities refused with ``ValueError``)."""
    return _to_json_text(value)[0]


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


# The canonical form of a payload is ``json.dumps(payload, sort_keys=True, separators=(",", ":"),
# ensure_ascii=False)``, and its bytes must never change (every stored hash depends on them). It is
# produced two ways, each with the very encoder ``json.dumps`` uses: verification encodes a dict
# already in sorted key order with a C encoder built once (``json.dumps`` builds one per call);
# writers encode each member ahead (``_CanonicalParts``) so that only the time and the previous
# hash are left for when the chain is locked.
_encode_text = json.encoder.encode_basestring
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_encode_value = _CANONICAL_JSON.encode


def _one_pass_encoder() -> Callable[[Any], str]:
    """``_CANONICAL_JSON.encode`` for a dict (or any value), with the C encoder ``json.dumps`` builds on every
    call built once (without the circular-reference check: a payload read from the database or
    decoded from JSON cannot refer to itself)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _encode_value
    encode = make(None, _CANONICAL_JSON.default, _encode_text, None, ":", ",", True, False, True)
    return lambda payload: "".join(encode(payload, 0))


_encode_payload = _one_pass_encoder()
_CANONICAL_ORDER = tuple(sorted(HASHED_FIELDS))


def _json(value: Any) -> str:
    """``value`` as ``json.dumps`` writes it inside the canonical payload. Values are columns or
    JSON freshly decoded (``_to_json_text``), never circular, so the encoder built once serves."""
    if value.__class__ is str:
        return _encode_text(value)
    if value is None:
        return "null"
    return _encode_payload(value)


class _CanonicalParts(NamedTuple):
    """An event's canonical payload split around the two values only known once the chain is
    locked (the time and the previous hash), so the rest is encoded before the lock is taken."""

    head: str  # '{' and the members before "created_at", up to its colon
    middle: str  # the members between the time and "prev_hash", up to its colon
    tail: str  # the members after the previous hash, and '}'

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> _CanonicalParts:
        """The parts of ``values`` (the hashed fields but the time and the previous hash, with
        before and after as their canonical JSON in ``before_json``/``after_json``). The members
        are written out in ``_CANONICAL_ORDER`` (twice as fast as a loop over it, for every event
        of a bulk write); the text fields are strings (the schema's NOT NULL)."""
        text, value = _encode_text, _json
        return cls(
            head=(
                f'{{"action":{text(values["action"])},"actor_kind":{text(values["actor_kind"])},'
                f'"actor_username":{text(values["actor_username"])},"after":{values["after_json"]},'
                f'"before":{values["before_json"]},"client_ip":{value(values["client_ip"])},"created_at":'
            ),
            middle=f',"owner_username":{text(values["owner_username"])},"prev_hash":',
            tail=(
                f',"reason":{text(values["reason"])},"request_id":{text(values["request_id"])},'
                f'"target_id":{text(values["target_id"])},"target_repr":{text(values["target_repr"])},'
                f'"target_type":{text(values["target_type"])}}}'
            ),
        )

    def hash(self, created_at: str, prev_hash: str) -> str:
        canonical = f"{self.head}{_json(created_at)}{self.middle}{_json(prev_hash)}{self.tail}"
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# The parts hold every hashed field but the two, in canonical order: each field named as its value.
_PROBE = _CanonicalParts.of(
    {**{name: name for name in HASHED_FIELDS}, "before_json": '"before"', "after_json": '"after"'}
)
_PROBE_PAYLOAD = json.loads(f'{_PROBE.head}"created_at"{_PROBE.middle}"prev_hash"{_PROBE.tail}')
assert list(_PROBE_PAYLOAD.items()) == [(name, name) for name in _CANONICAL_ORDER]


def compute_hash(event: AuditEvent) -> str:
    """SHA-256 of the event's canonical payload (see ``hash_payload``)."""
    payload = {name: getattr(event, name) for name in _CANONICAL_ORDER}
    payload["created_at"] = _fmt_time(payload["created_at"])
    return hashlib.sha256(_encode_payload(payload).encode("utf-8")).hexdigest()


# A row as ``verify_chain`` reads it: the id, the hashed fields in canonical order, the hash.
_ROW_COLUMNS = ("id", *_CANONICAL_ORDER, "hash")
_PREV_AT = 1 + _CANONICAL_ORDER.index("prev_hash")


def _row_hash(row: Sequence[Any]) -> str:
    """The hash of a row of ``_ROW_COLUMNS``: its payload as a dict already in canonical key
    order, encoded in one pass."""
    payload = dict(zip(_CANONICAL_ORDER, row[1:-1], strict=True))
    created_at = payload["created_at"]
    if created_at.__class__ is not str:  # already written as _fmt_time writes it (PostgreSQL)
        payload["created_at"] = _fmt_time(created_at)
    return hashlib.sha256(_encode_payload(payload).encode("utf-8")).hexdigest()


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
_LISTENERS: list[Callable[[Sequence[AuditEvent]], None]] = []


def register_listener(listener: Callable[[Sequence[AuditEvent]], None]) -> None:
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


class _Prepared(NamedTuple):
    """One event made ready before the chain is locked: the column values it is written with
    (before/after as their decoded value and as the JSON text stored), the canonical parts of
    its hash, the users it names, and on PostgreSQL its own columns as a piece of its COPY line
    (``_copy_middle``; empty elsewhere)."""

    columns: dict[str, Any]
    parts: _CanonicalParts
    actor: User
    owner: User
    copy_middle: str


# A before/after value is stored as JSON and hashed as it reads back. PostgreSQL's jsonb keeps
# numbers as ``numeric``, which writes them without an exponent and without a negative zero (1e22
# reads back as the integer 10000000000000000000000, 1e-07 as 0.0000001, -0.0 as 0.0), so every
# float is normalised that way before anything is hashed or stored, on every database alike.
# Non-finite floats (NaN, Infinity) are not JSON and are refused.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
# ``json.dumps(value, cls=DjangoJSONEncoder)``, the C encoder built once, refusing non-finite
# floats. It checks no circular references (its markers are None): a circular value exhausts the
# recursion limit instead, reported as ``json.dumps`` reports it.
_dumps_for_storage: Callable[[Any], str] = DjangoJSONEncoder(allow_nan=False).encode
if _c_make_encoder is not None:
    _storage_encoder = _c_make_encoder(
        None, DjangoJSONEncoder().default, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, False
    )

    def _dumps_for_storage(value: Any) -> str:
        return "".join(_storage_encoder(value, 0))


class _HasFloat(Exception):
    """A JSON text holds a float (it must be normalised, see ``_jsonb_number``)."""


def _refuse_float(literal: str) -> float:
    raise _HasFloat


def _jsonb_number(literal: str) -> float | int:
    """The number of a JSON float ``literal`` as PostgreSQL's jsonb gives it back, then as
    ``json.loads`` reads that text: an integer when jsonb writes no decimal point."""
    text = format(Decimal(literal), "f")
    if "." not in text:
        return int(text)
    value = float(text)
    return 0.0 if value == 0 else value


# The texts decoded are the encoder's own (one value, no surrounding whitespace): scanned
# directly, without ``JSONDecoder.decode``'s checks for whitespace around the value.
def _scanner(parse_float: Callable[[str], Any]) -> Callable[[str, int], tuple[Any, int]]:
    scan: Callable[[str, int], tuple[Any, int]] = vars(json.JSONDecoder(parse_float=parse_float))["scan_once"]
    return scan


_scan_without_floats = _scanner(_refuse_float)
_scan_normalising = _scanner(_jsonb_number)


def _to_json_text(value: Any) -> tuple[Any, str | None]:
    """``to_json(value)`` and the JSON text it is stored as: the text reads back, on every
    database, as exactly that value (a fresh copy, never the caller's objects)."""
    if value is None:
        return None, None
    try:
        text = _dumps_for_storage(value)
    except RecursionError:
        raise ValueError("Circular reference detected (or a value nested too deep for JSON)") from None
    try:
        return _scan_without_floats(text, 0)[0], text
    except _HasFloat:
        decoded = _scan_normalising(text, 0)[0]
        return decoded, _dumps_for_storage(decoded)


# Most payloads the services write are flat: a dict with text keys whose values are text, whole
# numbers, booleans, nulls or lists of these. Such a dict reads back from its canonical text as an
# equal value, so that text is what is stored (jsonb keeps no spelling; SQLite's text is read
# back with ``json.loads``), encoded once instead of stored, decoded and encoded again; the
# event's decoded copy is read from it only when the event is made a model instance.
_SCALARS = (str, int, type(None))  # bool is an int; float is neither


def _flat_canonical(value: Any) -> str | None:
    """The canonical text of a flat dict (see above); None for any other value."""
    if value.__class__ is not dict:
        return None
    for key, item in value.items():
        if key.__class__ is not str:  # a subclass might sort its own way
            return None
        if not isinstance(item, _SCALARS) and not (
            item.__class__ is list and all(isinstance(element, _SCALARS) for element in item)
        ):
            return None
    text = _encode_payload(value)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # surrogates: the general path escapes (and joins) them
            return None
    return text


# A before/after whose decoded copy is read from its stored text when first needed (``_instance``).
_FROM_TEXT = object()


def _json_forms(value: Any) -> tuple[Any, str | None, str]:
    """``value`` as an event holds it: its decoded copy (``_FROM_TEXT`` for a flat dict), the JSON
    text stored, and its canonical JSON inside the hash."""
    if value is None:
        return None, None, "null"
    flat = _flat_canonical(value)
    if flat is not None:
        return _FROM_TEXT, flat, flat
    decoded, text = _to_json_text(value)
    return decoded, text, _json(decoded)


def _prepare(actor: Actor, spec: EventSpec, ctx: context.RequestContext, copy: bool) -> _Prepared:
    owner = _owner_of(actor, spec)
    target_type, target_id, target_repr = _target_fields(spec)
    before, before_text, before_json = _json_forms(spec.before)
    after, after_text, after_json = _json_forms(spec.after)
    columns = {
        "actor_username": actor.user.username,
        "actor_kind": actor.kind,
        "owner_username": owner.username,
        "action": spec.action,
        "target_type": target_type,
        "target_id": target_id,
        "target_repr": target_repr,
        "before": before,
        "after": after,
        "reason": spec.reason,
        "request_id": ctx.request_id,
        "client_ip": ctx.client_ip,
        "before_text": before_text,
        "after_text": after_text,
        "before_json": before_json,
        "after_json": after_json,
    }
    return _Prepared(
        columns=columns,
        parts=_CanonicalParts.of(columns),
        actor=actor.user,
        owner=owner,
        copy_middle=_copy_middle(owner, columns) if copy else "",
    )


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
    """Append many events in one transaction (campaign deadlines, kill switch): one COPY on
    PostgreSQL, multi-row inserts on SQLite. Everything that does not depend on the chain (owners,
    targets, JSON, most of the canonical payload) is done before the chain is locked; under the
    lock only the time, the hashes and the writes remain."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    return list(audit_append(audit_prepare(actor=actor, events=events), batch_size=batch_size))


@dataclass(frozen=True)
class AuditBatch:
    """Events made ready to append (``audit_prepare``): all but what depends on the chain."""

    actor: Actor
    ctx: context.RequestContext
    prepared: list[_Prepared]


def audit_prepare(*, actor: Actor | User, events: Iterable[EventSpec]) -> AuditBatch:
    """The first half of ``audit_record_many``, which writes nothing and takes no lock: each
    event's owner, target, JSON and canonical payload but the time and the previous hash, and on
    PostgreSQL most of its row. A writer that must append after another transaction commits
    (the deadline's chunks, in order) prepares its events before it waits."""
    resolved = Actor.coerce(actor)
    ctx = context.current()
    copy = connection.vendor == "postgresql"
    with _without_cycle_collection():
        return AuditBatch(resolved, ctx, [_prepare(resolved, spec, ctx, copy) for spec in events])


def audit_append(batch: AuditBatch, *, batch_size: int = 1000) -> Sequence[AuditEvent]:
    """The second half of ``audit_record_many``, inside the transaction of the change: lock the
    chain, link and write the events, tell the listeners. Returns the events written, in chain
    order, made model instances only when first read (listeners that have nothing to do with
    them, as when no webhook is subscribed, cost nothing per event)."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    with _without_cycle_collection():
        _lock_chain()
        now = timezone.now()
        if connection.vendor == "postgresql":
            links, ids = _copy_events(batch, _last_hash(), now, batch_size)
        else:
            links = _links(batch.prepared, _last_hash(), _fmt_time(now))
            ids = _insert_rows(batch.prepared, links, now, batch.ctx, batch_size)
    appended = _Appended(batch.prepared, links, ids, now, connection.alias)
    for listener in _LISTENERS:
        listener(appended)
    return appended


def _links(prepared: Sequence[_Prepared], prev: str, created_at: str) -> list[tuple[str, str]]:
    """Each event's ``(prev_hash, hash)``, chained from ``prev``."""
    links = []
    for item in prepared:
        event_hash = item.parts.hash(created_at, prev)
        links.append((prev, event_hash))
        prev = event_hash
    return links


class _Appended(Sequence[AuditEvent]):
    """Events just written, as saved model instances (``_instance``) built on first read."""

    def __init__(
        self, prepared: list[_Prepared], links: list[tuple[str, str]], ids: list[int], now: datetime, alias: str
    ) -> None:
        self._parts = (prepared, links, ids, now, alias)
        self._events: list[AuditEvent] | None = None

    def _built(self) -> list[AuditEvent]:
        if self._events is None:
            prepared, links, ids, now, alias = self._parts
            self._events = [
                _instance(item, link, event_id, now, alias)
                for item, link, event_id in zip(prepared, links, ids, strict=True)
            ]
        return self._events

    def __reduce__(self) -> tuple[type[list[AuditEvent]], tuple[list[AuditEvent]]]:
        return list, (self._built(),)  # copied or pickled as the events themselves

    def __len__(self) -> int:
        return len(self._parts[2])

    @overload
    def __getitem__(self, index: int) -> AuditEvent: ...

    @overload
    def __getitem__(self, index: slice) -> list[AuditEvent]: ...

    def __getitem__(self, index: int | slice) -> AuditEvent | list[AuditEvent]:
        return self._built()[index]

    def __iter__(self) -> Iterator[AuditEvent]:
        return iter(self._built())


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector paused while a bulk write builds its objects (several per
    event, none of them garbage): each collection would walk every object the process holds, and
    a call of 1,000 events would otherwise run dozens. Reference counting still frees what is
    dropped; the collector resumes (if it ran before) when the block ends, however it ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# The columns ``audit_record_many`` writes, in the order of its INSERT.
_INSERT_COLUMNS = (
    "created_at",
    "actor_id",
    "actor_username",
    "actor_kind",
    "owner_id",
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
    "hash",
)


def _insert_statement(rows: int) -> str:
    """``INSERT … VALUES (…), … RETURNING id`` for ``rows`` events (SQLite)."""
    ops = connection.ops
    one = ", ".join(["%s"] * len(_INSERT_COLUMNS))
    columns = ", ".join(ops.quote_name(name) for name in _INSERT_COLUMNS)
    values = ", ".join([f"({one})"] * rows)
    return f"INSERT INTO {ops.quote_name(AuditEvent._meta.db_table)} ({columns}) VALUES {values} RETURNING {ops.quote_name('id')}"


def _allocate_ids(count: int) -> list[int]:
    """``count`` new consecutive ids, ascending, reserved in one step: the table's sequence is
    moved past them at once. Every writer must hold the chain lock: then the ids follow every id
    written and stay in chain order."""
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), nextval(pg_get_serial_sequence(%s, 'id')) + %s - 1)",
            [table, table, count],
        )
        last = int(cursor.fetchone()[0])
    return list(range(last - count + 1, last + 1))


# PostgreSQL: the rows travel with COPY … FROM STDIN in its text format, ids allocated first (so
# each event's id is known and follows the chain order). COPY has no statement per chunk to plan
# and parses plain text; the rows are written as they are formatted, so the server inserts a
# piece while the next one is formatted. Columns in the order of ``_copy_line``.
_COPY_COLUMNS = (
    "id",
    "created_at",
    "actor_id",
    "actor_username",
    "actor_kind",
    "request_id",
    "client_ip",
    "owner_id",
    "owner_username",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "before",
    "after",
    "reason",
    "prev_hash",
    "hash",
)
# COPY's text format: a backslash, tab, newline or carriage return in a value is escaped; NULL
# is ``\N``.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str | None) -> str:
    if value is None:
        return "\\N"
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _copy_middle(owner: User, col: Mapping[str, Any]) -> str:
    """An event's own columns from ``owner_id`` to ``reason`` as a piece of a COPY line."""
    return "\t".join(
        (
            str(owner.pk),
            _copy_text(col["owner_username"]),
            _copy_text(col["action"]),
            _copy_text(col["target_type"]),
            _copy_text(col["target_id"]),
            _copy_text(col["target_repr"]),
            _copy_text(col["before_text"]),
            _copy_text(col["after_text"]),
            _copy_text(col["reason"]),
        )
    )


def _copy_events(
    batch: AuditBatch, prev: str, now: datetime, batch_size: int
) -> tuple[list[tuple[str, str]], list[int]]:
    """Link the events from ``prev`` and write them with one COPY (PostgreSQL), ``batch_size``
    rows per piece: each piece is linked and sent while the server stores the one before it.
    Returns the links and the ids, in chain order."""
    prepared = batch.prepared
    if not prepared:
        return [], []
    ids = _allocate_ids(len(prepared))
    first = prepared[0]  # one call, one actor: the shared columns are every event's
    shared = "\t".join(
        (
            now.isoformat(),
            str(first.actor.pk),
            _copy_text(first.columns["actor_username"]),
            _copy_text(first.columns["actor_kind"]),
            _copy_text(batch.ctx.request_id),
            _copy_text(batch.ctx.client_ip or None),
        )
    )
    created_at = _fmt_time(now)
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    statement = f"COPY {table} ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
    step = max(1, batch_size)
    links: list[tuple[str, str]] = []
    # The driver's own COPY, inside Django's error translation (a failed write raises django.db errors).
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(statement) as copy:
        for start in range(0, len(prepared), step):
            piece = _links(prepared[start : start + step], prev, created_at)
            prev = piece[-1][1]
            links += piece
            copy.write(
                "".join(
                    f"{event_id}\t{shared}\t{item.copy_middle}\t{prev_hash}\t{event_hash}\n"
                    for event_id, item, (prev_hash, event_hash) in zip(
                        ids[start : start + step], prepared[start : start + step], piece, strict=True
                    )
                )
            )
    return links, ids


def _insert_rows(
    prepared: list[_Prepared],
    links: list[tuple[str, str]],
    now: datetime,
    ctx: context.RequestContext,
    batch_size: int,
) -> list[int]:
    """Write the events with multi-row inserts (SQLite); their ids, in chain order."""
    db_time = connection.ops.adapt_datetimefield_value(now)
    db_ip = connection.ops.adapt_ipaddressfield_value(ctx.client_ip)
    max_params = connection.features.max_query_params or 65_535
    per_statement = max(1, min(batch_size, max_params // len(_INSERT_COLUMNS)))
    ids: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(prepared), per_statement):
            chunk = prepared[start : start + per_statement]
            params: list[Any] = []
            for item, (prev_hash, event_hash) in zip(chunk, links[start : start + per_statement], strict=True):
                col = item.columns
                params += (
                    db_time,
                    item.actor.pk,
                    col["actor_username"],
                    col["actor_kind"],
                    item.owner.pk,
                    col["owner_username"],
                    col["action"],
                    col["target_type"],
                    col["target_id"],
                    col["target_repr"],
                    col["before_text"],
                    col["after_text"],
                    col["reason"],
                    col["request_id"],
                    db_ip,
                    prev_hash,
                    event_hash,
                )
            cursor.execute(_insert_statement(len(chunk)), params)
            # SQLite returns the inserted rows in no promised order; ids grow with the rows.
            ids += sorted(row[0] for row in cursor.fetchall())
    return ids


def _instance(item: _Prepared, link: tuple[str, str], event_id: int, now: datetime, alias: str) -> AuditEvent:
    """The saved event as the model (what ``bulk_create`` returned before): the values as
    written, its users cached so that listeners reading ``actor``/``owner`` make no query."""
    col = item.columns
    # What ``from_db`` makes, without running the model's ``__init__`` field by field (ten times
    # the cost, for every event of a bulk write): every concrete field's value is set.
    event = AuditEvent.__new__(AuditEvent)
    event.__dict__ = {
        "id": event_id,
        "created_at": now,
        "actor_id": item.actor.pk,
        "actor_username": col["actor_username"],
        "actor_kind": col["actor_kind"],
        "owner_id": item.owner.pk,
        "owner_username": col["owner_username"],
        "action": col["action"],
        "target_type": col["target_type"],
        "target_id": col["target_id"],
        "target_repr": col["target_repr"],
        "before": json.loads(col["before_text"]) if col["before"] is _FROM_TEXT else col["before"],
        "after": json.loads(col["after_text"]) if col["after"] is _FROM_TEXT else col["after"],
        "reason": col["reason"],
        "request_id": col["request_id"],
        "client_ip": col["client_ip"],
        "prev_hash": link[0],
        "hash": link[1],
    }
    state = ModelState.__new__(ModelState)
    state.__dict__ = {"db": alias, "adding": False, "fields_cache": {"actor": item.actor, "owner": item.owner}}
    event._state = state
    return event


_INSTANCE_FIELDS = (
    "id created_at actor_id actor_username actor_kind owner_id owner_username action target_type target_id "
    "target_repr before after reason request_id client_ip prev_hash hash"
).split()
assert sorted(_INSTANCE_FIELDS) == sorted(field.attname for field in AuditEvent._meta.concrete_fields)


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


# Rows read per query by ``verify_chain``: each chunk is one indexed range scan on the id.
VERIFY_CHUNK_SIZE = 20_000


def verify_chain(
    *,
    chunk_size: int = VERIFY_CHUNK_SIZE,
    after_id: int = 0,
    after_hash: str = GENESIS_HASH,
    upto_id: int | None = None,
) -> tuple[int, ChainBreak | None]:
    """Walk the chain in id order; return how many events were checked and the first break.
    ``after_id``/``after_hash`` start the walk after an event already vouched for (a signed
    checkpoint's head), so a new checkpoint checks only what was written since the last one;
    ``upto_id`` stops it at the head about to be signed.

    Rows are read as plain tuples in id ranges and hashed from their values: no model instance
    per event, and memory bounded by one chunk."""
    prev_hash = after_hash
    prev_id: int | None = after_id or None
    checked = 0
    rows, row_hash = _chain_rows(chunk_size=chunk_size, after_id=after_id, upto_id=upto_id)
    for row in rows:
        event_id = row[0]
        if row[_PREV_AT] != prev_hash:
            where = f"after #{prev_id}" if prev_id is not None else "at the start of the trail"
            return checked, ChainBreak(
                event_id,
                f"does not follow the event before it ({where}): an event was removed or inserted there",
            )
        if row_hash(row) != row[-1]:
            return checked, ChainBreak(event_id, "its content was altered after it was written")
        prev_hash = row[-1]
        prev_id = event_id
        checked += 1
    return checked, None


def _chain_rows(
    *, chunk_size: int, after_id: int, upto_id: int | None
) -> tuple[Iterator[Sequence[Any]], Callable[[Sequence[Any]], str]]:
    """The events after ``after_id`` (up to ``upto_id``) in id order as rows of
    ``_ROW_COLUMNS``, and the function that hashes such a row. Keyset chunks: each query starts
    after the last id read, so nothing is skipped or read twice however long the walk takes."""
    if connection.vendor == "postgresql":
        return _postgresql_rows(chunk_size, after_id, upto_id), _PostgresRowHasher()
    return _orm_rows(chunk_size, after_id, upto_id), _row_hash


def _orm_rows(chunk_size: int, after_id: int, upto_id: int | None) -> Iterator[Sequence[Any]]:
    """Rows with the values the model would hold (time aware, JSON decoded)."""
    last_id = after_id
    rows = AuditEvent.objects.order_by("id").values_list(*_ROW_COLUMNS)
    if upto_id is not None:
        rows = rows.filter(id__lte=upto_id)
    while True:
        batch = list(rows.filter(id__gt=last_id)[:chunk_size])
        if not batch:
            return
        yield from batch
        last_id = batch[-1][0]


# The time as ``_fmt_time`` writes it (UTC, microseconds, "+00:00"), written by the server: no
# datetime built and formatted per row. Years 1 to 9999 (all Python can hold) come out alike.
_PG_TIME = """to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


def _postgresql_rows(chunk_size: int, after_id: int, upto_id: int | None) -> Iterator[Sequence[Any]]:
    """Rows as PostgreSQL sends them: the time as text (``_PG_TIME``), the JSON columns as
    their text, undecoded (``_PostgresRowHasher`` decodes each distinct text once)."""
    columns = ", ".join(_PG_TIME if name == "created_at" else name for name in _ROW_COLUMNS)
    bound = "" if upto_id is None else " AND id <= %s"
    sql = f"SELECT {columns} FROM {AuditEvent._meta.db_table} WHERE id > %s{bound} ORDER BY id LIMIT %s"
    last_id = after_id
    with connection.cursor() as cursor:
        while True:
            cursor.execute(sql, [last_id, chunk_size] if upto_id is None else [last_id, upto_id, chunk_size])
            batch = cursor.fetchall()
            if not batch:
                return
            yield from batch
            last_id = batch[-1][0]


_PG_ORDER = (
    "action",
    "actor_kind",
    "actor_username",
    "after",
    "before",
    "client_ip",
    "created_at",
    "owner_username",
    "prev_hash",
    "reason",
    "request_id",
    "target_id",
    "target_repr",
    "target_type",
)
assert _PG_ORDER == _CANONICAL_ORDER


class _PostgresRowHasher:
    """Hashes rows of ``_postgresql_rows``: the canonical payload written with the encoders
    ``json.dumps`` uses for each member, the JSON columns' canonical form computed once per
    distinct stored text (before/after values repeat across a trail). A row that does not have
    the stored types (text where the schema says NOT NULL) goes the general way."""

    CACHE_LIMIT = 100_000
    # Only short texts repeat across a trail (statuses, small diffs); caching long ones would
    # let memory grow with the trail instead of staying at one chunk.
    CACHED_TEXT_LIMIT = 256

    def __init__(self) -> None:
        self.canonical_json: dict[str, str] = {}

    def _json_text(self, text: str | None) -> str:
        if text is None:
            return "null"
        known = self.canonical_json.get(text)
        if known is None:
            known = _encode_value(json.loads(text))
            if len(text) <= self.CACHED_TEXT_LIMIT and len(self.canonical_json) < self.CACHE_LIMIT:
                self.canonical_json[text] = known
        return known

    def __call__(self, row: Sequence[Any]) -> str:
        (
            _id,
            action,
            kind,
            actor,
            after,
            before,
            ip,
            created,
            owner,
            prev,
            reason,
            request,
            tid,
            trepr,
            ttype,
            _hash,
        ) = row
        text = _encode_text
        try:
            canonical = (
                f'{{"action":{text(action)},"actor_kind":{text(kind)},"actor_username":{text(actor)},'
                f'"after":{self._json_text(after)},"before":{self._json_text(before)},'
                f'"client_ip":{"null" if ip is None else text(ip)},"created_at":{text(created)},'
                f'"owner_username":{text(owner)},"prev_hash":{text(prev)},"reason":{text(reason)},'
                f'"request_id":{text(request)},"target_id":{text(tid)},"target_repr":{text(trepr)},'
                f'"target_type":{text(ttype)}}}'
            )
        except TypeError:
            decoded = list(row)
            for index in (4, 5):
                decoded[index] = json.loads(row[index]) if row[index] is not None else None
            return _row_hash(decoded)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def recompute_hash(event_id: int) -> str | None:
    """The hash event ``event_id``'s stored content hashes to now (None when it is gone)."""
    row = AuditEvent.objects.filter(id=event_id).values_list(*_ROW_COLUMNS).first()
    return _row_hash(row) if row is not None else None


def verify_chain_parallel(*, workers: int, chunk_size: int = VERIFY_CHUNK_SIZE) -> tuple[int, ChainBreak | None]:
    """``verify_chain`` over the whole trail, split into ``workers`` id ranges walked by as many
    processes (PostgreSQL; each process its own connection). Each range starts after the last
    event of the range before it, from that event's stored hash, which that range's walk checks
    by recomputing it: so every link is checked once, and the first break (in id order) is
    reported with the same event, words and count as a single walk. Reads committed data only:
    run it outside a transaction (inside one, the walk stays in this process and its connection,
    which sees what the transaction wrote)."""
    if connection.vendor != "postgresql" or workers < 2 or connection.in_atomic_block:
        return verify_chain(chunk_size=chunk_size)
    bounds = _range_bounds(workers)
    if len(bounds) < 3:
        return verify_chain(chunk_size=chunk_size)
    starts = [(bounds[0], GENESIS_HASH)] + [_last_at_or_before(bound) for bound in bounds[1:-1]]
    tasks = [
        (after_id, after_hash, upto_id, chunk_size)
        for (after_id, after_hash), upto_id in zip(starts, bounds[1:], strict=True)
    ]
    connections.close_all()  # each process opens its own connection
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        results = list(pool.map(_verify_range, tasks))
    checked = 0
    for range_checked, broken in results:
        checked += range_checked
        if broken is not None:
            return checked, broken
    return checked, None


def _range_bounds(workers: int) -> list[int]:
    """``workers + 1`` ids splitting the trail into ranges of about equal id spans: 0, …, newest."""
    low, high = AuditEvent.objects.aggregate(low=models.Min("id"), high=models.Max("id")).values()
    if low is None:
        return [0]
    span = high - low + 1
    inner = sorted({low - 1 + span * index // workers for index in range(1, workers)} - {low - 1, high})
    return [0, *inner, high]


def _last_at_or_before(bound: int) -> tuple[int, str]:
    """The newest event with id ≤ ``bound`` and its stored hash (a range's starting point)."""
    last = AuditEvent.objects.filter(id__lte=bound).order_by("-id").values_list("id", "hash").first()
    return last if last is not None else (0, GENESIS_HASH)


def _verify_range(task: tuple[int, str, int, int]) -> tuple[int, ChainBreak | None]:
    after_id, after_hash, upto_id, chunk_size = task
    try:
        return verify_chain(chunk_size=chunk_size, after_id=after_id, after_hash=after_hash, upto_id=upto_id)
    finally:
        connections.close_all()
