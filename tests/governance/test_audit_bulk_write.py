"""The audit trail's bulk write (COPY on PostgreSQL, multi-row inserts on SQLite): every hash it
writes is the hash of the row as stored, whatever the payload holds (floats as jsonb gives them
back, text with tabs, newlines and backslashes), and the table carries only the indexes a query
needs.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from governance import audit
from governance.audit import EventSpec, audit_record_many, compute_hash, to_json, verify_chain
from governance.context import RequestContext, bind
from governance.management.commands.verify_audit import MAX_DEFAULT_WORKERS, default_workers
from governance.models import AuditEvent, User

pytestmark = pytest.mark.django_db

FLOATS = {
    "one": 1.0,
    "pi": 3.14159,
    "big": 1e22,
    "wide": 1.2345678901234568e29,
    "small": 1e-7,
    "tiny": -1e-320,
    "negative_zero": -0.0,
    "huge": 1.5e300,
    "nested": [2.5e-5, {"x": 1e16, "y": 1234567890123456.8}],
}
AWKWARD_TEXT = 'tab\there\nnew line\r\\back\\slash \\N é 中文 😀 \u2028 \x07 "quoted"'


def _specs(owner: User, count: int) -> list[EventSpec]:
    return [
        EventSpec(
            action="grant.revoked",
            target_type="inventory.grant",
            target_id=str(index),
            target_repr=f"Grant {index}\t{AWKWARD_TEXT}",
            owner=owner,
            before={"status": "active", "note": AWKWARD_TEXT},
            after={"status": "revoked", "n": index, "ratio": index / 7, **FLOATS},
            reason=f"Not reviewed\n{AWKWARD_TEXT}",
        )
        for index in range(count)
    ]


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value).__name__


def test_every_hash_written_is_the_hash_of_the_stored_row(owner: User, reviewer: User) -> None:
    with bind(RequestContext(request_id="req\t1", client_ip="2001:db8::7")), transaction.atomic():
        written = audit_record_many(actor=reviewer, events=_specs(owner, 1_300), batch_size=500)
        written += audit_record_many(actor=reviewer, events=_specs(owner, 3))
    stored = list(AuditEvent.objects.order_by("id"))
    assert [event.pk for event in stored] == [event.pk for event in written]
    for event, row in zip(written, stored, strict=True):
        assert row.hash == event.hash == compute_hash(row)
        assert (row.before, row.after) == (event.before, event.after)
        assert _types(row.after) == _types(event.after)
        assert (row.target_repr, row.reason, row.request_id) == (event.target_repr, event.reason, "req\t1")
    assert stored[0].target_repr == f"Grant 0\t{AWKWARD_TEXT}"
    assert stored[0].before == {"status": "active", "note": AWKWARD_TEXT}
    assert verify_chain() == (1_303, None)
    assert verify_chain(chunk_size=97) == (1_303, None)
    assert audit.recompute_hash(stored[-1].pk) == stored[-1].hash


def test_floats_are_stored_and_hashed_as_jsonb_gives_them_back(owner: User) -> None:
    with transaction.atomic():
        (event,) = audit_record_many(
            actor=owner, events=[EventSpec(action="t.floats", target_type="t", target_id="1", after=FLOATS)]
        )
    stored = AuditEvent.objects.get(pk=event.pk)
    after = stored.after
    assert isinstance(after, dict) and after == event.after
    assert _types(after) == _types(event.after)
    assert after["big"] == 10**22 and type(after["big"]) is int
    assert after["wide"] == 123456789012345680000000000000
    assert after["small"] == 1e-7 and after["one"] == 1.0 and type(after["one"]) is float
    assert math.copysign(1.0, after["negative_zero"]) == 1.0
    assert after["nested"][1]["x"] == 10**16
    assert compute_hash(stored) == stored.hash
    assert verify_chain() == (1, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1e22, 10**22),
        (1.5e16, 15 * 10**15),
        (-0.0, 0.0),
        (1e-7, 1e-7),
        (1.0, 1.0),
        (100.0, 100.0),
        ([0.1, {"k": 2e20}], [0.1, {"k": 2 * 10**20}]),
    ],
)
def test_to_json_normalises_floats_as_jsonb_does(value: Any, expected: Any) -> None:
    normalised = to_json(value)
    assert normalised == expected
    assert _types(normalised) == _types(expected)
    # What is stored reads back as the same value: normalising again changes nothing.
    decoded, text = audit._to_json_text(normalised)
    assert audit._to_json_text(decoded) == (decoded, text)


@pytest.mark.parametrize("value", [float("nan"), {"limit": float("inf")}, [float("-inf")]])
def test_non_finite_floats_are_refused_before_anything_is_written(owner: User, value: Any) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"), transaction.atomic():
        audit_record_many(actor=owner, events=[EventSpec(action="t.bad", target_type="t", target_id="1", after=value)])
    assert not AuditEvent.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite does not enforce a column's length")
def test_a_write_the_database_refuses_raises_djangos_error_and_writes_nothing(owner: User) -> None:
    # COPY runs on the driver's cursor: its errors still come out as django.db errors.
    too_long = EventSpec(action="t.long", target_type="t", target_id="x" * 80)
    with pytest.raises(DatabaseError), transaction.atomic():
        audit_record_many(actor=owner, events=[too_long])
    assert not AuditEvent.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's indexes")
def test_the_trail_carries_only_the_indexes_a_query_needs() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'governance_auditevent'")
        definitions = sorted(row[0].split(" USING btree ")[1] for row in cursor.fetchall())
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'governance_auditevent'::regclass AND contype = 'f'"
        )
        foreign_keys = cursor.fetchone()[0]
    assert definitions == [
        "(action varchar_pattern_ops)",
        "(actor_id)",
        "(created_at)",
        "(id)",
        "(owner_id)",
        "(target_type, target_id, created_at, id)",
    ]
    assert foreign_keys == 0


def test_verify_audit_walks_in_several_processes_by_default_on_postgresql_only() -> None:
    if connection.vendor == "postgresql":
        assert 1 <= default_workers() <= MAX_DEFAULT_WORKERS
    else:
        assert default_workers() == 1


def test_a_parallel_walk_inside_a_transaction_stays_in_it_and_sees_its_writes(owner: User) -> None:
    with transaction.atomic():
        audit_record_many(actor=owner, events=_specs(owner, 30))
        assert audit.verify_chain_parallel(workers=3, chunk_size=7) == (30, None)
    call_command("verify_audit", "--workers", "2", verbosity=0)
    call_command("verify_audit", verbosity=0)
