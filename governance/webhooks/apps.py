from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Outbound webhooks, idempotent creates and rate limits for API clients (ticketing systems).
    Part of the kernel, kept as its own Django app (label ``webhooks``)."""

    name = "governance.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks and API clients"
    default_auto_field = "django.db.models.BigAutoField"
