"""Outcome emails end to end, in a real browser (Debian's Chromium through Playwright) and through
a real SMTP server: a reviewer decides on the request page, the outbox delivers, and the
requester opens the link of the email they received and lands on the page to act on — the
request for an approval, the edit-and-resubmit page for changes requested. A reviewer follows
the link in their own email to choose one daily digest instead of one email per item."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from playwright.sync_api import expect

from governance import tasks as governance_tasks
from governance.models import NotificationPreference, ReviewerEmails
from tests.browser_support import BROWSER_MARKS, chromium, sign_in
from tests.mail_support import Mailbox

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


@pytest.fixture
def base(live_server: Any, settings: Any) -> str:
    """The live server's address, which the emails' links use (as SITE_URL from ``make run``)."""
    settings.SITE_URL = str(live_server.url)
    return str(live_server.url)


def _delivered_to(mailbox: Mailbox, address: str) -> EmailMessage:
    governance_tasks.outbox_flush()
    [message] = mailbox.to(address)
    return message


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def _link(message: EmailMessage, label: str) -> str:
    """The address after ``label:`` in the plain-text part, as a person reads and follows it."""
    text = _text(message)
    found = re.search(rf"^{re.escape(label)}: (\S+)$", text, re.MULTILINE)
    assert found, text
    return found.group(1)


def _decide(browser: Any, base: str, req_id: int, *, choice: str, comment: str) -> None:
    """The reviewer decides on the request page, as the email that assigned them links to."""
    page = browser.new_context().new_page()
    try:
        sign_in(page, base, "reviewer", "pw")
        page.goto(f"{base}/approvals/requests/{req_id}/")
        form = page.locator("form.decide")
        form.get_by_label(choice, exact=True).check()
        form.get_by_label("Comment", exact=True).fill(comment)
        form.locator("button[type=submit]").click()
        expect(page.locator(".messages, [role=status]").first).to_be_visible()
    finally:
        page.context.close()


def _open_as_owner(browser: Any, base: str, link: str) -> Any:
    page = browser.new_context().new_page()
    sign_in(page, base, "owner", "pw")
    page.goto(link)
    return page


def test_the_requester_follows_the_approval_email_to_the_request(
    transactional_db: Any, base: str, smtp: tuple[Mailbox, int], make_integration: Any, submit: Any, reviewer: Any,
    browser: Any,
) -> None:  # fmt: skip
    mailbox, _port = smtp
    req = submit(make_integration("R&D bot"))
    _decide(browser, base, req.pk, choice="Approve", comment="Fine for a year")
    message = _delivered_to(mailbox, "owner@example.com")
    assert str(message["Subject"]).startswith("Approved — R&D bot: access granted until ")
    link = _link(message, "See the request")
    assert link == f"{base}/approvals/requests/{req.pk}/"
    page = _open_as_owner(browser, base, link)
    try:
        expect(page).to_have_url(link)
        expect(page.locator("h1")).to_contain_text("R&D bot")
        expect(page.get_by_text("Status: Approved")).to_be_visible()
        expect(page.locator("main")).to_contain_text("msgraph:Files.Read")
    finally:
        page.context.close()


def test_changes_requested_email_leads_the_requester_to_edit_and_resubmit(
    transactional_db: Any, base: str, smtp: tuple[Mailbox, int], make_integration: Any, submit: Any, reviewer: Any,
    browser: Any,
) -> None:  # fmt: skip
    mailbox, _port = smtp
    req = submit(make_integration("R&D bot"))
    _decide(browser, base, req.pk, choice="Request changes", comment="Say which mailboxes it reads & why.")
    message = _delivered_to(mailbox, "owner@example.com")
    assert message["Subject"] == "Changes requested — R&D bot: edit and resubmit"
    link = _link(message, "Edit and resubmit")
    assert link == f"{base}/approvals/requests/{req.pk}/resubmit/"
    page = _open_as_owner(browser, base, link)
    try:
        expect(page).to_have_url(link)
        expect(page.get_by_text("Say which mailboxes it reads & why.").first).to_be_visible()
        expect(page.locator("form button[type=submit]").last).to_be_visible()
    finally:
        page.context.close()


def test_a_reviewer_chooses_the_daily_digest_from_the_link_in_their_email(
    transactional_db: Any, base: str, smtp: tuple[Mailbox, int], make_integration: Any, submit: Any, reviewer: Any,
    browser: Any,
) -> None:  # fmt: skip
    mailbox, _port = smtp
    submit(make_integration("First bot"))
    assigned = _delivered_to(mailbox, "reviewer@example.com")
    assert str(assigned["Subject"]).startswith("Waiting for your review: ")
    text = _text(assigned)
    link = re.search(r"(\S+/account/notifications/)", text)
    assert link, text
    page = browser.new_context().new_page()
    try:
        sign_in(page, base, "reviewer", "pw")
        page.goto(link.group(1))
        expect(page.get_by_role("heading", name="Your notifications")).to_be_visible()
        expect(page.get_by_label("One email for each item, as it arrives")).to_be_checked()
        page.get_by_label("One daily digest of everything waiting").check()
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("Saved: one daily digest of everything waiting.")).to_be_visible()
        expect(page.get_by_label("One daily digest of everything waiting")).to_be_checked()
    finally:
        page.context.close()
    assert NotificationPreference.objects.get(user=reviewer).reviewer_emails == ReviewerEmails.DAILY
    submit(make_integration("Second bot"))
    governance_tasks.outbox_flush()
    assert len(mailbox.to("reviewer@example.com")) == 1, "the second item waits for the digest"
