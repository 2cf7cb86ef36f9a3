"""django-q2 entry points (scheduled in ``ApprovalsConfig.ready``). Each is idempotent: the
services they call use conditional updates and unique email keys."""

from __future__ import annotations

from approvals import services
from governance.actors import system_user
from governance.context import task_context


def grants_expire() -> int:
    with task_context(user=system_user()):
        return services.grants_expire_due()


def grants_warn() -> int:
    with task_context(user=system_user()):
        return services.grants_warn_expiring()


def sla_sweep() -> dict[str, int]:
    with task_context(user=system_user()):
        return {"reminded": services.steps_remind_due(), "escalated": services.steps_escalate_overdue()}


def reviewer_digest() -> int:
    """Daily: one digest to each reviewer who chose it, listing what waits for them."""
    with task_context(user=system_user()):
        return services.reviewer_digests_send()


def delegations_sync() -> dict[str, int]:
    with task_context(user=system_user()):
        return services.delegations_sync()
