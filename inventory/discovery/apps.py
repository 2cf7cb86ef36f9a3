from __future__ import annotations

from django.apps import AppConfig


class DiscoveryConfig(AppConfig):
    """Discovery of OAuth grants the identity providers and SaaS suites already record: part of
    the inventory (what exists), kept as its own Django app (label ``discovery``) so its models and
    migrations stand apart. It depends on the inventory and the kernel only."""

    name = "inventory.discovery"
    label = "discovery"
    verbose_name = "Discovery"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from inventory.discovery import registry

        registry.register_all()
        from inventory.discovery import controls, dashboard_panels

        controls.register()
        dashboard_panels.register()
