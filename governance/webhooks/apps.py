from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Outbound webhooks for API clients (ticketing systems). Part of the kernel, kept as its own
    Django app (label ``webhooks``)."""

    name = "governance.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance import scheduling
        from governance.audit import register_listener
        from governance.webhooks import audit_targets, events, panels

        register_listener(events.on_audit_events)
        scheduling.register("webhooks-sweep", "governance.webhooks.tasks.deliveries_sweep", "* * * * *")
        panels.register()
        audit_targets.register()
