"""Helpers for the web views of every app."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.request import Request

from governance.exceptions import DomainError, NotAllowed, NotFound
from governance.models import User

T = TypeVar("T")


class AuthenticatedHttpRequest(HttpRequest):
    """The request of a view behind ``login_required``: its user is a signed-in ``User``. Views
    annotate their ``request`` with it so the user they pass to services type-checks as an actor."""

    user: User


def signed_in(request: HttpRequest | Request) -> User:
    """The signed-in user of a request that passed ``login_required`` or ``IsAuthenticated``,
    typed as the ``User`` services take as their actor (never an anonymous user)."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user


def attempt(request: HttpRequest, action: Callable[[], T], *, success: str | Callable[[T], str]) -> T | None:
    """Runs one service call for a button or form and tells the user how it went: the success
    message, or the domain error's message (the page they return to shows it). Returns what the
    call returned, or None when it was refused. ``NotAllowed`` and ``NotFound`` are not messages:
    they propagate and the error middleware answers 403 or 404."""
    try:
        result = action()
    except (NotAllowed, NotFound):
        raise
    except DomainError as exc:
        messages.error(request, exc.detail)
        return None
    messages.success(request, success(result) if callable(success) else success)
    return result
