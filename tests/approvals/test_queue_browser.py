"""The reviewer queue in a real browser (Debian's Chromium through Playwright): a decision made
inline leaves the queue without a page reload, the nav count follows, and a refusal is shown next
to the comment field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

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
        first.get_by_label("Reject").check()
        first.get_by_role("button", name="Submit decision").click()
        # Waits go through locators: a predicate string is eval'd in the page, which the CSP refuses.
        expect(first.locator(".field-error")).not_to_be_empty()
        assert "comment" in first.locator(".field-error").text_content().lower()
        # Approve the second with the keyboard: focus the comment, type, submit with Enter on the button.
        item = page.locator(f"#item-{second.steps.get().pk}")
        item.get_by_label("Comment").fill("Fine for a year")
        item.get_by_role("button", name="Submit decision").focus()
        page.keyboard.press("Enter")
        item.wait_for(state="detached")
        assert page.evaluate("window.__noReload") is True
        assert page.locator("li.queue-item").count() == 1
        assert page.locator("#queue-total").text_content() == "1"
        assert "Approved" in page.locator("#queue-status").text_content()
    finally:
        page.close()
    assert Decision.objects.filter(request=second, comment="Fine for a year").count() == 1
