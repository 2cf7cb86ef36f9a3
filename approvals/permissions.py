"""Who may do what in approvals: the services check these before acting, and the pages use them
to offer only what the services allow (what a person may see is in ``selectors``)."""

from __future__ import annotations

from typing import Any

from governance.roles import Role, has_role, is_auditor, is_iam_admin, is_read_only
from inventory.permissions import is_delegate, is_owner


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
    """Whoever may change the integration: its owners, co-owners and delegates (not IAM admins
    acting alone: a renewal asks for access an owner answers for)."""
    return not is_read_only(user) and (is_owner(user, integration) or is_delegate(user, integration))


def sees_queue(user: Any) -> bool:
    """Reviewers and IAM admins, and anyone who was ever assigned a step (e.g. a manager)."""
    if has_role(user, Role.REVIEWER, Role.IAM_ADMIN):
        return True
    from approvals.models import StepAssignment

    return bool(getattr(user, "is_authenticated", False)) and StepAssignment.objects.filter(user=user).exists()


def can_reassign(user: Any) -> bool:
    """IAM admins move an open approval step or review item to another eligible reviewer."""
    return is_iam_admin(user) and not is_read_only(user)


def can_delegate(user: Any) -> bool:
    """Anyone who may decide may hand their items to a colleague for an absence (the service
    checks the pool); IAM admins also set one up for someone else."""
    return can_decide_any(user)


def can_manage_delegation(user: Any, delegation: Any) -> bool:
    """The person who delegated, and IAM admins, revoke a delegation; the delegate reads it."""
    return can_decide_any(user) and (delegation.delegator_id == user.pk or is_iam_admin(user))
