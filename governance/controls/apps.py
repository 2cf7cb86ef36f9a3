from django.apps import AppConfig


class ControlsConfig(AppConfig):
    """Controls, framework mappings, live evidence, the dashboard and its daily metric snapshots.
    Part of the kernel, kept as its own Django app (label ``controls``)."""

    name = "governance.controls"
    label = "controls"
    verbose_name = "Controls and evidence"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance.controls import dashboard_panels, kernel_controls

        kernel_controls.register()
        dashboard_panels.register()
