"""Reads of approvals, always for a user (DESIGN.md invariant 2): pages and API use these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from approvals.models import AccessRequest, Decision, RequestStep, StepAssignment
from governance.roles import sees_everything
from inventory.models import Grant, Integration


def integrations_for(user: Any) -> QuerySet[Integration]:
    """The inventory's visibility rule: its selector when it exists, otherwise the same rule
    (owners see theirs; reviewers, admins and auditors see all)."""
    try:
        from inventory.selectors import (
            integrations_for as inventory_rule,  # type: ignore[import-not-found]
        )
    except ImportError:
        inventory_rule = None
    if inventory_rule is not None:
        return inventory_rule(user)
    if not getattr(user, "is_authenticated", False):
        return Integration.objects.none()
    if sees_everything(user):
        return Integration.objects.all()
    return Integration.objects.filter(Q(business_owner=user) | Q(technical_owner=user) | Q(backup_owner=user))


def _owned(user: Any, prefix: str = "integration__") -> Q:
    return (
        Q(**{f"{prefix}business_owner": user})
        | Q(**{f"{prefix}technical_owner": user})
        | Q(**{f"{prefix}backup_owner": user})
    )


def access_requests_for(user: Any) -> QuerySet[AccessRequest]:
    """Requesters and owners see theirs; reviewers, IAM admins and auditors see all."""
    qs = AccessRequest.objects.all()
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    if sees_everything(user):
        return qs
    # People asked to decide (a requester's manager, a resource owner without the reviewer role)
    # see the requests they were assigned, even after deciding them.
    assigned = StepAssignment.objects.filter(user=user).values("step__request_id")
    return qs.filter(Q(requester=user) | _owned(user) | Q(pk__in=assigned))


def access_requests_listed(user: Any) -> QuerySet[AccessRequest]:
    """For lists: what each row shows, in a fixed number of queries."""
    return access_requests_for(user).select_related("integration", "requester").prefetch_related("requested_scopes")


def access_request_detail(user: Any) -> QuerySet[AccessRequest]:
    return with_detail(access_requests_listed(user))


def with_detail(qs: QuerySet[AccessRequest]) -> QuerySet[AccessRequest]:
    """What the detail representation reads (steps, assignments, decisions), in fixed queries."""
    from django.db.models import Prefetch

    return (
        qs.select_related("integration", "requester")
        .prefetch_related("requested_scopes")
        .prefetch_related(
            Prefetch(
                "steps",
                queryset=RequestStep.objects.select_related("decided_by", "pool_group").prefetch_related(
                    Prefetch("assignments", queryset=StepAssignment.objects.select_related("user")),
                    Prefetch(
                        "decisions",
                        queryset=Decision.objects.select_related("reviewer").prefetch_related("approved_scopes"),
                    ),
                ),
            )
        )
    )


def assigned_to(user: Any) -> Q:
    """Requests with an open step assigned to ``user`` (for ``assigned_to_me=true``)."""
    return Q(steps__assignments__user=user, steps__assignments__is_open=True)


def queue_for(user: Any, *, type: str = "", tier: str = "", overdue: bool = False) -> QuerySet[StepAssignment]:
    """What waits for ``user``'s decision, oldest SLA first. Group pools are resolved into names
    when a step starts, so "my groups" is in the assignments too."""
    qs = StepAssignment.objects.filter(user=user, is_open=True)
    if type:
        qs = qs.filter(step__request__type=type)
    if tier:
        qs = qs.filter(step__request__integration__risk_tier=tier)
    if overdue:
        qs = qs.filter(due_at__lt=timezone.now())
    return qs.order_by("due_at", "id")


def grants_for(user: Any) -> QuerySet[Grant]:
    qs = Grant.objects.all()
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    if sees_everything(user):
        return qs
    return qs.filter(integration__in=integrations_for(user).values("pk"))


def overdue_count(user: Any, now: datetime | None = None) -> int:
    return StepAssignment.objects.filter(user=user, is_open=True, due_at__lt=now or timezone.now()).count()
