from typing import Any

from django.apps import AppConfig


def _test_seeded_versions(using: str = "default", **_: Any) -> None:
    """A version a migration seeded has never had its tests run: run them once, so its page and
    the API show their results rather than "not run"."""
    from governance.actors import Actor
    from runtime.models import PolicyStatus, PolicyVersion
    from runtime.services.policies import policy_tests_run

    for version in (
        PolicyVersion.objects.using(using).filter(tests_run_at__isnull=True).exclude(status=PolicyStatus.RETIRED)
    ):
        policy_tests_run(actor=Actor.system(on_behalf_of=None), version=version)


class RuntimeConfig(AppConfig):
    name = "runtime"
    verbose_name = "Runtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance import demo as demo_registry
        from governance import scheduling
        from runtime import (  # noqa: F401  (checks registers the signing-key system checks)
            audit_targets,
            checks,
            demo,
            panels,
        )

        panels.register()
        from runtime import controls, dashboard_panels, metrics

        controls.register()
        dashboard_panels.register()
        metrics.register()
        audit_targets.register()
        demo_registry.register("runtime", 40, demo.seed)
        # Daily: rotates each algorithm's keys once the current one is RUNTIME_KEY_ROTATION_DAYS old,
        # and retires superseded keys whose tokens have all expired.
        scheduling.register("runtime.signing_keys_rotate", "runtime.tasks.signing_keys_rotate_due", "17 3 * * *")
        # Every minute: the token log's new events sealed into the audit chain, usage fed back.
        scheduling.register("runtime.token_log_seal", "runtime.tasks.token_log_seal", "* * * * *")
        # Every minute: the decision log's new decisions sealed; daily: those past their retention purged.
        scheduling.register("runtime.policy_log_seal", "runtime.tasks.policy_log_seal", "* * * * *")
        scheduling.register("runtime.policy_decisions_purge", "runtime.tasks.policy_decisions_purge", "43 3 * * *")
        from governance.audit import register_verifier
        from runtime.log import verify_token_log
        from runtime.policy.log import verify_decision_log

        register_verifier("token log", verify_token_log)
        register_verifier("decision log", verify_decision_log)
        self._drop_copies_on_save()
        from django.db.models.signals import post_migrate

        post_migrate.connect(_test_seeded_versions, sender=self, dispatch_uid="runtime.test_seeded_versions")
        self._apply_policy_changes()

    def _apply_policy_changes(self) -> None:
        """An approved policy change request enforces (or rolls back to) its policy version."""
        from approvals.extensions import register_change_kind
        from approvals.models import RequestType
        from runtime.services.policies import policy_change_decided

        register_change_kind(RequestType.POLICY_CHANGE, on_decided=policy_change_decided)

    def _drop_copies_on_save(self) -> None:
        """A saved issuer, system or campaign drops this process's copies of them at once."""
        from django.db.models.signals import post_delete, post_save

        from approvals.campaigns.models import Campaign
        from inventory.models import ResourceSystem, TrustedIssuer
        from runtime import exchange, grantfacts, workload

        for model, cache in (
            (TrustedIssuer, workload.ISSUER_COPIES),
            (ResourceSystem, exchange.SYSTEM_COPIES),
            (Campaign, grantfacts.DEADLINE_COPIES),
        ):
            for name, signal in (("save", post_save), ("delete", post_delete)):
                signal.connect(cache.clear, sender=model, dispatch_uid=f"runtime.hotcache.{model.__name__}.{name}")
