"""The API documentation people are sent to is the reference (ReDoc): the portal's footer links to
it, it passes the automated accessibility check (axe-core run in the page: no serious or critical
violation), and Swagger UI, where requests are tried, is one link away."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser_support import BROWSER_MARKS, chromium, sign_in

pytestmark = [*BROWSER_MARKS, pytest.mark.db_agnostic]

BLOCKING = {"serious", "critical"}


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


def _blocking_violations(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{rule['impact']} {rule['id']} ({len(rule['nodes'])}×: {rule['nodes'][0]['target']})"
        for rule in results.response["violations"]
        if rule["impact"] in BLOCKING
    ]


def test_docs_link_opens_an_accessible_reference_with_swagger_one_click_away(
    transactional_db, live_server, owner, browser
):  # noqa: ANN001
    base = str(live_server.url)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        sign_in(page, base, "owner", "pw")
        page.get_by_role("contentinfo").get_by_role("link", name="API documentation").click()
        page.wait_for_url(f"{base}/api/v1/redoc/")
        page.get_by_role("heading", name="AI Governance Portal API").first.wait_for(timeout=60_000)
        expect(page.locator("li[data-item-id]").first).to_be_visible()
        assert _blocking_violations(page) == []
        page.get_by_role("link", name="Try it out (Swagger UI)").click()
        page.wait_for_url(f"{base}/api/v1/docs/")
        page.locator(".opblock-summary").first.click(timeout=60_000)
        expect(page.get_by_role("button", name="Try it out").first).to_be_visible()
    finally:
        page.close()
