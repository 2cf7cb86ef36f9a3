"""Who may do what in approvals: the services check these before acting, and the pages use them
to offer only what the services allow (what a person may see is in ``selectors``)."""

from __future__ import annotations

from typing import Any

from governance.roles import Role, has_role, is_auditor, is_iam_admin, is_read_only


def can_decide_any(user: Any) -> bool:
    """Whoever a step is assigned to may decide it (reviewers, and also a requester's manager or
    a resource owner without the reviewer role); the service checks the assignment and
    separation of duties. Auditors never (read-only)."""
    return bool(getattr(user, "is_authenticated", False)) and not is_read_only(user)


def can_manage_workflows(user: Any) -> bool:
    return is_iam_admin(user)


def can_read_workflows(user: Any) -> bool:
    """IAM admins change the workflows and expiry policies; auditors read them."""
    return can_manage_workflows(user) or is_auditor(user)


def can_withdraw(user: Any, req: Any) -> bool:
    """The requester, or an owner of the request's integration (a change request has none)."""
    owners = req.integration.owner_ids() if req.integration is not None else set()
    return not is_read_only(user) and user.pk in (owners | {req.requester_id})


def can_open_change(user: Any) -> bool:
    """Anyone who may change things may ask for a change request's decision; the app that opens
    it decides who may propose what (the runtime: who may promote a policy version)."""
    return bool(getattr(user, "is_authenticated", False)) and not is_read_only(user)


def can_cancel_change(user: Any, req: Any) -> bool:
    """The requester or an IAM admin (e.g. the version it names was edited or retired)."""
    return not is_read_only(user) and (user.pk == req.requester_id or is_iam_admin(user))


def can_open_renewal(user: Any, integration: Any) -> bool:
    return not is_read_only(user) and user.pk in integration.owner_ids()


def sees_queue(user: Any) -> bool:
    """Reviewers and IAM admins, and anyone who was ever assigned a step (e.g. a manager)."""
    if has_role(user, Role.REVIEWER, Role.IAM_ADMIN):
        return True
    from approvals.models import StepAssignment

    return bool(getattr(user, "is_authenticated", False)) and StepAssignment.objects.filter(user=user).exists()
