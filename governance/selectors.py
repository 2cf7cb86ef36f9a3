"""Reads of the kernel, always for a user (DESIGN.md invariant 2)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from governance.models import AuditEvent, EmailStatus, OutboundEmail
from governance.roles import Role, has_role


def audit_events_for(user: Any) -> QuerySet[AuditEvent]:
    """Auditors, IAM admins and reviewers read the whole trail; anyone else reads the events
    they performed or are accountable for."""
    qs = AuditEvent.objects.all()
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    if has_role(user, Role.AUDITOR, Role.IAM_ADMIN, Role.REVIEWER):
        return qs
    return qs.filter(Q(actor=user) | Q(owner=user))


def outbox_for(user: Any, *, status: str = "") -> QuerySet[OutboundEmail]:
    """Emails the outbox page lists: those not yet sent by default (failed first), or one status."""
    from governance.permissions import can_view_outbox

    if not can_view_outbox(user):
        return OutboundEmail.objects.none()
    qs = OutboundEmail.objects.select_related("recipient")
    if status:
        return qs.filter(status=status).order_by("-created_at", "-id")
    return qs.exclude(status=EmailStatus.SENT).order_by("status", "next_attempt_at", "id")
