"""Workflow rules beyond the defaults: quorum, named people, the requester's manager; re-review
after a risk increase; renewal of held grants."""

from __future__ import annotations

import pytest
from django.db import transaction

from approvals import services
from approvals.models import RequestStatus, StepStatus, Workflow
from governance.actors import Actor
from governance.roles import Pool, Role
from inventory.models import Grant, GrantStatus, Integration
from inventory.signals import integration_risk_raised

pytestmark = pytest.mark.django_db


def low_step(workflows):  # noqa: ANN001, ANN201
    return Workflow.objects.get(request_type="registration", risk_tier="low").steps.get()


def test_quorum_step_needs_n_approvals(make_user, make_integration, submit, reviewer, second_reviewer, workflows):
    third = make_user("third", Role.REVIEWER, Pool.IAM_REVIEWERS)
    step = low_step(workflows)
    step.rule, step.quorum = "quorum", 2
    step.save()
    req = submit(make_integration())
    services.request_decide(actor=reviewer, request=req, decision="approve")
    req.refresh_from_db()
    assert req.status == RequestStatus.IN_REVIEW
    assert list(req.steps.get().assignments.filter(is_open=True).values_list("user__username", flat=True)) == [
        "reviewer2",
        "third",
    ]
    services.request_decide(actor=third, request=req, decision="approve")
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED
    assert set(Grant.objects.get(integration=req.integration).approvers.values_list("username", flat=True)) == {
        "reviewer",
        "third",
    }


def test_named_people_pool(make_user, make_integration, submit, reviewer, workflows, iam_admin):
    named = make_user("named", Role.REVIEWER)
    services.workflow_step_save(
        actor=iam_admin,
        workflow=low_step(workflows).workflow,
        step=low_step(workflows),
        values={
            "order": 1,
            "name": "Named",
            "pool_kind": "users",
            "pool_group": None,
            "rule": "any",
            "quorum": 1,
            "sla_hours": 8,
            "only_for_tiers": [],
        },
        pool_users=[named],
    )
    req = submit(make_integration())
    assert list(req.steps.get().reviewers.all()) == [named]


def test_requesters_manager_pool(make_user, make_integration, submit, workflows, iam_admin):
    manager = make_user("boss", Role.BUSINESS_USER)
    owner = make_user("worker", Role.BUSINESS_USER, manager=manager)
    step = low_step(workflows)
    step.pool_kind, step.pool_group = "manager", None
    step.save()
    req = submit(make_integration(business_owner=owner))
    assert list(req.steps.get().reviewers.all()) == [manager]
    services.request_decide(actor=manager, request=req, decision="approve")
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED


def test_risk_increase_opens_a_re_review_whose_rejection_revokes_the_access(
    make_integration, submit, reviewer, second_reviewer, owner
):
    integration = make_integration()
    services.request_decide(actor=reviewer, request=submit(integration), decision="approve")
    integration.refresh_from_db()
    with transaction.atomic():
        Integration.objects.filter(pk=integration.pk).update(risk_tier="high")
        integration.risk_tier = "high"
        integration_risk_raised.send(
            sender=Integration,
            integration=integration,
            actor=Actor.coerce(owner),
            old_tier="low",
            new_tier="high",
            factors=[],
        )
    req = integration.access_requests.get(type="re_review")
    assert req.risk_tier == "high" and [s.name for s in req.steps.all()] == [
        "IAM review",
        "Resource owner",
        "Security review",
    ]
    services.request_decide(actor=second_reviewer, request=req, decision="reject", comment="Too broad now")
    assert not Grant.objects.filter(integration=integration, status=GrantStatus.ACTIVE).exists()


def test_renewal_extends_the_held_grants(make_integration, submit, reviewer, second_reviewer, owner):
    integration = make_integration()
    services.request_decide(actor=reviewer, request=submit(integration), decision="approve")
    grant = Grant.objects.get(integration=integration)
    first_expiry = grant.expires_at
    assert first_expiry is not None
    req = services.renewal_request_open(actor=owner, integration=integration)
    assert req.type == "renewal" and req.steps.get(status=StepStatus.ACTIVE)
    services.request_decide(actor=second_reviewer, request=req, decision="approve")
    grant.refresh_from_db()
    assert grant.status == GrantStatus.ACTIVE and grant.expires_at is not None and grant.expires_at > first_expiry
    assert grant.source_id == str(req.pk)


def test_manager_without_reviewer_role_sees_and_decides_the_assigned_request(
    make_user, make_integration, submit, workflows, api_as, web_as
):
    manager = make_user("boss2", Role.BUSINESS_USER)
    owner = make_user("worker2", Role.BUSINESS_USER, manager=manager)
    step = low_step(workflows)
    step.pool_kind, step.pool_group = "manager", None
    step.save()
    req = submit(make_integration(business_owner=owner))
    page = web_as(manager).get("/approvals/queue/")
    assert page.status_code == 200 and "Submit decision" in page.content.decode()
    client = api_as(manager)
    assert [r["id"] for r in client.get("/api/v1/access-requests/?assigned_to_me=true").json()["results"]] == [req.pk]
    response = client.post(f"/api/v1/access-requests/{req.pk}/decisions/", {"decision": "approve"}, format="json")
    assert response.status_code == 201
    assert client.get(f"/api/v1/access-requests/{req.pk}/").status_code == 200, "still visible after deciding"


def test_risk_raised_during_review_restarts_the_request_with_the_new_tiers_workflow(make_integration, submit, owner):
    integration = make_integration(tier="low")
    req = submit(integration)
    with transaction.atomic():
        Integration.objects.filter(pk=integration.pk).update(risk_tier="high")
        integration.risk_tier = "high"
        integration_risk_raised.send(
            sender=Integration,
            integration=integration,
            actor=Actor.coerce(owner),
            old_tier="low",
            new_tier="high",
            factors=[],
        )
    req.refresh_from_db()
    assert req.round == 2 and req.risk_tier == "high" and req.status == RequestStatus.IN_REVIEW
    assert [s.name for s in req.steps.filter(round=2)] == ["IAM review", "Resource owner", "Security review"]
    assert req.steps.filter(round=1, status=StepStatus.CANCELLED).count() == 1
    assert not integration.access_requests.filter(type="re_review").exists()


def test_escalation_target_completes_an_all_rule_step(
    make_integration, submit, reviewer, second_reviewer, iam_admin, catalog
):
    import time_machine

    from approvals import tasks

    req = submit(make_integration(tier="critical"), scopes=[catalog["hr"]])
    services.request_decide(actor=reviewer, request=req, decision="approve")
    step = req.steps.get(status=StepStatus.ACTIVE)
    with time_machine.travel(step.due_at):
        tasks.sla_sweep()
    services.request_decide(actor=iam_admin, request=req, decision="approve", comment="taking over")
    step.refresh_from_db()
    assert step.status == StepStatus.APPROVED
