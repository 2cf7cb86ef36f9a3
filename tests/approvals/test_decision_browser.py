"""Deciding on the request page in a real browser (Debian's Chromium through Playwright): a
rejection refused for its missing reason comes back as a rejection, never as an approval; nothing
is pre-selected on medium risk and the button names the action; a critical approval is confirmed;
a reviewer whose part is done sees who the step waits for; and a requester sent back for changes
reads the comment, edits and resubmits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from approvals import services
from approvals.models import Decision, DecisionKind, RequestStatus
from inventory.choices import IntegrationStatus
from tests.browser_support import BROWSER_MARKS, chromium, sign_in

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


@pytest.fixture
def page_as(browser: Any, live_server: Any) -> Iterator[Any]:
    """A signed-in page: ``page_as(username)``; every page is closed afterwards."""
    pages: list[Any] = []

    def open_as(username: str) -> Any:
        page = browser.new_page()
        pages.append(page)
        sign_in(page, str(live_server.url), username, "pw")
        return page

    yield open_as
    for page in pages:
        page.close()


def _decision_form(page: Any) -> Any:
    return page.locator("form[data-decision-form]")


def test_a_rejection_refused_for_its_reason_stays_a_rejection(
    transactional_db, live_server, page_as, reviewer, make_integration, submit, catalog
):  # noqa: ANN001
    req = submit(make_integration(tier="medium"), scopes=[catalog["files"], catalog["mail"]])
    page = page_as("reviewer")
    page.goto(f"{live_server.url}/approvals/requests/{req.pk}/")
    form = _decision_form(page)
    expect(form.get_by_label("Approve")).not_to_be_checked()
    form.get_by_label("Reject").check()
    form.get_by_role("button", name="Reject").click()
    # The page comes back with the rejection still chosen and the comment asked for.
    expect(form.locator(".field-error").first).to_contain_text("A comment is required to reject")
    expect(form.get_by_label("Reject")).to_be_checked()
    expect(form.get_by_label("Approve")).not_to_be_checked()
    form.get_by_label("Comment").fill("No business case")
    form.get_by_role("button", name="Reject").click()
    expect(page.locator("#main")).to_contain_text("Status: Rejected")
    assert Decision.objects.get(request=req).decision == DecisionKind.REJECT
    req.refresh_from_db()
    assert req.status == RequestStatus.REJECTED


def test_nothing_is_preselected_on_medium_risk_and_the_button_names_the_action(
    transactional_db, live_server, page_as, reviewer, make_integration, submit, catalog
):  # noqa: ANN001
    req = submit(make_integration(tier="medium"), scopes=[catalog["files"], catalog["mail"]])
    page = page_as("reviewer")
    page.goto(f"{live_server.url}/approvals/requests/{req.pk}/")
    form = _decision_form(page)
    for label in ("Approve", "Reject", "Request changes"):
        expect(form.get_by_label(label, exact=True)).not_to_be_checked()
    button = form.locator("button[type=submit]")
    expect(button).to_have_text("Submit decision")
    form.get_by_label("Approve", exact=True).check()
    expect(button).to_have_text("Approve 2 scopes")
    form.get_by_label("msgraph:Files.Read").uncheck()
    expect(button).to_have_text("Approve 1 scope")
    form.get_by_label("Request changes").check()
    expect(button).to_have_text("Request changes")
    form.get_by_label("Approve", exact=True).check()
    button.click()
    expect(page.locator(".messages")).to_contain_text("Approved")
    approval = Decision.objects.get(request=req)
    assert [scope.code for scope in approval.approved_scopes.all()] == ["msgraph:Mail.Read"]


def test_a_critical_approval_asks_for_confirmation(
    transactional_db, live_server, page_as, reviewer, second_reviewer, make_integration, submit
):  # noqa: ANN001
    req = submit(make_integration(tier="critical"))
    page = page_as("reviewer")
    page.goto(f"{live_server.url}/approvals/requests/{req.pk}/")
    form = _decision_form(page)
    confirm = form.get_by_label("approve this critical request")
    form.get_by_label("Reject").check()
    expect(confirm).to_be_hidden()  # only an approval is confirmed
    form.get_by_label("Approve", exact=True).check()
    expect(confirm).to_be_visible()
    form.get_by_role("button", name="Approve 1 scope").click()
    expect(form.locator(".field-error").first).to_contain_text("Confirm that you approve this critical request")
    assert not Decision.objects.filter(request=req).exists()
    form.get_by_label("approve this critical request").check()
    form.get_by_role("button", name="Approve 1 scope").click()
    expect(page.locator(".messages")).to_contain_text("Approved")
    assert Decision.objects.get(request=req).reviewer == reviewer


def test_after_approving_an_all_reviewers_step_the_page_says_who_it_waits_for(
    transactional_db, live_server, page_as, reviewer, second_reviewer, make_integration, submit
):  # noqa: ANN001
    req = submit(make_integration(tier="critical"))  # every IAM reviewer must approve
    page = page_as("reviewer")
    page.goto(f"{live_server.url}/approvals/requests/{req.pk}/")
    form = _decision_form(page)
    form.get_by_label("Approve", exact=True).check()
    form.get_by_label("approve this critical request").check()
    form.get_by_role("button", name="Approve 1 scope").click()
    made = timezone.localtime(Decision.objects.get(request=req).created_at)
    expect(page.locator("#now-waiting")).to_contain_text(
        f"You approved this step at {made:%H:%M}; waiting for reviewer2."
    )
    expect(_decision_form(page)).to_have_count(0)
    expect(page.locator("#now-waiting")).not_to_contain_text("Who can decide")


def test_changes_requested_the_requester_reads_the_comment_edits_and_resubmits(
    transactional_db, live_server, page_as, owner, reviewer, make_integration, submit, catalog
):  # noqa: ANN001
    req = submit(make_integration())
    services.request_decide(actor=reviewer, request=req, decision="request_changes", comment="Name the vendor")
    page = page_as("owner")
    page.goto(f"{live_server.url}/approvals/requests/{req.pk}/")
    expect(page.locator("#changes-asked")).to_contain_text("Name the vendor")
    page.get_by_role("link", name="Edit and resubmit").click()
    expect(page.locator("#changes-asked")).to_contain_text("Name the vendor")
    # A mistake first: the purpose emptied. What was typed stays.
    page.get_by_label("Vendor").fill("Contoso AI")
    page.get_by_label("Purpose").fill("")
    page.get_by_label("What you changed").fill("Vendor named")
    page.get_by_role("button", name="Resubmit for review").click()
    expect(page.locator("#error-summary")).to_contain_text("Purpose")
    expect(page.get_by_label("Vendor")).to_have_value("Contoso AI")
    expect(page.get_by_label("What you changed")).to_have_value("Vendor named")
    page.get_by_label("Purpose").fill("Drafts replies to customers")
    page.get_by_label("msgraph:Mail.Read").check()
    page.get_by_role("button", name="Resubmit for review").click()
    expect(page.locator(".messages")).to_contain_text("round 2")
    expect(page.locator("#main")).to_contain_text("Status: In review")
    req.refresh_from_db()
    assert req.status == RequestStatus.IN_REVIEW and req.round == 2
    assert set(req.requested_scopes.values_list("code", flat=True)) == {"msgraph:Files.Read", "msgraph:Mail.Read"}
    assert req.integration.vendor == "Contoso AI" and req.integration.status == IntegrationStatus.PENDING
