"""The audit trail and an integration's history in a real browser (Debian's Chromium through
Playwright): an event's object is a link that opens it, the dates are date pickers that filter,
and a change reads as one entry in words ("Confidential", not "['confidential']")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from governance.actors import Actor
from governance.models import User
from governance.roles import Role
from inventory import services
from inventory.models import Integration
from tests.browser_support import BROWSER_MARKS, chromium, sign_in

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


@pytest.fixture
def summariser(transactional_db: Any, make_user: Callable[..., User]) -> Integration:
    """Slack summariser, registered by its owner and then changed once: it now reads
    confidential data and acts for its users."""
    owner = make_user("owner", Role.BUSINESS_USER)
    keeper = make_user("catalog-keeper", is_active=False)
    actor = Actor.system(on_behalf_of=keeper)
    system = services.resource_system_save(actor=actor, values={"code": "slack", "name": "Slack"})
    scope = services.scope_save(actor=actor, system=system, values={"name": "channels.read", "sensitivity": "low"})
    integration = services.integration_register(
        actor=owner,
        values={
            "name": "Slack summariser",
            "kind": "chatbot",
            "purpose": "Summarises channels.",
            "business_owner": owner,
            "autonomy": "suggest_only",
            "requested_scopes": [scope],
        },
    )
    return services.integration_update(
        actor=owner,
        integration=integration,
        values={"data_classifications": ["confidential"], "acts_for_users": True},
        reason="Now reads private channels",
    )


def test_an_event_opens_its_object_and_the_dates_filter(
    live_server: Any, make_user: Callable[..., User], summariser: Integration, browser: Any
) -> None:
    make_user("auditor", Role.AUDITOR)
    base = str(live_server.url)
    page = browser.new_page()
    try:
        sign_in(page, base, "auditor", "pw")
        page.goto(f"{base}/audit/")
        today = timezone.localdate()
        since = page.get_by_label("From", exact=True)
        assert since.get_attribute("type") == "date"
        assert page.get_by_label("To", exact=True).get_attribute("type") == "date"
        since.fill((today + dt.timedelta(days=1)).isoformat())
        page.get_by_role("button", name="Filter").click()
        expect(page.get_by_role("cell", name="No events match.")).to_be_visible()

        page.get_by_label("From", exact=True).fill(today.isoformat())
        page.get_by_label("Event type").select_option(label="Integration: changed")
        page.get_by_role("button", name="Filter").click()
        rows = page.locator("tbody tr")
        expect(rows).to_have_count(1)
        rows.first.get_by_role("link", name="Slack summariser").click()
        page.wait_for_url(f"{base}/inventory/{summariser.pk}/")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Slack summariser")
    finally:
        page.close()


def test_the_integration_history_reads_in_words_one_entry_per_change(
    live_server: Any, summariser: Integration, browser: Any
) -> None:
    base = str(live_server.url)
    page = browser.new_page()
    try:
        sign_in(page, base, "owner", "pw")
        page.goto(f"{base}/inventory/{summariser.pk}/")
        timeline = page.locator("section", has=page.locator("#h-timeline"))
        entries = timeline.locator("li.history-entry")
        expect(entries).to_have_count(2)  # registered, then changed: no "changed" twice
        changed = entries.first
        expect(changed).to_contain_text("Changed")
        expect(changed).to_contain_text("Now reads private channels")
        classes = changed.locator("li", has_text="Data classifications").locator(".history-value")
        expect(classes).to_have_text(["—", "Confidential"])
        acts = changed.locator("li", has_text="Acts for its users").locator(".history-value")
        expect(acts).to_have_text(["No", "Yes"])
        text = timeline.inner_text()
        assert "['confidential']" not in text and "True" not in text
        assert "integration.changed" not in text
    finally:
        page.close()
