"""The catalog's pages in Debian's Chromium: a reviewer goes from the Oversight menu to a
framework, filters its items to the gaps, and follows an item to the control answering it; every
page passes the automated accessibility check (axe-core: no serious or critical violation) and
fits a phone's width without scrolling sideways."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from governance.controls import catalog
from governance.models import User
from tests.browser_support import BROWSER_MARKS, chromium, sign_in

pytestmark = [*BROWSER_MARKS, pytest.mark.db_agnostic]

BLOCKING = {"serious", "critical"}
LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


def _blocking_violations(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    return [
        f"{rule['impact']} {rule['id']} ({len(rule['nodes'])}×: {rule['nodes'][0]['target']})"
        for rule in Axe().run(page).response["violations"]
        if rule["impact"] in BLOCKING
    ]


def _fits_a_phone(page: Any) -> bool:
    page.set_viewport_size(PHONE)
    try:
        return bool(page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"])
    finally:
        page.set_viewport_size(LAPTOP)


def test_a_reviewer_walks_from_a_framework_to_the_control_behind_an_item(
    transactional_db: None, live_server: Any, reviewer: User, browser: Any
) -> None:
    base = str(live_server.url)
    page = browser.new_page(viewport=LAPTOP)
    problems: dict[str, list[str]] = {}
    try:
        sign_in(page, base, "reviewer", "pw")
        page.get_by_role("button", name="Oversight").click()
        page.get_by_role("link", name="Frameworks", exact=True).click()
        page.wait_for_url(f"{base}/frameworks/")
        problems["/frameworks/"] = _blocking_violations(page)
        assert _fits_a_phone(page), "the frameworks page scrolls sideways on a phone"

        info = catalog.framework("owasp-agentic-2026")
        assert info is not None
        page.get_by_role("link", name=info.name, exact=True).click()
        page.wait_for_url(f"{base}/frameworks/{info.slug}/")
        expect(page.get_by_role("heading", level=1)).to_have_text(info.name)
        expect(page.locator("#items tbody tr")).to_have_count(len(info.items))
        problems[page.url] = _blocking_violations(page)
        assert _fits_a_phone(page), "a framework's page scrolls sideways on a phone"

        page.get_by_label("Status").select_option("gaps")
        page.get_by_role("button", name="Show").click()
        page.wait_for_url(f"{base}/frameworks/{info.slug}/?status=gaps")
        badges = page.locator("#items tbody tr > td:nth-child(2) .control-status")
        kinds = badges.evaluate_all("nodes => nodes.map(node => node.className)")
        assert kinds, "the gaps filter left no item with a status badge"
        for kind in kinds:
            assert kind.split("control-status-")[1] in {"not_met", "partly", "no_control"}, kind
        page.get_by_role("link", name="Clear").click()
        page.wait_for_url(f"{base}/frameworks/{info.slug}/?")
        row = page.locator(f"#{catalog.item_anchor('ASI03')}")
        control_link = row.locator("a[href^='/controls/']").first
        control_link.click()
        page.wait_for_url(f"{base}/controls/*/")
        expect(page.get_by_role("heading", name="Framework items it answers")).to_be_visible()
        expect(page.locator("#mapped-items")).to_contain_text("ASI03")
        problems[page.url] = _blocking_violations(page)
        assert _fits_a_phone(page), "a control's page scrolls sideways on a phone"

        page.get_by_role("link", name="← All controls").click()
        page.wait_for_url(f"{base}/controls/")
        problems[page.url] = _blocking_violations(page)
        assert _fits_a_phone(page), "the catalog scrolls sideways on a phone"
    finally:
        page.close()
    assert not any(problems.values()), problems
