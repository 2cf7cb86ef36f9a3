"""The email outbox against a real SMTP server (aiosmtpd on 127.0.0.1, a free port): retries with
backoff, exactly-once delivery, failure after the last attempt, idempotent enqueue, and the claim
that keeps two workers from sending the same email."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.mail.backends.smtp import EmailBackend
from django.db import transaction
from django.test import override_settings

from governance import services, tasks
from governance.exceptions import Conflict
from governance.models import AuditEvent, EmailStatus, OutboundEmail, User
from tests.mail_support import Mailbox, free_port

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def enqueue(user: User, key: str) -> OutboundEmail:
    with transaction.atomic():
        queued = services.email_enqueue(
            key=key,
            recipient=user,
            subject=f"Review waiting for {user.username}",
            template="governance_notice",
            context={"message": "A review waits for you.", "path": "/"},
        )
    assert queued is not None
    return queued


def reload(email: OutboundEmail) -> OutboundEmail:
    return OutboundEmail.objects.get(pk=email.pk)


def test_refused_email_is_retried_with_backoff_and_arrives_exactly_once(
    smtp: tuple[Mailbox, int], owner: User, reviewer: User
) -> None:
    mailbox, _port = smtp
    mailbox.refuse = 3
    with time_machine.travel(T0, tick=False) as clock:
        first, second = enqueue(owner, "n-1"), enqueue(reviewer, "n-2")
        assert first.body_text.startswith("Hello owner") and "http://127.0.0.1:8000/" in first.body_text

        assert tasks.outbox_flush() == 0  # both refused
        first, second = reload(first), reload(second)
        for e in (first, second):
            assert (e.status, e.attempts) == (EmailStatus.PENDING, 1)
            assert "451" in e.last_error and "try later" in e.last_error
            assert e.next_attempt_at == T0 + timedelta(seconds=60)

        clock.move_to(T0 + timedelta(seconds=59))
        assert tasks.outbox_flush() == 0
        assert mailbox.refused == 2  # not yet due: nothing was tried

        clock.move_to(T0 + timedelta(seconds=61))
        assert tasks.outbox_flush() == 1  # the first is refused a third time, the second arrives
        first, second = reload(first), reload(second)
        assert (first.status, first.attempts) == (EmailStatus.PENDING, 2)
        assert first.next_attempt_at == T0 + timedelta(seconds=61 + 120)  # doubled
        assert (second.status, second.attempts, second.last_error) == (EmailStatus.SENT, 2, "")

        clock.move_to(T0 + timedelta(seconds=61 + 121))
        assert tasks.outbox_flush() == 1
        assert tasks.outbox_flush() == 0
        assert tasks.outbox_deliver(first.pk) == EmailStatus.SENT  # a late duplicate task sends nothing
    first = reload(first)
    assert (first.status, first.attempts) == (EmailStatus.SENT, 3)
    assert sorted(mailbox.recipients()) == ["owner@example.com", "reviewer@example.com"]
    assert len(set(mailbox.message_ids())) == len(mailbox.received) == 2
    assert mailbox.received[0]["Subject"].startswith("Review waiting for")


@override_settings(OUTBOX_MAX_ATTEMPTS=3)
def test_email_is_marked_failed_after_the_last_attempt(smtp: tuple[Mailbox, int], owner: User) -> None:
    with override_settings(EMAIL_PORT=free_port()):  # nobody listens there: connection refused
        with time_machine.travel(T0, tick=False) as clock:
            queued = enqueue(owner, "n-fail")
            for attempt in range(1, 4):
                assert tasks.outbox_deliver(queued.pk) in (EmailStatus.PENDING, EmailStatus.FAILED)
                queued = reload(queued)
                assert queued.attempts == attempt
                clock.move_to(queued.next_attempt_at + timedelta(seconds=1))
            assert queued.status == EmailStatus.FAILED
            assert "Connection" in queued.last_error
            assert tasks.outbox_flush() == 0
            assert reload(queued).attempts == 3  # a failed email is not tried again by itself


def test_enqueueing_the_same_key_twice_stores_one_row(owner: User) -> None:
    first = enqueue(owner, "campaign-7-reminder-owner")
    again = enqueue(owner, "campaign-7-reminder-owner")
    assert first.pk == again.pk
    assert OutboundEmail.objects.filter(key="campaign-7-reminder-owner").count() == 1


def test_user_without_address_gets_nothing_queued(make_user: Callable[..., User]) -> None:
    nobody = make_user("nomail")
    User.objects.filter(pk=nobody.pk).update(email="")
    nobody.refresh_from_db()
    with transaction.atomic():
        assert (
            services.email_enqueue(key="k", recipient=nobody, subject="s", template="governance_notice", context={})
            is None
        )
    assert not OutboundEmail.objects.exists()


def test_two_deliveries_racing_on_the_same_email_send_it_once(
    smtp: tuple[Mailbox, int], owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox, _port = smtp
    queued = enqueue(owner, "n-race")
    original = EmailBackend.send_messages
    rival_results: list[str] = []

    def send_while_a_rival_worker_tries(self: EmailBackend, messages: Any) -> int:
        # A second worker picks up the same email while the first is mid-send.
        rival_results.append(services.email_deliver(email_id=queued.pk))
        return original(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", send_while_a_rival_worker_tries)
    assert services.email_deliver(email_id=queued.pk) == EmailStatus.SENT
    assert rival_results == [EmailStatus.SENDING]
    assert len(mailbox.received) == 1


def test_a_claim_left_by_a_killed_worker_is_taken_over_after_ten_minutes(
    smtp: tuple[Mailbox, int], owner: User
) -> None:
    mailbox, _port = smtp
    with time_machine.travel(T0, tick=False) as clock:
        queued = enqueue(owner, "n-stuck")
        OutboundEmail.objects.filter(pk=queued.pk).update(status=EmailStatus.SENDING, claimed_at=T0)
        assert tasks.outbox_flush() == 0 and not mailbox.received
        clock.move_to(T0 + timedelta(minutes=11))
        assert tasks.outbox_flush() == 1
    assert len(mailbox.received) == 1


def test_iam_admin_can_retry_a_failed_email_now_and_it_is_audited(
    smtp: tuple[Mailbox, int], owner: User, iam_admin: User
) -> None:
    mailbox, _port = smtp
    queued = enqueue(owner, "n-retry")
    OutboundEmail.objects.filter(pk=queued.pk).update(
        status=EmailStatus.FAILED, attempts=8, next_attempt_at=T0 + timedelta(days=365), last_error="boom"
    )
    retried = services.email_retry(actor=iam_admin, email=reload(queued))
    assert retried.status == EmailStatus.PENDING
    assert tasks.outbox_flush() == 1 and len(mailbox.received) == 1
    event = AuditEvent.objects.get(action="outbound_email.retried")
    assert event.before is not None
    assert event.actor == iam_admin and event.owner == owner and event.before["status"] == "failed"
    with pytest.raises(Conflict):
        services.email_retry(actor=iam_admin, email=reload(queued))
