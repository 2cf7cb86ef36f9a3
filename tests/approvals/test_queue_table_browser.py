"""The reviewer queue's table view in a real browser (Debian's Chromium through Playwright): one
row per item, sorted by clicking a column header (which tells its state through aria-sort), and
worked from the keyboard — arrow keys or j/k move between rows, Enter or Space opens a row's
details, Escape closes them, and the decision form inside records the decision without a reload."""

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


def _names(page: Any) -> list[str]:
    return [name.strip() for name in page.locator("tr.queue-row .row-toggle").all_text_contents()]


def test_table_rows_sort_by_clicking_a_column_header(
    transactional_db, live_server, make_integration, submit, reviewer, browser
):  # noqa: ANN001
    submit(make_integration("beta bot", tier="critical"))
    submit(make_integration("Alpha bot", tier="low"))
    submit(make_integration("Gamma bot", tier="high"))
    base = str(live_server.url)
    page = browser.new_page()
    try:
        sign_in(page, base, "reviewer", "pw")
        page.goto(f"{base}/approvals/queue/")
        page.get_by_role("link", name="Table").click()
        expect(page.locator("tr.queue-row")).to_have_count(3)
        name_header = page.get_by_role("columnheader", name="Integration or subject")
        name_header.get_by_role("link").click()
        expect(name_header).to_have_attribute("aria-sort", "ascending")
        assert _names(page) == ["Alpha bot", "beta bot", "Gamma bot"]
        page.get_by_role("columnheader", name="Integration or subject").get_by_role("link").click()
        expect(page.get_by_role("columnheader", name="Integration or subject")).to_have_attribute(
            "aria-sort", "descending"
        )
        assert _names(page) == ["Gamma bot", "beta bot", "Alpha bot"]
        page.get_by_role("columnheader", name="Risk").get_by_role("link").click()
        expect(page.get_by_role("columnheader", name="Risk")).to_have_attribute("aria-sort", "descending")
        assert _names(page) == ["beta bot", "Gamma bot", "Alpha bot"]
        assert "view=table" in page.url and "sort=risk" in page.url
    finally:
        page.close()


def test_keyboard_moves_between_rows_opens_one_and_decides_inside_it(
    transactional_db, live_server, make_integration, submit, reviewer, browser
):  # noqa: ANN001
    submit(make_integration("First bot"))
    second = submit(make_integration("Second bot"))
    step_id = second.steps.get().pk
    base = str(live_server.url)
    page = browser.new_page()
    try:
        sign_in(page, base, "reviewer", "pw")
        page.goto(f"{base}/approvals/queue/?view=table&sort=name")
        page.evaluate("window.__noReload = true")
        toggles = page.locator("tr.queue-row .row-toggle")
        detail = page.locator(f"#detail-{step_id}")
        expect(detail).to_be_hidden()  # the script closes every row's details
        toggles.nth(0).focus()
        page.keyboard.press("ArrowDown")
        expect(toggles.nth(1)).to_be_focused()
        page.keyboard.press("k")
        expect(toggles.nth(0)).to_be_focused()
        page.keyboard.press("j")
        expect(toggles.nth(1)).to_be_focused()
        page.keyboard.press("Enter")
        expect(toggles.nth(1)).to_have_attribute("aria-expanded", "true")
        expect(detail).to_be_visible()
        page.keyboard.press("Escape")
        expect(detail).to_be_hidden()
        expect(toggles.nth(1)).to_have_attribute("aria-expanded", "false")
        expect(toggles.nth(1)).to_be_focused()
        page.keyboard.press("Space")
        expect(detail).to_be_visible()
        # The decision form inside the row records the decision without a reload.
        detail.get_by_label("Approve", exact=True).check()
        detail.get_by_label("Comment").fill("Fine for a year")
        detail.locator("form.decide button[type=submit]").focus()
        page.keyboard.press("Enter")
        expect(page.locator(f"#row-{step_id}")).to_have_count(0)
        expect(detail).to_have_count(0)
        expect(page.locator("#queue-status .queue-confirm")).to_contain_text("Approved: Second bot")
        expect(page.locator("#queue-status .queue-confirm")).to_contain_text("1 waiting.")
        expect(toggles.nth(0)).to_be_focused()
        assert page.evaluate("window.__noReload") is True
    finally:
        page.close()
    assert Decision.objects.filter(request=second, comment="Fine for a year").count() == 1
