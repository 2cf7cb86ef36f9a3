"""How the audit trail names and links campaigns, their definitions and review items
(governance.targets)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse


def _item_label(item: Any) -> str:
    scope = f" {item.grant.scope.code}" if item.grant_id else ""
    return f"Review of {item.integration.name}{scope} in {item.campaign.name}"


def register() -> None:
    from approvals.campaigns import selectors
    from approvals.campaigns.models import Campaign, CampaignDefinition, ReviewItem
    from governance.targets import register_target

    register_target(
        Campaign._meta.label_lower,
        visible=selectors.campaigns_for,
        url=lambda obj: reverse("campaigns:campaign-detail", args=[obj.pk]),
    )
    register_target(
        CampaignDefinition._meta.label_lower,
        visible=selectors.definitions_for,
        url=lambda obj: reverse("campaigns:definition-edit", args=[obj.pk]),
    )
    register_target(
        ReviewItem._meta.label_lower,
        visible=lambda user: selectors.review_items_for(user).select_related("campaign", "integration", "grant__scope"),
        label=_item_label,
        url=lambda obj: reverse("campaigns:campaign-detail", args=[obj.campaign_id]),
    )
