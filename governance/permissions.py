"""Who may do what in the kernel: the one rule for each action, which its service checks and its
pages and API read to show or hide it."""

from __future__ import annotations

from typing import Any

from governance.roles import Role, has_role, is_iam_admin


def can_view_outbox(user: Any) -> bool:
    """IAM admins run the outbox; auditors read it like everything else."""
    return has_role(user, Role.IAM_ADMIN, Role.AUDITOR)


def can_retry_email(user: Any) -> bool:
    return is_iam_admin(user)


def can_manage_accounts(user: Any) -> bool:
    """IAM admins (and superusers) create accounts, change profiles and deactivate leavers."""
    return is_iam_admin(user)
