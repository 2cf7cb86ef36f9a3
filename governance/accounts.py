"""The account safety net: what is audited about accounts whatever path the change takes.

The portal changes accounts only through the services in ``governance.services``, each auditing
in its own transaction. Django still offers ways around them that an operator may use:
``manage.py changepassword`` and ``createsuperuser``, its password views, a shell. ``User.save``
asks this module what such a save changes (a password, the superuser flag, a new superuser) and
has it recorded in the same transaction, so no password or superuser change goes unaudited.

Every superuser sign-in is audited too (``user.superuser_login``): a superuser can do anything,
so when one was active is evidence.
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Any

from django.contrib.auth.hashers import is_password_usable
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from simple_history.models import HistoricalRecords

from governance.actors import SYSTEM_USERNAME, Actor
from governance.audit import EventSpec, audit_record, audit_record_many

if TYPE_CHECKING:
    from governance.models import User

PASSWORD = "password"
SUPERUSER = "is_superuser"
SUPERUSER_CREATED = "superuser_created"
_WATCHED = frozenset({PASSWORD, SUPERUSER})


def _signs_in(encoded: str) -> bool:
    return bool(encoded) and is_password_usable(encoded)


def unserviced_changes(user: User, update_fields: Any) -> list[str]:
    """What saving ``user`` is about to change that no service has audited: ``PASSWORD``,
    ``SUPERUSER`` or ``SUPERUSER_CREATED``. Costs one query for a full save of an existing
    account (or one naming those fields), none otherwise."""
    audited_password = user.__dict__.pop("_password_change_audited", False)
    if user._state.adding:
        return [SUPERUSER_CREATED] if user.is_superuser else []
    watched = _WATCHED if update_fields is None else _WATCHED & set(update_fields)
    if not watched:
        return []
    stored = type(user)._default_manager.filter(pk=user.pk).values(*watched).first()
    if stored is None:  # saved with an explicit primary key that is not in the table yet
        return [SUPERUSER_CREATED] if user.is_superuser else []
    changes = []
    if (
        PASSWORD in watched
        and stored[PASSWORD] != user.password
        and not audited_password
        # One way of saying "no password" replaced by another (the system account's creation)
        # is no change anyone could sign in with.
        and (_signs_in(stored[PASSWORD]) or _signs_in(user.password))
    ):
        changes.append(PASSWORD)
    if SUPERUSER in watched and stored[SUPERUSER] != user.is_superuser:
        changes.append(SUPERUSER)
    return changes


def _acting() -> tuple[Actor | None, str]:
    """Who is acting: the signed-in person of the current request (or task), else nobody
    known, i.e. an operator at the command line, named by their operating-system account."""
    request = getattr(HistoricalRecords.context, "request", None)  # set per request and per task
    person = getattr(request, "user", None)
    if person is not None and getattr(person, "is_authenticated", False):
        return Actor.coerce(person), "outside the portal's services"
    try:
        operator = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (some containers)
        operator = "unknown"
    return None, f"outside the portal's services, at the command line or in code (OS user {operator})"


def record_unserviced_changes(user: User, changes: list[str]) -> None:
    """Audit ``changes`` (from ``unserviced_changes``) to ``user``; runs in the transaction of
    the save. The acting person is the owner when known; the account itself otherwise (the
    system account, which answers for nothing, excepted)."""
    actor, reason = _acting()
    if actor is None:
        owner = user if user.username != SYSTEM_USERNAME else None
        actor = Actor.system(on_behalf_of=owner)
    audit_record_many(actor=actor, events=[_event(user, change, reason) for change in changes])


def _event(user: User, change: str, reason: str) -> EventSpec:
    """The audit event of one change from ``unserviced_changes``; the account is its own owner."""
    before: dict[str, Any] | None
    after: dict[str, Any]
    if change == PASSWORD:
        action, before, after = "user.password_set", None, {"password_sign_in": user.has_usable_password()}
    elif change == SUPERUSER:
        action = "user.superuser_granted" if user.is_superuser else "user.superuser_revoked"
        before, after = {"is_superuser": not user.is_superuser}, {"is_superuser": user.is_superuser}
    elif change == SUPERUSER_CREATED:
        action, before = "user.superuser_created", None
        after = {"username": user.username, "is_superuser": True, "is_staff": user.is_staff}
    else:
        raise ValueError(f"Unknown account change {change!r}.")
    return EventSpec(action=action, target=user, owner=user, before=before, after=after, reason=reason)


def audit_superuser_login(sender: Any, request: Any, user: Any, **_: Any) -> None:
    """``user_logged_in`` receiver: a superuser's sign-in (password, admin or single sign-on)."""
    if not getattr(user, "is_superuser", False):
        return
    with transaction.atomic():
        audit_record(
            actor=user,
            action="user.superuser_login",
            target=user,
            owner=user,
            after={"backend": getattr(user, "backend", "") or ""},
        )


def connect() -> None:
    """Called once in ``GovernanceConfig.ready``."""
    user_logged_in.connect(audit_superuser_login, dispatch_uid="governance.accounts.audit_superuser_login")
