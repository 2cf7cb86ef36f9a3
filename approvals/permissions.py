"""Who may call what (visibility is in ``selectors``; rules that hold whoever calls are in
``services``)."""

from __future__ import annotations

from typing import Any

from governance.roles import has_role, is_iam_admin, is_read_only


def can_decide_any(user: Any) -> bool:
    """Whoever a step is assigned to may decide it (reviewers, and also a requester's manager or
    a resource owner without the reviewer role); the service checks the assignment and
    separation of duties. Auditors never (read-only)."""
    return bool(getattr(user, "is_authenticated", False)) and not is_read_only(user)


def can_manage_workflows(user: Any) -> bool:
    return is_iam_admin(user)


def can_revoke_grant(user: Any, grant: Any) -> bool:
    if is_read_only(user):
        return False
    return is_iam_admin(user) or user.pk in grant.integration.owner_ids()


def can_withdraw(user: Any, req: Any) -> bool:
    return not is_read_only(user) and user.pk in (req.integration.owner_ids() | {req.requester_id})


def can_open_renewal(user: Any, integration: Any) -> bool:
    return not is_read_only(user) and user.pk in integration.owner_ids()


def sees_queue(user: Any) -> bool:
    """Reviewers and IAM admins, and anyone who was ever assigned a step (e.g. a manager)."""
    if has_role(user, "reviewer", "iam_admin"):
        return True
    from approvals.models import StepAssignment

    return bool(getattr(user, "is_authenticated", False)) and StepAssignment.objects.filter(user=user).exists()
