"""Anchoring the audit trail: a signed checkpoint of the chain's head, kept by external
witnesses, shows a truncation or a rewrite that the hash chain alone cannot.

The attacks are played with raw SQL, as someone with write access to the database would:
delete the newest events, or edit one event and recompute every later hash so that the chain
is whole again.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone
from django_q import conf as q_conf
from django_q import scheduler as q_scheduler
from django_q.brokers import get_broker
from django_q.models import Schedule

from governance.anchoring import AuditTrailBroken, Statement, checkpoint_sign, key_id
from governance.audit import audit_record, compute_hash, verify_chain
from governance.models import AuditCheckpoint, AuditEvent, AuditTrailIsAppendOnly, OutboundEmail, User
from governance.roles import Role

pytestmark = pytest.mark.django_db

AUDITORS = "auditors@example.com"


def _seed(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return base64.b64encode(raw).decode()


@pytest.fixture
def key(settings: Any, tmp_path: Path) -> Ed25519PrivateKey:
    """The deployment's signing key (from the environment) and its witnesses: a JSON-lines file
    and the auditors' mailbox."""
    signing = Ed25519PrivateKey.generate()
    settings.AUDIT_SIGNING_KEY = _seed(signing)
    settings.AUDIT_WITNESS_FILE = str(tmp_path / "witness" / "audit-checkpoints.jsonl")
    settings.AUDIT_WITNESS_EMAIL = [AUDITORS]
    return signing


def _write_events(user: User, n: int) -> list[AuditEvent]:
    events = []
    for i in range(n):
        with transaction.atomic():
            events.append(audit_record(actor=user, action="test.did", target=user, owner=user, after={"i": i}))
    return events


def _verify() -> str:
    out = StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def _rewrite(event_id: int, reason: str) -> None:
    """Edit one event and recompute its hash and every later one: the chain is whole again."""
    events = list(AuditEvent.objects.order_by("id"))
    prev = None
    for event in events:
        if event.pk == event_id:
            event.reason = reason
        if event.pk >= event_id:
            assert prev is not None
            event.prev_hash = prev.hash
            event.hash = compute_hash(event)
            with connection.cursor() as cur:
                cur.execute(
                    f"UPDATE {AuditEvent._meta.db_table} SET reason = %s, prev_hash = %s, hash = %s WHERE id = %s",
                    [event.reason, event.prev_hash, event.hash, event.pk],
                )
        prev = event


def test_checkpoint_signs_count_newest_id_head_hash_and_time(key: Ed25519PrivateKey, owner: User) -> None:
    events = _write_events(owner, 5)
    checkpoint = checkpoint_sign()
    assert (checkpoint.sequence, checkpoint.event_count) == (1, 5)
    assert (checkpoint.last_event_id, checkpoint.head_hash) == (events[-1].pk, events[-1].hash)
    assert checkpoint.key_id == key_id(key.public_key())
    statement = Statement.of(checkpoint)
    # The signature holds with the public key alone (raises InvalidSignature otherwise).
    key.public_key().verify(base64.b64decode(checkpoint.signature), statement.message())
    assert json.loads(statement.message())["signed_at"] == checkpoint.signed_at.isoformat(timespec="microseconds")
    assert "holds signed checkpoint 1" in _verify()


def test_deleting_the_newest_events_is_reported_as_a_truncation(key: Ed25519PrivateKey, owner: User) -> None:
    events = _write_events(owner, 5)
    checkpoint_sign()
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {AuditEvent._meta.db_table} WHERE id >= %s", [events[3].pk])
    _checked, broken = verify_chain()
    assert broken is None  # the hash chain alone cannot see it
    with pytest.raises(CommandError, match=f"the trail ends at #{events[2].pk} but checkpoint 1 saw #{events[4].pk}"):
        _verify()


def test_editing_an_event_and_recomputing_every_later_hash_is_reported_as_a_rewrite(
    key: Ed25519PrivateKey, owner: User
) -> None:
    events = _write_events(owner, 5)
    checkpoint_sign()
    _rewrite(events[1].pk, "nothing to see here")
    _checked, broken = verify_chain()
    assert broken is None  # the chain is whole again
    with pytest.raises(CommandError, match=f"the head hash differs at #{events[-1].pk}: checkpoint 1 signed"):
        _verify()


def test_a_checkpoint_altered_to_match_a_rewrite_fails_its_signature(key: Ed25519PrivateKey, owner: User) -> None:
    events = _write_events(owner, 3)
    checkpoint = checkpoint_sign()
    _rewrite(events[0].pk + 1, "rewritten")
    with connection.cursor() as cur:
        new_head = AuditEvent.objects.get(pk=events[-1].pk).hash
        cur.execute(
            f"UPDATE {AuditCheckpoint._meta.db_table} SET head_hash = %s WHERE id = %s", [new_head, checkpoint.pk]
        )
    with pytest.raises(CommandError, match="checkpoint 1's signature does not verify .* forged or altered"):
        _verify()


def test_a_checkpoint_signed_with_another_key_is_refused(key: Ed25519PrivateKey, owner: User) -> None:
    """An attacker without the key signs his own checkpoint over his rewrite."""
    events = _write_events(owner, 3)
    checkpoint_sign()
    _rewrite(events[1].pk, "rewritten")
    forged_key = Ed25519PrivateKey.generate()
    head = AuditEvent.objects.get(pk=events[-1].pk)
    forged = Statement(
        sequence=2,
        signed_at=timezone.now().isoformat(timespec="microseconds"),
        event_count=3,
        last_event_id=head.pk,
        head_hash=head.hash,
        key_id=key_id(forged_key.public_key()),
    ).signed_with(forged_key)
    AuditCheckpoint.objects.create(
        sequence=2,
        signed_at=timezone.now(),
        event_count=3,
        last_event_id=head.pk,
        head_hash=head.hash,
        key_id=forged.key_id,
        signature=forged.signature,
    )
    with pytest.raises(CommandError, match=f"signed by key {forged.key_id}, which is not configured"):
        _verify()


def test_witnesses_receive_the_signed_checkpoint(
    key: Ed25519PrivateKey, owner: User, make_user: Any, settings: Any
) -> None:
    from governance.webhooks.models import WebhookDelivery
    from governance.webhooks.services import subscription_create

    admin = make_user("witness-admin", Role.IAM_ADMIN)
    # A witness the deployment runs itself, allowed through the outbound policy like any local
    # receiver (no delivery is made here: that is the webhooks' own business).
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1:8931"]
    subscription_create(
        actor=admin, name="Audit witness", target_url="http://127.0.0.1:8931/witness", event_types=["audit.checkpoint"]
    )
    _write_events(owner, 2)

    checkpoint = checkpoint_sign()

    statement = Statement.of(checkpoint)
    lines = Path(settings.AUDIT_WITNESS_FILE).read_text().splitlines()
    assert [json.loads(line) for line in lines] == [statement.as_json()]
    email = OutboundEmail.objects.get(to_address=AUDITORS)
    assert email.recipient is None and "Audit checkpoint 1" in email.subject
    assert statement.line() in email.body_text
    delivery = WebhookDelivery.objects.get(event_type="audit.checkpoint")
    assert delivery.target_id == str(checkpoint.pk)
    assert delivery.details["signature"] == checkpoint.signature
    assert delivery.details["head_hash"] == checkpoint.head_hash
    assert [(w["kind"], w["status"]) for w in checkpoint.witnesses] == [
        ("file", "written"),
        ("email", "queued"),
        ("webhook", "queued"),
    ]


def test_syslog_witness_receives_the_line(key: Ed25519PrivateKey, owner: User, settings: Any) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(10)  # a guard against hanging, not a timing assertion
        settings.AUDIT_WITNESS_SYSLOG = f"127.0.0.1:{receiver.getsockname()[1]}"
        _write_events(owner, 1)
        checkpoint = checkpoint_sign()
        datagram = receiver.recv(65536).decode()
    prefix = "<85>governance-audit: "  # facility authpriv, severity notice
    assert datagram.startswith(prefix)
    assert json.loads(datagram[len(prefix) :]) == Statement.of(checkpoint).as_json()
    assert ("syslog", "written") in [(w["kind"], w["status"]) for w in checkpoint.witnesses]


def test_a_witness_that_cannot_be_written_is_recorded_as_failed(
    key: Ed25519PrivateKey, owner: User, settings: Any, tmp_path: Path
) -> None:
    settings.AUDIT_WITNESS_FILE = str(tmp_path)  # a directory: cannot be opened for appending
    checkpoint = checkpoint_sign()
    [file_witness] = [w for w in checkpoint.witnesses if w["kind"] == "file"]
    assert file_witness["status"] == "failed" and "IsADirectoryError" in file_witness["detail"]


def test_a_checkpoint_deleted_from_the_database_is_still_held_by_the_witness_file(
    key: Ed25519PrivateKey, owner: User
) -> None:
    events = _write_events(owner, 2)
    checkpoint_sign()
    events += _write_events(owner, 2)
    second = checkpoint_sign()
    # The attacker removes the newest events and the checkpoint that saw them.
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {AuditEvent._meta.db_table} WHERE id >= %s", [events[2].pk])
        cur.execute(f"DELETE FROM {AuditCheckpoint._meta.db_table} WHERE id = %s", [second.pk])
    with pytest.raises(CommandError, match="checkpoint 2 is in witness file .* but not in the database"):
        _verify()


def test_no_checkpoint_is_signed_over_a_rewritten_trail(key: Ed25519PrivateKey, owner: User) -> None:
    events = _write_events(owner, 4)
    checkpoint_sign()
    _rewrite(events[2].pk, "rewritten")
    with pytest.raises(AuditTrailBroken, match=f"the head hash differs at #{events[-1].pk}"):
        checkpoint_sign()
    with pytest.raises(CommandError, match="Refusing to sign a checkpoint"):
        call_command("audit_checkpoint", stdout=StringIO())
    assert AuditCheckpoint.objects.count() == 1


def test_no_checkpoint_is_signed_over_events_altered_since_the_last_one(key: Ed25519PrivateKey, owner: User) -> None:
    _write_events(owner, 2)
    checkpoint_sign()
    later = _write_events(owner, 2)
    with connection.cursor() as cur:
        cur.execute(f"UPDATE {AuditEvent._meta.db_table} SET reason = 'edited' WHERE id = %s", [later[0].pk])
    with pytest.raises(AuditTrailBroken, match=f"#{later[0].pk}: its content was altered"):
        checkpoint_sign()


def test_production_refuses_to_sign_without_a_key_and_says_so(settings: Any, owner: User) -> None:
    settings.PRODUCTION = True
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = ""
    with pytest.raises(CommandError, match="Refusing to sign an audit checkpoint: set AUDIT_SIGNING_KEY"):
        call_command("audit_checkpoint", stdout=StringIO())
    assert not AuditCheckpoint.objects.exists()


def test_development_generates_its_key_into_var_on_first_use(settings: Any, tmp_path: Path, owner: User) -> None:
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = ""
    settings.AUDIT_DEV_SIGNING_KEY_FILE = tmp_path / "var" / "audit-signing-key.pem"
    first = checkpoint_sign()
    second = checkpoint_sign()
    path = Path(settings.AUDIT_DEV_SIGNING_KEY_FILE)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert first.key_id == second.key_id  # generated once, then reused
    assert "holds signed checkpoint 2" in _verify()


def test_the_key_can_come_from_a_file(settings: Any, tmp_path: Path, owner: User) -> None:
    signing = Ed25519PrivateKey.generate()
    path = tmp_path / "audit.pem"
    path.write_bytes(
        signing.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = str(path)
    assert checkpoint_sign().key_id == key_id(signing.public_key())


def test_an_auditor_verifies_with_the_public_key_alone(key: Ed25519PrivateKey, owner: User, settings: Any) -> None:
    _write_events(owner, 2)
    checkpoint_sign()
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_VERIFY_KEYS = [base64.b64encode(public).decode()]
    assert "holds signed checkpoint 1" in _verify()


def test_checkpoints_cannot_be_changed_or_deleted_through_the_orm(key: Ed25519PrivateKey, owner: User) -> None:
    checkpoint = checkpoint_sign()
    checkpoint.head_hash = "0" * 64
    with pytest.raises(AuditTrailIsAppendOnly):
        checkpoint.save()
    with pytest.raises(AuditTrailIsAppendOnly):
        checkpoint.delete()
    with pytest.raises(AuditTrailIsAppendOnly):
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(head_hash="x")
    with pytest.raises(AuditTrailIsAppendOnly):
        AuditCheckpoint.objects.all().delete()


def test_the_worker_signs_a_checkpoint_every_hour(
    key: Ed25519PrivateKey, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedule = Schedule.objects.get(name="audit-checkpoint")
    assert (schedule.func, schedule.schedule_type, schedule.cron) == (
        "governance.tasks.audit_checkpoint",
        Schedule.CRON,
        "7 * * * *",
    )
    _write_events(owner, 2)
    now = timezone.now()
    # Only this schedule is due for the pass.
    Schedule.objects.exclude(pk=schedule.pk).update(next_run=now + timedelta(days=1))
    Schedule.objects.filter(pk=schedule.pk).update(next_run=now - timedelta(minutes=1))
    monkeypatch.setattr(q_conf.Conf, "SYNC", True)
    monkeypatch.setattr(q_scheduler, "close_old_django_connections", lambda: None)
    q_scheduler.scheduler(broker=get_broker())
    checkpoint = AuditCheckpoint.objects.get()
    assert checkpoint.event_count == 2


def test_auditor_home_page_shows_the_last_checkpoint_and_its_witnesses(
    key: Ed25519PrivateKey, people: None, client: Any
) -> None:
    checkpoint = checkpoint_sign()
    call_command("verify_audit", stdout=StringIO())
    client.force_login(User.objects.get(username="audrey"))
    html = client.get("/").content.decode()
    assert f"Last signed checkpoint: <strong>{checkpoint.sequence}</strong>" in html
    assert f"holding signed checkpoint {checkpoint.sequence}" in html
    assert AUDITORS in html and "audit-checkpoints.jsonl" in html
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        assert "is the worker running?" in client.get("/").content.decode()


def test_auditor_home_page_warns_when_no_checkpoint_has_a_witness(
    key: Ed25519PrivateKey, people: None, client: Any, settings: Any
) -> None:
    settings.AUDIT_WITNESS_FILE = ""
    settings.AUDIT_WITNESS_EMAIL = []
    checkpoint_sign()
    client.force_login(User.objects.get(username="audrey"))
    assert "No external witness" in client.get("/").content.decode()
