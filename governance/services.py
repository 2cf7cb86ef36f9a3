"""Writes of the kernel: people and roles, API tokens, the email outbox.

Every function takes ``actor=`` and audits in the same transaction (DESIGN.md invariant 1).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from governance.actors import SYSTEM_USERNAME, Actor
from governance.audit import EventSpec, accountable_human, audit_record, audit_record_many, snapshot
from governance.exceptions import Conflict, NotAllowed, ValidationFailed
from governance.history import history_record_many
from governance.models import ApiToken, AuditEvent, EmailStatus, OutboundEmail, User
from governance.roles import Pool, Role, clear_role_cache
from governance.signals import user_deactivated
from governance.validators import SINGLE_LINE_MESSAGE, has_control_characters, header_safe

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


# What the portal's forms may change about a person (the admin's user form among them). Roles,
# activation, staff status, superuser status and passwords each have their own service below.
PROFILE_FIELDS = ("first_name", "last_name", "email", "display_name", "department", "manager")


def _answers_for(user: User, actor: Actor) -> User:
    """The accountable owner of a change to ``user``'s account: the person themselves, or for the
    system account (which answers for nothing) whoever acts on it."""
    if user.username == SYSTEM_USERNAME:
        return accountable_human(actor) or user
    return user


def _require_superuser(actor: Actor, what: str) -> None:
    """Admin-site access and passwords of others are for superusers (and the system, acting for
    an operator at the command line): an IAM admin must not be able to give himself more."""
    if not (actor.is_system or actor.user.is_superuser):
        raise NotAllowed(f"Only a superuser may {what}.")


def user_create(
    *,
    actor: Actor | User,
    username: str,
    is_service_account: bool = False,
    profile: Mapping[str, Any] | None = None,
) -> User:
    """Create an account with no usable password (people sign in through single sign-on; a
    superuser may set a password afterwards with ``user_set_password``), no roles and no
    admin-site access. Audited as ``user.created``."""
    values = dict(profile or {})
    unknown = set(values) - set(PROFILE_FIELDS)
    if unknown:
        raise ValidationFailed.on("profile", f"Not a profile field: {', '.join(sorted(unknown))}.")
    username = username.strip()
    if not username:
        raise ValidationFailed.on("username", "A username is required.")
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            raise Conflict(f"An account named {username} already exists.")
        user = User(username=username, is_service_account=is_service_account, **values)
        user.set_unusable_password()
        user.save()
        audit_record(
            actor=resolved,
            action="user.created",
            target=user,
            owner=user.manager or accountable_human(resolved) or user,
            after={"username": username, "is_service_account": is_service_account, **snapshot(user, list(values))},
        )
    return user


def user_update_profile(*, actor: Actor | User, user: User, changes: Mapping[str, Any], reason: str = "") -> User:
    """Change a person's name, email, department, display name or manager (``PROFILE_FIELDS``);
    nothing else. Audited as ``user.profile_changed`` with the fields before and after; a call
    that changes nothing writes nothing. A person cannot be their own manager."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise ValidationFailed.on(
            sorted(unknown)[0], f"Not a profile field: {', '.join(sorted(unknown))} (each has its own service)."
        )
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        changed = [name for name, value in changes.items() if getattr(locked, name) != value]
        if not changed:
            return locked
        if "manager" in changed and changes["manager"] is not None and changes["manager"].pk == locked.pk:
            raise ValidationFailed.on("manager", "A person cannot be their own manager.")
        before = snapshot(locked, changed)
        for name in changed:
            setattr(locked, name, changes[name])
        locked.save(update_fields=changed)
        audit_record(
            actor=resolved,
            action="user.profile_changed",
            target=locked,
            owner=_answers_for(locked, resolved),
            before=before,
            after=snapshot(locked, changed),
            reason=reason,
        )
    return locked


def user_set_staff(*, actor: Actor | User, user: User, is_staff: bool, reason: str = "") -> User:
    """Give or take admin-site access. Only a superuser may: what a staff member may do there
    comes from their roles, and an IAM admin must not open the admin to himself or others.
    Audited as ``user.staff_changed``."""
    resolved = Actor.coerce(actor)
    _require_superuser(resolved, "give or take admin-site access")
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.is_staff == is_staff:
            return locked
        locked.is_staff = is_staff
        locked.save(update_fields=["is_staff"])
        audit_record(
            actor=resolved,
            action="user.staff_changed",
            target=locked,
            owner=_answers_for(locked, resolved),
            before={"is_staff": not is_staff},
            after={"is_staff": is_staff},
            reason=reason,
        )
    return locked


def user_set_password(*, actor: Actor | User, user: User, raw_password: str | None, reason: str = "") -> User:
    """Set a person's password, or with ``raw_password=None`` turn password sign-in off (single
    sign-on only). Everyone may change their own; only a superuser (or the system, for an
    operator) may set another person's, since whoever knows a reviewer's password can approve as
    that reviewer. The password must pass ``AUTH_PASSWORD_VALIDATORS``. Audited as
    ``user.password_set`` (who, whose; never the password or its hash)."""
    resolved = Actor.coerce(actor)
    if resolved.user.pk != user.pk:
        _require_superuser(resolved, "set or reset another person's password")
    if raw_password is not None:
        try:
            password_validation.validate_password(raw_password, user)
        except DjangoValidationError as exc:
            raise ValidationFailed.on("password", " ".join(exc.messages)) from exc
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        had_password = locked.has_usable_password()
        if raw_password is None:
            locked.set_unusable_password()
        else:
            locked.set_password(raw_password)
        # Audited here; tells User.save not to record it a second time as a change made
        # around the services.
        locked._password_change_audited = True
        locked.save(update_fields=["password"])
        audit_record(
            actor=resolved,
            action="user.password_set",
            target=locked,
            owner=_answers_for(locked, resolved),
            before={"password_sign_in": had_password},
            after={"password_sign_in": raw_password is not None},
            reason=reason,
        )
    # The caller's instance (a form's user, the session's user) now carries the new hash too.
    user.password = locked.password
    return locked


def user_deactivate(*, actor: Actor | User, user: User, reason: str) -> User:
    """Deactivate an account (a leaver). Their API tokens are revoked (each its own
    ``api_token.revoked`` event) and the apps are told through ``user_deactivated`` in the same
    transaction (inventory flags orphans). The leaver answers for nothing any more: the events
    name their manager, or the person deactivating them when they have none."""
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
        owner = locked.manager or accountable_human(resolved)
        audit_record_many(
            actor=resolved,
            events=[
                EventSpec(
                    action="user.deactivated",
                    target=locked,
                    owner=owner,
                    before={"is_active": True},
                    after={"is_active": False},
                    reason=reason,
                ),
                *(
                    EventSpec(
                        action="api_token.revoked",
                        target=token,
                        owner=owner,
                        before={"revoked_at": None},
                        after={"revoked_at": now, "user": locked.username},
                        reason=f"{locked.username} was deactivated: {reason}",
                    )
                    for token in tokens
                ),
            ],
        )
        user_deactivated.send(sender=User, user=locked, actor=resolved)
    return locked


# --- Sign-in lockouts (governance/login_throttle.py) --------------------------------------------


def login_lockout_record(
    *,
    username: str,
    counts: Mapping[str, Mapping[str, int]],
    locked_by: Iterable[str],
    locked_until: datetime,
) -> AuditEvent | None:
    """Audit a sign-in lockout that has just begun (``user.locked_out``).

    Nobody acts here (an anonymous client failed to sign in), so the actor is the portal itself,
    on behalf of the accountable human: the holder of the account name tried (for a service
    account, its manager), or — when the name is no account, or the system's — whoever answers
    for the portal's security, ``lockout_owner()``. The typed name is kept only when it is an
    account: a name that is none is often a password typed into the wrong field, and the trail
    keeps it forever. The client's address is the event's own ``client_ip``. Returns None (and
    logs) only on a portal that has no one to be accountable yet: no admin at all."""
    account = User.objects.filter(username=username).exclude(username=SYSTEM_USERNAME).first() if username else None
    if account is not None:
        owner = account.manager if account.is_service_account and account.manager else account
    else:
        owner = lockout_owner()
    if owner is None:
        log.warning("Sign-in lockout not audited: the portal has no active IAM admin or superuser to own it.")
        return None
    with transaction.atomic():
        return audit_record(
            actor=Actor.system(on_behalf_of=owner),
            action="user.locked_out",
            target=account,
            target_type="" if account else "governance.user",
            target_repr="" if account else "(no such account)",
            owner=owner,
            after={
                "locked_by": sorted(locked_by),
                "locked_until": locked_until,
                "failures": {name: dict(count) for name, count in counts.items()},
            },
            reason="Too many failed sign-in attempts.",
        )


def lockout_owner() -> User | None:
    """Who answers for a lockout that concerns no account (a name that does not exist, an
    address spraying names): the longest-standing active IAM admin, else superuser."""
    active = User.objects.filter(is_active=True, is_service_account=False).exclude(username=SYSTEM_USERNAME)
    return (
        active.filter(groups__name=Role.IAM_ADMIN).order_by("date_joined", "pk").first()
        or active.filter(is_superuser=True).order_by("date_joined", "pk").first()
    )


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
    if has_control_characters(name):
        raise ValidationFailed.on("name", SINGLE_LINE_MESSAGE)
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
    recipient: User | None,
    subject: str,
    template: str,
    context: Mapping[str, Any],
    to_address: str = "",
) -> OutboundEmail | None:
    """Put an email in the outbox, in the caller's transaction. ``template`` names a pair
    ``templates/emails/<template>.txt`` and ``.html``. The same ``key`` is stored once, so a
    task that runs twice sends nothing twice. Returns None when the user has no address.
    The subject is made header-safe (one line, bounded): a name with a line break in it must
    not stop the email (Django refuses such a header with ``BadHeaderError``)."""
    # ``to_address`` sends to a mailbox that is no portal account (the auditors' address, with
    # ``recipient`` None).
    address = to_address or (recipient.email if recipient is not None else "")
    if not address:
        log.warning("No email address for %s; notification %s not queued", recipient, key)
        return None
    ctx = {"recipient": recipient, "site_url": settings.SITE_URL, **context}
    email, created = OutboundEmail.objects.get_or_create(
        key=key,
        defaults={
            "recipient": recipient,
            "to_address": address,
            "subject": header_safe(subject, max_length=OutboundEmail._meta.get_field("subject").max_length or 255),
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
        # Again at delivery: a row stored before subjects were made safe must not fail forever.
        subject=header_safe(email.subject, max_length=255),
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
            # An email to a mailbox that is no account (the auditors'): the admin retrying it.
            owner=email.recipient or accountable_human(actor),
            before={"status": email.status, "attempts": email.attempts},
            after={"status": EmailStatus.PENDING},
        )
        email.refresh_from_db()
        transaction.on_commit(lambda: _schedule_delivery(email.pk))
    return email
