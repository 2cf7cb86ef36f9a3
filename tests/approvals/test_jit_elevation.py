"""Just-in-time elevations: the token endpoint asks, for an active integration, for one
JIT-eligible scope it does not hold, for a stated task. The request is opened as the system for
the business owner, runs one IAM review due in 30 minutes (reminded at 15, escalated at 30),
is decided from the queue or the emailed link like any request, and its approval grants the scope
until it ends by itself an hour later. Elevations show on the integration page and in the trail."""

from __future__ import annotations

import importlib
import threading
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.apps import apps as django_apps
from django.db import connection, connections, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals import selectors, services, tasks
from approvals.models import AccessRequest, RequestStatus, RequestType, StepStatus, Workflow
from governance.actors import Actor
from governance.exceptions import Conflict, Unprocessable, ValidationFailed
from governance.models import AuditEvent, OutboundEmail
from governance.roles import Pool
from inventory.choices import GrantStatus, IntegrationStatus
from inventory.models import Grant, Integration, Scope
from inventory.signals import integration_risk_raised

pytestmark = pytest.mark.django_db

TASK = "Summarise the Q3 board pack"


@pytest.fixture
def jit_scope(catalog: dict[str, Scope]) -> Scope:
    scope = catalog["mail"]
    Scope.objects.filter(pk=scope.pk).update(jit_eligible=True)
    scope.refresh_from_db()
    return scope


@pytest.fixture
def agent(make_integration: Any, workflows: None, catalog: dict[str, Scope]) -> Integration:
    integration = make_integration("Board agent", status=IntegrationStatus.ACTIVE)
    integration.requested_scopes.set([catalog["files"]])
    return integration


@pytest.fixture
def elevation(agent: Integration, jit_scope: Scope, reviewer: Any) -> AccessRequest:
    return services.elevation_open(integration=agent, scope=jit_scope, task=TASK)


def _approve(req: AccessRequest, reviewer: Any, **extra: Any) -> None:
    services.request_decide(actor=reviewer, request=req, decision="approve", **extra)


# --- The seeded workflow --------------------------------------------------------------------------


def _assert_elevation_workflows() -> None:
    for workflow in Workflow.objects.filter(request_type=RequestType.JIT_ELEVATION).prefetch_related("steps"):
        (step,) = workflow.steps.all()
        pool, escalation = step.pool_group, step.escalation_group
        assert pool is not None and pool.name == Pool.IAM_REVIEWERS and step.rule == "any"
        assert step.sla_minutes == 30 and step.sla == timedelta(minutes=30)
        assert escalation is not None and escalation.name == "iam_admin"
    tiers = Workflow.objects.filter(request_type=RequestType.JIT_ELEVATION).values_list("risk_tier", flat=True)
    assert sorted(tiers) == ["critical", "high", "low", "medium"]


def test_every_tier_has_a_one_step_elevation_workflow_due_in_30_minutes(workflows: None) -> None:
    _assert_elevation_workflows()


def test_the_data_migration_seeds_the_elevation_workflow_and_keeps_an_existing_one(roles: None) -> None:
    migration = importlib.import_module("approvals.migrations.0006_jit_elevation_workflow")
    Workflow.objects.filter(request_type=RequestType.JIT_ELEVATION).delete()
    migration.seed(django_apps, None)
    _assert_elevation_workflows()
    step = Workflow.objects.get(request_type=RequestType.JIT_ELEVATION, risk_tier="high").steps.get()
    step.sla_minutes = 10
    step.save()
    migration.seed(django_apps, None)
    step.refresh_from_db()
    assert step.sla_minutes == 10


def test_an_elevation_never_borrows_the_registration_workflow(agent: Integration, jit_scope: Scope) -> None:
    Workflow.objects.filter(request_type=RequestType.JIT_ELEVATION).delete()
    req = services.elevation_open(integration=agent, scope=jit_scope, task=TASK)
    assert req.workflow is not None and req.workflow.request_type == RequestType.JIT_ELEVATION
    assert req.steps.get().sla_minutes == 30


# --- Opening ----------------------------------------------------------------------------------------


def test_an_elevation_opens_in_review_for_the_business_owner_with_the_task(
    elevation: AccessRequest, agent: Integration, owner: Any, jit_scope: Scope
) -> None:
    assert elevation.type == RequestType.JIT_ELEVATION and elevation.status == RequestStatus.IN_REVIEW
    assert elevation.requester == owner and elevation.justification == TASK
    assert list(elevation.requested_scopes.all()) == [jit_scope]
    assert elevation.summary == f"Just-in-time elevation: msgraph:Mail.Read for task '{TASK}'"
    agent.refresh_from_db()
    assert agent.status == IntegrationStatus.ACTIVE
    assert list(agent.requested_scopes.values_list("code", flat=True)) == ["msgraph:Files.Read"]


def test_its_step_is_assigned_to_the_iam_reviewers_who_are_emailed_the_request_link(
    elevation: AccessRequest, reviewer: Any, owner: Any
) -> None:
    step = elevation.steps.get(status=StepStatus.ACTIVE)
    assert set(step.reviewers.values_list("username", flat=True)) == {"reviewer"}
    mail = OutboundEmail.objects.get(recipient=reviewer, key=f"approval-step-{step.pk}-assigned-{reviewer.pk}")
    link = reverse("approvals:request-detail", args=[elevation.pk])
    assert link in mail.body_text and link in mail.body_html
    assert "Just-in-time elevation" in mail.subject
    assert f"Just-in-time elevation: msgraph:Mail.Read for task '{TASK}'" in mail.body_text  # plain text: unescaped
    assert "for task &#x27;Summarise the Q3 board pack&#x27;" in mail.body_html
    assert not OutboundEmail.objects.filter(recipient=owner, key__startswith="approval-step-").exists()


def test_opening_is_audited_as_the_system_for_the_business_owner(elevation: AccessRequest) -> None:
    event = AuditEvent.objects.get(action="access_request.created", target_id=str(elevation.pk))
    after = event.after or {}
    assert event.actor_kind == "system" and event.owner_username == "owner"
    assert after["type"] == "jit_elevation" and after["task"] == TASK
    assert after["scopes"] == ["msgraph:Mail.Read"] and event.reason == TASK


def test_an_open_elevation_of_the_same_scope_is_returned_instead_of_a_second_one(
    elevation: AccessRequest, agent: Integration, jit_scope: Scope, catalog: dict[str, Scope]
) -> None:
    again = services.elevation_open(integration=agent, scope=jit_scope, task="Another task")
    assert again.pk == elevation.pk and again.justification == TASK
    assert AccessRequest.objects.filter(type=RequestType.JIT_ELEVATION).count() == 1
    assert AuditEvent.objects.filter(action="access_request.created").count() == 1
    Scope.objects.filter(pk=catalog["hr"].pk).update(jit_eligible=True)
    other = services.elevation_open(integration=agent, scope=Scope.objects.get(pk=catalog["hr"].pk), task=TASK)
    assert other.pk != elevation.pk


def test_after_a_rejection_the_next_ask_opens_a_new_elevation(
    elevation: AccessRequest, agent: Integration, jit_scope: Scope, reviewer: Any
) -> None:
    services.request_decide(actor=reviewer, request=elevation, decision="reject", comment="Not for this")
    again = services.elevation_open(integration=agent, scope=jit_scope, task=TASK)
    assert again.pk != elevation.pk and again.status == RequestStatus.IN_REVIEW


@pytest.mark.parametrize("task", ["", "   ", "x" * 201, "two\nlines"])
def test_a_task_is_required_on_one_line_of_at_most_200_characters(
    agent: Integration, jit_scope: Scope, task: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.elevation_open(integration=agent, scope=jit_scope, task=task)
    assert "task" in refused.value.errors
    assert not AccessRequest.objects.exists()


def test_a_task_of_exactly_200_characters_is_accepted(agent: Integration, jit_scope: Scope) -> None:
    assert services.elevation_open(integration=agent, scope=jit_scope, task="x" * 200).justification == "x" * 200


def test_only_a_jit_eligible_active_scope_can_be_asked_for(
    agent: Integration, catalog: dict[str, Scope], jit_scope: Scope
) -> None:
    with pytest.raises(ValidationFailed, match="not eligible"):
        services.elevation_open(integration=agent, scope=catalog["files"], task=TASK)
    Scope.objects.filter(pk=jit_scope.pk).update(is_active=False)
    jit_scope.refresh_from_db()
    with pytest.raises(ValidationFailed, match="retired"):
        services.elevation_open(integration=agent, scope=jit_scope, task=TASK)
    assert not AccessRequest.objects.exists()


@pytest.mark.parametrize("status", [IntegrationStatus.PENDING, IntegrationStatus.SUSPENDED, IntegrationStatus.DRAFT])
def test_only_an_active_integration_can_ask(agent: Integration, jit_scope: Scope, status: str) -> None:
    Integration.objects.filter(pk=agent.pk).update(status=status)
    with pytest.raises(Conflict):
        services.elevation_open(integration=agent, scope=jit_scope, task=TASK)
    assert not AccessRequest.objects.exists()


def test_an_integration_whose_owner_left_cannot_ask(agent: Integration, jit_scope: Scope, owner: Any) -> None:
    type(owner).objects.filter(pk=owner.pk).update(is_active=False)
    with pytest.raises(Conflict, match="deactivated"):
        services.elevation_open(integration=agent, scope=jit_scope, task=TASK)
    Integration.objects.filter(pk=agent.pk).update(orphaned=True)
    with pytest.raises(Conflict):
        services.elevation_open(integration=agent, scope=jit_scope, task=TASK)


def test_a_scope_already_held_needs_no_elevation(
    elevation: AccessRequest, agent: Integration, jit_scope: Scope, reviewer: Any
) -> None:
    _approve(elevation, reviewer)
    with pytest.raises(Conflict, match="already holds"):
        services.elevation_open(integration=agent, scope=jit_scope, task=TASK)


# --- SLA in minutes ---------------------------------------------------------------------------------


def test_reviewers_are_reminded_at_15_minutes_and_the_step_escalates_at_30(
    elevation: AccessRequest, reviewer: Any, iam_admin: Any
) -> None:
    step = elevation.steps.get(status=StepStatus.ACTIVE)
    started, due = step.activated_at, step.due_at
    assert started is not None and due is not None
    assert step.sla_minutes == 30 and due - started == timedelta(minutes=30)
    with time_machine.travel(started + timedelta(minutes=14)):
        assert tasks.sla_sweep() == {"reminded": 0, "escalated": 0}
    with time_machine.travel(started + timedelta(minutes=16)):
        assert tasks.sla_sweep() == {"reminded": 1, "escalated": 0}
    with time_machine.travel(started + timedelta(minutes=31)):
        assert tasks.sla_sweep() == {"reminded": 0, "escalated": 1}
        assert tasks.sla_sweep() == {"reminded": 0, "escalated": 0}
    event = AuditEvent.objects.get(action="access_request.escalated", target_id=str(elevation.pk))
    assert event.reason == "The step's SLA of 30 minutes passed." and event.owner_username == "owner"
    assert OutboundEmail.objects.filter(recipient=iam_admin, key__startswith="approval-escalated-").count() == 1


def test_an_iam_admin_sets_an_sla_in_minutes_for_later_rounds(iam_admin: Any, workflows: None) -> None:
    step = Workflow.objects.get(request_type=RequestType.JIT_ELEVATION, risk_tier="low").steps.get()
    values = {"name": step.name, "pool_kind": "group", "pool_group": step.pool_group, "rule": "any"}
    saved = services.workflow_step_save(
        actor=iam_admin, workflow=step.workflow, step=step, values={**values, "sla_hours": 1, "sla_minutes": 10}
    )
    assert saved.sla_label == "10 minutes"
    with pytest.raises(ValidationFailed) as refused:
        services.workflow_step_save(
            actor=iam_admin, workflow=step.workflow, step=step, values={**values, "sla_hours": 1, "sla_minutes": 0}
        )
    assert "sla_minutes" in refused.value.errors


# --- Decisions --------------------------------------------------------------------------------------


def test_approval_grants_the_scope_until_it_expires_by_itself_an_hour_later(
    elevation: AccessRequest, agent: Integration, reviewer: Any, jit_scope: Scope
) -> None:
    with time_machine.travel(timezone.now(), tick=False):
        _approve(elevation, reviewer)
        grant = Grant.objects.get(integration=agent, scope=jit_scope)
        assert grant.expires_at == timezone.now() + timedelta(minutes=60)
    assert (grant.source_type, grant.source_id) == ("approvals.accessrequest", str(elevation.pk))
    assert list(grant.approvers.all()) == [reviewer]
    agent.refresh_from_db()
    assert agent.status == IntegrationStatus.ACTIVE
    assert list(agent.requested_scopes.values_list("code", flat=True)) == ["msgraph:Files.Read"]
    with time_machine.travel(grant.expires_at + timedelta(minutes=1)):
        tasks.grants_expire()
    grant.refresh_from_db()
    assert grant.status == GrantStatus.EXPIRED
    assert AuditEvent.objects.filter(action="grant.expired", target_id=str(grant.pk)).exists()


@override_settings(RUNTIME_JIT_GRANT_MINUTES=15)
def test_the_grant_lifetime_comes_from_the_setting(elevation: AccessRequest, reviewer: Any) -> None:
    with time_machine.travel(timezone.now(), tick=False):
        _approve(elevation, reviewer)
        assert Grant.objects.get().expires_at == timezone.now() + timedelta(minutes=15)


def test_a_reviewer_may_shorten_the_elevation_but_not_extend_it(elevation: AccessRequest, reviewer: Any) -> None:
    with pytest.raises(Unprocessable):
        _approve(elevation, reviewer, expires_at=timezone.now() + timedelta(hours=2))
    soon = timezone.now() + timedelta(minutes=20)
    _approve(elevation, reviewer, expires_at=soon)
    assert Grant.objects.get().expires_at == soon


def test_rejection_closes_it_without_a_grant(elevation: AccessRequest, agent: Integration, reviewer: Any) -> None:
    services.request_decide(actor=reviewer, request=elevation, decision="reject", comment="Use the report instead")
    elevation.refresh_from_db()
    assert elevation.status == RequestStatus.REJECTED and elevation.closed_at is not None
    assert not Grant.objects.filter(integration=agent).exists()
    agent.refresh_from_db()
    assert agent.status == IntegrationStatus.ACTIVE
    assert AuditEvent.objects.filter(action="access_request.rejected", target_id=str(elevation.pk)).exists()


def test_changes_cannot_be_requested_on_an_elevation(elevation: AccessRequest, reviewer: Any) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.request_decide(actor=reviewer, request=elevation, decision="request_changes", comment="Why?")
    assert "decision" in refused.value.errors
    elevation.refresh_from_db()
    assert elevation.status == RequestStatus.IN_REVIEW


def test_the_business_owner_cannot_decide_the_elevation_asked_for_their_integration(
    elevation: AccessRequest, owner: Any
) -> None:
    from governance.exceptions import NotAllowed

    with pytest.raises(NotAllowed):
        _approve(elevation, owner)


def test_decision_and_outcome_are_in_the_audit_trail(elevation: AccessRequest, reviewer: Any) -> None:
    _approve(elevation, reviewer)
    actions = set(AuditEvent.objects.filter(target_id=str(elevation.pk)).values_list("action", flat=True))
    assert {"access_request.created", "access_request.step_decided", "access_request.approved"} <= actions
    approved = AuditEvent.objects.get(action="access_request.approved", target_id=str(elevation.pk))
    assert (approved.after or {})["granted"] == ["msgraph:Mail.Read"] and approved.owner_username == "owner"
    assert AuditEvent.objects.filter(action="grant.created", owner_username="owner").exists()


def _standing_grant(agent: Integration, scope: Scope) -> Grant:
    return Grant.objects.create(
        integration=agent, scope=scope, granted_at=timezone.now(), expires_at=timezone.now() + timedelta(days=90)
    )


def test_a_renewal_neither_asks_for_nor_extends_an_elevation_grant(
    elevation: AccessRequest, agent: Integration, reviewer: Any, second_reviewer: Any, owner: Any, catalog: Any
) -> None:
    _approve(elevation, reviewer)
    jit_grant = Grant.objects.get(integration=agent, scope__code="msgraph:Mail.Read")
    ends = jit_grant.expires_at
    with pytest.raises(Conflict, match="no active grant to renew"):
        services.renewal_request_open(actor=owner, integration=agent)
    standing = _standing_grant(agent, catalog["files"])
    assert list(selectors.grants_to_renew(agent)) == [standing]
    renewal = services.renewal_request_open(actor=owner, integration=agent)
    assert list(renewal.requested_scopes.values_list("code", flat=True)) == ["msgraph:Files.Read"]
    services.request_decide(actor=second_reviewer, request=renewal, decision="approve")
    jit_grant.refresh_from_db()
    assert jit_grant.expires_at == ends and jit_grant.source_id == str(elevation.pk)


def test_a_re_review_after_a_risk_increase_leaves_the_elevation_grant_to_end_by_itself(
    elevation: AccessRequest, agent: Integration, reviewer: Any, owner: Any, catalog: Any
) -> None:
    _approve(elevation, reviewer)
    _standing_grant(agent, catalog["files"])
    with transaction.atomic():
        Integration.objects.filter(pk=agent.pk).update(risk_tier="high")
        agent.risk_tier = "high"
        integration_risk_raised.send(
            sender=Integration,
            integration=agent,
            actor=Actor.coerce(owner),
            old_tier="low",
            new_tier="high",
            factors=[],
        )
    re_review = AccessRequest.objects.get(integration=agent, type=RequestType.RE_REVIEW)
    assert list(re_review.requested_scopes.values_list("code", flat=True)) == ["msgraph:Files.Read"]


def test_approving_an_elevation_never_shortens_a_standing_grant_made_meanwhile(
    elevation: AccessRequest, agent: Integration, reviewer: Any, jit_scope: Scope
) -> None:
    standing = _standing_grant(agent, jit_scope)
    ends = standing.expires_at
    _approve(elevation, reviewer)
    standing.refresh_from_db()
    assert standing.expires_at == ends and standing.source_id == ""
    assert Grant.objects.filter(integration=agent).count() == 1
    approved = AuditEvent.objects.get(action="access_request.approved", target_id=str(elevation.pk))
    assert (approved.after or {})["granted"] == []


def test_no_expiry_warning_or_renewal_email_for_an_elevation_grant(
    elevation: AccessRequest, reviewer: Any, owner: Any
) -> None:
    _approve(elevation, reviewer)
    assert tasks.grants_warn() == 0
    assert not OutboundEmail.objects.filter(recipient=owner, key__startswith="grant-expiry-").exists()


# --- Pages ------------------------------------------------------------------------------------------


def test_the_queue_shows_the_elevation_clearly_and_offers_approve_or_reject(
    elevation: AccessRequest, web_as: Any, reviewer: Any
) -> None:
    html = web_as(reviewer).get("/approvals/queue/?type=jit_elevation").content.decode()
    assert "Just-in-time elevation: msgraph:Mail.Read for task &#x27;Summarise the Q3 board pack&#x27;" in html
    step = elevation.steps.get(status=StepStatus.ACTIVE)
    assert f'action="/approvals/steps/{step.pk}/decide/"' in html
    assert 'value="approve"' in html and 'value="reject"' in html and 'value="request_changes"' not in html


def test_the_emailed_link_opens_the_request_page_where_the_reviewer_decides(
    elevation: AccessRequest, web_as: Any, reviewer: Any
) -> None:
    step = elevation.steps.get(status=StepStatus.ACTIVE)
    mail = OutboundEmail.objects.get(recipient=reviewer, key=f"approval-step-{step.pk}-assigned-{reviewer.pk}")
    link = reverse("approvals:request-detail", args=[elevation.pk])
    assert link in mail.body_text
    client = web_as(reviewer)
    page = client.get(link)
    html = page.content.decode()
    assert page.status_code == 200 and "Summarise the Q3 board pack" in html and "SLA 30 minutes" in html
    assert "60 minutes" in html and 'value="request_changes"' not in html
    response = client.post(
        f"/approvals/steps/{step.pk}/decide/", {"decision": "approve", "next": link, "comment": "For this task"}
    )
    assert response.status_code == 302 and response["Location"] == link
    elevation.refresh_from_db()
    assert elevation.status == RequestStatus.APPROVED
    grant = Grant.objects.get()
    assert f'— Active, until <time datetime="{grant.expires_at:%Y-%m-%dT%H:%M}' in client.get(link).content.decode()


def test_the_integration_page_lists_its_elevations(
    elevation: AccessRequest, agent: Integration, web_as: Any, reviewer: Any, owner: Any
) -> None:
    _approve(elevation, reviewer, comment="ok")
    grant = Grant.objects.get()
    html = web_as(owner).get(reverse("inventory:detail", args=[agent.pk])).content.decode()
    assert "Just-in-time elevations" in html
    assert f'href="/approvals/requests/{elevation.pk}/"' in html
    assert "msgraph:Mail.Read" in html and TASK in html and "Approved" in html and reviewer.label in html
    assert f'Active, until <time datetime="{grant.expires_at:%Y-%m-%dT%H:%M}' in html


def test_the_elevations_section_reads_a_fixed_number_of_queries(
    agent: Integration, jit_scope: Scope, catalog: dict[str, Scope], reviewer: Any, owner: Any
) -> None:
    services.elevation_open(integration=agent, scope=jit_scope, task=TASK)
    selectors.elevations_of(owner, agent)  # the owner's roles are read once per user
    with CaptureQueriesContext(connection) as one:
        assert len(selectors.elevations_of(owner, agent)) == 1
    Scope.objects.filter(pk__in=[catalog["hr"].pk, catalog["files"].pk]).update(jit_eligible=True)
    for scope in Scope.objects.filter(pk__in=[catalog["hr"].pk, catalog["files"].pk]):
        _approve(services.elevation_open(integration=agent, scope=scope, task=TASK), reviewer)
    with CaptureQueriesContext(connection) as three:
        rows = selectors.elevations_of(owner, agent)
    assert len(rows) == 3 and len(three) == len(one)
    assert {row.decided_by.username for row in rows if row.decided_by} == {"reviewer"}


def test_an_integration_without_elevations_shows_no_section(
    agent: Integration, web_as: Any, owner: Any, workflows: None
) -> None:
    html = web_as(owner).get(reverse("inventory:detail", args=[agent.pk])).content.decode()
    assert "Just-in-time elevations" not in html


# --- Outsiders --------------------------------------------------------------------------------------


def test_outsiders_cannot_see_or_decide_an_elevation(
    elevation: AccessRequest, agent: Integration, client: Any, web_as: Any, outsider: Any
) -> None:
    step = elevation.steps.get(status=StepStatus.ACTIVE)
    page = client.get(f"/approvals/requests/{elevation.pk}/")
    assert page.status_code == 302 and "/login" in page["Location"]
    decided = client.post(f"/approvals/steps/{step.pk}/decide/", {"decision": "approve"})
    assert decided.status_code == 302 and "/login" in decided["Location"]
    signed_in = web_as(outsider)
    assert signed_in.get(f"/approvals/requests/{elevation.pk}/").status_code == 404
    assert signed_in.post(f"/approvals/steps/{step.pk}/decide/", {"decision": "approve"}).status_code == 404
    assert signed_in.get(reverse("inventory:detail", args=[agent.pk])).status_code == 404
    assert selectors.elevations_of(outsider, agent) == []
    elevation.refresh_from_db()
    assert elevation.status == RequestStatus.IN_REVIEW


# --- Concurrency ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs real row locks between concurrent connections: runs in CI's PostgreSQL pass",
)
def test_two_exchanges_asking_at_the_same_moment_open_one_elevation(
    agent: Integration, jit_scope: Scope, reviewer: Any, monkeypatch: Any
) -> None:
    # Delivery of the reviewers' email is not what is tested (its hook keeps a connection open).
    monkeypatch.setattr("governance.services.outbox._schedule_delivery", lambda email_id: None)
    barrier = threading.Barrier(2)
    opened: list[int | str] = []

    def ask() -> None:
        try:
            barrier.wait()
            opened.append(services.elevation_open(integration=agent, scope=jit_scope, task=TASK).pk)
        except Exception as exc:  # any failure must show in the assertion, not vanish
            opened.append(f"{type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(opened) == 2 and opened[0] == opened[1], opened
    assert AccessRequest.objects.filter(type=RequestType.JIT_ELEVATION).count() == 1
    assert AuditEvent.objects.filter(action="access_request.created").count() == 1
