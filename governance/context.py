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


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextlib.contextmanager
def task_context(*, user: Any | None, request_id: str | None = None) -> Iterator[RequestContext]:
    """Context for work without an HTTP request (tasks, commands).

    Binds a request id for the audit trail and makes django-simple-history record ``user`` as
    the author of every historical row saved inside the block (PITFALLS.md: there is no request
    in a task, so history_user would be None).
    """
    ctx = RequestContext(request_id=request_id or f"task-{new_request_id()}", client_ip=None)
    previous = getattr(HistoricalRecords.context, "request", None)
    HistoricalRecords.context.request = SimpleNamespace(user=user)  # type: ignore[attr-defined]
    try:
        with bind(ctx):
            yield ctx
    finally:
        if previous is None:
            with contextlib.suppress(AttributeError):
                del HistoricalRecords.context.request  # type: ignore[attr-defined]
        else:
            HistoricalRecords.context.request = previous  # type: ignore[attr-defined]
