"""Per-request (or per-task) context that the audit trail reads: request id and client address.

Set by ``RequestContextMiddleware`` for web and API requests and by ``task_context`` for
background tasks, so service functions need not pass them around.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
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
    per-address sign-in and API limits). Normalised (``normalised_address``); None when the
    text is no address."""
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return normalised_address(forwarded.split(",")[-1])
    return normalised_address(request.META.get("REMOTE_ADDR") or "")


# "[2001:db8::1]:443" and "192.0.2.1:443": an address with the port some proxies append.
_WITH_PORT = re.compile(r"\[(?P<v6>[^\]]+)\](?::\d+)?|(?P<v4>[\d.]+):\d+")


def normalised_address(text: str) -> str | None:
    """``text`` as one spelling per address, the one PostgreSQL's ``inet`` stores and returns
    (the audit trail hashes this text and the database keeps it: they must be equal). None when
    ``text`` is no IP address.

    Lower case and zeros compressed (``2001:DB8::0:1`` is ``2001:db8::1``); an IPv4-mapped
    address (``::ffff:192.0.2.1``, how a dual-stack socket shows an IPv4 client) is that IPv4
    address, so a client is one address however it connected; an IPv4-compatible one
    (``::192.0.2.1``) keeps PostgreSQL's dotted tail; a zone (``fe80::1%eth0``), which ``inet``
    refuses, is dropped; a port appended by a proxy is dropped."""
    text = text.strip()
    bare = _WITH_PORT.fullmatch(text)
    if bare:
        text = bare.group("v6") or bare.group("v4")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    value = int(address)
    # PostgreSQL writes an address whose first 96 bits are zero (and the next 16 not) with a
    # dotted IPv4 tail; Python writes hex words.
    if 0x10000 <= value <= 0xFFFFFFFF:
        return f"::{ipaddress.IPv4Address(value)}"
    return ipaddress.IPv6Address(value).compressed


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
