"""Deciding requests: multi-step workflows by risk tier, partial approval, expiry, rounds after
"changes requested", withdrawal and stale states."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from approvals import services
from approvals.models import AccessRequest, RequestStatus, StepStatus
from governance.actors import Actor
from governance.exceptions import Conflict, IllegalTransition, NotAllowed, ValidationFailed
from governance.models import AuditEvent, OutboundEmail
from inventory.models import Grant, GrantStatus, IntegrationStatus
from inventory.signals import integration_disabled

pytestmark = pytest.mark.django_db


def current(req: AccessRequest):  # noqa: ANN201
    req.refresh_from_db()
    return req.steps.filter(round=req.round, status=StepStatus.ACTIVE).first()


def test_low_risk_registration_needs_one_iam_reviewer_and_grants_with_tier_expiry(
    make_integration, submit, reviewer, catalog
):
    req = submit(make_integration(tier="low"))
    step = current(req)
    assert step.name == "IAM review"
    assert list(step.reviewers.values_list("username", flat=True)) == ["reviewer"]
    services.request_decide(actor=reviewer, request=req, decision="approve", comment="ok")
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED
    assert req.integration.status == IntegrationStatus.ACTIVE
    grant = Grant.objects.get(integration=req.integration)
    assert (
        grant.scope == catalog["files"]
        and grant.source_type == "approvals.accessrequest"
        and grant.source_id == str(req.pk)
    )
    assert list(grant.approvers.all()) == [reviewer]
    assert grant.expires_at is not None
    assert abs((grant.expires_at - timezone.now()) - timedelta(days=365)) < timedelta(minutes=1)
    assert AuditEvent.objects.filter(action="access_request.approved", target_id=str(req.pk)).exists()
    assert AuditEvent.objects.filter(action="grant.created").count() == 1


def test_critical_runs_iam_owner_and_security_and_needs_every_reviewer(
    make_integration, submit, reviewer, second_reviewer, security_reviewer, resource_owner, catalog
):
    req = submit(make_integration(tier="critical"), scopes=[catalog["hr"]])
    services.request_decide(actor=reviewer, request=req, decision="approve")
    assert current(req).name == "IAM review", "rule 'all': the second IAM reviewer must approve too"
    services.request_decide(actor=second_reviewer, request=req, decision="approve")
    step = current(req)
    assert step.name == "Resource owner" and list(step.reviewers.all()) == [resource_owner]
    services.request_decide(actor=resource_owner, request=req, decision="approve")
    assert current(req).name == "Security review"
    services.request_decide(actor=security_reviewer, request=req, decision="approve")
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED
    grant = Grant.objects.get(integration=req.integration)
    assert grant.expires_at is not None
    assert abs((grant.expires_at - timezone.now()) - timedelta(days=30)) < timedelta(minutes=1)
    assert set(grant.approvers.values_list("username", flat=True)) == {"reviewer", "reviewer2", "omar", "security"}


def test_security_step_is_skipped_below_high(make_integration, submit, reviewer, resource_owner, catalog):
    req = submit(make_integration(tier="medium"), scopes=[catalog["hr"]])
    assert [s.name for s in req.steps.all()] == ["IAM review", "Resource owner"]
    services.request_decide(actor=reviewer, request=req, decision="approve")
    services.request_decide(actor=resource_owner, request=req, decision="approve")
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED


def test_partial_approval_grants_only_the_approved_scopes_until_the_earlier_expiry(
    make_integration, submit, reviewer, catalog
):
    req = submit(make_integration(tier="low"), scopes=[catalog["files"], catalog["mail"]])
    until = timezone.now() + timedelta(days=10)
    services.request_decide(
        actor=reviewer, request=req, decision="approve", approved_scopes=[catalog["files"]], expires_at=until
    )
    grants = list(Grant.objects.filter(integration=req.integration))
    assert [g.scope.code for g in grants] == ["msgraph:Files.Read"]
    assert grants[0].expires_at == until


def test_later_expiry_than_the_tier_default_is_refused(make_integration, submit, reviewer):
    req = submit(make_integration(tier="low"))
    with pytest.raises(ValidationFailed) as err:
        services.request_decide(
            actor=reviewer, request=req, decision="approve", expires_at=timezone.now() + timedelta(days=400)
        )
    assert "expires_at" in err.value.errors


def test_reject_and_request_changes_need_a_comment(make_integration, submit, reviewer):
    req = submit(make_integration())
    for decision in ("reject", "request_changes"):
        with pytest.raises(ValidationFailed) as err:
            services.request_decide(actor=reviewer, request=req, decision=decision, comment="  ")
        assert "comment" in err.value.errors


def test_rejection_rejects_the_integration_and_mails_the_requester(make_integration, submit, reviewer, owner):
    req = submit(make_integration())
    services.request_decide(actor=reviewer, request=req, decision="reject", comment="No business need")
    req.refresh_from_db()
    assert req.status == RequestStatus.REJECTED and req.integration.status == IntegrationStatus.REJECTED
    assert not Grant.objects.exists()
    mail = OutboundEmail.objects.get(recipient=owner, key__startswith="approval-outcome-")
    assert "No business need" in mail.body_text and f"/approvals/requests/{req.pk}/" in mail.body_text
    assert mail.body_html


def test_changes_requested_goes_back_to_draft_and_resubmission_is_round_two(
    make_integration, submit, reviewer, catalog
):
    integration = make_integration()
    req = submit(integration)
    services.request_decide(actor=reviewer, request=req, decision="request_changes", comment="Narrow the scopes")
    req.refresh_from_db()
    integration.refresh_from_db()
    assert req.status == RequestStatus.CHANGES_REQUESTED and integration.status == IntegrationStatus.DRAFT
    # The owner edits and submits again (inventory sends integration_submitted again).
    integration.status = IntegrationStatus.PENDING
    integration.save(update_fields=["status"])
    again = submit(integration, scopes=[catalog["mail"]])
    assert again.pk == req.pk
    again.refresh_from_db()
    assert again.round == 2 and again.status == RequestStatus.IN_REVIEW
    assert [(s.round, s.status) for s in again.steps.all()] == [
        (1, StepStatus.CHANGES_REQUESTED),
        (2, StepStatus.ACTIVE),
    ]
    assert list(again.requested_scopes.values_list("code", flat=True)) == ["msgraph:Mail.Read"]
    services.request_decide(actor=reviewer, request=again, decision="approve")
    again.refresh_from_db()
    assert again.status == RequestStatus.APPROVED
    assert again.decisions.count() == 2, "both rounds' decisions stay as evidence"


def test_expansion_decides_only_the_added_scopes(make_integration, submit, expand, reviewer, second_reviewer, catalog):
    integration = make_integration()
    services.request_decide(actor=reviewer, request=submit(integration), decision="approve")
    integration.refresh_from_db()
    req = expand(integration, [catalog["mail"]])
    assert req.type == "expansion"
    services.request_decide(actor=second_reviewer, request=req, decision="approve")
    codes = sorted(
        Grant.objects.filter(integration=integration, status=GrantStatus.ACTIVE).values_list("scope__code", flat=True)
    )
    assert codes == ["msgraph:Files.Read", "msgraph:Mail.Read"]


def test_decision_on_a_withdrawn_request_is_a_conflict(make_integration, submit, reviewer, owner):
    req = submit(make_integration())
    services.request_withdraw(actor=owner, request=req, reason="not needed")
    with pytest.raises(Conflict, match="withdrawn"):
        services.request_decide(actor=reviewer, request=req, decision="approve")


def test_withdraw_by_someone_else_is_not_allowed(make_integration, submit, outsider):
    req = submit(make_integration())
    with pytest.raises(NotAllowed):
        services.request_withdraw(actor=outsider, request=req)


def test_withdrawing_twice_is_an_illegal_transition(make_integration, submit, owner):
    req = submit(make_integration())
    services.request_withdraw(actor=owner, request=req)
    with pytest.raises(IllegalTransition):
        services.request_withdraw(actor=owner, request=req)


def test_already_decided_step_names_who_decided_it(make_integration, submit, reviewer, second_reviewer, resource_owner):
    req = submit(make_integration(tier="medium"))
    step = current(req)
    services.request_decide(actor=reviewer, request=req, decision="approve", step_id=step.pk)
    with pytest.raises(Conflict, match="already decided by reviewer"):
        services.request_decide(actor=second_reviewer, request=req, decision="approve", step_id=step.pk)


def test_suspension_cancels_open_requests_and_refuses_decisions(make_integration, submit, reviewer, iam_admin):
    integration = make_integration()
    req = submit(integration)
    with transaction.atomic():
        integration.status = IntegrationStatus.SUSPENDED
        integration.save(update_fields=["status"])
        integration_disabled.send(
            sender=type(integration),
            integration=integration,
            actor=Actor.coerce(iam_admin),
            status="suspended",
            reason="kill switch",
        )
    req.refresh_from_db()
    assert req.status == RequestStatus.CANCELLED
    assert not req.steps.filter(assignments__is_open=True).exists()
    with pytest.raises(Conflict):
        services.request_decide(actor=reviewer, request=req, decision="approve")


def test_decision_on_an_orphaned_integration_is_a_conflict(make_integration, submit, reviewer):
    integration = make_integration()
    req = submit(integration)
    integration.orphaned = True
    integration.save(update_fields=["orphaned"])
    with pytest.raises(Conflict, match="owner left"):
        services.request_decide(actor=reviewer, request=req, decision="approve")
    req.refresh_from_db()
    assert req.status == RequestStatus.IN_REVIEW


def test_a_second_open_request_of_the_same_type_is_a_conflict(make_integration, submit, catalog, owner):
    integration = make_integration()
    submit(integration)
    with pytest.raises(Conflict):
        services.request_open(actor=owner, integration=integration, type="registration", scopes=[catalog["mail"]])


def test_requester_is_mailed_the_outcome_once_and_reviewers_on_assignment(
    make_integration, submit, reviewer, resource_owner, owner, catalog
):
    req = submit(make_integration(tier="medium"), scopes=[catalog["hr"]])
    assert OutboundEmail.objects.filter(recipient=reviewer, key__contains="assigned").count() == 1
    services.request_decide(actor=reviewer, request=req, decision="approve")
    assert OutboundEmail.objects.filter(recipient=resource_owner, key__contains="assigned").count() == 1
    assert not OutboundEmail.objects.filter(recipient=owner).exists(), "no email about one step"
    services.request_decide(actor=resource_owner, request=req, decision="approve")
    assert OutboundEmail.objects.filter(recipient=owner, key__startswith="approval-outcome-").count() == 1
