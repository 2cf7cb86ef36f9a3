from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from approvals import demo, receivers, webhooks
        from governance import demo as demo_registry
        from governance import portal, scheduling
        from governance.roles import Role
        from inventory import signals

        signals.integration_submitted.connect(receivers.on_integration_submitted, dispatch_uid="approvals.submitted")
        signals.integration_scopes_added.connect(
            receivers.on_integration_scopes_added, dispatch_uid="approvals.scopes_added"
        )
        signals.integration_risk_raised.connect(
            receivers.on_integration_risk_raised, dispatch_uid="approvals.risk_raised"
        )
        signals.integration_disabled.connect(receivers.on_integration_disabled, dispatch_uid="approvals.disabled")

        webhooks.register()
        scheduling.register("approvals-grants-expire", "approvals.tasks.grants_expire", "7 * * * *")
        scheduling.register("approvals-grants-warn", "approvals.tasks.grants_warn", "30 6 * * *")
        scheduling.register("approvals-sla-sweep", "approvals.tasks.sla_sweep", "*/10 * * * *")

        portal.register_nav(
            portal.NavEntry(
                label="Queue", url_name="approvals:queue", order=20, visible=_is_reviewer, count=_queue_count
            )
        )
        portal.register_nav(portal.NavEntry(label="Requests", url_name="approvals:request-list", order=21))
        portal.register_nav(
            portal.NavEntry(label="Workflows", url_name="approvals:workflow-list", order=80, visible=_reads_workflows)
        )
        portal.register_panel(
            portal.HomePanel(
                key="approvals-queue",
                template="approvals/panels/queue.html",
                build=_queue_panel,
                order=20,
                roles=frozenset({Role.REVIEWER, Role.IAM_ADMIN}),
            )
        )
        portal.register_panel(
            portal.HomePanel(
                key="approvals-mine",
                template="approvals/panels/my_requests.html",
                build=_my_requests_panel,
                order=21,
                roles=frozenset({Role.BUSINESS_USER}),
            )
        )
        demo_registry.register("approvals", 20, demo.seed)


def _is_reviewer(user: Any) -> bool:
    from approvals.permissions import sees_queue

    return sees_queue(user)


def _reads_workflows(user: Any) -> bool:
    from approvals.permissions import can_manage_workflows
    from governance.roles import is_auditor

    return can_manage_workflows(user) or is_auditor(user)


def _queue_count(request: Any) -> int:
    from approvals.services import queue_open_count

    return queue_open_count(request.user)


def _queue_panel(request: Any) -> dict[str, Any] | None:
    from approvals.selectors import overdue_count
    from approvals.services import queue_open_count

    return {"waiting": queue_open_count(request.user), "overdue": overdue_count(request.user)}


def _my_requests_panel(request: Any) -> dict[str, Any] | None:
    from approvals.models import OPEN_STATUSES
    from approvals.selectors import access_requests_listed

    rows = list(
        access_requests_listed(request.user)
        .filter(requester=request.user, status__in=OPEN_STATUSES)
        .order_by("-created_at")[:8]
    )
    return {"requests": rows}
