"""RFC 9457 problem details for every API error: DRF's exceptions, domain errors, Django's 404
and 403, and (through ``governance.views.server_error``) unhandled 500s."""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from governance.api.throttles import auth_failure_record
from governance.exceptions import DomainError, RateLimited

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://ai-governance-portal.dev/problems/"

_TITLES = {
    400: ("Invalid input", "validation-error"),
    401: ("Not authenticated", "not-authenticated"),
    403: ("Not allowed", "not-allowed"),
    404: ("Not found", "not-found"),
    405: ("Method not allowed", "method-not-allowed"),
    406: ("Not acceptable", "not-acceptable"),
    409: ("Conflict", "conflict"),
    413: ("Content too large", "content-too-large"),
    415: ("Unsupported media type", "unsupported-media-type"),
    422: ("Unprocessable content", "unprocessable"),
    429: ("Too many requests", "rate-limited"),
    500: ("Server error", "server-error"),
}


def problem_body(
    *,
    status: int,
    title: str | None = None,
    detail: str = "",
    type_slug: str | None = None,
    errors: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    default_title, default_slug = _TITLES.get(status, ("Error", "error"))
    body: dict[str, Any] = {
        "type": TYPE_BASE + (type_slug or default_slug),
        "title": title or default_title,
        "status": status,
        "detail": detail or title or default_title,
    }
    if errors:
        body["errors"] = errors
    return body


def problem_response(**kwargs: Any) -> JsonResponse:
    """A plain Django response (for middleware and URL-level handlers)."""
    body = problem_body(**kwargs)
    return JsonResponse(body, status=body["status"], content_type=PROBLEM_CONTENT_TYPE)


def problem_for_domain_error(exc: DomainError) -> JsonResponse:
    response = problem_response(
        status=exc.status, title=exc.title, detail=exc.detail, type_slug=exc.type_slug, errors=exc.errors or None
    )
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(exc.retry_after)
    return response


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error structure as {"field" or "field.sub" or "items.0.field": [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                # A nested object's or list's own error (e.g. too many items) names that field.
                name = prefix.rstrip(".") or "non_field_errors"
            else:
                name = f"{prefix}{key}"
            for k, v in _flatten(value, f"{name}.").items():
                out.setdefault(k, []).extend(v)
            if not isinstance(value, (dict, list)):
                out.setdefault(name, []).append(str(value))
        return {k.rstrip("."): v for k, v in out.items()}
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            key = prefix.rstrip(".") or "non_field_errors"
            return {key: [str(item) for item in detail]}
        for index, item in enumerate(detail):
            if item:
                for k, v in _flatten(item, f"{prefix}{index}.").items():
                    out.setdefault(k.rstrip("."), []).extend(v)
        return out
    return {prefix.rstrip(".") or "non_field_errors": [str(detail)]}


def _summary(errors: dict[str, list[str]]) -> str:
    parts = [f"{field}: {msgs[0]}" for field, msgs in errors.items() if msgs]
    return "; ".join(parts[:5]) or "Invalid input."


# Error codes of input that matches the published schema but cannot be acted on: a reference to
# something that does not exist (DRF's related fields), or a rule the schema cannot state (raised
# with this code by serializers). Such input is a 422; anything else breaks the schema: a 400.
UNPROCESSABLE_CODES = frozenset({"does_not_exist", "unprocessable"})


def _only_semantic(codes: Any) -> bool:
    """Whether every error code in DRF's nested ``get_codes()`` structure is in UNPROCESSABLE_CODES."""
    stack, seen = [codes], 0
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        else:
            seen += 1
            if node not in UNPROCESSABLE_CODES:
                return False
    return seen > 0


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler: every error a view raises becomes a problem document. Anything
    else is a real bug, left to Django's handler500 (which answers with a problem document too)."""
    if isinstance(exc, DomainError):
        set_rollback()
        return _domain_error_response(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    set_rollback()
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)) and context.get("request"):
        # Refused for its credentials: counts against the address (governance.api.throttles).
        auth_failure_record(context["request"])
    return _api_exception_response(exc)


def _domain_error_response(exc: DomainError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    body = problem_body(
        status=exc.status, title=exc.title, detail=exc.detail, type_slug=exc.type_slug, errors=exc.errors or None
    )
    return Response(body, status=exc.status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def _api_exception_response(exc: exceptions.APIException) -> Response:
    headers: dict[str, str] = {}
    auth_header = getattr(exc, "auth_header", None)  # set by DRF's authentication on a 401
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    if isinstance(exc, exceptions.Throttled):
        # Always sent with a 429 (the schema says so), in whole seconds, at least 1. (``wait`` is
        # set by DRF's __init__ and absent from its stubs.)
        wait: float | None = getattr(exc, "wait", None)
        headers["Retry-After"] = str(max(1, math.ceil(wait or 0)))
    code = exc.status_code
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        if _only_semantic(exc.get_codes()):
            code = status.HTTP_422_UNPROCESSABLE_ENTITY
        body = problem_body(status=code, detail=_summary(errors), errors=errors)
    else:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        body = problem_body(status=code, detail=str(detail))
    if code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" not in headers:
        headers["WWW-Authenticate"] = "Token"
    return Response(body, status=code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)
