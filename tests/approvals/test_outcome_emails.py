"""Who is told what about a request, as a mail server receives it (the real SMTP server of the
``smtp`` fixture): the requester and the integration's business owner get one outcome email when
the request is approved (what and until when), rejected (why and by whom) or sent back for
changes (the comment and the page to edit and resubmit); reviewers get the per-step emails
(assigned, reminder, escalation) as information, or — if they chose it — one daily digest of
everything waiting; requesters get no per-step email."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from approvals import services, tasks
from approvals.models import AccessRequest, RequestStatus
from governance import scheduling
from governance import tasks as governance_tasks
from governance.models import AuditEvent, NotificationPreference, OutboundEmail, ReviewerEmails, User
from governance.roles import Role
from governance.services import notification_preference_set
from inventory import services as inventory_services
from inventory.choices import GrantStatus
from inventory.models import Grant, Integration
from tests.mail_support import Mailbox

pytestmark = pytest.mark.django_db


def _text_and_html(message: EmailMessage) -> tuple[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    text, html = (part.get_content().replace("\r\n", "\n") for part in parts)
    assert "&amp;" not in text and "<p>" not in text
    return text, html


def _delivered(mailbox: Mailbox) -> None:
    governance_tasks.outbox_flush()
    assert not OutboundEmail.objects.exclude(status="sent").exists()


@pytest.fixture
def business_owner(make_user: Callable[..., User]) -> User:
    return make_user("bea", Role.BUSINESS_USER)


@pytest.fixture
def r_and_d_bot(make_integration: Callable[..., Integration], owner: User, business_owner: User) -> Integration:
    """An integration whose business owner (bea) is not the person who submits it (owner)."""
    return make_integration("R&D bot", business_owner=business_owner, technical_owner=owner)


def test_approval_tells_requester_and_business_owner_what_was_granted_until_when(
    smtp: tuple[Mailbox, int], r_and_d_bot: Integration, submit: Any, reviewer: User, owner: User, catalog: Any
) -> None:
    mailbox, _port = smtp
    req = submit(r_and_d_bot, scopes=[catalog["files"], catalog["mail"]], actor=owner)
    services.request_decide(actor=reviewer, request=req, decision="approve", comment="Fine")
    _delivered(mailbox)
    grants = list(Grant.objects.filter(integration=r_and_d_bot, status=GrantStatus.ACTIVE))
    until = timezone.localtime(grants[0].expires_at)
    expected = f"Approved — R&D bot: access granted until {until.day} {until:%b %Y}"
    for address in ("owner@example.com", "bea@example.com"):
        [message] = mailbox.to(address)
        assert message["Subject"] == expected
        text, html = _text_and_html(message)
        assert f"Approved: your {req.get_type_display().lower()} request #{req.pk} for R&D bot." in text
        assert "Approved by: reviewer" in text
        for code in ("msgraph:Files.Read", "msgraph:Mail.Read"):
            assert re.search(rf"- {re.escape(code)} \(read\), until {until.day} {until:%b %Y}", text), text
        assert f"http://127.0.0.1:8000/approvals/requests/{req.pk}/" in text
        assert "R&amp;D bot" in html
    assert len(mailbox.to("reviewer@example.com")) == 1  # the assignment, nothing about the outcome


def test_rejection_tells_the_reason_and_who_rejected(
    smtp: tuple[Mailbox, int], r_and_d_bot: Integration, submit: Any, reviewer: User, owner: User
) -> None:
    mailbox, _port = smtp
    req = submit(r_and_d_bot, actor=owner)
    services.request_decide(
        actor=reviewer, request=req, decision="reject", comment="No business need for R&D mail access."
    )
    _delivered(mailbox)
    [message] = mailbox.to("owner@example.com")
    assert message["Subject"] == "Rejected — R&D bot: No business need for R&D mail access."
    text, _html = _text_and_html(message)
    assert 'Rejected by reviewer at step "IAM review"' in text
    assert "Reason: No business need for R&D mail access." in text
    assert f"/approvals/requests/{req.pk}/" in text
    assert len(mailbox.to("bea@example.com")) == 1


def test_changes_requested_carries_the_comment_and_the_link_to_edit_and_resubmit(
    smtp: tuple[Mailbox, int], r_and_d_bot: Integration, submit: Any, reviewer: User, owner: User
) -> None:
    mailbox, _port = smtp
    req = submit(r_and_d_bot, actor=owner)
    services.request_decide(
        actor=reviewer, request=req, decision="request_changes", comment="Say which mailboxes it reads."
    )
    _delivered(mailbox)
    [message] = mailbox.to("owner@example.com")
    assert message["Subject"] == "Changes requested — R&D bot: edit and resubmit"
    text, html = _text_and_html(message)
    assert 'reviewer asked for them at step "IAM review":\n\nSay which mailboxes it reads.' in text
    assert f"Edit and resubmit: http://127.0.0.1:8000/approvals/requests/{req.pk}/resubmit/" in text
    assert f'href="http://127.0.0.1:8000/approvals/requests/{req.pk}/resubmit/">Edit and resubmit</a>' in html


def test_reviewers_get_per_step_emails_as_information_and_requesters_only_the_outcome(
    smtp: tuple[Mailbox, int],
    make_integration: Callable[..., Integration],
    submit: Any,
    reviewer: User,
    resource_owner: User,
    owner: User,
    catalog: Any,
) -> None:
    mailbox, _port = smtp
    req = submit(make_integration("HR helper", tier="medium"), scopes=[catalog["hr"]])
    waiting = f"Waiting for your review: {req.get_type_display()} for HR helper"
    services.request_decide(actor=reviewer, request=req, decision="approve")
    _delivered(mailbox)
    assert mailbox.to("owner@example.com") == [], "no email to the requester about one step"
    [assigned] = mailbox.to("reviewer@example.com")
    assert assigned["Subject"] == waiting
    text, _html = _text_and_html(assigned)
    assert "/account/notifications/" in text
    [second] = mailbox.to("omar@example.com")
    assert second["Subject"] == waiting
    services.request_decide(actor=resource_owner, request=req, decision="approve")
    _delivered(mailbox)
    [outcome] = mailbox.to("owner@example.com")
    assert outcome["Subject"].startswith("Approved — HR helper: access granted until ")


def test_reminders_and_escalations_read_as_information(
    smtp: tuple[Mailbox, int], make_integration: Callable[..., Integration], submit: Any, reviewer: User
) -> None:
    mailbox, _port = smtp
    req = submit(make_integration("Slow bot"))
    step = req.steps.get()
    with time_machine.travel(step.due_at + timedelta(minutes=1)):
        assert services.steps_remind_due() == 1
        _delivered(mailbox)
    subjects = [str(message["Subject"]) for message in mailbox.to("reviewer@example.com")]
    assert subjects[-1].startswith("Still waiting for your review: Slow bot (due ")


def _chose_digest(user: User) -> None:
    notification_preference_set(actor=user, user=user, reviewer_emails=ReviewerEmails.DAILY)


def test_a_reviewer_who_chose_the_digest_gets_one_daily_email_listing_what_waits(
    smtp: tuple[Mailbox, int],
    make_integration: Callable[..., Integration],
    submit: Any,
    reviewer: User,
    second_reviewer: User,
) -> None:
    mailbox, _port = smtp
    _chose_digest(reviewer)
    first = submit(make_integration("First bot"))
    second = submit(make_integration("Second & last bot"))
    step = second.steps.get()
    with time_machine.travel(step.remind_at + timedelta(minutes=1)):
        services.steps_remind_due()
        _delivered(mailbox)
    assert mailbox.to("reviewer@example.com") == [], "nothing per item for a digest reader"
    assert len(mailbox.to("reviewer2@example.com")) == 4, "immediate for the others: two assigned, two reminders"

    assert tasks.reviewer_digest() == 1
    assert tasks.reviewer_digest() == 0, "one digest a day"
    _delivered(mailbox)
    [digest] = mailbox.to("reviewer@example.com")
    assert digest["Subject"] == "Waiting for your review: 2 items"
    text, html = _text_and_html(digest)
    for req in (first, second):
        assert f"#{req.pk} for {req.subject_name} (Low risk)" in text
        assert f"http://127.0.0.1:8000/approvals/requests/{req.pk}/" in text
    assert "Second & last bot" in text and "Second &amp; last bot" in html
    assert "/account/notifications/" in text


def test_the_digest_is_a_daily_schedule_that_sends_nothing_when_nothing_waits(
    smtp: tuple[Mailbox, int], make_integration: Callable[..., Integration], submit: Any, reviewer: User
) -> None:
    registered = {task.name: task for task in scheduling.registered()}
    digest = registered["approvals-reviewer-digest"]
    assert (digest.func, digest.cron) == ("approvals.tasks.reviewer_digest", "0 7 * * *")
    assert "approvals.tasks.reviewer_digest" in scheduling.allowed_task_functions()
    _chose_digest(reviewer)
    assert services.reviewer_digests_send() == 0
    req = submit(make_integration("Overdue bot"))
    with time_machine.travel(req.steps.get().due_at + timedelta(hours=1)):
        assert services.reviewer_digests_send() == 1
        [queued] = OutboundEmail.objects.filter(key__startswith="reviewer-digest-")
        assert queued.subject == "Waiting for your review: 1 item, 1 overdue"
        assert "OVERDUE since" in queued.body_text


def test_an_inactive_digest_reader_gets_nothing(
    make_integration: Callable[..., Integration], submit: Any, reviewer: User
) -> None:
    _chose_digest(reviewer)
    submit(make_integration("Quiet bot"))
    User.objects.filter(pk=reviewer.pk).update(is_active=False)
    assert services.reviewer_digests_send() == 0


def test_a_resubmitted_request_gets_its_own_outcome_email_for_the_next_round(
    r_and_d_bot: Integration, submit: Any, reviewer: User, second_reviewer: User, owner: User, catalog: Any
) -> None:
    req = submit(r_and_d_bot, actor=owner)
    services.request_decide(actor=reviewer, request=req, decision="request_changes", comment="Add the purpose.")
    # The registration went back to a draft: submitting it again starts round two.
    r_and_d_bot.requested_scopes.set([catalog["files"]])
    inventory_services.integration_submit(actor=owner, integration=r_and_d_bot, reason="Purpose added.")
    req = AccessRequest.objects.get(pk=req.pk)
    assert req.round == 2
    services.request_decide(actor=second_reviewer, request=req, decision="approve")
    keys = sorted(OutboundEmail.objects.filter(recipient=owner).values_list("key", flat=True))
    assert keys == [
        f"approval-outcome-{req.pk}-r1-{RequestStatus.CHANGES_REQUESTED}-{owner.pk}",
        f"approval-outcome-{req.pk}-r2-{RequestStatus.APPROVED}-{owner.pk}",
    ]


# --- The page where a person chooses -----------------------------------------------------------------


def test_a_person_chooses_the_daily_digest_on_their_notifications_page(web_as: Any, reviewer: User) -> None:
    client = web_as(reviewer)
    page = client.get("/account/notifications/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'value="immediate" checked' in body and 'value="daily">' in body
    assert 'href="/account/notifications/" aria-current="page">Notifications</a>' in body, "reached from every page"
    answer = client.post("/account/notifications/", {"reviewer_emails": "daily"}, follow=True)
    assert answer.redirect_chain == [("/account/notifications/", 302)]
    assert 'value="daily" checked' in answer.content.decode()
    assert NotificationPreference.objects.get(user=reviewer).reviewer_emails == ReviewerEmails.DAILY
    event = AuditEvent.objects.get(action="notification_preference.changed")
    assert (event.actor_username, event.before, event.after) == (
        "reviewer",
        {"reviewer_emails": "immediate"},
        {"reviewer_emails": "daily"},
    )
    client.post("/account/notifications/", {"reviewer_emails": "daily"})
    assert AuditEvent.objects.filter(action="notification_preference.changed").count() == 1, "no change, no event"


def test_an_unknown_choice_is_refused_and_nothing_changes(web_as: Any, reviewer: User) -> None:
    answer = web_as(reviewer).post("/account/notifications/", {"reviewer_emails": "hourly"}, follow=True)
    assert answer.status_code == 200
    assert "Choose immediate emails or a daily digest." in answer.content.decode()
    assert not NotificationPreference.objects.filter(user=reviewer, reviewer_emails="hourly").exists()


def test_the_notifications_page_needs_a_signed_in_person(client: Any, db: Any) -> None:
    answer = client.get("/account/notifications/")
    assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")
    assert client.post("/account/notifications/", {"reviewer_emails": "daily"}).status_code == 302
    assert not NotificationPreference.objects.exists()


def test_nobody_chooses_for_someone_else(reviewer: User, outsider: User) -> None:
    from governance.exceptions import NotAllowed

    with pytest.raises(NotAllowed):
        notification_preference_set(actor=outsider, user=reviewer, reviewer_emails=ReviewerEmails.DAILY)
    assert not NotificationPreference.objects.exists()


def test_the_notifications_page_reads_in_a_fixed_number_of_queries(
    web_as: Any, reviewer: User, django_assert_max_num_queries: Any
) -> None:
    client = web_as(reviewer)
    client.get("/account/notifications/")
    with django_assert_max_num_queries(8):  # session, user, roles, nav counts, the choice
        assert client.get("/account/notifications/").status_code == 200
