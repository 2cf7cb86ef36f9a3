"""The whole flow through the inventory's own services (not hand-sent signals): a business user
registers and submits; the right reviewers' queues show it; after every required step it is
active with grants and expiries; changes requested and resubmitted; suspended while in review;
the requester's emails arrive exactly once even when the mail server first refuses them."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.utils import timezone

from approvals import selectors, services
from approvals.models import AccessRequest, RequestStatus, StepStatus
from governance.exceptions import Conflict
from governance.models import OutboundEmail
from governance.tasks import outbox_flush
from inventory import services as inventory
from inventory.models import GrantStatus, IntegrationStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(owner, reviewer, second_reviewer, security_reviewer, resource_owner, iam_admin):  # noqa: ANN001, ANN201
    return [reviewer, second_reviewer, security_reviewer, resource_owner, iam_admin]


def register(owner, scopes, **extra):  # noqa: ANN001, ANN201
    values = {
        "name": "Inventory bot",
        "kind": "agent",
        "purpose": "Answers HR questions",
        "business_owner": owner,
        "requested_scopes": scopes,
        **extra,
    }
    return inventory.integration_register(actor=owner, values=values, submit=True)


def approve_all(req: AccessRequest, people) -> list[str]:  # noqa: ANN001
    """Approve step after step as whoever is assigned and allowed; the step names in order."""
    seen = []
    for _ in range(10):
        req.refresh_from_db()
        if req.status != RequestStatus.IN_REVIEW:
            break
        step = req.steps.get(round=req.round, status=StepStatus.ACTIVE)
        seen.append(step.name)
        who = next(
            p
            for p in people
            if step.assignments.filter(user=p, is_open=True).exists()
            and selectors.step_may_decide(p, req, step) is None
        )
        services.request_decide(actor=who, request=req, decision="approve", comment="ok", step_id=step.pk)
    return seen


def test_submitted_integration_becomes_active_with_grants_after_every_required_step(owner, people, workflows, catalog):
    integration = register(owner, [catalog["files"], catalog["hr"]])
    assert integration.status == IntegrationStatus.PENDING
    req = AccessRequest.objects.get(integration=integration)
    assert req.type == "registration" and req.requester == owner and req.risk_tier == integration.risk_tier
    assert sorted(req.requested_scopes.values_list("code", flat=True)) == ["hrdb:employees.read", "msgraph:Files.Read"]
    steps = approve_all(req, people)
    assert steps[0] == "IAM review"
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ACTIVE
    grants = list(integration.grants.filter(status=GrantStatus.ACTIVE))
    assert len(grants) == 2 and all(g.expires_at and g.expires_at > timezone.now() for g in grants)


def test_changes_requested_then_resubmitted_through_inventory_is_the_next_round(
    owner, reviewer, people, workflows, catalog
):
    integration = register(owner, [catalog["files"]])
    req = AccessRequest.objects.get(integration=integration)
    services.request_decide(actor=reviewer, request=req, decision="request_changes", comment="Say what it reads")
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.DRAFT
    inventory.integration_update(actor=owner, integration=integration, values={"purpose": "Reads HR FAQ pages only"})
    inventory.integration_submit(actor=owner, integration=integration)
    req.refresh_from_db()
    assert AccessRequest.objects.filter(integration=integration).count() == 1
    assert req.round == 2 and req.status == RequestStatus.IN_REVIEW
    approve_all(req, people)
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ACTIVE


def test_suspension_during_review_cancels_the_request_and_refuses_decisions(
    owner, reviewer, iam_admin, workflows, catalog
):
    integration = register(owner, [catalog["files"]])
    req = AccessRequest.objects.get(integration=integration)
    inventory.integration_suspend(actor=iam_admin, integration=integration, reason="incident")
    req.refresh_from_db()
    assert req.status == RequestStatus.CANCELLED
    with pytest.raises(Conflict):
        services.request_decide(actor=reviewer, request=req, decision="approve")


def test_each_email_arrives_exactly_once_when_the_mail_server_first_refuses(
    owner, people, workflows, catalog, monkeypatch, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    integration = register(owner, [catalog["files"]])
    approve_all(AccessRequest.objects.get(integration=integration), people)
    queued = OutboundEmail.objects.count()
    assert queued >= 2
    real_send = EmailBackend.send_messages
    refused: set[str] = set()

    def flaky(self, messages):  # noqa: ANN001, ANN202
        key = f"{messages[0].to[0]}|{messages[0].subject}"
        if key not in refused:  # the first attempt of every email is refused
            refused.add(key)
            raise ConnectionRefusedError("mail server down")
        return real_send(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", flaky)
    outbox_flush()
    assert len(mail.outbox) == 0
    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        outbox_flush()
        outbox_flush()
    assert len(mail.outbox) == queued
    assert len({(m.to[0], m.subject, m.body) for m in mail.outbox}) == queued
    to_owner = [m for m in mail.outbox if m.to == [owner.email]]
    assert to_owner and all(f"/approvals/requests/{integration.access_requests.get().pk}/" in m.body for m in to_owner)
