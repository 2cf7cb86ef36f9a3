"""The workflow pages in a real browser (Debian's Chromium through Playwright): workflows under
their request type from low to critical risk, a step form that shows only the fields of the
chosen pool and rule, and a step removed only after a confirmation page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from approvals.models import PoolKind, RequestType, Workflow, WorkflowStep
from tests.browser_support import BROWSER_MARKS, chromium, sign_in

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


def test_workflows_read_by_request_type_then_low_to_critical(
    transactional_db, live_server, iam_admin, workflows, browser
):  # noqa: ANN001
    base = str(live_server.url)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        sign_in(page, base, "admin", "pw")
        page.goto(f"{base}/approvals/workflows/")
        headings = page.locator("main h2[id^='type-']").all_text_contents()
        assert headings[:2] == ["New registration", "Scope expansion"]
        registration = page.locator("section.workflow-type").filter(
            has=page.get_by_role("heading", name="New registration", level=2)
        )
        tiers = registration.locator("h3 .tier").all_text_contents()
        assert tiers == ["Low risk", "Medium risk", "High risk", "Critical risk"]
    finally:
        page.close()


def test_step_form_shows_only_the_fields_of_the_chosen_pool_and_rule(
    transactional_db, live_server, iam_admin, reviewer, workflows, browser
):  # noqa: ANN001
    workflow = Workflow.objects.get(request_type=RequestType.REGISTRATION, risk_tier="low")
    step = workflow.steps.get()
    base = str(live_server.url)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        sign_in(page, base, "admin", "pw")
        page.goto(f"{base}/approvals/workflows/{workflow.pk}/steps/{step.pk}/")
        group = page.get_by_label("Group", exact=True)
        people = page.get_by_role("group", name="People")
        quorum = page.get_by_label("Approvals needed")
        expect(page.get_by_label("SLA (hours)")).to_be_visible()
        expect(group).to_be_visible()
        expect(group).to_have_value("IAM reviewers")
        expect(people).to_be_hidden()
        expect(quorum).to_be_hidden()
        # Named people: their boxes show and the group goes.
        page.get_by_label("Named people").check()
        expect(people).to_be_visible()
        expect(group).to_be_hidden()
        # The scopes' system owners need neither.
        page.get_by_label("Owners of the requested scopes' systems").check()
        expect(people).to_be_hidden()
        expect(group).to_be_hidden()
        # A quorum asks for its number.
        page.get_by_label("A quorum of N reviewers").check()
        expect(quorum).to_be_visible()
        expect(quorum).to_have_value("2")
        page.get_by_label("Any one reviewer").check()
        expect(quorum).to_be_hidden()
        # Name two people, one in a box added on demand, and save.
        page.get_by_label("Named people").check()
        page.get_by_label("Person 1", exact=True).fill("reviewer")
        for _ in range(2):
            people.get_by_role("button", name="Add another person").click()
        expect(page.get_by_label("Person 4", exact=True)).to_be_focused()
        page.get_by_label("Person 4", exact=True).fill("admin")
        page.get_by_role("button", name="Save step").click()
        page.wait_for_url(f"{base}/approvals/workflows/")
    finally:
        page.close()
    step.refresh_from_db()
    assert step.pool_kind == PoolKind.USERS and step.pool_group is None
    assert sorted(step.pool_users.values_list("username", flat=True)) == ["admin", "reviewer"]


def test_remove_asks_for_confirmation_before_removing_a_step(
    transactional_db, live_server, iam_admin, workflows, browser
):  # noqa: ANN001
    workflow = Workflow.objects.get(request_type=RequestType.REGISTRATION, risk_tier="high")
    step = workflow.steps.order_by("order").last()
    assert step is not None
    base = str(live_server.url)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        sign_in(page, base, "admin", "pw")
        page.goto(f"{base}/approvals/workflows/")
        page.get_by_role("link", name=f"Remove step {step.name} of {workflow.name}").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Remove “{step.name}” from {workflow.name}?")
        assert WorkflowStep.objects.filter(pk=step.pk).exists()
        # Cancel keeps it.
        page.get_by_role("link", name="Cancel").click()
        page.wait_for_url(f"{base}/approvals/workflows/#wf-{workflow.pk}")
        assert WorkflowStep.objects.filter(pk=step.pk).exists()
        # Confirming removes it and says so.
        page.get_by_role("link", name=f"Remove step {step.name} of {workflow.name}").click()
        page.get_by_role("button", name="Remove step").click()
        page.wait_for_url(f"{base}/approvals/workflows/")
        expect(page.get_by_role("status")).to_contain_text(f"Step “{step.name}” removed")
    finally:
        page.close()
    assert not WorkflowStep.objects.filter(pk=step.pk).exists()
