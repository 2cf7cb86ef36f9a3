from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from governance.actors import Actor
from governance.audit import audit_record, verify_chain
from governance.context import RequestContext, bind
from governance.models import ActorKind, AuditEvent, AuditTrailIsAppendOnly

pytestmark = pytest.mark.django_db


def _write_events(user, n=3):
    events = []
    for i in range(n):
        with transaction.atomic():
            events.append(audit_record(actor=user, action="test.did", target=user, owner=user, after={"i": i}))
    return events


def test_event_carries_actor_owner_request_and_client(owner, reviewer):
    with bind(RequestContext(request_id="req-123", client_ip="10.1.2.3")), transaction.atomic():
        event = audit_record(
            actor=reviewer,
            action="thing.changed",
            target=owner,
            owner=owner,
            before={"a": 1},
            after={"a": 2},
            reason="why",
        )
    event.refresh_from_db()
    assert (event.actor_username, event.actor_kind, event.owner_username) == ("reviewer", ActorKind.HUMAN, "owner")
    assert (event.request_id, event.client_ip, event.reason) == ("req-123", "10.1.2.3", "why")
    assert event.before == {"a": 1} and event.after == {"a": 2}
    assert event.target_type == "governance.user" and event.target_id == str(owner.pk)


def test_system_actor_records_the_accountable_owner(owner):
    with transaction.atomic():
        event = audit_record(actor=Actor.system(on_behalf_of=owner), action="sweep.ran", target=owner)
    assert event.actor_kind == ActorKind.SYSTEM and event.actor_username == "system"
    assert event.owner_username == "owner"


def test_service_account_is_recorded_as_integration(make_user):
    bot = make_user("servicenow", is_service_account=True)
    with transaction.atomic():
        event = audit_record(actor=bot, action="x.y", target=bot)
    assert event.actor_kind == ActorKind.INTEGRATION


@pytest.mark.django_db(transaction=True)
def test_audit_record_requires_the_callers_transaction(make_user):
    user = make_user("someone")
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(actor=user, action="x.y", target=user)


def test_chain_verifies_when_intact(owner):
    _write_events(owner, 5)
    checked, broken = verify_chain()
    assert broken is None and checked == 5
    call_command("verify_audit")


def test_tampering_with_one_row_is_detected_and_named(owner):
    events = _write_events(owner, 4)
    target = events[2]
    with connection.cursor() as cur:
        cur.execute(f"UPDATE {AuditEvent._meta.db_table} SET reason = %s WHERE id = %s", ["edited", target.pk])
    with pytest.raises(CommandError, match=f"#{target.pk}: its content was altered"):
        call_command("verify_audit")


def test_removed_row_is_detected_at_the_next_event(owner):
    events = _write_events(owner, 4)
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {AuditEvent._meta.db_table} WHERE id = %s", [events[1].pk])
    _, broken = verify_chain()
    assert broken is not None and broken.event_id == events[2].pk
    assert "removed or inserted" in broken.problem


def test_inserted_row_is_detected(owner):
    events = _write_events(owner, 2)
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
    _, broken = verify_chain()
    assert broken is not None and broken.event_id == forged.pk


def test_events_cannot_be_changed_or_deleted_through_the_orm(owner):
    event = _write_events(owner, 1)[0]
    event.reason = "rewritten"
    with pytest.raises(AuditTrailIsAppendOnly):
        event.save()
    with pytest.raises(AuditTrailIsAppendOnly):
        event.delete()
    with pytest.raises(AuditTrailIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(reason="x")
    with pytest.raises(AuditTrailIsAppendOnly):
        AuditEvent.objects.all().delete()
