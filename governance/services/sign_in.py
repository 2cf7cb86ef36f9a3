"""Audit of sign-in lockouts (counted by ``governance.login_throttle``): nobody acts, so the
portal records them on behalf of the account's holder or of whoever answers for the portal's
security."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime

from django.db import transaction

from governance.actors import SYSTEM_USERNAME, Actor
from governance.audit import audit_record
from governance.models import AuditEvent, User
from governance.roles import Role

log = logging.getLogger(__name__)


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
    owner: User | None
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
