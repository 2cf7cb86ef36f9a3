from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from governance.roles import is_read_only


class AuditorsReadOnly(BasePermission):
    """Auditors read every endpoint and change nothing (also for token-authenticated calls)."""

    message = "Auditors have read-only access: this action would change something."

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method in SAFE_METHODS or not is_read_only(request.user)
