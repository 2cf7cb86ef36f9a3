"""``verify_audit --since-checkpoint``: only the events after the newest signed checkpoint are
walked, from a start point that is trusted only while the checkpoint's signature holds and its
head event is still in place, unaltered.

Attacks are played with raw SQL, as someone with write access to the database would.
"""

from __future__ import annotations

import base64
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from governance.anchoring import checkpoint_sign, verify_since_checkpoint
from governance.audit import audit_record
from governance.models import AuditChainCheck, AuditCheckpoint, AuditEvent, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(settings: Any, tmp_path: Path) -> Ed25519PrivateKey:
    """The deployment's signing key and a witness file."""
    signing = Ed25519PrivateKey.generate()
    raw = signing.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    settings.AUDIT_SIGNING_KEY = base64.b64encode(raw).decode()
    settings.AUDIT_WITNESS_FILE = str(tmp_path / "witness" / "audit-checkpoints.jsonl")
    settings.AUDIT_WITNESS_EMAIL = []
    return signing


def _write_events(user: User, n: int) -> list[AuditEvent]:
    events = []
    for index in range(n):
        with transaction.atomic():
            events.append(audit_record(actor=user, action="test.did", target=user, owner=user, after={"i": index}))
    return events


def _verify(*args: str) -> str:
    out = StringIO()
    call_command("verify_audit", *args, stdout=out)
    return out.getvalue()


def _raw(sql: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql.format(events=AuditEvent._meta.db_table, checkpoints=AuditCheckpoint._meta.db_table), params)


def test_only_the_events_after_the_checkpoint_are_walked(key: Ed25519PrivateKey, owner: User) -> None:
    events = _write_events(owner, 5)
    checkpoint_sign()
    _write_events(owner, 3)
    verdict = verify_since_checkpoint()
    assert (verdict.intact, verdict.checked, verdict.since_checkpoint) == (True, 3, True)
    output = _verify("--since-checkpoint")
    assert "Audit trail intact since signed checkpoint 1 (from the database" in output
    assert f"5 events up to #{events[-1].pk}): 3 events verified after it." in output
    assert "Audit trail intact: 8 events verified." in _verify()


def test_an_edit_before_the_checkpoint_head_is_left_to_the_full_walk(key: Ed25519PrivateKey, owner: User) -> None:
    events = _write_events(owner, 4)
    checkpoint_sign()
    _write_events(owner, 2)
    _raw("UPDATE {events} SET reason = %s WHERE id = %s", ["edited", events[1].pk])
    assert "2 events verified after it" in _verify("--since-checkpoint")
    with pytest.raises(CommandError, match=f"#{events[1].pk}: its content was altered"):
        _verify()


def test_an_edit_after_the_checkpoint_is_named(key: Ed25519PrivateKey, owner: User) -> None:
    _write_events(owner, 3)
    checkpoint_sign()
    later = _write_events(owner, 3)
    _raw("UPDATE {events} SET reason = %s WHERE id = %s", ["edited", later[1].pk])
    with pytest.raises(
        CommandError, match=rf"broken at audit event #{later[1].pk}: its content was altered .*\(1 events"
    ):
        _verify("--since-checkpoint")
    check = AuditChainCheck.objects.get()
    assert (check.intact, check.broken_event_id) == (False, later[1].pk)


def test_a_removed_event_after_the_checkpoint_is_named(key: Ed25519PrivateKey, owner: User) -> None:
    events = _write_events(owner, 3)
    checkpoint_sign()
    later = _write_events(owner, 3)
    _raw("DELETE FROM {events} WHERE id = %s", [later[0].pk])
    with pytest.raises(
        CommandError, match=rf"#{later[1].pk}: does not follow the event before it \(after #{events[-1].pk}\)"
    ):
        _verify("--since-checkpoint")


def test_a_tampered_checkpoint_is_refused_as_a_start_point(key: Ed25519PrivateKey, owner: User) -> None:
    events = _write_events(owner, 4)
    checkpoint = checkpoint_sign()
    _write_events(owner, 2)
    # Move the start point back, past an event about to be edited: the signature no longer holds.
    _raw(
        "UPDATE {checkpoints} SET last_event_id = %s, head_hash = %s WHERE id = %s",
        [events[0].pk, events[0].hash, checkpoint.pk],
    )
    with pytest.raises(CommandError, match="checkpoint 1's signature does not verify .* forged or altered"):
        _verify("--since-checkpoint")
    assert AuditChainCheck.objects.get().intact is False


def test_a_checkpoint_signed_by_an_unknown_key_is_refused(key: Ed25519PrivateKey, owner: User, settings: Any) -> None:
    _write_events(owner, 2)
    checkpoint_sign()
    other = Ed25519PrivateKey.generate()
    raw = other.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    settings.AUDIT_SIGNING_KEY = base64.b64encode(raw).decode()
    with pytest.raises(CommandError, match="which is not configured"):
        _verify("--since-checkpoint")


def test_the_head_event_altered_under_its_signed_hash_is_named(key: Ed25519PrivateKey, owner: User) -> None:
    events = _write_events(owner, 3)
    checkpoint_sign()
    _write_events(owner, 1)
    _raw("UPDATE {events} SET reason = %s WHERE id = %s", ["edited", events[-1].pk])
    with pytest.raises(
        CommandError, match=f"the content of #{events[-1].pk}, the newest event checkpoint 1 saw, was altered"
    ):
        _verify("--since-checkpoint")


def test_a_truncation_through_the_head_is_named(key: Ed25519PrivateKey, owner: User) -> None:
    events = _write_events(owner, 4)
    checkpoint_sign()
    _raw("DELETE FROM {events} WHERE id >= %s", [events[2].pk])
    with pytest.raises(CommandError, match=f"the trail ends at #{events[1].pk} but checkpoint 1 saw #{events[3].pk}"):
        _verify("--since-checkpoint")


def test_without_a_checkpoint_the_whole_trail_is_walked(owner: User, settings: Any) -> None:
    settings.AUDIT_WITNESS_FILE = ""
    _write_events(owner, 3)
    output = _verify("--since-checkpoint")
    assert "Audit trail intact: 3 events verified." in output
    assert "No signed checkpoint yet" in output
    assert AuditChainCheck.objects.get().events_checked == 3


def test_an_intact_incremental_check_leaves_the_full_walks_record_alone(key: Ed25519PrivateKey, owner: User) -> None:
    _write_events(owner, 3)
    checkpoint_sign()
    _verify()
    _write_events(owner, 1)
    _verify("--since-checkpoint")
    assert list(AuditChainCheck.objects.values_list("events_checked", "intact")) == [(3, True)]
