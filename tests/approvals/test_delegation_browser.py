"""Delegation in a real browser (Debian's Chromium through Playwright): a reviewer going on leave
hands her queue to a colleague, who finds her item marked "on behalf of" and decides it; an IAM
admin reassigns an item; an owner names a co-owner, who then finds the integration."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from approvals.models import Decision, Delegation, StepAssignment
from governance.roles import Pool, Role
from inventory.selectors import integration_delegates
from tests.browser_support import BROWSER_MARKS, chromium, sign_in

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


def test_a_colleague_decides_the_away_reviewers_item_on_her_behalf(
    transactional_db, live_server, make_integration, submit, reviewer, make_user, browser
):  # noqa: ANN001
    req = submit(make_integration("Leave bot"))
    # Raj joins the reviewer's pool after the request: the step is hers alone.
    make_user("raj", Role.REVIEWER, Pool.IAM_REVIEWERS)
    base = str(live_server.url)
    page = browser.new_page()
    try:
        sign_in(page, base, "reviewer", "pw")
        page.goto(f"{base}/approvals/queue/")
        page.get_by_role("link", name="Delegate my queue").first.click()
        page.get_by_label("Colleague who stands in").fill("raj")
        page.get_by_label("Reason").fill("Annual leave")
        page.get_by_role("button", name="Delegate", exact=True).click()
        # Ids are not reset between browser tests on PostgreSQL: find the row by what it says.
        expect(page.locator("[id^=delegation-]").filter(has_text="Annual leave").first).to_contain_text("Active")
        page.context.clear_cookies()

        sign_in(page, base, "raj", "pw")
        page.goto(f"{base}/approvals/queue/")
        item = page.locator("li.queue-item").filter(has_text="Leave bot")
        expect(item).to_contain_text("On behalf of reviewer")
        item.get_by_label("Comment").fill("Covering for the reviewer")
        item.locator("form.decide button[type=submit]").click()
        item.wait_for(state="detached")
    finally:
        page.close()
    decision = Decision.objects.get(request=req)
    assert decision.reviewer.username == "raj"
    assert decision.on_behalf_of is not None and decision.on_behalf_of.username == "reviewer"
    assert Delegation.objects.get().delegate.username == "raj"


def test_an_iam_admin_reassigns_an_item_and_an_owner_names_a_co_owner(
    transactional_db, live_server, make_integration, submit, reviewer, owner, iam_admin, make_user, browser
):  # noqa: ANN001
    integration = make_integration("Handover bot")
    req = submit(integration)
    make_user("sam", Role.REVIEWER, Pool.IAM_REVIEWERS)
    carol = make_user("carol", Role.BUSINESS_USER)
    assignment = StepAssignment.objects.get(step__request=req, user=reviewer)
    base = str(live_server.url)
    page = browser.new_page()
    try:
        sign_in(page, base, "admin", "pw")
        page.goto(f"{base}/approvals/assignments/{assignment.pk}/reassign/")
        page.get_by_label("New reviewer").select_option("sam")
        page.get_by_label("Reason").fill("The reviewer is on sick leave")
        page.get_by_role("button", name="Reassign").click()
        page.wait_for_url(f"{base}/approvals/requests/{req.pk}/")
        expect(page.get_by_text("to sam")).to_be_visible()
        page.context.clear_cookies()

        sign_in(page, base, "owner", "pw")
        page.goto(f"{base}/inventory/{integration.pk}/")
        section = page.locator("section#delegates")
        section.get_by_label("Co-owner or delegate").fill("carol")
        section.get_by_role("button", name="Add co-owner").click()
        expect(page.locator("section#delegates li")).to_contain_text("carol")
        page.context.clear_cookies()

        sign_in(page, base, "carol", "pw")
        page.goto(f"{base}/inventory/")
        page.get_by_role("link", name="Handover bot").click()
        expect(page.get_by_role("heading", name="Handover bot")).to_be_visible()
    finally:
        page.close()
    assert StepAssignment.objects.get(step__request=req, user__username="sam").is_open
    assert list(integration_delegates(integration)) == [carol]
