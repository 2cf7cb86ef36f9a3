"""Request-scoped middleware: request id and client address for the audit trail, the auditor's
read-only guarantee, friendly pages for domain errors raised under web views, and the portal's
own "not found" page in every mode."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve

from governance import context
from governance.api.problems import problem_for_domain_error, problem_response
from governance.context import client_ip
from governance.exceptions import DomainError
from governance.roles import is_read_only
from governance.views import page_not_found

SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
# Paths an auditor may POST to: signing in and out changes nothing governed.
# Besides signing in and out, an auditor may POST for the evidence pack: it changes nothing but the
# audit trail, which records the export.
_AUDITOR_POST_ALLOWED = (
    "/accounts/login/",
    "/accounts/logout/",
    "/admin/logout/",
    "/login/",
    "/complete/",
    "/evidence/pack/",
    "/api/v1/evidence-pack/",
)


# A client's X-Request-ID is kept only in the two shapes request ids take: a UUID (with hyphens)
# or a 128-bit token in 32 hex digits. Anything else — free text, an injected line, a value
# chosen to look like another request's id in the trail — is replaced by an id of our own.
_REQUEST_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}")


def request_id_for(incoming: str) -> str:
    """The id this request is known by: the client's, if it is a UUID or a 32-hex token,
    otherwise a new one. It is what the audit trail records and the response returns."""
    if _REQUEST_ID.fullmatch(incoming):
        return incoming
    return context.new_request_id()


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_for(request.META.get("HTTP_X_REQUEST_ID", ""))
        ctx = context.RequestContext(request_id=request_id, client_ip=client_ip(request))
        with context.bind(ctx):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class AuditorReadOnlyMiddleware:
    """An auditor reads everything and changes nothing: any unsafe method from a read-only user
    is refused here, whatever view it reaches. (Token-authenticated API calls are checked by
    ``governance.api.permissions.AuditorsReadOnly``, since DRF authenticates inside the view.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            request.method not in SAFE_METHODS
            and user is not None
            and user.is_authenticated
            and is_read_only(user)
            and not request.path.startswith(_AUDITOR_POST_ALLOWED)
        ):
            return _refuse_read_only(request)
        return self.get_response(request)


def _refuse_read_only(request: HttpRequest) -> HttpResponse:
    detail = "Auditors have read-only access: this action would change something."
    if request.path.startswith("/api/"):
        return problem_response(status=403, title="Not allowed", detail=detail, type_slug="read-only")
    return render(request, "403.html", {"detail": detail}, status=403)


class DomainErrorMiddleware:
    """A domain error that escapes a web view becomes a page with its status and message."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DomainError):
            return None
        if request.path.startswith("/api/"):
            return problem_for_domain_error(exception)
        template = _ERROR_TEMPLATES.get(exception.status, "governance/error.html")
        return render(
            request, template, {"title": exception.title, "detail": exception.detail}, status=exception.status
        )


# The portal's pages for a refusal and for what cannot be seen; other statuses share one page.
_ERROR_TEMPLATES = {403: "403.html", 404: "404.html"}


class PortalNotFoundMiddleware:
    """The portal's own "not found" page in every mode. With DEBUG on, Django answers a missing
    page, or one a role may not see, with its debug page listing every URL pattern of the
    portal; a person trying the portal in development must see what production shows (a page
    one cannot see looks like one that does not exist). Real server errors keep Django's debug
    page in development: this touches only 404s.

    Sits after ``CommonMiddleware``, which turns a 404 for a path without its trailing slash into
    a redirect to the path with one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Without DEBUG, Django itself answers an unknown path with the 404 handler; with it, the
        # path is resolved here first (the debug page would be rendered before any middleware
        # could step in).
        if settings.DEBUG:
            try:
                resolve(request.path_info, getattr(request, "urlconf", None))
            except Resolver404 as exc:
                return page_not_found(request, exc)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404):
            return page_not_found(request, exception)
        return None
