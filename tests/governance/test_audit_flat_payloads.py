"""A flat before/after (a dict of text, whole numbers, booleans, nulls and lists of these) is
encoded once: its canonical text is stored as it is. It must give exactly the hash, the stored
value and the event the general path gives, on every database, and anything else must take the
general path."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from django.db import transaction

from governance import audit
from governance.audit import EventSpec, audit_append, audit_prepare, audit_record_many, verify_chain
from governance.models import AuditEvent, User
from inventory.choices import GrantStatus

pytestmark = pytest.mark.django_db


class _Level(enum.IntEnum):
    HIGH = 3


class _Key(str):
    pass


FLAT = [
    {},
    {"status": GrantStatus.ACTIVE, "reviewer": 12, "reviewer_group": None},
    {"grants": [3, 1, 2], "flag": True, "off": False, "level": _Level.HIGH},
    {"name": "Zoë \u2192 naïve", "tab": "a\tb", "line": "x\ny", "slash": "back\\slash", "quote": '"q"'},
    {"big": 10**30, "negative": -7, "mixed": ["a", 1, None, True]},
    {"controls": "unit\x1fseparator, line\u2028separator, bell\x07"},
]
NOT_FLAT = [
    {"ratio": 0.5},  # a float: normalised as jsonb gives it back
    {"at": 1e22},
    {1: "a", 2: "b"},  # keys that JSON turns into text
    {_Key("sub"): "text key of a str subclass", "b": 1, "a": 2},
    {"nested": {"a": 1}},
    {"floats": [1.5]},
    {"pair": "\ud83d\ude00"},  # a surrogate pair as two code points: JSON joins it into one
    ["a", "list"],
    "text",
    7,
]


@pytest.mark.parametrize("value", FLAT + NOT_FLAT)
def test_each_payload_is_stored_and_hashed_as_the_general_path_does(value: Any) -> None:
    decoded, stored, canonical = audit._json_forms(value)
    general_decoded, _general_text = audit._to_json_text(value)
    assert canonical == audit._json(general_decoded)
    assert stored is not None and audit.json.loads(stored) == general_decoded
    if any(value is flat for flat in FLAT):
        assert decoded is audit._FROM_TEXT and stored == canonical
    else:
        assert decoded is not audit._FROM_TEXT


def test_flat_and_other_payloads_verify_and_read_back_as_written(make_user: Any) -> None:
    owner: User = make_user("flat-owner")
    specs = [
        EventSpec(action="t.flat", target_type="t", target_id=str(index), owner=owner, before=value, after=value)
        for index, value in enumerate(FLAT + NOT_FLAT)
    ]
    with transaction.atomic():
        written = audit_record_many(actor=owner, events=specs)
    assert verify_chain()[1] is None
    stored = {event.pk: event for event in AuditEvent.objects.filter(action="t.flat")}
    for event, spec in zip(written, specs, strict=True):
        expected = audit.to_json(spec.before)
        assert event.before == expected and event.after == expected
        assert stored[event.pk].before == expected and stored[event.pk].after == expected
        assert audit.compute_hash(stored[event.pk]) == stored[event.pk].hash == event.hash


def test_appended_events_become_instances_only_when_read(make_user: Any) -> None:
    owner: User = make_user("lazy-owner")
    batch = audit_prepare(
        actor=owner, events=[EventSpec(action="t.lazy", target_type="t", owner=owner, after={"a": 1})]
    )
    with transaction.atomic():
        appended = audit_append(batch)
        assert len(appended) == 1 and appended._events is None  # type: ignore[attr-defined]
        (event,) = appended
    assert event.after == {"a": 1} and event.pk == AuditEvent.objects.get(action="t.lazy").pk
    assert appended[0] is event
