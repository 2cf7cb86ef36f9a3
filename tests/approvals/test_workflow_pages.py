"""The workflow pages read like a product: workflows under their request type from low to
critical risk, a step form in words that keeps only what applies to its choices, and a step
removed only after a confirmation page — still audited, still refused to outsiders."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals import services
from approvals.models import PoolKind, RequestType, Rule, Workflow, WorkflowStep
from governance.models import AuditEvent
from governance.roles import Pool

pytestmark = pytest.mark.django_db


def _form(step: WorkflowStep, **changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "order": step.order,
        "name": step.name,
        "pool_kind": step.pool_kind,
        "pool_group": "IAM reviewers",
        "rule": step.rule,
        "quorum": step.quorum,
        "sla_hours": step.sla_hours,
        "sla_minutes": "",
        "escalation_group": "",
        "escalation_user": "",
    }
    return values | changes


def test_workflows_are_grouped_by_request_type_and_ordered_low_to_critical(web_as, iam_admin, workflows):
    html = web_as(iam_admin).get("/approvals/workflows/").content.decode()
    headings = re.findall(r'<h2 id="type-([a-z_]+)">', html)
    assert headings == [value for value in RequestType.values if Workflow.objects.filter(request_type=value).exists()]
    registration = html[html.index('id="type-registration"') : html.index('id="type-expansion"')]
    tiers = re.findall(r'class="tier tier-([a-z]+)"', registration)
    assert tiers == ["low", "medium", "high", "critical"]
    assert "IAM reviewers" in html and ": iam_reviewers" not in html


def test_workflow_list_runs_a_fixed_number_of_queries(web_as, iam_admin, workflows):
    client = web_as(iam_admin)
    client.get("/approvals/workflows/")  # warm the session and content types
    with CaptureQueriesContext(connection) as small:
        assert client.get("/approvals/workflows/").status_code == 200
    workflow = Workflow.objects.get(request_type=RequestType.REGISTRATION, risk_tier="low")
    group = Group.objects.get(name=Pool.SECURITY_REVIEWERS)
    for order in range(2, 12):
        WorkflowStep.objects.create(workflow=workflow, order=order, name=f"Extra {order}", pool_group=group)
    with CaptureQueriesContext(connection) as large:
        assert client.get("/approvals/workflows/").status_code == 200
    assert len(large) == len(small), [query["sql"][:120] for query in large.captured_queries]


def test_step_form_speaks_in_words_and_sections(web_as, iam_admin, workflows):
    workflow = Workflow.objects.get(request_type=RequestType.REGISTRATION, risk_tier="low")
    step = workflow.steps.get()
    html = web_as(iam_admin).get(f"/approvals/workflows/{workflow.pk}/steps/{step.pk}/").content.decode()
    assert "SLA (hours)" in html and "Sla hours" not in html
    assert 'value="IAM reviewers"' in html  # the group in words, not "iam_reviewers"
    for legend in ("Who decides", "How many must approve", "Deadline and escalation", "When the step runs"):
        assert f"<legend>{legend}</legend>" in html
    assert "Applies when a group decides" in html  # without script, the help says when it applies
    assert 'data-applies-when="pool_kind" data-applies-value="group"' in html


def test_saving_a_step_clears_the_fields_its_choices_do_not_use(web_as, iam_admin, reviewer, workflows):
    workflow = Workflow.objects.get(request_type=RequestType.REGISTRATION, risk_tier="low")
    step = workflow.steps.get()
    client = web_as(iam_admin)
    url = f"/approvals/workflows/{workflow.pk}/steps/{step.pk}/"
    # Named people chosen, the group box still filled and a quorum number left from earlier.
    response = client.post(url, _form(step, pool_kind=PoolKind.USERS, pool_users=["reviewer", ""], quorum=5))
    assert response.status_code == 302
    step.refresh_from_db()
    assert step.pool_kind == PoolKind.USERS and step.pool_group is None and step.quorum == 1
    assert list(step.pool_users.values_list("username", flat=True)) == ["reviewer"]
    # Back to a group: the named people are cleared too.
    assert (
        client.post(
            url, _form(step, pool_kind=PoolKind.GROUP, pool_users=["reviewer"], rule=Rule.QUORUM, quorum=2)
        ).status_code
        == 302
    )
    step.refresh_from_db()
    assert step.pool_kind == PoolKind.GROUP and step.pool_group is not None and step.quorum == 2
    assert not step.pool_users.exists()


def test_step_form_names_an_unknown_person_or_group_next_to_the_field(web_as, iam_admin, workflows):
    workflow = Workflow.objects.get(request_type=RequestType.REGISTRATION, risk_tier="low")
    step = workflow.steps.get()
    url = f"/approvals/workflows/{workflow.pk}/steps/{step.pk}/"
    html = web_as(iam_admin).post(url, _form(step, pool_group="Nobody here")).content.decode()
    assert "No group is called “Nobody here”" in html
    html = web_as(iam_admin).post(url, _form(step, pool_kind=PoolKind.USERS, pool_users=["ghost"])).content.decode()
    assert "“ghost”" in html and 'aria-invalid="true"' in html


def test_removing_a_step_asks_first_then_removes_and_audits(web_as, iam_admin, workflows):
    workflow = Workflow.objects.get(request_type=RequestType.REGISTRATION, risk_tier="high")
    step = workflow.steps.order_by("order").last()
    assert step is not None
    client = web_as(iam_admin)
    url = f"/approvals/workflows/{workflow.pk}/steps/{step.pk}/delete/"
    confirm = client.get(url)
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert f"Remove “{step.name}”" in html and "Security reviewers" in html and "Remove step</button>" in html
    assert WorkflowStep.objects.filter(pk=step.pk).exists()  # asking removes nothing
    assert client.post(url).status_code == 302
    assert not WorkflowStep.objects.filter(pk=step.pk).exists()
    assert AuditEvent.objects.filter(action="workflow.changed", target_id=str(workflow.pk)).exists()


def test_the_last_step_is_not_offered_for_removal(web_as, iam_admin, workflows):
    workflow = Workflow.objects.get(request_type=RequestType.REGISTRATION, risk_tier="low")
    step = workflow.steps.get()
    url = f"/approvals/workflows/{workflow.pk}/steps/{step.pk}/delete/"
    html = web_as(iam_admin).get(url).content.decode()
    assert "needs at least one" in html and "Remove step</button>" not in html
    web_as(iam_admin).post(url)
    assert WorkflowStep.objects.filter(pk=step.pk).exists()


@pytest.mark.parametrize("who", ["reviewer", "owner", "auditor"])
def test_the_removal_page_is_404_for_everyone_but_iam_admins(who, request, web_as, workflows):
    user = request.getfixturevalue(who)
    workflow = Workflow.objects.get(request_type=RequestType.REGISTRATION, risk_tier="high")
    step = workflow.steps.order_by("order").last()
    assert step is not None
    client = web_as(user)
    assert client.get(f"/approvals/workflows/{workflow.pk}/steps/{step.pk}/delete/").status_code == 404
    # A POST is refused too (404 for those who cannot see workflows, 403 for the read-only auditor).
    assert client.post(f"/approvals/workflows/{workflow.pk}/steps/{step.pk}/delete/").status_code in (403, 404)
    assert WorkflowStep.objects.filter(pk=step.pk).exists()


def test_service_clears_a_pool_group_for_owners_of_the_scopes(iam_admin, workflows):
    workflow = Workflow.objects.get(request_type=RequestType.REGISTRATION, risk_tier="medium")
    group = Group.objects.get(name=Pool.IAM_REVIEWERS)
    values = {
        "order": 3,
        "name": "Owners again",
        "pool_kind": PoolKind.RESOURCE_OWNERS,
        "pool_group": group,
        "rule": Rule.ANY,
        "quorum": 4,
        "sla_hours": 24,
    }
    step = services.workflow_step_save(actor=iam_admin, workflow=workflow, step=None, values=values)
    assert step.pool_group is None and step.quorum == 1
