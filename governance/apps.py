from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance kernel"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance import accounts, observability, panels, roles, scheduling, targets
        from governance.api import schema  # noqa: F401  (registers OpenAPI extensions)

        post_migrate.connect(roles.roles_sync, dispatch_uid="governance.roles_sync")
        targets.register_kernel_targets()
        post_migrate.connect(scheduling.schedules_sync, dispatch_uid="governance.schedules_sync")
        scheduling.register("outbox-flush", "governance.tasks.outbox_flush", "* * * * *")
        scheduling.register("audit-verify", "governance.tasks.audit_verify", "17 * * * *")
        # Hourly signed checkpoint of the audit chain, sent to the external witnesses.
        scheduling.register("audit-checkpoint", "governance.tasks.audit_checkpoint", "7 * * * *")
        # Remembered Idempotency-Key responses are forgotten after a day.
        scheduling.register("idempotency-purge", "governance.api.idempotency.purge_expired", "23 * * * *")
        # The worker runs only the project's task functions; superuser sign-ins are audited.
        scheduling.enforce_allow_list()
        accounts.connect()
        panels.register()
        observability.register()
