"""Each role's home page in a real browser (Debian's Chromium through Playwright): what needs the
person now, their own integrations apart from their reports', and an API token made in the page,
shown once and working against the API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect
from rest_framework.test import APIClient

from approvals.models import StepAssignment
from governance.models import ApiToken
from inventory.models import Integration
from tests.browser_support import BROWSER_MARKS, chromium, sign_in
from tests.governance.home_support import grant_expiring, person, register, seed_org

pytestmark = BROWSER_MARKS


@pytest.fixture
def site(transactional_db: None, live_server: Any) -> str:
    seed_org()
    return str(live_server.url)


@pytest.fixture
def browser(site: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


def _panel(page: Any, heading: str) -> Any:
    return page.locator("section.panel").filter(has=page.get_by_role("heading", name=heading, exact=True))


def test_alice_sees_each_draft_once_and_what_expires_soon(browser: Any, site: str) -> None:
    alice = person("alice")
    register(alice, "Lead enrichment", submit=False)
    soon = register(alice, "Meeting notes summariser", submit=True)
    later = register(alice, "Pipeline forecaster", submit=True, scopes=["slack:chat:write"])
    grant_expiring(soon, 12)
    grant_expiring(later, 200, "slack:chat:write")
    page = browser.new_page()
    try:
        sign_in(page, site, "alice", "demo")
        mine = _panel(page, "Your AI integrations")
        expect(mine.get_by_role("link", name="Lead enrichment")).to_have_count(1)
        expect(mine.get_by_role("link", name="Meeting notes summariser")).to_have_count(1)
        expiring = _panel(page, "Expiring soon")
        expect(expiring).to_contain_text("Meeting notes summariser")
        expect(expiring).to_contain_text("in 11 day")
        expect(expiring).not_to_contain_text("Pipeline forecaster")
        expiring.get_by_role("link", name="Ask to renew Meeting notes summariser").click()
        page.wait_for_url(f"{site}/approvals/renew/{soon.pk}/")
    finally:
        page.close()


def test_a_managers_home_keeps_his_reports_integrations_apart_from_his_own(browser: Any, site: str) -> None:
    mark = person("mark")
    register(mark, "Forecast digest", submit=False)
    for owner, name in (("alice", "Sales email assistant"), ("bob", "Support triage bot")):
        integration = register(person(owner), name, submit=True)
        Integration.objects.filter(pk=integration.pk).update(backup_owner=mark)
    page = browser.new_page()
    try:
        sign_in(page, site, "mark", "demo")
        mine = _panel(page, "Your AI integrations")
        expect(mine.get_by_role("list", name="Drafts to finish")).to_contain_text("Forecast digest")
        expect(mine).not_to_contain_text("Sales email assistant")
        reports = mine.get_by_role("list", name="Your reports'")
        expect(reports).to_contain_text("Alice Archer: 1 integration")
        expect(reports).to_contain_text("Bob Baker: 1 integration")
        reports.get_by_role("link", name="Bob Baker").click()
        expect(page.get_by_role("link", name="Support triage bot")).to_be_visible()
    finally:
        page.close()


def test_a_reviewer_sees_what_is_due_and_makes_an_api_token_shown_once(browser: Any, site: str) -> None:
    for name in ("Inbox sorter", "Deal scorer"):
        register(person("alice"), name, submit=True)
    first, second = StepAssignment.objects.filter(user__username="rita", is_open=True).order_by("id")
    StepAssignment.objects.filter(pk=first.pk).update(due_at=timezone.now() - timedelta(hours=2))
    StepAssignment.objects.filter(pk=second.pk).update(due_at=timezone.now() + timedelta(hours=3))
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    try:
        sign_in(page, site, "rita", "demo")
        queue = _panel(page, "Waiting for your decision")
        expect(queue).to_contain_text("2 steps waiting · 1 overdue · 1 due within 24 hours")
        expect(queue.get_by_role("list", name="Next in your queue").locator("li").first).to_contain_text("Overdue")
        tokens = _panel(page, "Your API tokens")
        expect(tokens).not_to_contain_text("manage.py")
        tokens.get_by_label("Name of a new token").fill("Queue script")
        tokens.get_by_label("Expires after").select_option("30")
        tokens.get_by_role("button", name="Create token").click()
        expect(page.get_by_role("heading", name="Your new API token")).to_be_visible()
        key = page.get_by_label("Token “Queue script”", exact=False).input_value()
        token = ApiToken.objects.get(user__username="rita", name="Queue script")
        assert key.startswith(token.prefix) and len(key) > 30
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert api.get("/api/v1/integrations/").status_code == 200
        # Never shown again: the home page lists it by its prefix only.
        page.get_by_role("link", name="Back to your home page").click()
        tokens = _panel(page, "Your API tokens")
        expect(tokens).to_contain_text(f"{token.prefix}… Queue script")
        assert key not in page.content()
        tokens.get_by_role("button", name=f"Revoke token {token.prefix} Queue script").click()
        expect(page.get_by_text(f"Token {token.prefix}… revoked")).to_be_visible()
        assert api.get("/api/v1/integrations/").status_code == 401
    finally:
        page.close()
