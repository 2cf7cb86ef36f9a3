"""How the audit trail names and links webhook subscriptions (governance.targets)."""

from __future__ import annotations

from django.urls import reverse


def register() -> None:
    from governance.targets import register_target
    from governance.webhooks.models import WebhookSubscription
    from governance.webhooks.selectors import subscriptions_for

    register_target(
        WebhookSubscription._meta.label_lower,
        visible=lambda user: subscriptions_for(user, include_deleted=True),
        url=lambda obj: reverse("webhooks:detail", args=[obj.pk]),
    )
