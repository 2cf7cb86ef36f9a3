"""Reads of campaigns, always for a user (DESIGN.md invariant 2): pages and API use these.

Visibility: IAM admins and auditors see every definition, campaign and item; a campaign's owner
sees all of that campaign; a reviewer sees the items assigned to them or to one of their groups
(and the campaigns those items belong to); everyone else sees nothing (404).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from approvals.campaigns.models import (
    Campaign,
    CampaignDefinition,
    CampaignStatus,
    ItemStatus,
    ReviewItem,
)
from governance.roles import Role, has_role


def _sees_all(user: Any) -> bool:
    return has_role(user, Role.IAM_ADMIN, Role.AUDITOR)


def _authenticated(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False))


def assigned_to(user: Any, prefix: str = "") -> Q:
    """Items assigned to ``user``: directly, through a group, or waiting for the confirmation
    group they belong to (second stage)."""
    groups = user.groups.values("pk")
    return (
        Q(**{f"{prefix}reviewer": user})
        | Q(**{f"{prefix}reviewer_group__in": groups})
        | Q(
            **{
                f"{prefix}status": ItemStatus.AWAITING_CONFIRMATION,
                f"{prefix}campaign__definition__second_stage_group__in": groups,
            }
        )
    )


def definitions_for(user: Any) -> QuerySet[CampaignDefinition]:
    if _authenticated(user) and _sees_all(user):
        return CampaignDefinition.objects.all()
    return CampaignDefinition.objects.none()


def campaigns_for(user: Any) -> QuerySet[Campaign]:
    qs = Campaign.objects.all()
    if not _authenticated(user):
        return qs.none()
    if _sees_all(user):
        return qs
    mine = ReviewItem.objects.filter(assigned_to(user), campaign=OuterRef("pk"))
    return qs.filter(Q(owner=user) | Exists(mine))


def campaigns_listed(user: Any) -> QuerySet[Campaign]:
    return campaigns_for(user).select_related("definition", "owner")


def review_items_for(user: Any) -> QuerySet[ReviewItem]:
    qs = ReviewItem.objects.all()
    if not _authenticated(user):
        return qs.none()
    if _sees_all(user):
        return qs
    return qs.filter(assigned_to(user) | Q(campaign__owner=user))


def review_items_listed(user: Any) -> QuerySet[ReviewItem]:
    """What a row shows, in a fixed number of queries."""
    return review_items_for(user).select_related(
        "campaign", "integration__business_owner", "grant__scope__system", "reviewer", "reviewer_group", "decided_by"
    )


def my_open_items(user: Any) -> QuerySet[ReviewItem]:
    """Undecided items waiting for ``user``'s decision in running campaigns (the nav count and
    the review page): open items assigned to them or their groups, and keeps awaiting the
    confirmation of a group they belong to (IAM admins when the definition names none)."""
    if not _authenticated(user):
        return ReviewItem.objects.none()
    groups = user.groups.values("pk")
    first = Q(status=ItemStatus.OPEN) & (Q(reviewer=user) | Q(reviewer_group__in=groups))
    confirm = Q(status=ItemStatus.AWAITING_CONFIRMATION) & Q(campaign__definition__second_stage_group__in=groups)
    if has_role(user, Role.IAM_ADMIN):
        confirm |= Q(status=ItemStatus.AWAITING_CONFIRMATION, campaign__definition__second_stage_group__isnull=True)
    return ReviewItem.objects.filter(first | confirm, campaign__status=CampaignStatus.ACTIVE)
