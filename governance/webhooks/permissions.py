"""Who may manage and read webhooks: IAM admins manage; auditors read."""

from __future__ import annotations

from typing import Any

from governance.roles import Role, has_role, is_iam_admin


def can_manage_webhooks(user: Any) -> bool:
    return bool(getattr(user, "is_active", False)) and is_iam_admin(user)


def can_view_webhooks(user: Any) -> bool:
    return has_role(user, Role.IAM_ADMIN, Role.AUDITOR)
