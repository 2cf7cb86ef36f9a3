"""The dashboard in a real browser (Debian's Chromium through Playwright): every registered panel
drawn under the portal's Content-Security-Policy with no violation, its charts visible with their
tables one click away, and no serious or critical accessibility violation (axe-core) on the
dashboard or on the home page that carries its panels."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from governance import dashboard
from governance.controls.models import MetricSnapshot
from governance.models import User
from inventory.models import Integration, IntegrationStatus
from tests.browser_support import BROWSER_MARKS, chromium, sign_in

pytestmark = [*BROWSER_MARKS, pytest.mark.db_agnostic]

BLOCKING = {"serious", "critical"}
# Runs before the page's own scripts and records each violation the browser reports.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile + ":" + e.lineNumber);
});
"""


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


def blocking_violations(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{rule['impact']} {rule['id']} ({len(rule['nodes'])}×: {rule['nodes'][0]['target']})"
        for rule in results.response["violations"]
        if rule["impact"] in BLOCKING
    ]


def some_history(owner: User) -> None:
    """A few integrations and eight weeks of every metric, so that every chart has marks."""
    Integration.objects.bulk_create(
        [
            Integration(
                name=f"Browser bot {index}",
                kind="agent",
                purpose="Shown on the dashboard.",
                business_owner=owner,
                status=IntegrationStatus.ACTIVE,
                risk_tier=["low", "medium", "high", "critical"][index % 4],
                risk_score=index * 10,
            )
            for index in range(8)
        ]
    )
    today = timezone.localdate()
    MetricSnapshot.objects.bulk_create(
        [
            MetricSnapshot(key=metric.key, day=today - timedelta(weeks=back), value=10 + back)
            for metric in dashboard.metrics()
            for back in range(8)
        ]
    )


def test_the_dashboard_is_accessible_and_keeps_to_the_policy(transactional_db, live_server, reviewer, owner, browser):  # noqa: ANN001
    some_history(owner)
    base = str(live_server.url)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.add_init_script(RECORD_VIOLATIONS)
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text) if "Content Security Policy" in msg.text else None)
    try:
        sign_in(page, base, "reviewer", "pw")
        # In the header's Oversight menu (a plain link when it is the menu's only entry).
        menu = page.get_by_role("button", name=re.compile("^Oversight"))
        if menu.count() and menu.is_visible():
            menu.click()
        page.get_by_role("link", name="Dashboard", exact=True).click()
        page.wait_for_url(f"{base}/dashboard/")
        expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
        for panel in dashboard.panels():
            expect(page.locator(f"#dashboard-{panel.key}")).to_be_visible()
        coverage = page.locator("#dashboard-framework-coverage")
        chart = coverage.get_by_role("img", name="Framework items by status")
        expect(chart).to_be_visible()
        assert chart.bounding_box()["width"] > 300
        # Colours come from the stylesheet (the policy forbids inline styles): a met part is green.
        fill = coverage.locator("pattern rect.tone-ok").first.evaluate("node => getComputedStyle(node).fill")
        assert fill == "rgb(27, 110, 32)"
        expect(coverage.get_by_role("table").first).to_be_visible()
        tables = page.locator("details.chart-table")
        assert tables.count() >= 1, "no chart folds its table"
        folded = tables.first
        folded.locator("summary").click()
        expect(folded.get_by_role("table")).to_be_visible()
        assert blocking_violations(page) == []
        assert list(page.evaluate("window.__csp")) + console == []

        page.goto(f"{base}/")
        expect(page.get_by_role("heading", name="At a glance")).to_be_visible()
        assert blocking_violations(page) == []
        assert list(page.evaluate("window.__csp")) + console == []
    finally:
        page.close()
