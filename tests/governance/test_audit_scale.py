"""The audit trail's fast paths give exactly what the straightforward code gave.

The hash is written from a template instead of ``json.dumps`` over a dict, the chain is walked
over tuples instead of model instances, and ``audit_record_many`` writes with multi-row inserts:
each is held here against a copy of the code it replaced (``_legacy_*``), on the same data, so
that every chain written before still verifies and every break is reported at the same event
with the same words.
"""

from __future__ import annotations

import decimal
import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from governance import audit
from governance.actors import Actor
from governance.audit import (
    GENESIS_HASH,
    HASHED_FIELDS,
    EventSpec,
    audit_record,
    audit_record_many,
    compute_hash,
    hash_payload,
    to_json,
    verify_chain,
    verify_chain_parallel,
)
from governance.context import RequestContext, bind
from governance.models import AuditEvent, User

pytestmark = pytest.mark.django_db

TABLE = AuditEvent._meta.db_table
FIXED_TIME = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


# --- The code the fast paths replaced ------------------------------------------------------------


def _legacy_hash(event: AuditEvent) -> str:
    payload = hash_payload({name: getattr(event, name) for name in HASHED_FIELDS})
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _legacy_build(actor: Actor, spec: EventSpec, prev_hash: str, now: datetime) -> AuditEvent:
    ctx = audit.context.current()
    owner = audit._owner_of(actor, spec)
    target_type, target_id, target_repr = audit._target_fields(spec)
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
    event.hash = _legacy_hash(event)
    return event


def _legacy_record_many(*, actor: Actor | User, events: list[EventSpec]) -> list[AuditEvent]:
    resolved = Actor.coerce(actor)
    audit._lock_chain()
    prev = audit._last_hash()
    now = audit.timezone.now()
    built = []
    for spec in events:
        event = _legacy_build(resolved, spec, prev, now)
        prev = event.hash
        built.append(event)
    AuditEvent.objects.bulk_create(built)
    return built


def _legacy_iterate(chunk_size: int) -> Iterator[AuditEvent]:
    last_id = 0
    while True:
        batch = list(AuditEvent.objects.filter(id__gt=last_id).order_by("id")[:chunk_size])
        if not batch:
            return
        yield from batch
        last_id = batch[-1].pk


def _legacy_verify_chain() -> tuple[int, audit.ChainBreak | None]:
    prev_hash, prev_id, checked = GENESIS_HASH, None, 0
    for event in _legacy_iterate(2000):
        if event.prev_hash != prev_hash:
            where = f"after #{prev_id}" if prev_id is not None else "at the start of the trail"
            return checked, audit.ChainBreak(
                event.pk,
                f"does not follow the event before it ({where}): an event was removed or inserted there",
            )
        if _legacy_hash(event) != event.hash:
            return checked, audit.ChainBreak(event.pk, "its content was altered after it was written")
        prev_hash, prev_id, checked = event.hash, event.pk, checked + 1
    return checked, None


# --- Data that exercises the canonical form --------------------------------------------------------


def _awkward_specs(owner: User) -> list[EventSpec]:
    """Payloads where a hand-written canonical form could go wrong: escapes, non-ASCII, nesting,
    numbers, values ``to_json`` converts, empty and missing values, a long target name."""
    return [
        EventSpec(
            action="t.plain", target=owner, owner=owner, before={"b": 1, "a": 2}, after={"a": [3, {"z": 1, "y": 2}]}
        ),
        EventSpec(
            action="t.text",
            target_type="x.y",
            target_id="7",
            target_repr='Quote " backslash \\ tab \t newline \n bell \x07 é 中文 😀 \u2028',
            owner=owner,
            reason="Line one\nline two « guillemets »",
            after={"unicode": "ünïcödé", "ctrl": "\x01\x1f", "emoji": "🔐"},
        ),
        EventSpec(
            action="t.numbers",
            target_type="x.y",
            target_id="8",
            owner=owner,
            before={"float": 1.5, "small": 1e-7, "big": 123456789.125, "int": 2**70, "t": True, "f": False},
            after=[1, 2.0, None, "3"],
        ),
        EventSpec(
            action="t.converted",
            target_type="x.y",
            target_id="9",
            owner=owner,
            before={"when": FIXED_TIME, "amount": decimal.Decimal("12.50"), "id": uuid.UUID(int=5), "tuple": (1, 2)},
            after="just a string",
        ),
        EventSpec(action="t.empty", target_type="", target_id="", owner=owner, before={}, after=[]),
        EventSpec(action="t.none", target_type="x.y", target_id="10", target_repr="r" * 400, owner=owner),
        EventSpec(action="t.scalar", target_type="x.y", target_id="11", owner=owner, before=0, after=False),
    ]


def _write(
    owner: User, specs: list[EventSpec], *, legacy: bool = False, ctx: RequestContext | None = None
) -> list[AuditEvent]:
    record = _legacy_record_many if legacy else audit_record_many
    with bind(ctx or RequestContext()), transaction.atomic():
        return record(actor=owner, events=specs)


def _rows() -> list[tuple[Any, ...]]:
    """Every stored event, every column but the id, in chain order."""
    names = [field.attname for field in AuditEvent._meta.concrete_fields if field.attname != "id"]
    return list(AuditEvent.objects.order_by("id").values_list(*names))


def _raw(sql: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("{table}", TABLE), params)


# --- Hashes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ctx",
    [
        RequestContext(),
        RequestContext(request_id="req-9", client_ip="10.1.2.3"),
        RequestContext(request_id="req-ß", client_ip="2001:db8::1"),
    ],
)
def test_the_hash_of_every_event_is_the_one_the_old_code_computes(owner: User, ctx: RequestContext) -> None:
    written = _write(owner, _awkward_specs(owner), ctx=ctx)
    stored = list(AuditEvent.objects.order_by("id"))
    assert len(stored) == len(written) == 7
    for event in [*written, *stored]:
        assert compute_hash(event) == _legacy_hash(event) == event.hash


def test_a_trail_written_by_the_old_code_still_verifies_and_the_new_code_extends_it(owner: User) -> None:
    _write(owner, _awkward_specs(owner), legacy=True, ctx=RequestContext(request_id="old", client_ip="10.0.0.1"))
    _write(owner, _awkward_specs(owner))
    _write(owner, _awkward_specs(owner)[:2], legacy=True)
    assert verify_chain() == (16, None)
    assert verify_chain(chunk_size=3) == (16, None)
    assert _legacy_verify_chain() == (16, None)


def test_audit_record_many_writes_what_the_old_per_event_build_wrote(owner: User, reviewer: User) -> None:
    specs = [*_awkward_specs(owner), EventSpec(action="t.default_owner", target=reviewer)]
    ctx = RequestContext(request_id="req-1", client_ip="192.0.2.4")
    with time_machine.travel(FIXED_TIME, tick=False):
        legacy = _write(reviewer, specs, legacy=True, ctx=ctx)
        legacy_rows = _rows()
        _raw("DELETE FROM {table}", [])
        fresh = _write(reviewer, specs, ctx=ctx)
    assert _rows() == legacy_rows
    for old, new in zip(legacy, fresh, strict=True):
        for field in AuditEvent._meta.concrete_fields:
            if field.attname != "id":
                assert getattr(new, field.attname) == getattr(old, field.attname), field.attname
        assert new.pk is not None and not new._state.adding


def test_listeners_receive_saved_events_with_their_users_loaded(owner: User, reviewer: User) -> None:
    received: list[Sequence[AuditEvent]] = []
    audit.register_listener(received.append)
    try:
        events = _write(
            reviewer, [EventSpec(action="t.one", target=owner, owner=owner), EventSpec(action="t.two", target=owner)]
        )
    finally:
        audit._LISTENERS.remove(received.append)
    assert [list(batch) for batch in received] == [events]
    assert [type(event) for event in events] == [AuditEvent, AuditEvent]
    assert [event.pk for event in events] == list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    with CaptureQueriesContext(connection) as queries:
        names = [(event.actor.username, event.owner.username) for event in events if event.actor and event.owner]
    assert names == [("reviewer", "owner"), ("reviewer", "reviewer")]
    assert len(queries) == 0


def test_audit_record_many_inserts_in_multi_row_statements_or_one_copy(owner: User) -> None:
    specs = [
        EventSpec(action="t.bulk", target_type="x", target_id=str(i), owner=owner, after={"i": i}) for i in range(250)
    ]
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        audit_record_many(actor=owner, events=specs, batch_size=100)
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    if connection.vendor == "postgresql":
        assert inserts == []  # one COPY, which the query log does not show
    else:
        per_statement = min(100, (connection.features.max_query_params or 65_535) // len(audit._INSERT_COLUMNS))
        assert len(inserts) == -(-250 // per_statement)
    assert AuditEvent.objects.count() == 250
    assert verify_chain() == (250, None)


def test_an_empty_batch_writes_nothing(owner: User) -> None:
    with transaction.atomic():
        assert audit_record_many(actor=owner, events=[]) == []
    assert AuditEvent.objects.count() == 0


# --- Breaks: the same event, the same words ---------------------------------------------------------


def _chain(owner: User, n: int = 9) -> list[AuditEvent]:
    events = []
    for index in range(n):
        with transaction.atomic():
            events.append(audit_record(actor=owner, action="t.did", target=owner, after={"i": index}))
    return events


@pytest.mark.parametrize("chunk_size", [2, 4, 20_000])
def test_an_altered_event_is_named_as_the_old_walk_named_it(owner: User, chunk_size: int) -> None:
    events = _chain(owner)
    _raw("UPDATE {table} SET reason = %s WHERE id = %s", ["edited", events[4].pk])
    checked, broken = verify_chain(chunk_size=chunk_size)
    assert (checked, broken) == _legacy_verify_chain()
    assert broken is not None and broken.event_id == events[4].pk and checked == 4
    assert broken.problem == "its content was altered after it was written"


def test_altered_json_is_detected(owner: User) -> None:
    events = _chain(owner, 3)
    _raw("UPDATE {table} SET after = %s WHERE id = %s", [json.dumps({"i": 99}), events[1].pk])
    result = verify_chain(chunk_size=2)
    assert result == _legacy_verify_chain()
    assert result[1] is not None and result[1].event_id == events[1].pk


@pytest.mark.parametrize("chunk_size", [2, 20_000])
def test_a_removed_event_is_named_at_the_next_one_as_before(owner: User, chunk_size: int) -> None:
    events = _chain(owner)
    _raw("DELETE FROM {table} WHERE id = %s", [events[3].pk])
    checked, broken = verify_chain(chunk_size=chunk_size)
    assert (checked, broken) == _legacy_verify_chain()
    assert broken is not None and broken.event_id == events[4].pk
    assert broken.problem == (
        f"does not follow the event before it (after #{events[2].pk}): an event was removed or inserted there"
    )


def test_a_removed_first_event_is_named_at_the_start_of_the_trail(owner: User) -> None:
    events = _chain(owner, 3)
    _raw("DELETE FROM {table} WHERE id = %s", [events[0].pk])
    result = verify_chain()
    assert result == _legacy_verify_chain()
    assert result[1] is not None and "at the start of the trail" in result[1].problem


def test_an_inserted_event_is_named_as_before(owner: User) -> None:
    events = _chain(owner, 4)
    forged = AuditEvent(
        actor=owner,
        actor_username="owner",
        actor_kind="human",
        action="forged",
        target_type="x",
        target_id="1",
        prev_hash=events[-1].hash,
        hash="f" * 64,
    )
    forged.save()
    result = verify_chain(chunk_size=3)
    assert result == _legacy_verify_chain()
    assert result[1] is not None and result[1].event_id == forged.pk


def test_the_walk_can_start_after_a_vouched_event_and_stop_at_a_head(owner: User) -> None:
    events = _chain(owner, 6)
    assert verify_chain(after_id=events[1].pk, after_hash=events[1].hash, upto_id=events[4].pk, chunk_size=2) == (
        3,
        None,
    )
    _, broken = verify_chain(after_id=events[1].pk, after_hash="0" * 64)
    assert broken is not None and broken.event_id == events[2].pk


@pytest.mark.django_db(transaction=True)
def test_a_walk_split_over_processes_finds_what_one_walk_finds(owner: User) -> None:
    """On PostgreSQL the ranges are walked by forked processes, each on its own connection (so
    the data must be committed); elsewhere it is one walk."""
    events = _chain(owner, 12)
    assert verify_chain_parallel(workers=3) == verify_chain() == (12, None)
    _raw("UPDATE {table} SET reason = %s WHERE id = %s", ["edited", events[8].pk])
    _raw("DELETE FROM {table} WHERE id = %s", [events[5].pk])
    removed = verify_chain_parallel(workers=3)
    assert removed == verify_chain() == _legacy_verify_chain()
    assert removed[1] is not None and removed[1].event_id == events[6].pk and removed[0] == 5
    _raw("DELETE FROM {table} WHERE id <= %s", [events[6].pk])
    headless = verify_chain_parallel(workers=2)
    assert headless == verify_chain() == _legacy_verify_chain()
    assert headless[1] is not None and headless[1].event_id == events[7].pk
    assert "at the start of the trail" in headless[1].problem


def test_the_verifiers_cache_keeps_only_short_json_texts() -> None:
    # Long before/after texts rarely repeat: caching them would let memory grow with the trail.
    hasher = audit._PostgresRowHasher()
    short = '{"status": "active"}'
    long = json.dumps({"note": "x" * (hasher.CACHED_TEXT_LIMIT + 1)})
    assert hasher._json_text(short) == '{"status":"active"}'
    assert hasher._json_text(long) == json.dumps(json.loads(long), sort_keys=True, separators=(",", ":"))
    assert list(hasher.canonical_json) == [short]
