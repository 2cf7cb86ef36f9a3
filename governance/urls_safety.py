"""Where a view may send the browser back to: the one check for every caller-supplied ``next``.

A form's hidden ``next`` field is the caller's to edit, so it is an open redirect unless it is
checked: ``//evil.example/`` and ``/\\evil.example/`` both start with ``/`` yet browsers read them
as another host. Django's ``url_has_allowed_host_and_scheme`` knows those tricks (and control
characters, and ``https:`` downgrades); every view that reads a ``next`` goes through ``safe_next``.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request: HttpRequest, default: str, *, field: str = "next") -> str:
    """The ``next`` URL from the request's POST (or GET) data when it stays on this site, else
    ``default`` (a path the view chose itself)."""
    candidate = request.POST.get(field) or request.GET.get(field) or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default
