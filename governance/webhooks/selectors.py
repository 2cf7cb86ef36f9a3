"""Reads of the webhooks app, always for a user: others see no subscription (404)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from governance.webhooks.models import SubscriptionStatus, WebhookDelivery, WebhookSubscription
from governance.webhooks.permissions import can_view_webhooks


def subscriptions_for(user: Any, *, include_deleted: bool = False) -> QuerySet[WebhookSubscription]:
    if not can_view_webhooks(user):
        return WebhookSubscription.objects.none()
    qs = WebhookSubscription.objects.select_related("created_by")
    return qs if include_deleted else qs.filter(status=SubscriptionStatus.ACTIVE)


def deliveries_for(user: Any) -> QuerySet[WebhookDelivery]:
    if not can_view_webhooks(user):
        return WebhookDelivery.objects.none()
    return WebhookDelivery.objects.select_related("subscription").prefetch_related("attempt_log")
