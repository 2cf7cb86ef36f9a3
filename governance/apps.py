from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance kernel"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance import accounts, panels, portal, roles, scheduling
        from governance.api import schema  # noqa: F401  (registers OpenAPI extensions)

        post_migrate.connect(roles.roles_sync, dispatch_uid="governance.roles_sync")
        post_migrate.connect(scheduling.schedules_sync, dispatch_uid="governance.schedules_sync")
        scheduling.register("outbox-flush", "governance.tasks.outbox_flush", "* * * * *")
        scheduling.register("audit-verify", "governance.tasks.audit_verify", "17 * * * *")
        # Hourly signed checkpoint of the audit chain, sent to the external witnesses.
        scheduling.register("audit-checkpoint", "governance.tasks.audit_checkpoint", "7 * * * *")
        # The worker runs only the project's task functions; superuser sign-ins are audited.
        scheduling.enforce_allow_list()
        accounts.connect()
        panels.register()
        portal.register_nav(portal.NavEntry(label="Home", url_name="home", order=0))
        portal.register_nav(
            portal.NavEntry(
                label="Audit trail",
                url_name="audit-list",
                order=90,
                visible=lambda user: roles.has_role(
                    user, roles.Role.AUDITOR, roles.Role.IAM_ADMIN, roles.Role.REVIEWER
                ),
            )
        )
        portal.register_nav(
            portal.NavEntry(
                label="Outbox",
                url_name="outbox",
                order=92,
                visible=lambda user: roles.has_role(user, roles.Role.IAM_ADMIN, roles.Role.AUDITOR),
                count=_failed_email_count,
            )
        )


def _failed_email_count(request: object) -> int:
    from governance.models import EmailStatus, OutboundEmail

    return OutboundEmail.objects.filter(status=EmailStatus.FAILED).count()
