"""A business user registers an integration in a real browser (Debian's Chromium through
Playwright): validation errors come back next to the fields with nothing typed lost, she fixes
them, submits, and sees it pending with its risk factors. Screenshots in var/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.browser_support import BROWSER_MARKS, chromium, sign_in

SHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"

pytestmark = BROWSER_MARKS


@pytest.fixture
def site(transactional_db: None, live_server: Any) -> str:
    from governance.actors import Actor
    from governance.demo import seed_people
    from governance.models import User
    from governance.roles import roles_sync
    from inventory.demo import _seed_catalog

    roles_sync()
    seed_people()
    _seed_catalog(Actor.coerce(User.objects.get(username="ivan")))
    return str(live_server.url)


@pytest.fixture
def browser(site: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


def test_business_user_registers_fixes_errors_and_submits(browser: Any, site: str) -> None:
    from inventory.models import Integration

    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, site, "alice", "demo")
    page.get_by_role("link", name="Register an integration").first.click()
    page.wait_for_url(f"{site}/inventory/new/")

    # Every input has a label; the sections read in order.
    unlabelled = page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).length"""
    )
    assert unlabelled == 0
    legends = page.locator("fieldset.form-section > legend").all_inner_texts()
    assert legends == ["1. What it is", "2. Who owns it", "3. What it touches", "4. How it authenticates"]

    page.get_by_label("Name").fill("Deal desk copilot")
    page.get_by_label("Purpose").fill("Prepares deal summaries from CRM data for the sales team.")
    page.get_by_label("Vendor").fill("Acme AI")
    # Kind left unchosen: an error.
    page.get_by_label("Confidential").check()
    page.get_by_label("It acts as the signed-in user (delegated user context)").check()
    page.get_by_label("salesforce:api").check()
    page.get_by_label("msgraph:Mail.Read").check()
    page.locator("#id_cred-0-type").select_option("api_key")
    page.locator("#id_cred-0-identifier").fill("sk-live-4f9aXk2LmN8pQr7StUvWxYz")
    page.get_by_role("button", name="Submit for approval").click()

    page.wait_for_selector("#error-summary")
    page.screenshot(path=str(SHOTS / "inventory-form-errors.png"), full_page=True)
    assert page.locator("#id_kind").get_attribute("aria-invalid") == "true"
    assert "secret" in page.locator("#id_cred-0-identifier-error").inner_text()
    assert page.locator("#id_cred-0-identifier").get_attribute("aria-invalid") == "true"
    # Nothing typed is lost.
    assert page.get_by_label("Name").input_value() == "Deal desk copilot"
    assert page.get_by_label("Vendor").input_value() == "Acme AI"
    assert page.get_by_label("salesforce:api").is_checked() and page.get_by_label("msgraph:Mail.Read").is_checked()
    assert page.get_by_label("Confidential").is_checked()
    assert page.get_by_label("It acts as the signed-in user (delegated user context)").is_checked()
    assert page.locator("#id_cred-0-type").input_value() == "api_key"
    assert not Integration.objects.exists()

    page.get_by_label("Kind").select_option("agent")
    page.locator("#id_cred-0-identifier").fill("deal-desk-key-01")
    page.get_by_role("button", name="Submit for approval").click()
    page.wait_for_url(f"{site}/inventory/*/")
    assert page.locator("#status").inner_text() == "Pending approval"
    factors = page.locator("#risk-factors").inner_text()
    assert "delegated user context" in factors and "third-party vendor" in factors
    page.screenshot(path=str(SHOTS / "inventory-detail-pending.png"), full_page=True)
    integ = Integration.objects.get()
    assert integ.status == "pending" and integ.business_owner.username == "alice"
    assert sorted(s.code for s in integ.requested_scopes.all()) == ["msgraph:Mail.Read", "salesforce:api"]
    page.goto(f"{site}/inventory/?status=pending")
    assert page.get_by_role("link", name="Deal desk copilot").is_visible()
    page.screenshot(path=str(SHOTS / "inventory-list.png"), full_page=True)


def test_owners_are_found_by_typing_and_asked_to_accept(browser: Any, site: str) -> None:
    """The owner fields are search boxes: the page suggests her colleagues, typing fetches more
    (inventory/people.js, allowed by the Content-Security-Policy), and naming a colleague asks
    them to accept."""
    from inventory.models import Integration, OwnershipTransfer

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    sign_in(page, site, "alice", "demo")
    page.goto(f"{site}/inventory/new/")

    assert page.locator("select#id_technical_owner").count() == 0
    suggested = page.locator("#people-options option").evaluate_all("options => options.map(o => o.value)")
    assert {"alice", "bob", "mark"} <= set(suggested) and "rita" not in suggested
    page.get_by_label("Technical owner").fill("ri")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#people-options option')].some(o => o.value === 'rita')"
    )
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p]

    page.get_by_label("Name").fill("Pipeline helper")
    page.get_by_label("Kind").select_option("agent")
    page.get_by_label("Purpose").fill("Summarises the sales pipeline every Monday.")
    page.get_by_label("Technical owner").fill("bob")
    page.get_by_role("button", name="Save as draft").click()
    page.wait_for_url(f"{site}/inventory/*/")
    assert "was asked to become the technical owner" in page.content()
    integ = Integration.objects.get(name="Pipeline helper")
    assert integ.technical_owner is None
    assert OwnershipTransfer.objects.get(integration=integ).to_user.username == "bob"
