"""No audit event without an accountable person: a walk through the kernel's, the
inventory's and the approvals' actions — catalog and workflow changes by an IAM admin, a
registration decided by a reviewer, grants ended by the system, a leaver without a manager
deactivated with their tokens and integrations — leaves no event with an empty owner."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from approvals import services
from approvals.models import WORKFLOW_STEP_FIELDS, Workflow
from governance.models import AuditEvent, User
from governance.roles import Role
from governance.services import api_token_issue, api_token_revoke, user_deactivate
from inventory import services as inventory_services

pytestmark = pytest.mark.django_db


def test_every_event_of_a_walk_through_the_portal_names_an_accountable_owner(
    iam_admin: User,
    owner: User,
    reviewer: User,
    make_user: Callable[..., User],
    make_integration: Callable[..., Any],
    submit: Callable[..., Any],
) -> None:
    # The catalog, kept by an IAM admin.
    system = inventory_services.resource_system_save(actor=iam_admin, values={"code": "crm", "name": "CRM"})
    inventory_services.resource_system_save(actor=iam_admin, system=system, values={"name": "CRM (EU)"})
    scope = inventory_services.scope_save(actor=iam_admin, system=system, values={"name": "read"})
    inventory_services.scope_save(actor=iam_admin, scope=scope, values={"sensitivity": "high"})
    # Workflows and expiry policies.
    workflow = Workflow.objects.filter(steps__isnull=False).distinct().first()
    assert workflow is not None
    step = workflow.steps.first()
    assert step is not None
    values = {name: getattr(step, name) for name in WORKFLOW_STEP_FIELDS} | {"sla_hours": 72}
    services.workflow_step_save(
        actor=iam_admin, workflow=workflow, step=step, values=values, pool_users=list(step.pool_users.all())
    )
    services.expiry_policy_set(actor=iam_admin, risk_tier="low", days=30)
    # A registration decided by a reviewer; its grant ended by the system at expiry.
    request = submit(make_integration("Notes bot"))
    services.request_decide(
        actor=reviewer, request=request, decision="approve", expires_at=timezone.now() + timedelta(days=3)
    )
    assert services.grants_expire_due(now=timezone.now() + timedelta(days=4)) == 1
    # Tokens of a person.
    token, _key = api_token_issue(actor=owner, user=owner, name="cli")
    api_token_revoke(actor=owner, token=token)
    # A leaver without a manager, with tokens and an integration.
    leaver = make_user("leaver", Role.BUSINESS_USER)
    api_token_issue(actor=leaver, user=leaver, name="laptop")
    make_integration("Leaver's bot", business_owner=leaver)
    user_deactivate(actor=iam_admin, user=leaver, reason="Left the company")

    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "resource_system.created",
        "resource_system.changed",
        "scope.created",
        "scope.changed",
        "workflow.changed",
        "grant_expiry_policy.changed",
        "access_request.created",
        "grant.expired",
        "user.deactivated",
        "api_token.revoked",
        "integration.orphaned",
    } <= actions
    unowned = list(AuditEvent.objects.filter(owner_username="").values_list("id", "action", "actor_username")) + list(
        AuditEvent.objects.filter(owner__isnull=True).values_list("id", "action", "actor_username")
    )
    assert not unowned, f"events that name no accountable owner: {unowned}"
