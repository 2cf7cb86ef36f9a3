"""The reviewer queue in a real browser (Debian's Chromium through Playwright): a decision made
inline leaves the queue without a page reload, the nav count follows, and a refusal is shown next
to the comment field."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from approvals.models import Decision

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


@pytest.fixture
def browser() -> Iterator[Any]:
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"],
        )
        try:
            yield instance
        finally:
            instance.close()


def test_inline_decision_leaves_the_queue_without_a_reload(
    transactional_db, live_server, make_integration, submit, reviewer, browser
):  # noqa: ANN001
    submit(make_integration("First bot"))
    second = submit(make_integration("Second bot"))
    base = str(live_server.url)
    page = browser.new_page()
    try:
        page.goto(f"{base}/accounts/login/")
        page.get_by_label("Username").fill("reviewer")
        page.get_by_label("Password").fill("pw")
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(f"{base}/")
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
