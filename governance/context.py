"""Per-request (or per-task) context that the audit trail reads: request id and client address.

Set by ``RequestContextMiddleware`` for web and API requests and by ``task_context`` for
background tasks, so service functions need not pass them around.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from simple_history.models import HistoricalRecords


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    client_ip: str | None = None


_EMPTY = RequestContext()
_current: ContextVar[RequestContext | None] = ContextVar("governance_request_context", default=None)


def current() -> RequestContext:
    return _current.get() or _EMPTY


@contextlib.contextmanager
def bind(ctx: RequestContext) -> Iterator[RequestContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or behind a trusted proxy (TRUST_X_FORWARDED_FOR) the
    last X-Forwarded-For entry — the one that proxy added. Earlier entries are whatever the
    client sent, so taking the first would let a caller choose its address (and so escape the
    per-address sign-in and API limits)."""
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[-1].strip() or None
    return request.META.get("REMOTE_ADDR") or None


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextlib.contextmanager
def task_context(*, user: Any | None, request_id: str | None = None) -> Iterator[RequestContext]:
    """Context for work without an HTTP request (tasks, commands).

    Binds a request id for the audit trail and makes django-simple-history record ``user`` as
    the author of every historical row saved inside the block (it takes the author from the
    request, and a task has none: ``history_user`` would be None).
    """
    ctx = RequestContext(request_id=request_id or f"task-{new_request_id()}", client_ip=None)
    previous = getattr(HistoricalRecords.context, "request", None)
    HistoricalRecords.context.request = SimpleNamespace(user=user)
    try:
        with bind(ctx):
            yield ctx
    finally:
        if previous is None:
            with contextlib.suppress(AttributeError):
                del HistoricalRecords.context.request
        else:
            HistoricalRecords.context.request = previous
