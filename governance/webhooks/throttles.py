"""Rate limits for the API (429 with ``Retry-After``, as problem details through the API's
exception handler). Two limits apply to every authenticated call: one per API token (a runaway
script) and one per user (all their tokens and their browser session together); anonymous calls
are limited per address. Rates come from settings (``API_RATE_LIMITS``, from the environment:
``API_RATE_LIMIT_TOKEN``, ``API_RATE_LIMIT_USER``, ``API_RATE_LIMIT_ANON``) and are counted in
the cache (Redis in production, so every web process shares the counts)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from governance.models import ApiToken


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        # Read at each request (not at import) so that settings overrides apply.
        return settings.API_RATE_LIMITS.get(self.scope) or None


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
