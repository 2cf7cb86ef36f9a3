"""Rate limits for the API (429 with ``Retry-After``, as problem details through the API's
exception handler). Two limits apply to every authenticated call: one per API token (a runaway
script) and one per user (all their tokens and their browser session together); anonymous calls
are limited per address. Rates come from settings (``API_RATE_LIMITS``, from the environment:
``API_RATE_LIMIT_TOKEN``, ``API_RATE_LIMIT_USER``, ``API_RATE_LIMIT_ANON``) and are counted in
the cache (Redis in production, so every web process shares the counts).

``ApiRateThrottle`` is the one class DRF runs: it checks every limit first and counts the call
against them only when all allow it, so a call refused by one limit uses up none of the others
(DRF's own loop counts the call in every limit that allowed it, even when another refused).

Calls refused for their credentials (an invalid, expired or revoked token, or none on an endpoint
that needs them) are counted per address by ``AuthFailureThrottle`` (``API_RATE_LIMIT_AUTH_FAILURES``):
the API's exception handler records each refusal, and ``governance.api.authentication`` refuses
with a 429 every call from that address that is not already signed in while it is over the limit,
before a token is looked up (so the limit cannot be used to test tokens). A call refused by that
429 is not a failure of its own and counts nowhere.

Addresses are the ones the audit trail records (``governance.context.client_ip``): a client's
``X-Forwarded-For`` is believed only when ``TRUST_X_FORWARDED_FOR`` says a proxy sets it —
otherwise a caller could pick a new address for every call.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from governance.context import client_ip
from governance.models import ApiToken


class _SettingsRateThrottle(SimpleRateThrottle):
    # Set by DRF's __init__ from the rate (None when this limit is off); absent from its stubs.
    num_requests: int | None
    duration: int | None

    def get_rate(self) -> str | None:
        # Read at each request (not at import) so that settings overrides apply.
        return settings.API_RATE_LIMITS.get(self.scope or "") or None

    def get_ident(self, request: Request) -> str:
        return client_ip(request) or "unknown"

    def has_room(self, request: Request, view: Any) -> bool:
        """``allow_request`` without counting the call (``record`` does that)."""
        if self.num_requests is None or self.duration is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return len(self.history) < self.num_requests

    def record(self) -> None:
        """Count the call checked by the last ``has_room`` (nothing when this limit is off)."""
        key = getattr(self, "key", None)
        if self.duration is None or key is None:
            return
        self.history.insert(0, self.now)
        self.cache.set(key, self.history, self.duration)


class TokenRateThrottle(_SettingsRateThrottle):
    scope = "token"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


class UserRateThrottle(_SettingsRateThrottle):
    scope = "user"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class AnonRateThrottle(_SettingsRateThrottle):
    scope = "anon"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ApiRateThrottle(BaseThrottle):
    """Token, user and anonymous limits together: all checked, then counted only if all allow."""

    limits: tuple[type[_SettingsRateThrottle], ...] = (TokenRateThrottle, UserRateThrottle, AnonRateThrottle)

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        throttles = [limit() for limit in self.limits]
        refused = [throttle for throttle in throttles if not throttle.has_room(request, view)]
        if refused:
            waits = [throttle.wait() for throttle in refused]
            self._wait = max((wait for wait in waits if wait is not None), default=None)
            return False
        for throttle in throttles:
            throttle.record()
        return True

    def wait(self) -> float | None:
        return self._wait


class AuthFailureThrottle(_SettingsRateThrottle):
    """Calls refused for their credentials, per address."""

    scope = "auth_failure"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def auth_failures_refuse_if_over(request: Request) -> None:
    """Raise the 429 when ``request``'s address is over its failed-authentication limit."""
    throttle = AuthFailureThrottle()
    if not throttle.has_room(request, None):
        raise exceptions.Throttled(
            wait=throttle.wait(),
            detail="Too many calls with missing or invalid credentials from this address.",
        )


def auth_failure_record(request: Request) -> None:
    """Count one call refused for its credentials against its address."""
    throttle = AuthFailureThrottle()
    throttle.has_room(request, None)
    throttle.record()


class MachineTokenRateThrottle(TokenRateThrottle):
    """Per token, for endpoints machines call on every request they serve (``API_RATE_LIMITS``
    ``machine_token``): gateways asking for a decision make many more calls than people do."""

    scope = "machine_token"


class MachineUserRateThrottle(UserRateThrottle):
    scope = "machine_user"


class MachineRateThrottle(ApiRateThrottle):
    """The machine limits (``API_RATE_LIMIT_MACHINE_TOKEN``, ``API_RATE_LIMIT_MACHINE_USER``) in
    place of the token and user limits, set on such a view: its calls count against those alone,
    and every other endpoint keeps the limits above for the same token and user."""

    limits = (MachineTokenRateThrottle, MachineUserRateThrottle, AnonRateThrottle)
