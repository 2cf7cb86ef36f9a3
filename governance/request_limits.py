"""Limits on what a request may carry, checked before any view (or other middleware) reads it:

* a body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``REQUEST_BODY_MAX_BYTES``, README
  "Limits") — or, for a file upload (multipart/form-data) to a path of ``REQUEST_UPLOAD_PATHS``,
  larger than that path's own limit — answers 413 — problem details under /api/, an error page elsewhere. Django alone
  answers such a body with a 400 (an HTML debug page in development) once something reads it;
  a body sent without a Content-Length is read as empty by Django, so the header is the size;
* a NUL character in the path answers 404 and in the query string 400: PostgreSQL refuses NUL in
  text ("A string literal cannot contain NUL"), so a lookup such as ``/api/v1/scopes/a%00b/``
  would otherwise end in a 500 there (and a 404 on SQLite).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from governance.api.problems import problem_response


def _refuse(request: HttpRequest, status: int, title: str, detail: str, type_slug: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return problem_response(status=status, title=title, detail=detail, type_slug=type_slug)
    return render(request, "governance/error.html", {"title": title, "detail": detail}, status=status)


def _body_limit(request: HttpRequest) -> int | None:
    if request.META.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
        upload_limit = settings.REQUEST_UPLOAD_PATHS.get(request.path)
        if upload_limit is not None:
            return int(upload_limit)
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class RequestLimitsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = _body_limit(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django reads a malformed Content-Length as no body at all
        if limit is not None and length > limit:
            return _refuse(
                request,
                413,
                "Content too large",
                f"The request body is {length} bytes; the limit is {limit} bytes.",
                "content-too-large",
            )
        if "\x00" in request.path:
            return _refuse(request, 404, "Not found", "Not found.", "not-found")
        if "\x00" in unquote(request.META.get("QUERY_STRING", "")):
            return _refuse(
                request,
                400,
                "Invalid input",
                "The query string holds a NUL character.",
                "validation-error",
            )
        return self.get_response(request)
