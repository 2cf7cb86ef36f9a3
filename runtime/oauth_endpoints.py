"""The authorization server's public endpoints besides the token endpoint: the published keys
(``/.well-known/jwks.json``), the server's metadata (RFC 8414), introspection (RFC 7662) and
revocation (RFC 7009).

They are plain Django views answering JSON in the OAuth shapes the RFCs define (``error`` and
``error_description``, not the API's problem details), never cached except the public key set.
Introspection and revocation authenticate by an ``Authorization`` header, not a session cookie
(so no CSRF token): the portal's API tokens as ``Bearer`` or ``Token``, and for revocation also
the integration's own workload token as ``Bearer``. Revocation also accepts a signed-in person's
session, with Django's CSRF check. ``/oauth/`` runs outside the per-request transaction: the
one write here (a revocation) is its own transaction in the service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from rest_framework import exceptions
from rest_framework.request import Request

from governance.api.authentication import SessionAuthentication, TokenAuthentication
from governance.api.throttles import auth_failure_record, auth_failures_refuse_if_over
from governance.exceptions import NotAllowed
from governance.models import User
from runtime import introspection, keys, tokens
from runtime.errors import ExchangeRefused
from runtime.permissions import can_introspect
from runtime.services.keys import signing_keys_bootstrap
from runtime.services.revocation import Revoker, access_token_revoke

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
API_TOKEN_PREFIX = "gp_"
# The largest token a caller may submit; portal tokens are well under 2 KB.
MAX_TOKEN_LENGTH = 16_384


class BearerApiTokenAuthentication(TokenAuthentication):
    """The portal's API tokens presented as ``Authorization: Bearer <key>`` (what OAuth clients
    and resource servers send), checked exactly like ``Token <key>``."""

    keyword = "Bearer"


def _json(data: dict[str, Any], *, status: int = 200) -> JsonResponse:
    response = JsonResponse(data, status=status)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def _oauth_error(error: str, description: str, *, status: int, challenge: str = "") -> JsonResponse:
    response = _json({"error": error, "error_description": description}, status=status)
    if challenge:
        response["WWW-Authenticate"] = challenge
    return response


def _unauthenticated(request: HttpRequest, description: str) -> JsonResponse:
    auth_failure_record(Request(request))
    challenge = f'Bearer realm="{settings.RUNTIME_ISSUER}", error="invalid_token"'
    return _oauth_error("invalid_client", description, status=401, challenge=challenge)


class _AuthFailed(Exception):
    def __init__(self, response: HttpResponse) -> None:
        super().__init__("authentication failed")
        self.response = response


def _header(request: HttpRequest) -> tuple[str, str]:
    scheme, _, credential = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    return scheme.lower(), credential.strip()


def _slow_down(exc: exceptions.Throttled) -> _AuthFailed:
    response = _oauth_error("slow_down", str(exc.detail), status=429)
    response["Retry-After"] = str(int(getattr(exc, "wait", None) or 1))
    return _AuthFailed(response)


def _api_token_user(request: HttpRequest) -> User | None:
    """The user of a ``Token``/``Bearer`` API token in the header; None without such a header.
    Refused tokens raise ``_AuthFailed`` (401, or 429 for an address over its failure limit)."""
    scheme, _credential = _header(request)
    authenticator = {"token": TokenAuthentication, "bearer": BearerApiTokenAuthentication}.get(scheme)
    if authenticator is None:
        return None
    try:
        result = authenticator().authenticate(Request(request))
    except exceptions.Throttled as exc:
        raise _slow_down(exc) from exc
    except exceptions.AuthenticationFailed as exc:
        raise _AuthFailed(_unauthenticated(request, str(exc.detail))) from exc
    return result[0] if result else None


def _submitted_token(request: HttpRequest) -> str | HttpResponse:
    token = request.POST.get("token", "")
    if not token:
        return _oauth_error("invalid_request", "The form field 'token' is required.", status=400)
    if len(token) > MAX_TOKEN_LENGTH:
        return _oauth_error("invalid_request", "The token is too long.", status=400)
    return token


def _authenticated(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    def wrapped(request: HttpRequest) -> HttpResponse:
        try:
            return view(request)
        except _AuthFailed as failed:
            return failed.response

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


# --- Discovery --------------------------------------------------------------------------------------


@require_GET
def jwks(request: HttpRequest) -> HttpResponse:
    """The published keys: next, current and previous of every algorithm. Each supported
    algorithm gets its first keys here if it has none, so every key set ever served already
    holds the key that will sign first (which is why that key may sign at once)."""
    rows = keys.published_rows()
    have = {row.algorithm for row in rows if row.state == "current"}
    missing = [algorithm for algorithm in keys.SUPPORTED_ALGORITHMS if algorithm not in have]
    for algorithm in missing:
        signing_keys_bootstrap(algorithm=algorithm)
    if missing:
        rows = keys.published_rows()
    response = JsonResponse({"keys": [row.public_jwk for row in rows]})
    response["Cache-Control"] = f"public, max-age={settings.RUNTIME_JWKS_CACHE_SECONDS}"
    return response


def server_metadata() -> dict[str, Any]:
    """RFC 8414 metadata: where each endpoint is and how to use it."""
    site = settings.SITE_URL
    return {
        "issuer": settings.RUNTIME_ISSUER,
        "token_endpoint": f"{site}/oauth/token",
        "jwks_uri": f"{site}/.well-known/jwks.json",
        "introspection_endpoint": f"{site}/oauth/introspect",
        "revocation_endpoint": f"{site}/oauth/revoke",
        "grant_types_supported": [TOKEN_EXCHANGE_GRANT],
        # No authorization endpoint: tokens come only from exchanging a workload token.
        "response_types_supported": [],
        # The token endpoint authenticates the client by the workload token it exchanges.
        "token_endpoint_auth_methods_supported": ["none"],
        # A resource server's portal API token, as "Authorization: Bearer <key>".
        "introspection_endpoint_auth_methods_supported": ["bearer_api_token"],
        # The integration's own workload token, or an owner's or IAM admin's API token.
        "revocation_endpoint_auth_methods_supported": ["bearer_workload_token", "bearer_api_token"],
        "token_types_supported": ["urn:ietf:params:oauth:token-type:access_token"],
        "access_token_signing_alg_values_supported": list(keys.SUPPORTED_ALGORITHMS),
        "introspection_signing_alg_values_supported": [],
        "service_documentation": f"{site}/api/docs/",
    }


@require_GET
def authorization_server_metadata(request: HttpRequest) -> HttpResponse:
    response = JsonResponse(server_metadata())
    response["Cache-Control"] = f"public, max-age={settings.RUNTIME_JWKS_CACHE_SECONDS}"
    return response


# --- Introspection ----------------------------------------------------------------------------------


@csrf_exempt
@require_POST
@_authenticated
def introspect(request: HttpRequest) -> HttpResponse:
    """RFC 7662, for resource-server accounts (and IAM admins) with their API token."""
    user = _api_token_user(request)
    if user is None:
        return _unauthenticated(request, "Authenticate with your API token: 'Authorization: Bearer <key>'.")
    if not can_introspect(user):
        challenge = f'Bearer realm="{settings.RUNTIME_ISSUER}", error="insufficient_scope"'
        description = "Only resource-server accounts and IAM admins may introspect tokens."
        return _oauth_error("insufficient_scope", description, status=403, challenge=challenge)
    token = _submitted_token(request)
    if isinstance(token, HttpResponse):
        return token
    return _json(introspection.introspect(token))


# --- Revocation -------------------------------------------------------------------------------------


def _revoker(request: HttpRequest) -> Revoker:
    """Who asks: the integration by its workload token (``Bearer`` that is not an API token), a
    person by API token, or a signed-in person by session. ``_AuthFailed`` (401) otherwise."""
    scheme, credential = _header(request)
    if scheme == "bearer" and credential and not credential.startswith(API_TOKEN_PREFIX):
        # Imported here: the workload verifier pulls in the issuer-key machinery.
        from runtime.workload import verify_workload_token

        try:
            # Like an API token: an address over its failed-authentication limit is refused
            # before the workload token is checked (no key fetch, no lookup).
            auth_failures_refuse_if_over(Request(request))
        except exceptions.Throttled as exc:
            raise _slow_down(exc) from exc
        try:
            workload = verify_workload_token(credential)
        except ExchangeRefused as exc:
            raise _AuthFailed(_unauthenticated(request, exc.description)) from exc
        return Revoker(integration_id=workload.integration.pk, workload_subject=workload.subject)
    user = _api_token_user(request)
    if user is None and not scheme:
        user = _session_user(request)
    if user is None:
        description = "Authenticate with the integration's workload token or an owner's API token as 'Bearer'."
        raise _AuthFailed(_unauthenticated(request, description))
    return Revoker(user=user)


def _session_user(request: HttpRequest) -> User | None:
    """A signed-in person's session, with the CSRF check a cookie needs."""
    try:
        result = SessionAuthentication().authenticate(Request(request))
    except exceptions.PermissionDenied as exc:
        raise _AuthFailed(_oauth_error("invalid_request", str(exc.detail), status=403)) from exc
    return result[0] if result else None


@csrf_exempt
@require_POST
@_authenticated
def revoke(request: HttpRequest) -> HttpResponse:
    """RFC 7009: 200 whether or not the token was known (an invalid, expired or unknown token has
    nothing to revoke); 403 when the caller may not revoke this integration's tokens."""
    revoker = _revoker(request)
    token = _submitted_token(request)
    if isinstance(token, HttpResponse):
        return token
    try:
        claims = tokens.verify(token)
    except tokens.InvalidToken:
        return _json({})
    event = introspection.issued_event(str(claims.get("jti", "")))
    if event is None:
        return _json({})
    try:
        access_token_revoke(revoker=revoker, event=event)
    except NotAllowed as exc:
        return _oauth_error("unauthorized_client", exc.detail, status=403)
    return _json({})
