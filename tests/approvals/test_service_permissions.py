"""Who may act is decided by the services themselves, whoever calls them (a page, the API, a
command, a shell): the workflow and expiry settings are changed by IAM admins only, a renewal is
asked for by the integration's owners only, and a refused call changes nothing and audits
nothing. The pages keep answering as before: 404 where the page is not seen, 403 where it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from approvals import services
from approvals.models import GrantExpiryPolicy, Workflow, WorkflowStep
from governance.exceptions import NotAllowed
from governance.models import AuditEvent, User
from inventory.models import Integration

pytestmark = pytest.mark.django_db

NOT_ADMINS = ["reviewer", "auditor", "owner"]


def low_workflow() -> Workflow:
    return Workflow.objects.get(request_type="registration", risk_tier="low")


def step_values(step: WorkflowStep, **changes: Any) -> dict[str, Any]:
    return {
        "order": step.order,
        "name": step.name,
        "pool_kind": step.pool_kind,
        "pool_group": step.pool_group,
        "rule": step.rule,
        "quorum": step.quorum,
        "sla_hours": step.sla_hours,
        "only_for_tiers": step.only_for_tiers,
    } | changes


@pytest.mark.parametrize("who", NOT_ADMINS)
def test_only_an_iam_admin_sets_the_default_expiry(who: str, request: pytest.FixtureRequest, workflows: None) -> None:
    actor = request.getfixturevalue(who)
    with pytest.raises(NotAllowed):
        services.expiry_policy_set(actor=actor, risk_tier="low", days=7)
    assert GrantExpiryPolicy.objects.get(risk_tier="low").days == 365
    assert not AuditEvent.objects.filter(action="grant_expiry_policy.changed").exists()
    services.expiry_policy_set(actor=request.getfixturevalue("iam_admin"), risk_tier="low", days=7)
    assert GrantExpiryPolicy.objects.get(risk_tier="low").days == 7


@pytest.mark.parametrize("who", NOT_ADMINS)
def test_only_an_iam_admin_changes_or_adds_a_workflow_step(
    who: str, request: pytest.FixtureRequest, workflows: None
) -> None:
    actor = request.getfixturevalue(who)
    workflow = low_workflow()
    step = workflow.steps.get()
    with pytest.raises(NotAllowed):
        services.workflow_step_save(actor=actor, workflow=workflow, step=step, values=step_values(step, sla_hours=1))
    with pytest.raises(NotAllowed):
        services.workflow_step_save(
            actor=actor, workflow=workflow, step=None, values=step_values(step, order=2, name="Extra")
        )
    step.refresh_from_db()
    assert step.sla_hours == 72 and workflow.steps.count() == 1
    assert not AuditEvent.objects.filter(action="workflow.changed").exists()


@pytest.mark.parametrize("who", NOT_ADMINS)
def test_only_an_iam_admin_removes_a_workflow_step(
    who: str, request: pytest.FixtureRequest, workflows: None, iam_admin: User
) -> None:
    workflow = Workflow.objects.get(request_type="registration", risk_tier="high")
    step = workflow.steps.order_by("order").last()
    assert step is not None
    with pytest.raises(NotAllowed):
        services.workflow_step_delete(actor=request.getfixturevalue(who), step=step)
    assert workflow.steps.count() == 3
    assert not AuditEvent.objects.filter(action="workflow.changed").exists()
    services.workflow_step_delete(actor=iam_admin, step=step)
    assert workflow.steps.count() == 2


def test_only_an_owner_asks_to_renew_access(
    make_integration: Callable[..., Integration], reviewer: User, owner: User
) -> None:
    integration = make_integration(status="active")
    with pytest.raises(NotAllowed):
        services.renewal_request_open(actor=reviewer, integration=integration)
    assert not integration.access_requests.exists()


def test_the_workflow_pages_answer_as_before(web_as: Any, auditor: User, reviewer: User, workflows: None) -> None:
    workflow = low_workflow()
    step = workflow.steps.get()
    edit = f"/approvals/workflows/{workflow.pk}/steps/{step.pk}/"
    remove = f"/approvals/workflows/{workflow.pk}/steps/{step.pk}/delete/"
    assert web_as(reviewer).get(edit).status_code == 404
    assert web_as(reviewer).post(remove).status_code == 404
    assert web_as(auditor).get(edit).status_code == 404  # the form is only for those who may save it
    assert web_as(auditor).post(remove).status_code == 403  # seen, read-only
    assert WorkflowStep.objects.filter(pk=step.pk).exists()
