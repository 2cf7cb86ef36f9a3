"""Template filters for histories and the audit trail."""

from __future__ import annotations

from django import template

from governance.history import action_label as _action_label

register = template.Library()


@register.filter
def action_label(action: str) -> str:
    """An audit action as people read it: ``integration.changes_requested`` -> "Changes requested"."""
    return _action_label(action)
