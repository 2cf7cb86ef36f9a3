"""Separation of duties, enforced by the server whoever calls: owners, requesters and repeat
approvers get 403 on the API, also when they reach the pool through a group; a step whose only
eligible reviewers are excluded escalates instead of stalling."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from approvals import services
from approvals.models import AccessRequest, StepStatus, Workflow, WorkflowStep
from governance.models import AuditEvent
from governance.roles import Pool, Role

pytestmark = pytest.mark.django_db


def decide(api_as, user, req: AccessRequest, decision: str = "approve", **extra):  # noqa: ANN001, ANN201
    return api_as(user).post(
        f"/api/v1/access-requests/{req.pk}/decisions/", {"decision": decision, "comment": "c", **extra}, format="json"
    )


def test_owner_cannot_approve_own_request_even_as_an_iam_reviewer(
    make_user, make_integration, submit, api_as, reviewer
):
    owner_reviewer = make_user("ownerrev", Role.REVIEWER, Pool.IAM_REVIEWERS)
    req = submit(make_integration(business_owner=owner_reviewer))
    step = req.steps.get(status=StepStatus.ACTIVE)
    assert owner_reviewer not in step.reviewers.all(), "the queue never offers it"
    response = decide(api_as, owner_reviewer, req)
    assert response.status_code == 403
    assert "own this integration" in response.json()["detail"]
    assert response["Content-Type"].startswith("application/problem+json")


def test_technical_owner_cannot_decide(make_user, make_integration, submit, api_as, reviewer):
    tech = make_user("tech", Role.REVIEWER, Pool.IAM_REVIEWERS)
    req = submit(make_integration(technical_owner=tech))
    assert decide(api_as, tech, req).status_code == 403


def test_requester_cannot_approve_own_request(make_user, make_integration, submit, api_as, reviewer):
    requester = make_user("req", Role.REVIEWER, Pool.IAM_REVIEWERS)
    req = submit(make_integration(), actor=requester)
    assert req.requester == requester
    response = decide(api_as, requester, req)
    assert response.status_code == 403
    assert "your own request" in response.json()["detail"]


def test_repeat_approver_cannot_decide_a_second_step_of_the_same_request(
    make_user, make_integration, submit, api_as, reviewer, resource_owner, catalog
):
    # The IAM reviewer also owns the HR system, so they are in both steps' pools.
    catalog["hr"].system.owners.add(reviewer)
    req = submit(make_integration(tier="medium"), scopes=[catalog["hr"]])
    assert decide(api_as, reviewer, req).status_code == 201
    step = req.steps.get(status=StepStatus.ACTIVE)
    assert step.name == "Resource owner"
    assert list(step.reviewers.all()) == [resource_owner], "the first step's approver is not assigned again"
    response = decide(api_as, reviewer, req)
    assert response.status_code == 403
    assert "already decided the step" in response.json()["detail"]


def test_repeat_approver_is_refused_also_through_a_group_pool(
    make_user, make_integration, submit, api_as, reviewer, catalog
):
    # A workflow whose two steps both draw from the IAM reviewers group.
    wf = Workflow.objects.get(request_type="registration", risk_tier="low")
    WorkflowStep.objects.create(
        workflow=wf,
        order=2,
        name="Second IAM look",
        pool_kind="group",
        pool_group=Group.objects.get(name=Pool.IAM_REVIEWERS),
    )
    other = make_user("raj", Role.REVIEWER, Pool.IAM_REVIEWERS)
    req = submit(make_integration())
    assert decide(api_as, reviewer, req).status_code == 201
    step = req.steps.get(status=StepStatus.ACTIVE)
    assert list(step.reviewers.all()) == [other]
    assert decide(api_as, reviewer, req).status_code == 403
    assert decide(api_as, other, req).status_code == 201


def test_reviewer_not_assigned_to_the_step_gets_403(make_integration, submit, api_as, reviewer, security_reviewer):
    req = submit(make_integration())
    response = decide(api_as, security_reviewer, req)
    assert response.status_code == 403
    assert "not assigned" in response.json()["detail"]


def test_auditor_cannot_decide(make_integration, submit, api_as, reviewer, auditor):
    req = submit(make_integration())
    assert decide(api_as, auditor, req).status_code == 403
    assert not req.decisions.exists()


def test_step_whose_only_reviewers_are_excluded_escalates_to_iam_admins(make_user, make_integration, submit, iam_admin):
    only = make_user("onlyrev", Role.REVIEWER, Pool.IAM_REVIEWERS)
    req = submit(make_integration(business_owner=only))
    step = req.steps.get(status=StepStatus.ACTIVE)
    assert step.escalated_at is not None
    assert list(step.reviewers.all()) == [iam_admin]
    assert AuditEvent.objects.filter(action="access_request.escalated", target_id=str(req.pk)).exists()
    services.request_decide(actor=iam_admin, request=req, decision="approve")
    req.refresh_from_db()
    assert req.status == "approved"
