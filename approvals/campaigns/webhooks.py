"""How campaigns and review items appear in webhook events: their current API representation,
read when the event is sent (governance.webhooks.events.register_representation)."""

from __future__ import annotations

from typing import Any

from governance.webhooks.events import register_representation


def campaign(target_id: str) -> dict[str, Any] | None:
    from approvals.campaigns.api.serializers import CampaignSerializer
    from approvals.campaigns.models import Campaign

    obj = Campaign.objects.filter(pk=target_id).select_related("definition", "owner").first()
    return dict(CampaignSerializer(obj).data) if obj else None


def review_item(target_id: str) -> dict[str, Any] | None:
    from approvals.campaigns.api.serializers import ReviewItemSerializer
    from approvals.campaigns.models import ReviewItem

    obj = (
        ReviewItem.objects.filter(pk=target_id)
        .select_related("integration", "grant__scope", "reviewer", "reviewer_group", "decided_by")
        .first()
    )
    if obj is None:
        return None
    return {**ReviewItemSerializer(obj).data, "ticket_ref": obj.integration.ticket_ref}


def register() -> None:
    from approvals.campaigns.models import Campaign, ReviewItem

    register_representation(Campaign._meta.label_lower, campaign)
    register_representation(ReviewItem._meta.label_lower, review_item)
