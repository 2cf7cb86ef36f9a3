"""An automated accessibility check (axe-core, run inside each page) over every kind of portal
page each role reaches, on the demo data: no serious or critical violation anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from tests.browser_support import BROWSER_MARKS, chromium, crawl, sign_in

pytestmark = BROWSER_MARKS

ROLES = ["ivan", "audrey", "rita", "alice", "bob"]
BLOCKING = {"serious", "critical"}


@pytest.fixture
def demo_site(transactional_db: None, live_server: Any) -> str:
    from governance.roles import roles_sync

    roles_sync()
    call_command("seed_demo", stdout=StringIO())
    return str(live_server.url)


@pytest.fixture
def browser(demo_site: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


def _violations(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{rule['impact']} {rule['id']} ({len(rule['nodes'])}×: {rule['nodes'][0]['target']})"
        for rule in results.response["violations"]
        if rule["impact"] in BLOCKING
    ]


def test_no_serious_or_critical_violation_on_any_portal_page(browser: Any, demo_site: str) -> None:
    failures: dict[str, list[str]] = {}
    checked: set[str] = set()
    login = browser.new_page()
    login.goto(f"{demo_site}/accounts/login/")
    failures["/accounts/login/"] = _violations(login)
    login.close()
    opened = 0
    for username in ROLES:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, demo_site, username, "demo")
        for path in crawl(page, demo_site, limit=40, skip=checked):
            opened += 1
            failures[f"{username} {path}"] = _violations(page)
        page.close()
    failures = {where: found for where, found in failures.items() if found}
    assert opened > 25, f"the crawl reached too few pages: {sorted(checked)}"
    assert not failures, "\n".join(f"{where}: {'; '.join(found)}" for where, found in failures.items())
