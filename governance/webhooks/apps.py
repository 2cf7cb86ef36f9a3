from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Outbound webhooks, idempotent creates and rate limits for API clients (ticketing systems).
    Part of the kernel, kept as its own Django app (label ``webhooks``)."""

    name = "governance.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks and API clients"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance import portal, scheduling
        from governance.audit import register_listener
        from governance.webhooks import events
        from governance.webhooks.permissions import can_view_webhooks

        register_listener(events.on_audit_events)
        scheduling.register("webhooks-sweep", "governance.webhooks.tasks.deliveries_sweep", "* * * * *")
        scheduling.register("idempotency-purge", "governance.webhooks.idempotency.purge_expired", "23 * * * *")
        portal.register_nav(
            portal.NavEntry(
                label="Webhooks", url_name="webhooks:list", order=94, visible=can_view_webhooks, count=_failed_count
            )
        )


def _failed_count(request: object) -> int:
    from governance.webhooks.models import DeliveryStatus, SubscriptionStatus, WebhookDelivery

    return WebhookDelivery.objects.filter(
        status=DeliveryStatus.FAILED, subscription__status=SubscriptionStatus.ACTIVE
    ).count()
