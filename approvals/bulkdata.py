"""Bulk fixtures for query-count tests and the queue benchmark: many pending requests assigned
to one reviewer, written with bulk_create (the services would take minutes for 20,000)."""

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
from governance.models import User
from inventory.models import Integration, IntegrationStatus, RiskTier, Scope

TIERS = [RiskTier.LOW, RiskTier.MEDIUM, RiskTier.HIGH, RiskTier.CRITICAL]


def pending_requests_bulk(*, n: int, owner: User, reviewer: User, scopes: list[Scope], batch: int = 2000) -> None:
    now = timezone.now()
    for start in range(0, n, batch):
        size = min(batch, n - start)
        integrations = Integration.objects.bulk_create(
            [
                Integration(
                    name=f"Bulk integration {start + i}",
                    kind="agent",
                    purpose="Benchmark",
                    business_owner=owner,
                    status=IntegrationStatus.PENDING,
                    risk_tier=TIERS[(start + i) % 4],
                    risk_score=(start + i) % 100,
                    risk_factors=[{"code": "acts_for_users", "points": 10, "reason": "Acts for users"}],
                )
                for i in range(size)
            ]
        )
        reqs = AccessRequest.objects.bulk_create(
            [
                AccessRequest(
                    type=RequestType.REGISTRATION if i % 3 else RequestType.EXPANSION,
                    integration=integ,
                    requester=owner,
                    risk_tier=integ.risk_tier,
                )
                for i, integ in enumerate(integrations)
            ]
        )
        through = AccessRequest.requested_scopes.through
        through.objects.bulk_create([through(accessrequest_id=r.pk, scope_id=s.pk) for r in reqs for s in scopes])
        steps = RequestStep.objects.bulk_create(
            [
                RequestStep(
                    request=r,
                    round=1,
                    order=1,
                    name="IAM review",
                    pool_kind=PoolKind.USERS,
                    status=StepStatus.ACTIVE,
                    activated_at=now,
                    due_at=now + timedelta(hours=(j % 96) - 24),
                    remind_at=now + timedelta(hours=24),
                )
                for j, r in enumerate(reqs)
            ]
        )
        StepAssignment.objects.bulk_create(
            [StepAssignment(step=s, user=reviewer, due_at=s.due_at, via="named reviewer") for s in steps]
        )
