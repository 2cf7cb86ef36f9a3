"""Login throttling: failed password sign-ins are counted per account name and per client
address (django-axes, database handler), and past a limit sign-in is locked for a while that
doubles with every further failure.

Rules (settings in ``governance/settings.py``, "Login throttling"):

* ``LOGIN_FAILURE_LIMIT`` failures for one account name, or ``LOGIN_FAILURE_LIMIT_PER_ADDRESS``
  failures from one address (whatever names were tried: password spraying), lock sign-in for
  that name or that address for ``LOGIN_LOCKOUT_SECONDS``. Each failure after a lockout has
  ended locks again for twice as long, up to ``LOGIN_LOCKOUT_MAX_SECONDS``. Failures are
  forgotten ``LOGIN_FAILURE_WINDOW_HOURS`` after the last one, and an account's own failures
  when its holder signs in (the address's other failures are kept, so signing in to one's own
  account does not reset a spraying count).
* While locked, the password is not even checked (a right password is refused too, so the lock
  is no oracle) and attempts are not counted (waiting it out is what ends it).
* Unknown account names are counted and locked exactly like real ones, and the pages say the
  same for both: the responses do not tell whether an account exists.
* Every lockout writes an audit event ``user.locked_out`` with the client's address (actor: the
  portal, on behalf of the account's holder when the name is a real account, else of the
  longest-standing IAM admin: ``governance.services.login_lockout_record``). The name typed is
  not recorded when no such account exists: people type their password into the username field.
* Single sign-on (social-auth OIDC) is never throttled here: the identity provider throttles
  its own sign-in, and an address locked for passwords can still use SSO.

Both ``/accounts/login/`` and the admin's login go through ``django.contrib.auth.authenticate``,
which is where axes' backend and signals sit, so both are covered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from governance.context import client_ip
from governance.services import login_lockout_record


@dataclass(frozen=True)
class Count:
    """Failures counted for one dimension (the account name or the address)."""

    dimension: str  # "account" or "address"
    failures: int
    limit: int
    last_failure: datetime | None

    @property
    def excess(self) -> int:
        """How many failures past the limit (negative: still under it)."""
        return self.failures - self.limit

    def locked_until(self) -> datetime | None:
        if self.excess < 0 or self.last_failure is None:
            return None
        return self.last_failure + lockout_duration(self.excess)


def lockout_duration(excess: int) -> timedelta:
    """The first lockout lasts LOGIN_LOCKOUT_SECONDS; each failure after it doubles it, capped."""
    base = settings.LOGIN_LOCKOUT_SECONDS
    cap = settings.LOGIN_LOCKOUT_MAX_SECONDS
    # The exponent is bounded first: a determined attacker's thousandth failure must not build a
    # 300-digit number (nor a timedelta too large to exist).
    return timedelta(seconds=min(cap, base * 2 ** min(excess, 32)))


def failure_limit(request: HttpRequest | None = None, credentials: dict[str, Any] | None = None) -> int:
    """AXES_FAILURE_LIMIT, read at each request so that settings overrides apply."""
    return int(settings.LOGIN_FAILURE_LIMIT)


def failure_window(request: HttpRequest | None = None) -> timedelta:
    """AXES_COOLOFF_TIME: how long failures are remembered after the last one."""
    return timedelta(hours=settings.LOGIN_FAILURE_WINDOW_HOURS)


def client_address(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the address the audit trail records (X-Forwarded-For only when
    TRUST_X_FORWARDED_FOR), normalised as the audit trail records it; None when it is no address."""
    return client_ip(request)


def is_single_sign_on(request: HttpRequest, credentials: dict[str, Any] | None) -> bool:
    """AXES_WHITELIST_CALLABLE: social-auth calls ``authenticate(request, backend=...)``; the login
    forms pass only username and password, so a caller cannot claim this."""
    return credentials is not None and credentials.get("backend") is not None


class PortalLockoutHandler(AxesDatabaseHandler):
    """axes' database handler with separate limits per account and per address, lockouts that
    grow with each further failure, an audit event per lockout, and a reset on success that
    clears only the account's own failures."""

    def counts(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> list[Count]:
        threshold = get_cool_off_threshold(request)
        recent = AccessAttempt.objects.filter(attempt_time__gte=threshold)
        result = []
        username = get_client_username(request, credentials)
        # axes_ip_address and axes_attempt_time are set on the request by django-axes (untyped).
        address = request.axes_ip_address  # type: ignore[attr-defined]
        dimensions: list[tuple[str, dict[str, Any], int]] = [
            ("address", {"ip_address": address}, settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS)
        ]
        if username:
            dimensions.insert(0, ("account", {"username": username}, settings.LOGIN_FAILURE_LIMIT))
        for name, lookup, limit in dimensions:
            row = recent.filter(**lookup).aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
            result.append(Count(dimension=name, failures=row["failures"] or 0, limit=limit, last_failure=row["last"]))
        return result

    def locked_until(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> datetime | None:
        ends = [end for end in (c.locked_until() for c in self.counts(request, credentials)) if end is not None]
        latest = max(ends, default=None)
        attempted = request.axes_attempt_time  # type: ignore[attr-defined]  # set by django-axes
        return latest if latest is not None and latest > attempted else None

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        # axes compares this with AXES_FAILURE_LIMIT (= LOGIN_FAILURE_LIMIT) once it has counted a
        # failure: report the dimension furthest past its own limit on the account's scale, so
        # "reached" means "reached in either dimension".
        worst = max(c.excess for c in self.counts(request, credentials))
        return max(0, settings.LOGIN_FAILURE_LIMIT + worst)

    def is_locked(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> bool:
        return self.locked_until(request, credentials) is not None

    def user_login_failed(self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
        # axes' backend marks a refused attempt before the failure signal; anything else that
        # ends up locked here is a lockout that starts with this failure.
        refused_while_locked = bool(getattr(request, "axes_locked_out", False))
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None or refused_while_locked or not getattr(request, "axes_locked_out", False):
            return
        counts = self.counts(request, credentials)
        login_lockout_record(
            username=get_client_username(request, credentials) or "",
            counts={c.dimension: {"failures": c.failures, "limit": c.limit} for c in counts},
            locked_by=[c.dimension for c in counts if c.excess >= 0],
            locked_until=self.locked_until(request, credentials) or request.axes_attempt_time,
        )

    def user_logged_in(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        super().user_logged_in(sender, request, user, **kwargs)
        AccessAttempt.objects.filter(username=user.get_username()).delete()


def retry_after_seconds(request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
    handler = AxesProxyHandler.get_implementation()
    until = handler.locked_until(request, credentials) if isinstance(handler, PortalLockoutHandler) else None
    if until is None:
        return settings.LOGIN_LOCKOUT_SECONDS
    # From now, rounded up: the failure was stored during this request, after its start (a
    # loaded server can take more than a second between the two), so the time left is counted
    # from the moment of the answer, and never reported shorter than it is.
    return max(1, math.ceil((until - timezone.now()).total_seconds()))


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the sign-in page's lockout, for the portal's and the admin's login
    alike: 429 with Retry-After, and the same words whether or not the account exists."""
    wait = retry_after_seconds(request, credentials)
    response = render(
        request,
        "registration/locked_out.html",
        {"minutes": max(1, math.ceil(wait / 60))},
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response
