"""The reviewer queue in a real browser (Debian's Chromium through Playwright): a decision made
inline leaves the queue without a page reload, the nav count follows, a refusal is shown next to
the comment field, and a visible message (dismissable from the keyboard) says what was recorded
and how many items still wait; bulk approval refuses an empty selection on the spot, shows only
where a low-risk item is, and sums up what it did."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.sync_api import expect

from approvals import services
from approvals.models import Decision
from tests.browser_support import BROWSER_MARKS, chromium, sign_in

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


def test_inline_decision_leaves_the_queue_without_a_reload(
    transactional_db, live_server, make_integration, submit, reviewer, browser
):  # noqa: ANN001
    submit(make_integration("First bot"))
    second = submit(make_integration("Second bot"))
    base = str(live_server.url)
    page = browser.new_page()
    try:
        sign_in(page, base, "reviewer", "pw")
        page.goto(f"{base}/approvals/queue/")
        page.evaluate("window.__noReload = true")
        items = page.locator("li.queue-item")
        assert items.count() == 2
        # A rejection without comment is refused next to the field, and nothing leaves.
        first = items.nth(0)
        first.get_by_label("Reject", exact=True).check()
        first.locator("form.decide button[type=submit]").click()
        # Waits go through locators: a predicate string is eval'd in the page, which the CSP refuses.
        expect(first.locator(".field-error")).not_to_be_empty()
        assert "comment" in first.locator(".field-error").text_content().lower()
        # Approve the second with the keyboard: focus the comment, type, submit with Enter on the button.
        item = page.locator(f"#item-{second.steps.get().pk}")
        item.get_by_label("Comment").fill("Fine for a year")
        item.get_by_label("Approve", exact=True).check()
        item.locator("form.decide button[type=submit]").focus()
        page.keyboard.press("Enter")
        item.wait_for(state="detached")
        assert page.evaluate("window.__noReload") is True
        assert page.locator("li.queue-item").count() == 1
        assert page.locator("#queue-total").text_content() == "1"
        assert "Approved" in page.locator("#queue-status").text_content()
    finally:
        page.close()
    assert Decision.objects.filter(request=second, comment="Fine for a year").count() == 1


@contextmanager
def _queue_page(browser: Any, live_server: Any) -> Iterator[Any]:
    """The reviewer's queue as cards, in a page closed afterwards."""
    page = browser.new_page()
    try:
        sign_in(page, str(live_server.url), "reviewer", "pw")
        page.goto(f"{live_server.url}/approvals/queue/?view=cards")
        yield page
    finally:
        page.close()


def test_inline_decision_shows_a_visible_dismissable_confirmation_with_the_count(
    transactional_db, live_server, make_integration, submit, reviewer, browser
):  # noqa: ANN001
    first = submit(make_integration("Slack summariser"))
    submit(make_integration("Mail sorter"))
    with _queue_page(browser, live_server) as page:
        item = page.locator(f"#item-{first.steps.get().pk}")
        item.get_by_label("Approve", exact=True).check()
        item.locator("form.decide button[type=submit]").click()
        confirmation = page.locator("#queue-status .queue-confirm")
        expect(confirmation).to_be_visible()
        expect(confirmation).to_contain_text("Approved: Slack summariser")
        expect(confirmation).to_contain_text("1 waiting.")
        assert page.locator("#queue-status").get_attribute("role") == "status"
        # Dismissed from the keyboard: the message goes, the focus stays in the queue.
        dismiss = confirmation.get_by_role("button", name="Dismiss this message")
        dismiss.focus()
        page.keyboard.press("Enter")
        expect(confirmation).to_have_count(0)
        expect(page.locator("li.queue-item h2 a")).to_be_focused()


def test_bulk_approve_with_nothing_ticked_says_so_and_approves_nothing(
    transactional_db, live_server, make_integration, submit, reviewer, browser
):  # noqa: ANN001
    submit(make_integration("Low bot", tier="low"))
    with _queue_page(browser, live_server) as page:
        page.get_by_role("button", name="Approve ticked low-risk items").click()
        error = page.locator("#bulk-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("tick at least one low-risk item")
        expect(page.get_by_label("Include in bulk approval")).to_be_focused()
        assert page.url.endswith("/approvals/queue/?view=cards")
    assert not Decision.objects.exists()


def test_no_bulk_box_when_no_item_is_low_risk(
    transactional_db, live_server, make_integration, submit, reviewer, browser
):  # noqa: ANN001
    submit(make_integration("Mid bot", tier="medium"))
    with _queue_page(browser, live_server) as page:
        expect(page.locator("li.queue-item")).to_have_count(1)
        expect(page.locator("#bulk-form")).to_have_count(0)
        expect(page.get_by_role("button", name="Approve ticked low-risk items")).to_have_count(0)


def test_bulk_approval_shows_who_was_approved_and_who_was_not_with_the_reason(
    transactional_db, live_server, make_integration, submit, reviewer, second_reviewer, browser
):  # noqa: ANN001
    submit(make_integration("Low one", tier="low"))
    gone = submit(make_integration("Low gone", tier="low"))
    with _queue_page(browser, live_server) as page:
        for box in page.get_by_label("Include in bulk approval").all():
            box.check()
        # Someone else decides one of them meanwhile: the bulk approval says so instead of failing.
        services.request_decide(actor=second_reviewer, request=gone, decision="approve")
        page.get_by_role("button", name="Approve ticked low-risk items").click()
        done = page.locator(".messages .message.success")
        expect(done).to_be_visible()
        expect(done).to_contain_text("Approved 1 low-risk item: Low one. 0 waiting.")
        refused = page.locator(".messages .message.error")
        expect(refused).to_contain_text("Not approved (1): Low gone:")
        refused.get_by_role("button", name="Dismiss this message").click()
        expect(refused).to_have_count(0)
    assert Decision.objects.filter(request=gone).count() == 1  # only the other reviewer's
