"""The login and home pages in a real browser (Debian's Chromium through Playwright), on a laptop
and on a phone. Screenshots go to var/screenshots/ for a human to look at."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.browser_support import BROWSER_MARKS, chromium, sign_in

SHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser(demo_site: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # The data is seeded before Playwright starts, and the browser (with its keep-alive
    # connections, each holding a server thread and its database connection) closes before the
    # test database is flushed and dropped.
    with chromium(monkeypatch) as instance:
        yield instance


@pytest.fixture
def demo_site(transactional_db: None, live_server: Any) -> str:
    from governance.roles import roles_sync

    roles_sync()
    call_command("seed_demo", stdout=StringIO())
    return str(live_server.url)


def test_login_then_home_works_on_a_laptop_and_a_phone(browser: Any, demo_site: str) -> None:
    for width, height, name in [(1280, 800, "laptop"), (390, 844, "phone")]:
        _login_then_home(browser, demo_site, width, height, name)
    _auditor_home(browser, demo_site)


def _login_then_home(browser: Any, demo_site: str, width: int, height: int, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(f"{demo_site}/accounts/login/")
    assert page.evaluate("document.activeElement.id") == "id_username"  # ready to type
    # Every input a person types into has a label.
    assert page.get_by_label("Username").count() == 1 and page.get_by_label("Password").count() == 1
    unlabelled = page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).length"""
    )
    assert unlabelled == 0
    assert page.get_by_role("heading", name="Demo accounts").is_visible()
    page.screenshot(path=str(SHOTS / f"login-{name}.png"), full_page=True)

    sign_in(page, demo_site, "ivan", "demo")
    assert page.get_by_role("heading", level=1).inner_text() == "Portal administration"
    assert page.get_by_role("heading", name="Email outbox").is_visible()
    # The skip link is the first thing the keyboard reaches, and it shows when focused.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to main content"
    box = page.locator(".skip-link").bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # Nothing overflows sideways: the page is usable without horizontal scrolling.
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{overflow}px of horizontal overflow at {width}px"
    page.screenshot(path=str(SHOTS / f"home-ivan-{name}.png"), full_page=True)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{demo_site}/accounts/login/")
    page.close()


def _auditor_home(browser: Any, demo_site: str) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(page, demo_site, "audrey", "demo")
    assert page.get_by_role("heading", level=1).inner_text() == "Audit overview"
    assert page.get_by_role("heading", name="Audit trail").is_visible()
    page.screenshot(path=str(SHOTS / "home-audrey-phone.png"), full_page=True)
    page.close()
