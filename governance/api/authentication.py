"""API authentication: ``Authorization: Token <key>`` against hashed, expiring, revocable tokens,
and the browser session (with CSRF, as DRF enforces for session-authenticated unsafe methods).

Calls refused for their credentials are limited per address (``AuthFailureThrottle`` in
``governance.api.throttles``): over the limit, a token is refused with a 429 before it is
looked up, and ``AddressGate`` (last in the list) does the same for a call with no credentials.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from governance.api.throttles import auth_failures_refuse_if_over
from governance.models import ApiToken
from governance.services import hash_token_key


class TokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        # Before the lookup: while over the limit, a valid token and a guess answer alike.
        auth_failures_refuse_if_over(request)
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: expected 'Token <key>'.")
        try:
            key = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token header: the key has invalid characters.")
        token = ApiToken.objects.select_related("user").filter(key_hash=hash_token_key(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This token was revoked.")
        now = timezone.now()
        if token.expires_at is not None and token.expires_at <= now:
            raise exceptions.AuthenticationFailed("This token has expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is deactivated.")
        # Record use at most once a minute, without touching history or updated_at.
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class SessionAuthentication(authentication.SessionAuthentication):
    pass


class AddressGate(authentication.BaseAuthentication):
    """Reached only when no other class authenticated the call: an anonymous call from an address
    over its failed-authentication limit gets the 429 instead of being served or refused."""

    def authenticate(self, request: Request) -> None:
        auth_failures_refuse_if_over(request)
        return None


class AddressGateScheme(OpenApiAuthenticationExtension):
    """For the OpenAPI document: ``AddressGate`` authenticates nobody, so it adds no security
    scheme and no requirement (its 429 is documented with every operation's problems). Kept
    here, next to the class, so that it is registered whenever the class is in use."""

    target_class = AddressGate
    name: list[str] = []

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        return []

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        return []
