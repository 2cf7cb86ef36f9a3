"""Evidence of the kernel's controls, on crafted data: the audit trail verified and anchored (how
long ago, against which checkpoint, held by which witnesses) and the webhooks delivered.

The trail is written through ``audit_record``, verified with ``verify_and_record`` and anchored
with ``checkpoint_sign``, as the hourly tasks do; time moves with time_machine."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection, transaction
from django.utils import timezone

from governance.anchoring import checkpoint_sign, verify_and_record
from governance.audit import audit_record
from governance.controls.kernel_controls import list_link, share
from governance.controls.registry import Figure, Status, Threshold, control, evaluate
from governance.models import AuditChainCheck, AuditEvent, User
from governance.webhooks import events as webhook_events
from governance.webhooks import services as webhook_services
from governance.webhooks.models import DeliveryStatus, WebhookDelivery

pytestmark = pytest.mark.django_db

AUDITORS = "auditors@example.com"


def rows(figure: Figure) -> list[dict[str, Any]]:
    """The records behind ``figure``, as the evidence pack reads them."""
    assert figure.records is not None
    return [dict(row) for row in figure.records()]


def figures(control_id: str, thresholds: dict[str, Threshold] | None = None) -> dict[str, Figure]:
    registered = control(control_id)
    assert registered is not None
    return {figure.key: figure for figure in evaluate(registered, thresholds or {}).figures}


@pytest.fixture
def key(settings: Any, tmp_path: Path) -> Ed25519PrivateKey:
    """A signing key from the environment and two witnesses: a JSON-lines file and an email."""
    signing = Ed25519PrivateKey.generate()
    raw = signing.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    settings.AUDIT_SIGNING_KEY = base64.b64encode(raw).decode()
    settings.AUDIT_WITNESS_FILE = str(tmp_path / "witness" / "audit-checkpoints.jsonl")
    settings.AUDIT_WITNESS_SYSLOG = ""
    settings.AUDIT_WITNESS_EMAIL = [AUDITORS]
    return signing


def write_events(user: User, count: int) -> list[AuditEvent]:
    written = []
    for number in range(count):
        with transaction.atomic():
            written.append(audit_record(actor=user, action="test.did", target=user, owner=user, after={"n": number}))
    return written


def break_chain(event: AuditEvent) -> None:
    """Edit an event in the database, as someone with write access would: its hash no longer holds."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {AuditEvent._meta.db_table} SET reason = %s WHERE id = %s", ["edited", event.pk])


# --- Audit trail ---------------------------------------------------------------------------------


def test_an_empty_trail_has_nothing_to_verify_or_anchor(db: Any) -> None:
    assert not AuditEvent.objects.exists()
    found = figures("audit-trail")
    assert {key: fig.status for key, fig in found.items()} == {
        "audit-trail.verified_hours": Status.NOT_APPLICABLE,
        "audit-trail.broken_verifications": Status.NOT_APPLICABLE,
        "audit-trail.checkpoint_hours": Status.NOT_APPLICABLE,
        "audit-trail.checkpoint_witnesses": Status.NOT_APPLICABLE,
    }
    assert "empty" in found["audit-trail.verified_hours"].detail


def test_a_trail_never_verified_nor_anchored_counts_the_hours_since_its_first_event(
    key: Ed25519PrivateKey, owner: User
) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        write_events(owner, 3)
    with time_machine.travel(start + timedelta(hours=5), tick=False):
        found = figures("audit-trail")
    first = AuditEvent.objects.order_by("id").first()
    assert first is not None
    expected = round((start + timedelta(hours=5) - first.created_at).total_seconds() / 3600, 1)
    assert found["audit-trail.verified_hours"].value == pytest.approx(expected, abs=0.1)
    assert found["audit-trail.verified_hours"].status == Status.PARTLY
    assert "never been verified" in found["audit-trail.verified_hours"].detail
    assert found["audit-trail.checkpoint_hours"].value == pytest.approx(expected, abs=0.1)
    assert "ever been signed" in found["audit-trail.checkpoint_hours"].detail
    assert found["audit-trail.broken_verifications"].status == Status.NOT_APPLICABLE
    assert found["audit-trail.checkpoint_witnesses"].status == Status.NOT_APPLICABLE


def test_a_trail_verified_and_anchored_this_hour_meets_every_figure(key: Ed25519PrivateKey, owner: User) -> None:
    write_events(owner, 4)
    checkpoint = checkpoint_sign()
    verify_and_record()
    found = figures("audit-trail")
    assert {fig.status for fig in found.values()} == {Status.MET}
    assert found["audit-trail.verified_hours"].value == 0
    check = AuditChainCheck.objects.get()
    assert f"{check.events_checked} events, held against checkpoint {checkpoint.sequence}" in (
        found["audit-trail.verified_hours"].detail
    )
    assert found["audit-trail.verified_hours"].detail.endswith(": intact.")
    assert found["audit-trail.broken_verifications"].value == 0
    assert found["audit-trail.checkpoint_hours"].value == 0
    assert f"Checkpoint {checkpoint.sequence} signed" in found["audit-trail.checkpoint_hours"].detail
    # The file and the auditors' mailbox hold it.
    assert found["audit-trail.checkpoint_witnesses"].value == 2
    assert "file" in found["audit-trail.checkpoint_witnesses"].detail
    assert AUDITORS in found["audit-trail.checkpoint_witnesses"].detail


def test_hours_since_verification_and_checkpoint_grow_until_the_worker_runs_again(
    key: Ed25519PrivateKey, owner: User
) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        write_events(owner, 2)
        checkpoint_sign()
        verify_and_record()
    with time_machine.travel(start + timedelta(hours=3), tick=False):
        found = figures("audit-trail")
        assert found["audit-trail.verified_hours"].value == 3
        assert found["audit-trail.verified_hours"].status == Status.PARTLY
        assert found["audit-trail.checkpoint_hours"].status == Status.PARTLY
        # An organisation that verifies every six hours is content with three.
        own = figures("audit-trail", {"audit-trail.verified_hours": Threshold(met=6)})
        assert own["audit-trail.verified_hours"].status == Status.MET
        assert own["audit-trail.verified_hours"].threshold_is_default is False
    with time_machine.travel(start + timedelta(hours=30), tick=False):
        found = figures("audit-trail")
        assert found["audit-trail.verified_hours"].status == Status.NOT_MET
        assert found["audit-trail.checkpoint_hours"].status == Status.NOT_MET


def test_a_verification_that_found_the_chain_broken_is_not_met(key: Ed25519PrivateKey, owner: User) -> None:
    written = write_events(owner, 4)
    verify_and_record()
    break_chain(written[1])
    verify_and_record()
    found = figures("audit-trail")
    assert found["audit-trail.broken_verifications"].value == 1
    assert found["audit-trail.broken_verifications"].status == Status.NOT_MET
    assert "1 of 2 verifications" in found["audit-trail.broken_verifications"].detail
    assert f"BROKEN at #{written[1].pk}" in found["audit-trail.verified_hours"].detail


def test_a_checkpoint_no_external_witness_holds_is_not_met(key: Ed25519PrivateKey, owner: User, settings: Any) -> None:
    settings.AUDIT_WITNESS_FILE = ""
    settings.AUDIT_WITNESS_EMAIL = []
    write_events(owner, 1)
    checkpoint_sign()
    found = figures("audit-trail")
    assert found["audit-trail.checkpoint_witnesses"].value == 0
    assert found["audit-trail.checkpoint_witnesses"].status == Status.NOT_MET
    assert "none configured" in found["audit-trail.checkpoint_witnesses"].detail


def test_a_witness_that_failed_does_not_count(
    key: Ed25519PrivateKey, owner: User, settings: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the witness folder should be")
    settings.AUDIT_WITNESS_FILE = str(blocker / "audit.jsonl")
    write_events(owner, 1)
    checkpoint_sign()
    found = figures("audit-trail")
    # The email is queued in the outbox; the file could not be written.
    assert found["audit-trail.checkpoint_witnesses"].value == 1
    assert "1 of 2 external witnesses" in found["audit-trail.checkpoint_witnesses"].detail
    assert "(failed)" in found["audit-trail.checkpoint_witnesses"].detail


def test_audit_records_are_the_window_s_verifications_and_checkpoints(key: Ed25519PrivateKey, owner: User) -> None:
    start = timezone.now()
    with time_machine.travel(start - timedelta(days=40), tick=False):
        write_events(owner, 1)
        old = checkpoint_sign()
        verify_and_record()
    with time_machine.travel(start, tick=False):
        write_events(owner, 2)
        recent = checkpoint_sign()
        verify_and_record()
        found = figures("audit-trail")
    recorded = rows(found["audit-trail.verified_hours"])
    newest = AuditChainCheck.objects.order_by("-checked_at").first()
    assert newest is not None
    assert [row["id"] for row in recorded] == [newest.pk]
    assert recorded[0]["intact"] is True
    anchored = rows(found["audit-trail.checkpoint_hours"])
    assert [row["sequence"] for row in anchored] == [recent.sequence]
    assert old.sequence not in [row["sequence"] for row in anchored]
    assert "file" in anchored[0]["witnesses"] and "email" in anchored[0]["witnesses"]


def test_audit_figures_link_to_the_audit_trail_an_auditor_reads(
    key: Ed25519PrivateKey, owner: User, auditor: User, web_as: Any
) -> None:
    write_events(owner, 2)
    checkpoint_sign()
    verify_and_record()
    found = figures("audit-trail")
    assert {fig.records_url for fig in found.values()} == {"/audit/"}
    page = web_as(auditor).get("/audit/")
    assert page.status_code == 200
    assert page.content.decode().count('data-action="test.did"') == 2


@pytest.mark.parametrize("rows", [1, 30])
def test_audit_trail_evidence_costs_four_queries_whatever_the_trail(
    key: Ed25519PrivateKey, owner: User, rows: int, django_assert_num_queries: Any
) -> None:
    write_events(owner, rows)
    for _ in range(rows):
        verify_and_record(chunk_size=500)
    checkpoint_sign()
    registered = control("audit-trail")
    assert registered is not None
    with django_assert_num_queries(4):
        registered.evidence()


# --- Webhooks ------------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Any]:
    from tests.webhooks.conftest import Receiver

    listening = Receiver()
    listening.start()
    yield listening
    listening.stop()


@pytest.fixture
def subscribed(iam_admin: User, receiver: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A subscription to ``grant.*`` events at the local receiver (allow-listed, hermetic DNS)."""
    from governance import outbound
    from tests.outbound_support import FakeDNS

    monkeypatch.setattr(outbound, "resolve", FakeDNS())
    settings.OUTBOUND_ALLOWED_HOSTS = [*settings.OUTBOUND_ALLOWED_HOSTS, f"127.0.0.1:{receiver.port}"]
    subscription, _secret = webhook_services.subscription_create(
        actor=iam_admin, name="ServiceNow", target_url=receiver.url, event_types=["grant.*"]
    )
    return subscription


def emitted(count: int) -> list[WebhookDelivery]:
    """``count`` events about as many objects (none holds back another), queued for delivery."""
    with transaction.atomic():
        for number in range(count):
            webhook_events.emit(event_type="grant.expiring", target_type="inventory.grant", target_id=str(number))
    return list(WebhookDelivery.objects.order_by("-id")[:count])


def test_without_subscription_or_delivery_webhooks_are_not_in_use(db: Any) -> None:
    found = figures("webhooks-ticketing")
    assert found["webhooks-ticketing.subscriptions"].value == 0
    assert found["webhooks-ticketing.subscriptions"].status == Status.NOT_MET
    assert found["webhooks-ticketing.delivered"].status == Status.NOT_APPLICABLE
    assert found["webhooks-ticketing.failed"].status == Status.NOT_APPLICABLE
    assert "No webhook delivery" in found["webhooks-ticketing.failed"].detail


def test_deliveries_delivered_failed_and_waiting_are_counted(subscribed: Any, receiver: Any) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        delivered = emitted(9)
        for delivery in delivered:
            assert webhook_services.delivery_send(delivery_id=delivery.pk) == DeliveryStatus.DELIVERED
        receiver.status = 500
        [failing] = emitted(1)
        assert webhook_services.delivery_send(delivery_id=failing.pk) == DeliveryStatus.PENDING
    with time_machine.travel(start + timedelta(days=1, hours=1), tick=False):
        assert webhook_services.delivery_send(delivery_id=failing.pk) == DeliveryStatus.FAILED
        emitted(2)  # queued, not tried yet
        found = figures("webhooks-ticketing")
        delivered_figure = found["webhooks-ticketing.delivered"]
        assert delivered_figure.value == share(9, 10) == 90.0
        assert delivered_figure.status == Status.NOT_MET
        assert "9 of 10" in delivered_figure.detail and "2 are still being tried" in delivered_figure.detail
        assert found["webhooks-ticketing.failed"].value == 1
        assert found["webhooks-ticketing.failed"].status == Status.PARTLY
        assert found["webhooks-ticketing.subscriptions"].value == 1
        assert found["webhooks-ticketing.subscriptions"].status == Status.MET
        # An organisation that accepts one delivery in ten lost meets it.
        own = figures("webhooks-ticketing", {"webhooks-ticketing.delivered": Threshold(met=90)})
        assert own["webhooks-ticketing.delivered"].status == Status.MET
        failed_rows = rows(found["webhooks-ticketing.failed"])
        assert [row["id"] for row in failed_rows] == [failing.pk]
        assert failed_rows[0]["last_error"] == "HTTP 500"
        all_rows = rows(delivered_figure)
        assert len(all_rows) == 12
        assert {row["status"] for row in all_rows} == {"delivered", "failed", "pending"}
        subscriptions = rows(found["webhooks-ticketing.subscriptions"])
        assert [(row["id"], row["event_types"]) for row in subscriptions] == [(subscribed.pk, "grant.*")]


def test_deliveries_older_than_the_window_are_left_out(subscribed: Any) -> None:
    start = timezone.now()
    with time_machine.travel(start - timedelta(days=31), tick=False):
        emitted(3)
    found = figures("webhooks-ticketing")
    assert found["webhooks-ticketing.delivered"].value is None
    assert rows(found["webhooks-ticketing.delivered"]) == []


def test_webhook_figures_link_to_the_subscriptions_page(subscribed: Any, auditor: User, web_as: Any) -> None:
    found = figures("webhooks-ticketing")
    assert {fig.records_url for fig in found.values()} == {list_link("webhooks:list")} == {"/webhooks/"}
    page = web_as(auditor).get("/webhooks/")
    assert page.status_code == 200 and subscribed.name in page.content.decode()


@pytest.mark.parametrize("count", [1, 40])
def test_webhook_evidence_costs_two_queries_whatever_the_outbox(
    subscribed: Any, count: int, django_assert_num_queries: Any
) -> None:
    emitted(count)
    registered = control("webhooks-ticketing")
    assert registered is not None
    with django_assert_num_queries(2):
        registered.evidence()


def test_a_share_never_rounds_towards_the_good_side() -> None:
    # Higher is better: cut, so 9,999 of 10,000 never meets a 100 % threshold.
    assert share(9_999, 10_000) == 99.9 and share(1, 3) == 33.3
    # Lower is better: rounded up, so 1 of 10,000 never reads 0 and meets a 0 % threshold.
    assert share(1, 10_000, better="lower") == 0.1 and share(1, 3, better="lower") == 33.4
    assert share(0, 10, better="lower") == 0.0 and share(10, 10, better="lower") == 100.0
    assert share(1, 0, better="lower") is None
