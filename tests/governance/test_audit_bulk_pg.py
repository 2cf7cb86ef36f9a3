"""``audit_record_many`` at volume: ids follow the chain across calls and chunks, listeners and
callers get saved events equal to the stored rows, JSON payloads read back as before, and on
PostgreSQL every statement has the same parameters however many rows it writes.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Sequence
from typing import Any

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from governance import audit
from governance.audit import EventSpec, audit_record_many, verify_chain
from governance.context import RequestContext, bind
from governance.models import AuditEvent, AuditTrailIsAppendOnly, User
from governance.webhooks.models import WebhookDelivery, WebhookSubscription

pytestmark = pytest.mark.django_db

on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's insert path")


def _specs(owner: User, count: int, action: str = "grant.revoked") -> list[EventSpec]:
    return [
        EventSpec(
            action=action,
            target_type="inventory.grant",
            target_id=str(index),
            target_repr=f"Grant {index}",
            owner=owner,
            before={"status": "active"},
            after={"status": "revoked", "n": index, "tags": ["a", None, True]},
            reason="Not reviewed before the deadline",
        )
        for index in range(count)
    ]


def test_ids_rise_in_chain_order_across_calls_and_chunks(owner: User, reviewer: User) -> None:
    received: list[Sequence[AuditEvent]] = []
    audit.register_listener(received.append)
    try:
        with bind(RequestContext(request_id="req-7", client_ip="192.0.2.9")), transaction.atomic():
            first = audit_record_many(actor=reviewer, events=_specs(owner, 3))
            second = audit_record_many(actor=reviewer, events=_specs(owner, 250), batch_size=100)
    finally:
        audit._LISTENERS.remove(received.append)
    written = [*first, *second]
    ids = [event.pk for event in written]
    assert ids == sorted(set(ids))
    assert [list(batch) for batch in received] == [first, second]
    stored = list(AuditEvent.objects.order_by("id"))
    assert [event.pk for event in stored] == ids
    previous = audit.GENESIS_HASH
    for event, row in zip(written, stored, strict=True):
        assert event.prev_hash == previous
        previous = event.hash
        for field in AuditEvent._meta.concrete_fields:
            assert getattr(event, field.attname) == getattr(row, field.attname), field.attname
        assert not event._state.adding and event._state.db == row._state.db
    assert verify_chain() == (253, None)


def test_returned_events_carry_their_users_and_save_nothing_more(owner: User, reviewer: User) -> None:
    with transaction.atomic():
        events = audit_record_many(actor=reviewer, events=_specs(owner, 2))
    with CaptureQueriesContext(connection) as queries:
        names = [(event.actor.username, event.owner.username) for event in events if event.actor and event.owner]
    assert names == [("reviewer", "owner"), ("reviewer", "owner")]
    assert len(queries) == 0
    with pytest.raises(AuditTrailIsAppendOnly):  # saved, not new: it cannot be written again
        events[0].save()


@on_postgresql
def test_each_call_allocates_its_ids_once_and_copies_its_rows(owner: User) -> None:
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        audit_record_many(actor=owner, events=_specs(owner, 2_500), batch_size=1_000)
        audit_record_many(actor=owner, events=_specs(owner, 7), batch_size=1_000)
    # The rows go by COPY (which the query log does not show), never by INSERT.
    inserts = [query["sql"] for query in queries.captured_queries if query["sql"].startswith("INSERT")]
    allocations = [query["sql"] for query in queries.captured_queries if "nextval" in query["sql"]]
    assert inserts == []
    assert len(allocations) == 2
    assert AuditEvent.objects.count() == 2_507
    assert verify_chain() == (2_507, None)


class _Plain(str):
    """A str subclass: not plain, so it takes the general path."""


@pytest.mark.parametrize(
    "value",
    [
        {"status": "revoked", "n": 3, "ok": True, "none": None},
        {"nested": [1, [2, {"deep": "é 中文 😀 \u2028 \x07"}]], "empty": {}, "list": []},
        "just text",
        0,
        False,
        2**70,
        ["a", 1, None],
        {1: "int key", "b": 2},
        {"tuple": (1, 2), "decimal": decimal.Decimal("12.50")},
        {"sub": _Plain("x")},
        {"bool_key": {True: 1}},
    ],
)
def test_json_text_and_value_are_what_dumps_then_loads_gave(value: Any) -> None:
    text = json.dumps(value, cls=DjangoJSONEncoder)
    decoded, written = audit._to_json_text(value)
    assert written == text
    expected = json.loads(text)
    assert decoded == expected
    assert _types(decoded) == _types(expected)


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value).__name__


def test_a_plain_payload_is_copied_not_shared_with_the_caller() -> None:
    payload = {"status": "active", "tags": ["a"], "inner": {"k": 1}}
    decoded, _ = audit._to_json_text(payload)
    payload["status"] = "changed"
    payload["tags"].append("b")  # type: ignore[attr-defined]
    payload["inner"]["k"] = 2  # type: ignore[index]
    assert decoded == {"status": "active", "tags": ["a"], "inner": {"k": 1}}


def test_circular_and_very_deep_payloads_behave_as_before() -> None:
    circular: list[Any] = []
    circular.append(circular)
    with pytest.raises(ValueError, match="Circular reference"):
        audit._to_json_text(circular)
    deep: Any = "bottom"
    for _ in range(100):
        deep = [deep]
    text = json.dumps(deep)
    assert audit._to_json_text(deep) == (json.loads(text), text)


def test_webhook_deliveries_of_a_bulk_write_name_their_events(owner: User) -> None:
    WebhookSubscription.objects.create(
        name="all", target_url="https://receiver.example/hook", event_types=["grant.*"], secret_encrypted="x"
    )
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        events = audit_record_many(actor=owner, events=_specs(owner, 1_200))
    deliveries = list(WebhookDelivery.objects.order_by("audit_event_id").values_list("audit_event_id", "details"))
    assert [event_id for event_id, _ in deliveries] == [event.pk for event in events]
    assert deliveries[5][1]["after"] == {"status": "revoked", "n": 5, "tags": ["a", None, True]}
    inserts = [query["sql"] for query in queries.captured_queries if "webhookdelivery" in query["sql"].split("(")[0]]
    if connection.vendor == "postgresql":
        # A thousand rows per statement, as one array per column (Django's bulk insert on
        # PostgreSQL), not a parameter per value.
        assert len(inserts) == 2
        assert all("UNNEST(" in sql.upper() for sql in inserts)
    else:
        assert len(inserts) >= 2
