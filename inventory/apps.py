from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance import demo, scheduling
        from governance.signals import user_deactivated
        from inventory import panels, webhooks
        from inventory.demo import seed
        from inventory.receivers import on_user_deactivated

        user_deactivated.connect(on_user_deactivated, dispatch_uid="inventory.orphan_on_deactivation")
        panels.register()
        webhooks.register()
        demo.register("inventory", 10, seed)
        scheduling.register("inventory-risk-refresh", "inventory.tasks.risk_refresh_all", "40 5 * * *")
