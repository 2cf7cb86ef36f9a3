"""The webhooks app's navigation entry (registered in ``WebhooksConfig.ready``): its count is the
failed deliveries of active subscriptions, one COUNT."""

from __future__ import annotations

from django.http import HttpRequest

from governance import portal
from governance.webhooks.models import DeliveryStatus, SubscriptionStatus, WebhookDelivery
from governance.webhooks.permissions import can_view_webhooks


def failed_delivery_count(request: HttpRequest) -> int:
    return WebhookDelivery.objects.filter(
        status=DeliveryStatus.FAILED, subscription__status=SubscriptionStatus.ACTIVE
    ).count()


def register() -> None:
    portal.register_nav(
        portal.NavEntry(
            label="Webhooks",
            url_name="webhooks:list",
            order=94,
            visible=can_view_webhooks,
            count=failed_delivery_count,
            group=portal.ADMINISTRATION,
        )
    )
