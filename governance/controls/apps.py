from django.apps import AppConfig


class ControlsConfig(AppConfig):
    """Controls, framework mappings, live evidence, the dashboard and its daily metric snapshots.
    Part of the kernel, kept as its own Django app (label ``controls``)."""

    name = "governance.controls"
    label = "controls"
    verbose_name = "Controls and evidence"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance.controls import audit_targets, dashboard_panels, kernel_controls, nav, snapshots

        kernel_controls.register()
        dashboard_panels.register()
        nav.register()
        audit_targets.register()
        snapshots.register()
