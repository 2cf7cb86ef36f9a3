"""The portal's own "not found" page in a real browser (Debian's Chromium through Playwright) with
DEBUG on, as ``make run`` serves it: a page the role may not open shows the portal's page with
its navigation, never Django's debug page listing every URL pattern."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser_support import BROWSER_MARKS, chromium, sign_in

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


def test_in_development_a_refused_page_shows_the_portal_page_in_the_browser(
    transactional_db, live_server, settings, reviewer, browser
):  # noqa: ANN001
    settings.DEBUG = True
    base = str(live_server.url)
    page = browser.new_page()
    try:
        sign_in(page, base, "reviewer", "pw")
        response = page.goto(f"{base}/approvals/workflows/")
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
        expect(page.get_by_role("link", name="home", exact=True)).to_be_visible()
        assert "URLconf" not in page.content()
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    finally:
        page.close()
