"""Writes of the kernel: people and roles, API tokens, the email outbox.

Every function takes ``actor=`` and audits in the same transaction (DESIGN.md invariant 1).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import Conflict, ValidationFailed
from governance.history import history_record_many
from governance.models import ApiToken, EmailStatus, OutboundEmail, User
from governance.roles import Pool, Role, clear_role_cache
from governance.signals import user_deactivated

log = logging.getLogger(__name__)

ASSIGNABLE_ROLES = {r.value for r in Role} | {p.value for p in Pool}


# --- People and roles -------------------------------------------------------------------------


def user_set_roles(*, actor: Actor | User, user: User, roles: Iterable[str], reason: str = "") -> User:
    """Replace the user's role and pool groups with ``roles``; other groups are kept."""
    wanted = set(roles)
    unknown = wanted - ASSIGNABLE_ROLES
    if unknown:
        raise ValidationFailed.on("roles", f"Unknown role(s): {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        current = set(user.groups.filter(name__in=ASSIGNABLE_ROLES).values_list("name", flat=True))
        if current == wanted:
            return user
        keep = user.groups.exclude(name__in=ASSIGNABLE_ROLES)
        user.groups.set(list(keep) + list(Group.objects.filter(name__in=wanted)))
        clear_role_cache(user)
        audit_record(
            actor=actor,
            action="user.roles_changed",
            target=user,
            owner=user,
            before={"roles": sorted(current)},
            after={"roles": sorted(wanted)},
            reason=reason,
        )
    return user


def user_deactivate(*, actor: Actor | User, user: User, reason: str) -> User:
    """Deactivate an account (a leaver). Their API tokens are revoked and the apps are told
    through ``user_deactivated`` in the same transaction (inventory flags orphans)."""
    if not reason.strip():
        raise ValidationFailed.on("reason", "A reason is required to deactivate an account.")
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if not locked.is_active:
            raise Conflict(f"{locked.username} is already deactivated.")
        locked.is_active = False
        locked.save(update_fields=["is_active"])
        tokens = list(ApiToken.objects.select_for_update().filter(user=locked, revoked_at__isnull=True))
        now = timezone.now()
        ApiToken.objects.filter(pk__in=[t.pk for t in tokens]).update(revoked_at=now)
        for token in tokens:
            token.revoked_at = now
        history_record_many(tokens, user=resolved.user, reason=reason)
        audit_record(
            actor=resolved,
            action="user.deactivated",
            target=locked,
            owner=locked.manager,
            before={"is_active": True},
            after={"is_active": False},
            reason=reason,
        )
        user_deactivated.send(sender=User, user=locked, actor=resolved)
    return locked


# --- API tokens -------------------------------------------------------------------------------


def hash_token_key(key: str) -> str:
    # Keys are 256-bit random values, so a plain SHA-256 is enough (no need for a slow KDF).
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_token_issue(
    *, actor: Actor | User, user: User, name: str = "", expires_days: int | None = None
) -> tuple[ApiToken, str]:
    """Create a token for ``user`` and return it with its key; the key is never stored."""
    days = settings.API_TOKEN_DEFAULT_DAYS if expires_days is None else expires_days
    if days < 0:
        raise ValidationFailed.on("expires_days", "Must be zero (never expires) or a positive number of days.")
    if not user.is_active:
        raise ValidationFailed.on("user", f"{user.username} is deactivated.")
    key = "gp_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=key[:10],
            key_hash=hash_token_key(key),
            expires_at=timezone.now() + timedelta(days=days) if days else None,
        )
        audit_record(
            actor=actor,
            action="api_token.issued",
            target=token,
            owner=user,
            after={"user": user.username, "name": name, "expires_at": token.expires_at},
        )
    return token, key


def api_token_revoke(*, actor: Actor | User, token: ApiToken, reason: str = "") -> ApiToken:
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if updated != 1:
            raise Conflict("This token is already revoked.")
        token.refresh_from_db()
        history_record_many([token], user=Actor.coerce(actor).user, reason=reason)
        audit_record(actor=actor, action="api_token.revoked", target=token, owner=token.user, reason=reason)
    return token


# --- Email outbox -------------------------------------------------------------------------------


def email_enqueue(
    *,
    key: str,
    recipient: User,
    subject: str,
    template: str,
    context: Mapping[str, Any],
) -> OutboundEmail | None:
    """Put an email in the outbox, in the caller's transaction. ``template`` names a pair
    ``templates/emails/<template>.txt`` and ``.html``. The same ``key`` is stored once, so a
    task that runs twice sends nothing twice. Returns None when the user has no address."""
    if not recipient.email:
        log.warning("No email address for %s; notification %s not queued", recipient, key)
        return None
    ctx = {"recipient": recipient, "site_url": settings.SITE_URL, **context}
    email, created = OutboundEmail.objects.get_or_create(
        key=key,
        defaults={
            "recipient": recipient,
            "to_address": recipient.email,
            "subject": subject,
            "body_text": render_to_string(f"emails/{template}.txt", ctx),
            "body_html": render_to_string(f"emails/{template}.html", ctx),
        },
    )
    if created:
        transaction.on_commit(lambda: _schedule_delivery(email.pk))
    return email


def _schedule_delivery(email_id: int) -> None:
    from django_q.tasks import async_task

    try:
        async_task("governance.tasks.outbox_deliver", email_id, task_name=f"outbox-{email_id}")
    except Exception:  # the periodic flush will pick it up; never fail the request for this
        log.exception("Could not enqueue delivery of email %s", email_id)


def email_deliver(*, email_id: int) -> str:
    """Send one outbox email if it is due. Claims the row with a conditional UPDATE so that two
    workers never send the same email; on failure, schedules a retry with exponential backoff.
    Returns the resulting status."""
    now = timezone.now()
    stale_claim = now - timedelta(minutes=10)
    claimed = (
        OutboundEmail.objects.filter(pk=email_id, status=EmailStatus.PENDING, next_attempt_at__lte=now).update(
            status=EmailStatus.SENDING, claimed_at=now
        )
        # A worker killed mid-send leaves SENDING behind; reclaim it after a while.
        or OutboundEmail.objects.filter(pk=email_id, status=EmailStatus.SENDING, claimed_at__lt=stale_claim).update(
            claimed_at=now
        )
    )
    if not claimed:
        return OutboundEmail.objects.filter(pk=email_id).values_list("status", flat=True).first() or "missing"
    email = OutboundEmail.objects.get(pk=email_id)
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=email.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to_address],
        # A stable Message-ID lets mail systems drop a duplicate if a worker dies after sending.
        headers={"Message-ID": f"<outbox-{email.pk}-{hashlib.sha256(email.key.encode()).hexdigest()[:16]}@governance>"},
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    try:
        message.send(fail_silently=False)
    except Exception as exc:  # any transport error: keep the email and retry later
        attempts = email.attempts + 1
        final = attempts >= settings.OUTBOX_MAX_ATTEMPTS
        delay = settings.OUTBOX_RETRY_BASE_SECONDS * (2 ** (attempts - 1))
        OutboundEmail.objects.filter(pk=email.pk).update(
            status=EmailStatus.FAILED if final else EmailStatus.PENDING,
            attempts=attempts,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            next_attempt_at=now + timedelta(seconds=delay),
            claimed_at=None,
        )
        log.warning("Email %s attempt %s failed: %s", email.pk, attempts, exc)
        return EmailStatus.FAILED if final else EmailStatus.PENDING
    OutboundEmail.objects.filter(pk=email.pk).update(
        status=EmailStatus.SENT, attempts=email.attempts + 1, sent_at=timezone.now(), last_error=""
    )
    return EmailStatus.SENT


def outbox_due_ids(*, limit: int = 500) -> list[int]:
    now = timezone.now()
    stale_claim = now - timedelta(minutes=10)
    pending = OutboundEmail.objects.filter(status=EmailStatus.PENDING, next_attempt_at__lte=now)
    stuck = OutboundEmail.objects.filter(status=EmailStatus.SENDING, claimed_at__lt=stale_claim)
    return list((pending | stuck).order_by("next_attempt_at", "id").values_list("id", flat=True)[:limit])


def email_retry(*, actor: Actor | User, email: OutboundEmail) -> OutboundEmail:
    """An IAM admin asks for a failed (or waiting) email to be tried again now. Only a failed or
    pending email can be retried; a sent one stays sent. The delivery itself is the task's job."""
    with transaction.atomic():
        now = timezone.now()
        updated = OutboundEmail.objects.filter(
            pk=email.pk, status__in=[EmailStatus.FAILED, EmailStatus.PENDING]
        ).update(status=EmailStatus.PENDING, next_attempt_at=now)
        if updated != 1:
            raise Conflict("Only a failed or waiting email can be retried.")
        audit_record(
            actor=actor,
            action="outbound_email.retried",
            target=email,
            owner=email.recipient,
            before={"status": email.status, "attempts": email.attempts},
            after={"status": EmailStatus.PENDING},
        )
        email.refresh_from_db()
        transaction.on_commit(lambda: _schedule_delivery(email.pk))
    return email
