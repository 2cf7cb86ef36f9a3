"""Who may call what on campaigns (visibility is in ``selectors``; rules that hold whoever calls
are in ``services``)."""

from __future__ import annotations

from typing import Any

from governance.roles import Role, has_role, is_iam_admin, is_read_only


def can_write(user: Any) -> bool:
    """Signed in and not read-only: auditors read everything and change nothing."""
    return bool(getattr(user, "is_authenticated", False)) and not is_read_only(user)


def can_manage_definitions(user: Any) -> bool:
    """IAM admins keep campaign definitions and start campaigns from them."""
    return can_write(user) and is_iam_admin(user)


def can_launch(user: Any, campaign: Any) -> bool:
    return can_write(user) and (is_iam_admin(user) or campaign.owner_id == user.pk)


def can_see_report(user: Any, campaign: Any) -> bool:
    """IAM admins, auditors and the campaign's owner read its report; reviewers do not."""
    return has_role(user, Role.IAM_ADMIN, Role.AUDITOR) or campaign.owner_id == user.pk


def _in_group(user: Any, group_id: int | None) -> bool:
    return group_id is not None and user.groups.filter(pk=group_id).exists()


def can_decide(user: Any, item: Any) -> bool:
    """The assigned reviewer (or a member of the assigned group) decides an open item; IAM admins
    may act on anything (still audited). Auditors never."""
    if not can_write(user):
        return False
    return item.reviewer_id == user.pk or _in_group(user, item.reviewer_group_id) or is_iam_admin(user)


def can_confirm(user: Any, item: Any, confirm_group_id: int | None) -> bool:
    """Second stage: the confirmation group (IAM admins when none is named) confirms a keep."""
    if not can_write(user):
        return False
    return is_iam_admin(user) or _in_group(user, confirm_group_id)
