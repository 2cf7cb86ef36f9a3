"""Reads of the kernel, always for a user: each returns only what that user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from governance.actors import SYSTEM_USERNAME
from governance.models import (
    ApiToken,
    AuditEvent,
    EmailStatus,
    NotificationPreference,
    OutboundEmail,
    ReviewerEmails,
    User,
)
from governance.permissions import can_view_outbox
from governance.roles import Role, has_role, is_read_only


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
    if not can_view_outbox(user):
        return OutboundEmail.objects.none()
    qs = OutboundEmail.objects.select_related("recipient")
    if status:
        return qs.filter(status=status).order_by("-created_at", "-id")
    return qs.exclude(status=EmailStatus.SENT).order_by("status", "next_attempt_at", "id")


def people() -> QuerySet[User]:
    """Every person who can be named for a role (owner, reviewer, campaign owner): active, never a
    service account nor the system actor, by username."""
    return (
        User.objects.filter(is_active=True, is_service_account=False)
        .exclude(username=SYSTEM_USERNAME)
        .order_by("username")
    )


def people_suggested(user: Any, *, query: str = "", limit: int = 10) -> QuerySet[User]:
    """People ``user`` may name (an owner, a backup, a transfer's new owner): active persons, never
    service accounts. Without ``query``, their colleagues — themselves, their manager, their
    manager's other reports and their own reports; with one (2 characters or more), the people
    whose username or name contains it. Never the whole directory: at most ``limit`` rows. An
    auditor (read-only) names nobody; an anonymous caller sees nobody."""
    if not getattr(user, "is_authenticated", False) or is_read_only(user):
        return User.objects.none()
    candidates = people()
    text = query.strip()
    if text:
        if len(text) < 2:
            return User.objects.none()
        candidates = candidates.filter(
            Q(username__icontains=text)
            | Q(display_name__icontains=text)
            | Q(first_name__icontains=text)
            | Q(last_name__icontains=text)
        )
    else:
        near = Q(pk=user.pk) | Q(manager=user)
        if user.manager_id:
            near |= Q(pk=user.manager_id) | Q(manager_id=user.manager_id)
        candidates = candidates.filter(near)
    return candidates[:limit]


def reviewer_emails_of(user: User) -> str:
    """How ``user`` hears about review work: ``immediate`` (also without a saved choice) or ``daily``."""
    chosen = NotificationPreference.objects.filter(user=user).values_list("reviewer_emails", flat=True).first()
    return chosen or ReviewerEmails.IMMEDIATE


def daily_digest_readers() -> QuerySet[User]:
    """The active people who chose one daily digest of their review work, by id."""
    readers = User.objects.filter(is_active=True, notification_preference__reviewer_emails=ReviewerEmails.DAILY)
    return readers.order_by("id")


def api_tokens_of(user: Any) -> QuerySet[ApiToken]:
    """A person's own API tokens: the only ones their pages show or revoke (another person's
    token answers 404)."""
    if not getattr(user, "is_authenticated", False):
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user)
