"""Writes of people's notification choices: how a person hears about review work waiting for
them (one email per item, or one daily digest). A person sets their own; the change is audited."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import NotAllowed, ValidationFailed
from governance.models import NotificationPreference, ReviewerEmails, User


def notification_preference_set(*, actor: Actor | User, user: User, reviewer_emails: str) -> NotificationPreference:
    """Set how ``user`` gets review emails: ``immediate`` or ``daily``. Only the person
    themselves may choose; setting the value already held changes and audits nothing."""
    resolved = Actor.coerce(actor)
    if resolved.user.pk != user.pk:
        raise NotAllowed("People choose their own notifications.")
    if reviewer_emails not in ReviewerEmails.values:
        raise ValidationFailed.on("reviewer_emails", "Choose immediate emails or a daily digest.")
    with transaction.atomic():
        # Locked (or created) first: two tabs saving at once leave one row and two true events.
        preference, _created = NotificationPreference.objects.select_for_update().get_or_create(user=user)
        before = preference.reviewer_emails
        if before == reviewer_emails:
            return preference
        preference.reviewer_emails = reviewer_emails
        preference.updated_at = timezone.now()
        preference.save(update_fields=["reviewer_emails", "updated_at"])
        audit_record(
            actor=resolved,
            action="notification_preference.changed",
            target=user,
            owner=user,
            before={"reviewer_emails": before},
            after={"reviewer_emails": reviewer_emails},
        )
    return preference
