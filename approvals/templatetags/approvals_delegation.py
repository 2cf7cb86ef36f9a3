"""What the queue's per-item actions ask about the person reading it."""

from __future__ import annotations

from typing import Any

from django import template

from approvals import permissions

register = template.Library()


@register.filter
def may_reassign(user: Any) -> bool:
    """Whether ``user`` is offered "Reassign" on queue items (IAM admins)."""
    return permissions.can_reassign(user)
