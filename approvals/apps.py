from __future__ import annotations

from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from approvals import audit_targets, demo, panels, receivers, webhooks
        from governance import demo as demo_registry
        from governance import scheduling
        from inventory import signals

        signals.integration_submitted.connect(receivers.on_integration_submitted, dispatch_uid="approvals.submitted")
        signals.integration_scopes_added.connect(
            receivers.on_integration_scopes_added, dispatch_uid="approvals.scopes_added"
        )
        signals.integration_risk_raised.connect(
            receivers.on_integration_risk_raised, dispatch_uid="approvals.risk_raised"
        )
        signals.integration_disabled.connect(receivers.on_integration_disabled, dispatch_uid="approvals.disabled")
        signals.integration_rescored.connect(receivers.on_integration_rescored, dispatch_uid="approvals.rescored")
        signals.integration_identity_changed.connect(
            receivers.on_integration_identity_changed, dispatch_uid="approvals.identity_changed"
        )

        webhooks.register()
        panels.register()
        from approvals import controls, dashboard_panels, metrics

        controls.register()
        dashboard_panels.register()
        metrics.register()
        audit_targets.register()
        # Every five minutes: an elevation's grant lasts an hour and its step's SLA is minutes, so
        # ending grants and escalating steps cannot wait for an hourly pass. Both sweeps are one
        # indexed range read when nothing is due.
        scheduling.register("approvals-grants-expire", "approvals.tasks.grants_expire", "*/5 * * * *")
        scheduling.register("approvals-grants-warn", "approvals.tasks.grants_warn", "30 6 * * *")
        scheduling.register("approvals-sla-sweep", "approvals.tasks.sla_sweep", "*/5 * * * *")
        # A scheduled delegation is covered within five minutes of its start; one that ends
        # stops at once (the gates read its dates too), the sweep then removes its permissions.
        scheduling.register("approvals-delegations-sync", "approvals.tasks.delegations_sync", "*/5 * * * *")
        # The reviewers' daily digest, in the morning (UTC), before the working day.
        scheduling.register("approvals-reviewer-digest", "approvals.tasks.reviewer_digest", "0 7 * * *")
        demo_registry.register("approvals", 20, demo.seed)
