"""Benchmark data: many pending requests assigned to one reviewer, written with bulk_create (the
services would take minutes for 20,000). The queue benchmark and the query-count tests load it."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from approvals.models import (
    AccessRequest,
    PoolKind,
    RequestStep,
    RequestType,
    StepAssignment,
    StepStatus,
)
from approvals.services import queue_keys_fill
from governance.models import User
from inventory.choices import IntegrationStatus, RiskTier
from inventory.models import Integration, Scope

TIERS = [RiskTier.LOW, RiskTier.MEDIUM, RiskTier.HIGH, RiskTier.CRITICAL]


def pending_requests_bulk(*, n: int, owner: User, reviewer: User, scopes: list[Scope], batch: int = 2000) -> None:
    """``n`` integrations waiting for their first step, each assigned to ``reviewer`` alone, of
    every tier in turn and with due times spread from a day overdue to three days ahead."""
    now = timezone.now()
    for start in range(0, n, batch):
        size = min(batch, n - start)
        integrations = Integration.objects.bulk_create(
            [
                Integration(
                    name=f"Bulk integration {start + index}",
                    kind="agent",
                    purpose="Benchmark",
                    business_owner=owner,
                    status=IntegrationStatus.PENDING,
                    risk_tier=TIERS[(start + index) % 4],
                    risk_score=(start + index) % 100,
                    risk_factors=[{"code": "acts_for_users", "points": 10, "reason": "Acts for users"}],
                )
                for index in range(size)
            ]
        )
        reqs = AccessRequest.objects.bulk_create(
            [
                AccessRequest(
                    type=RequestType.REGISTRATION if index % 3 else RequestType.EXPANSION,
                    integration=integration,
                    requester=owner,
                    risk_tier=integration.risk_tier,
                )
                for index, integration in enumerate(integrations)
            ]
        )
        through = AccessRequest.requested_scopes.through
        through.objects.bulk_create(
            [through(accessrequest_id=req.pk, scope_id=scope.pk) for req in reqs for scope in scopes]
        )
        steps = RequestStep.objects.bulk_create(
            [
                RequestStep(
                    request=req,
                    round=1,
                    order=1,
                    name="IAM review",
                    pool_kind=PoolKind.USERS,
                    status=StepStatus.ACTIVE,
                    activated_at=now,
                    due_at=now + timedelta(hours=(index % 96) - 24),
                    remind_at=now + timedelta(hours=24),
                )
                for index, req in enumerate(reqs)
            ]
        )
        StepAssignment.objects.bulk_create(
            [StepAssignment(step=step, user=reviewer, due_at=step.due_at, via="named reviewer") for step in steps]
        )
        # The queue's copies of each request's tier and score, as the services set them.
        queue_keys_fill(StepAssignment.objects.filter(step__in=steps))
