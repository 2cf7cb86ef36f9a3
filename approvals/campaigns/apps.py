from __future__ import annotations

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    """Recertification campaigns: part of approvals (every decision about access), kept as its own
    Django app (label ``campaigns``) so its models and migrations stand apart."""

    name = "approvals.campaigns"
    label = "campaigns"
    verbose_name = "Recertification campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from approvals.campaigns import audit_targets, demo, panels, webhooks
        from governance import demo as demo_registry
        from governance import scheduling

        scheduling.register("campaigns-sweep", "approvals.campaigns.tasks.campaigns_sweep", "*/10 * * * *")
        panels.register()
        demo_registry.register("campaigns", 30, demo.seed)
        webhooks.register()
        audit_targets.register()
