"""The header's navigation in a real browser (Debian's Chromium through Playwright): an IAM admin's
header fits one row at 1280 px with the set-up pages in menus, exactly one link is marked as the
current page, and the menus work by keyboard and close on Escape or a click outside."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from governance.models import User
from tests.browser_support import BROWSER_MARKS, chromium, sign_in

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


def _named_admin(iam_admin: User) -> User:
    iam_admin.display_name = "Ivan Petrov-Administrator"
    iam_admin.save(update_fields=["display_name"])
    return iam_admin


def test_iam_admin_header_is_one_row_at_1280_with_one_current_item(transactional_db, live_server, iam_admin, browser):  # noqa: ANN001
    _named_admin(iam_admin)
    base = str(live_server.url)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        sign_in(page, base, "admin", "pw")
        page.goto(f"{base}/inventory/catalog/")
        header = page.locator("header.site-header")
        parts = [header.locator(".brand"), *page.locator(".main-nav > ul > li").all(), header.locator(".account")]
        boxes = [part.bounding_box() for part in parts]
        tops = {round(box["y"] + box["height"] / 2) for box in boxes if box is not None}
        # One row: every item's middle on the same line (a second row would sit ~30 px lower).
        assert max(tops) - min(tops) <= 6, tops
        assert header.bounding_box()["height"] < 70
        # The catalog lives under /inventory/, yet only the catalog is the current page.
        current = page.locator('[aria-current="page"]')
        expect(current).to_have_count(1)
        assert current.get_attribute("href") == "/inventory/catalog/"
        administration = page.locator(".nav-menu").filter(has=page.get_by_role("button", name="Administration"))
        expect(administration).to_have_class("nav-menu has-current is-enhanced")
        expect(page.get_by_role("link", name="Inventory", exact=True)).not_to_have_attribute("aria-current", "page")
    finally:
        page.close()


def test_navigation_menu_works_by_keyboard_and_closes_on_escape_or_outside_click(
    transactional_db, live_server, iam_admin, browser
):  # noqa: ANN001
    base = str(live_server.url)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        sign_in(page, base, "admin", "pw")
        button = page.get_by_role("button", name="Administration")
        workflows = page.get_by_role("link", name="Workflows")
        expect(button).to_have_attribute("aria-expanded", "false")
        expect(workflows).to_be_hidden()
        # Enter on the focused button opens the menu; Down arrow moves into it.
        button.focus()
        page.keyboard.press("Enter")
        expect(button).to_have_attribute("aria-expanded", "true")
        expect(workflows).to_be_visible()
        page.keyboard.press("ArrowDown")
        expect(page.get_by_role("link", name="Scope catalog")).to_be_focused()
        # Escape closes it and gives the focus back to the button.
        page.keyboard.press("Escape")
        expect(button).to_have_attribute("aria-expanded", "false")
        expect(button).to_be_focused()
        expect(workflows).to_be_hidden()
        # Space opens it again; a click elsewhere on the page closes it.
        page.keyboard.press("Space")
        expect(workflows).to_be_visible()
        page.locator("main h1").first.click()
        expect(button).to_have_attribute("aria-expanded", "false")
        # Opening one menu closes the other.
        button.click()
        page.get_by_role("button", name="Oversight").click()
        expect(button).to_have_attribute("aria-expanded", "false")
        expect(page.get_by_role("link", name="Audit trail")).to_be_visible()
        # A link in a menu goes to its page, which is then the current one.
        page.get_by_role("link", name="Audit trail").click()
        page.wait_for_url(f"{base}/audit/")
        expect(page.locator('[aria-current="page"]')).to_have_count(1)
        expect(page.locator(".nav-menu.has-current").get_by_role("button")).to_have_text("Oversight (current section)")
    finally:
        page.close()
