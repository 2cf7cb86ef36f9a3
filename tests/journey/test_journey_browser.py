"""The product walked as its people walk it, in a real browser (Debian's Chromium through
Playwright) and with real emails (an SMTP server on 127.0.0.1): alice registers, makes mistakes
and submits; rita decides from her queue and the next reviewers from the link in their email;
alice reads the outcome email and her grants. Then a rejection, changes requested and
resubmitted, a suspension and an auditor's walk. Each person signs in through the login page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser_support import BROWSER_MARKS, chromium, sign_in
from tests.mail_support import Mailbox

pytestmark = BROWSER_MARKS


@pytest.fixture
def site(transactional_db: None, live_server: Any, settings: Any, smtp: tuple[Mailbox, int]) -> str:
    from governance.actors import Actor
    from governance.demo import seed_people
    from governance.models import User
    from governance.roles import roles_sync
    from inventory.demo import _seed_catalog

    roles_sync()
    seed_people()
    _seed_catalog(Actor.coerce(User.objects.get(username="ivan")))
    # The emails' links point at the portal as it is served (as SITE_URL does for `make run`).
    settings.SITE_URL = str(live_server.url)
    return str(live_server.url)


@pytest.fixture
def browser(site: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


@pytest.fixture
def mailbox(smtp: tuple[Mailbox, int]) -> Mailbox:
    return smtp[0]


def _as(browser: Any, site: str, username: str) -> Any:
    """A fresh browser context (its own cookies) signed in as ``username``."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, site, username, "demo")
    return page


def _mail_to(mailbox: Mailbox, username: str) -> list[EmailMessage]:
    from governance import tasks as governance_tasks

    governance_tasks.outbox_flush()
    return mailbox.to(f"{username}@example.com")


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def _request_link(message: EmailMessage, site: str) -> str:
    found = re.search(rf"{re.escape(site)}/approvals/requests/\d+/\S*", _text(message))
    assert found, _text(message)
    return found.group(0)


def _register(page: Any, site: str, name: str) -> None:
    """Alice's registration: a draft first, then a mistake the form names, then the submit."""
    page.get_by_role("link", name="Register an integration").first.click()
    page.wait_for_url(f"{site}/inventory/new/")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Kind").select_option("agent")
    page.get_by_label("Purpose").fill("Prepares deal summaries from CRM data for the sales team.")
    page.get_by_role("button", name="Save as draft").click()
    page.wait_for_url(re.compile(rf"{re.escape(site)}/inventory/\d+/$"))
    page.get_by_role("link", name="Edit").first.click()
    page.get_by_label("Vendor").fill("Acme AI")
    page.get_by_label("Confidential").check()
    page.get_by_label("salesforce:api").check()
    page.locator("#id_cred-0-type").select_option("api_key")
    page.locator("#id_cred-0-identifier").fill("sk-live-4f9aXk2LmN8pQr7StUvWxYz")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.locator("#id_cred-0-identifier-error")).to_contain_text("secret")
    assert page.get_by_label("Vendor").input_value() == "Acme AI", "what was typed is kept"
    page.locator("#id_cred-0-identifier").fill("deal-desk-key-01")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.locator("#status")).to_have_text("Pending approval")


def _decide_from_queue(page: Any, site: str, name: str) -> None:
    page.goto(f"{site}/approvals/queue/")
    item = page.locator("li.queue-item", has_text=name)
    form = item.locator("form.decide")
    form.get_by_label("Approve", exact=True).check()
    form.get_by_label("Comment", exact=True).fill("Needed for the deal desk; read only.")
    form.locator("button[type=submit]").click()
    expect(page.locator("#queue-status")).to_contain_text(name)
    expect(item).to_have_count(0)


def _decide_from_email(browser: Any, site: str, mailbox: Mailbox, username: str, name: str) -> None:
    """The next reviewer opens the link of the email that assigned them and approves there."""
    [message] = [m for m in _mail_to(mailbox, username) if name in str(m["Subject"])][-1:]
    page = _as(browser, site, username)
    try:
        page.goto(_request_link(message, site))
        expect(page.locator("main")).to_contain_text("Prepares deal summaries")
        form = page.locator("form.decide")
        form.get_by_label("Approve", exact=True).check()
        form.get_by_label("Comment", exact=True).fill("Resource owner agrees.")
        form.locator("button[type=submit]").click()
        expect(page.locator(".messages")).to_contain_text(name)
    finally:
        page.context.close()


def _open_assignees(name: str) -> list[str]:
    from approvals.models import StepAssignment

    return sorted(
        StepAssignment.objects.filter(step__request__integration__name=name, is_open=True)
        .values_list("user__username", flat=True)
        .distinct()
    )


def test_a_registration_from_draft_to_grants_through_queue_and_email(browser: Any, site: str, mailbox: Mailbox) -> None:
    from inventory.models import Integration

    alice = _as(browser, site, "alice")
    _register(alice, site, "Deal desk copilot")
    rita = _as(browser, site, "rita")
    _decide_from_queue(rita, site, "Deal desk copilot")
    rita.context.close()
    # Every later step is decided from the email that assigned it, by someone it names.
    for _round in range(4):
        waiting = _open_assignees("Deal desk copilot")
        if not waiting:
            break
        _decide_from_email(browser, site, mailbox, waiting[0], "Deal desk copilot")
    assert Integration.objects.get(name="Deal desk copilot").status == "active"

    [outcome] = [m for m in _mail_to(mailbox, "alice") if str(m["Subject"]).startswith("Approved")]
    assert "Deal desk copilot" in str(outcome["Subject"]) and "until" in str(outcome["Subject"])
    alice.goto(_request_link(outcome, site))
    expect(alice.get_by_text("Status: Approved")).to_be_visible()
    alice.get_by_role("link", name="Deal desk copilot").first.click()
    expect(alice.locator("main")).to_contain_text("salesforce:api")
    expect(alice.locator("#status")).to_have_text("Active")
    alice.context.close()


def _submitted(name: str, owner: str = "alice") -> Any:
    """An integration registered and submitted through the services, as the form does."""
    from approvals.models import AccessRequest
    from governance.models import User
    from inventory import services as inventory_services
    from inventory.models import Scope

    person = User.objects.get(username=owner)
    values = {
        "name": name,
        "kind": "agent",
        "purpose": "Answers support tickets from the knowledge base.",
        "business_owner": person,
        "requested_scopes": list(Scope.objects.filter(code="salesforce:api")),
    }
    integration = inventory_services.integration_register(actor=person, values=values, submit=True)
    return AccessRequest.objects.get(integration=integration)


def test_a_rejection_and_changes_requested_then_resubmitted(browser: Any, site: str, mailbox: Mailbox) -> None:
    rejected = _submitted("Ticket triage bot")
    changed = _submitted("Mailbox summariser")
    rita = _as(browser, site, "rita")
    for req, choice, comment in [
        (rejected, "Reject", "No business case: support already has a triage tool."),
        (changed, "Request changes", "Say which mailboxes it reads and why."),
    ]:
        rita.goto(f"{site}/approvals/requests/{req.pk}/")
        form = rita.locator("form.decide")
        form.get_by_label(choice, exact=True).check()
        form.locator("button[type=submit]").click()
        # Refused for its missing reason: the choice stays what rita chose.
        expect(rita.locator("form.decide").get_by_label(choice, exact=True)).to_be_checked()
        rita.locator("form.decide").get_by_label("Comment", exact=True).fill(comment)
        rita.locator("form.decide button[type=submit]").click()
        expect(rita.locator(".messages")).to_be_visible()
    rita.context.close()
    rejected.refresh_from_db()
    assert rejected.status == "rejected"

    mails = {str(m["Subject"]): m for m in _mail_to(mailbox, "alice")}
    assert any(s.startswith("Rejected — Ticket triage bot") for s in mails)
    [changes] = [m for s, m in mails.items() if s.startswith("Changes requested — Mailbox summariser")]
    alice = _as(browser, site, "alice")
    alice.goto(_request_link(changes, site))
    expect(alice.locator("main")).to_contain_text("Say which mailboxes it reads and why.")
    alice.get_by_label("Purpose").fill("Summarises the shared support mailbox only; reads no personal mailbox.")
    alice.locator("form button[type=submit]").last.click()
    expect(alice.locator("main")).to_contain_text("Round 2")
    alice.context.close()
    changed.refresh_from_db()
    assert changed.status == "in_review" and changed.round == 2


def test_a_suspension_tells_the_owner_and_an_auditor_walks_the_trail(browser: Any, site: str, mailbox: Mailbox) -> None:
    from approvals import services as approval_services
    from governance.models import User

    req = _submitted("Forecast agent")
    for _round in range(4):
        waiting = _open_assignees("Forecast agent")
        if not waiting:
            break
        approval_services.request_decide(
            actor=User.objects.get(username=waiting[0]), request=req, decision="approve", comment="ok"
        )
    ivan = _as(browser, site, "ivan")
    ivan.goto(f"{site}/inventory/{req.integration_id}/")
    ivan.get_by_text("Suspend (kill switch)").click()
    ivan.locator("#suspend-reason").fill("Token leaked in a public repository.")
    ivan.get_by_role("button", name="Suspend now").click()
    expect(ivan.locator("#status")).to_have_text("Suspended")
    ivan.context.close()
    assert any("Forecast agent" in str(m["Subject"]) for m in _mail_to(mailbox, "alice"))

    audrey = _as(browser, site, "audrey")
    audrey.goto(f"{site}/audit/")
    entry = audrey.locator("tr, li").filter(has_text="Token leaked in a public repository.").first
    expect(entry).to_be_visible()
    entry.get_by_role("link", name=re.compile("Forecast agent")).first.click()
    expect(audrey.locator("h1")).to_contain_text("Forecast agent")
    expect(audrey.locator("main")).to_contain_text("Suspended")
    # Read-only: the auditor is offered no action on it.
    assert audrey.get_by_role("button", name="Suspend now").count() == 0
    audrey.context.close()


@pytest.fixture
def demo_data(site: str) -> str:
    """The demo's integrations and grants (alice's and bob's), on top of the people and catalog."""
    from io import StringIO

    from django.core.management import call_command

    call_command("seed_demo", stdout=StringIO())
    return site


def test_ivan_defines_and_launches_a_campaign_bob_recertifies_from_his_email_and_the_report(
    browser: Any, demo_data: str, mailbox: Mailbox
) -> None:
    from approvals.campaigns.models import Campaign, ReviewItem
    from approvals.campaigns.services.launch import campaign_launch_run

    site = demo_data
    ivan = _as(browser, site, "ivan")
    ivan.goto(f"{site}/campaigns/definitions/new/")
    ivan.get_by_label("Name", exact=True).fill("Support tools — quarterly")
    ivan.get_by_label("Owner", exact=True).fill("ivan")
    ivan.get_by_label("Reviewer", exact=True).select_option("business_owner")
    ivan.get_by_label("Repeats (cron, UTC)").fill("0 9 * 1,4,7,10 1#1")
    expect(ivan.locator("#cron-words")).to_contain_text("Monday")
    ivan.get_by_role("button", name="Save").click()
    expect(ivan.locator(".messages")).to_be_visible()
    ivan.goto(f"{site}/campaigns/definitions/")
    ivan.get_by_role("button", name="Launch a run now of Support tools — quarterly").click()
    expect(ivan.locator(".messages")).to_contain_text("launched")
    campaign = Campaign.objects.get(definition__name="Support tools — quarterly")
    campaign_launch_run(campaign_id=campaign.pk)  # what the worker runs
    assert ReviewItem.objects.filter(campaign=campaign, reviewer__username="bob").exists()

    [assigned] = [m for m in _mail_to(mailbox, "bob") if "Support tools" in str(m["Subject"])]
    link = re.search(rf"{re.escape(site)}/campaigns/review/\S*", _text(assigned))
    assert link, _text(assigned)
    bob = _as(browser, site, "bob")
    bob.goto(link.group(0))
    expect(bob.locator("input[type=radio]:checked")).to_have_count(0)
    waiting = bob.locator("li.review-item").count()
    assert waiting > 0
    bob.get_by_role("button", name=re.compile("Accept the recommendations for all")).click()
    expect(bob.locator(".messages")).to_contain_text("decided as recommended")
    bob.context.close()
    bobs = ReviewItem.objects.filter(campaign=campaign, reviewer__username="bob")
    assert bobs.count() >= waiting and not bobs.filter(status="open").exists()

    # Ivan's campaign page reloads itself once it sees the launch finished: a navigation racing
    # that reload is aborted, so the report opens in a page of its own.
    context = ivan.context
    ivan.close()
    ivan = context.new_page()
    ivan.goto(f"{site}/campaigns/{campaign.pk}/report/")
    expect(ivan.locator("svg.progress-chart rect.chart-bar").first).to_be_attached()
    expect(ivan.locator("main")).to_contain_text("Support tools — quarterly")
    ivan.context.close()
