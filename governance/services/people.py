"""Writes of people and roles: accounts, profiles, roles, admin-site access, passwords and
deactivation. Privilege changes are a superuser's (or the system's, for an operator); every
change is audited with the person who answers for it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth import password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from governance.actors import SYSTEM_USERNAME, Actor
from governance.audit import EventSpec, accountable_human, audit_record, audit_record_many, snapshot
from governance.exceptions import Conflict, NotAllowed, ValidationFailed
from governance.history import history_record_many
from governance.models import ApiToken, User
from governance.permissions import can_manage_accounts
from governance.roles import ASSIGNABLE_GROUPS, clear_role_cache
from governance.signals import user_deactivated


def user_set_roles(*, actor: Actor | User, user: User, roles: Iterable[str], reason: str = "") -> User:
    """Replace the user's role and pool groups with ``roles``; other groups are kept."""
    wanted = set(roles)
    unknown = wanted - ASSIGNABLE_GROUPS
    if unknown:
        raise ValidationFailed.on("roles", f"Unknown role(s): {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        current = set(user.groups.filter(name__in=ASSIGNABLE_GROUPS).values_list("name", flat=True))
        if current == wanted:
            return user
        keep = user.groups.exclude(name__in=ASSIGNABLE_GROUPS)
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


def _record_account_change(
    actor: Actor, account: User, action: str, *, before: dict[str, Any], after: dict[str, Any], reason: str
) -> None:
    """Audit a change to ``account``: the person answers for it (for the system account, whoever
    acts on it)."""
    audit_record(
        actor=actor,
        action=action,
        target=account,
        owner=_answers_for(account, actor),
        before=before,
        after=after,
        reason=reason,
    )


def _require_account_manager(actor: Actor, what: str) -> None:
    """Accounts are created, changed and deactivated by IAM admins (and the system, acting for an
    operator at the command line or for a scheduled sweep)."""
    if not (actor.is_system or can_manage_accounts(actor.user)):
        raise NotAllowed(f"Only an IAM admin may {what}.")


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
    _require_account_manager(resolved, "create an account")
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
    _require_account_manager(resolved, "change a person's profile")
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
        _record_account_change(
            resolved, locked, "user.profile_changed", before=before, after=snapshot(locked, changed), reason=reason
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
        _record_account_change(
            resolved,
            locked,
            "user.staff_changed",
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
        _record_account_change(
            resolved,
            locked,
            "user.password_set",
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
    _require_account_manager(resolved, "deactivate an account")
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
