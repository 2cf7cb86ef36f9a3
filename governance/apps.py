from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance kernel"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance import portal, roles, scheduling
        from governance.api import schema  # noqa: F401  (registers OpenAPI extensions)

        post_migrate.connect(roles.roles_sync, dispatch_uid="governance.roles_sync")
        post_migrate.connect(scheduling.schedules_sync, dispatch_uid="governance.schedules_sync")
        scheduling.register("outbox-flush", "governance.tasks.outbox_flush", "* * * * *")
        portal.register_nav(portal.NavEntry(label="Home", url_name="home", order=0))
        portal.register_nav(
            portal.NavEntry(
                label="Audit trail",
                url_name="audit-list",
                order=90,
                visible=lambda user: roles.has_role(user, roles.Role.AUDITOR, roles.Role.IAM_ADMIN, roles.Role.REVIEWER),
            )
        )
