from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance import demo, scheduling
        from governance.signals import user_deactivated
        from inventory import audit_targets, panels, webhooks
        from inventory.demo import seed
        from inventory.receivers import on_user_deactivated

        user_deactivated.connect(on_user_deactivated, dispatch_uid="inventory.orphan_on_deactivation")
        panels.register()
        from inventory import controls, dashboard_panels

        controls.register()
        dashboard_panels.register()
        from inventory import extensions, views_delegates

        extensions.register_integration_section(
            "delegates", template="inventory/sections/delegates.html", build=views_delegates.delegates_section, order=20
        )
        webhooks.register()
        audit_targets.register()
        demo.register("inventory", 10, seed)
        scheduling.register("inventory-risk-refresh", "inventory.tasks.risk_refresh_all", "40 5 * * *")
