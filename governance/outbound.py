"""The one outbound HTTP client of the portal: no request leaves the portal any other way.

Every request the portal makes to another machine — webhook deliveries today, JWKS and discovery
fetches of identity providers tomorrow — goes through ``request`` (or ``get``/``post``), which:

1. parses the URL: ``http``/``https`` only, no credentials in it, a port in
   ``OUTBOUND_ALLOWED_PORTS`` (80 and 443 by default);
2. resolves the host name **once**, at send time, with ``resolve`` (a module-level function that
   tests replace with a stub), and refuses if *any* address it got is not a public unicast address:
   loopback, private (RFC 1918, RFC 4193 ``fc00::/7``), link-local (``169.254/16`` with the cloud
   metadata address, ``fe80::/10``), shared/CGNAT (``100.64/10``), multicast, unspecified,
   documentation, benchmarking and reserved ranges, and IPv6 forms that carry an IPv4 address
   (IPv4-mapped, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) when that IPv4 address is refused;
3. connects to the very address it checked (no second resolution, so DNS rebinding between the
   check and the connection is impossible), sending the original host name in ``Host`` and in TLS
   SNI, and checking the certificate against that name;
4. never follows a redirect (a 3xx is returned as it is: callers decide, and treat it as failure);
5. caps the whole exchange — connect, TLS handshake, request, headers, body — at one deadline
   (a watchdog closes the socket when it passes, so a server dripping one byte at a time cannot
   stretch it) and the response body at ``max_bytes``.

``OUTBOUND_ALLOWED_HOSTS`` names hosts (``host`` or ``host:port``) the operator trusts: for those
the address rule is lifted (e.g. ``127.0.0.1:8765`` for a local receiver in development or tests),
and ``host:port`` also lifts the port rule for that port. Matching is on the host as written in
the URL, never on what it resolves to.

Errors form a small hierarchy under ``OutboundError``; ``str(exc)`` is always a short, safe text
("refused by outbound policy", "unreachable", "timed out", ...) that may be stored and shown: no
errno, no address, nothing about internal hosts (no port-scanner oracle). What happened in detail
is in ``exc.reason`` and the server log only.

Limit: ``socket.getaddrinfo`` cannot be interrupted, so a slow DNS server can delay a request
beyond its deadline by the resolver's own timeout (``options timeout`` in resolv.conf).
"""

from __future__ import annotations

import http.client
import ipaddress
import json as jsonlib
import logging
import socket
import ssl
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

log = logging.getLogger(__name__)

USER_AGENT = "ai-governance-portal/1"
_READ_CHUNK = 64 * 1024


# --- Errors -----------------------------------------------------------------------------------


class OutboundError(Exception):
    """An outbound request did not produce a response. ``str(exc)`` is safe to store and show;
    ``reason`` is the detail for the server log only."""

    message = "outbound request failed"

    def __init__(self, message: str = "", *, reason: str = "") -> None:
        super().__init__(message or self.message)
        self.reason = reason


class Refused(OutboundError):
    """The target breaks the outbound policy; nothing was sent, no connection was made.
    ``rule`` says which rule (``scheme``, ``url``, ``port`` or ``address``) for callers that
    explain it to the person who typed the URL (the URL's own parts are theirs to know; which
    address a name resolved to is not said)."""

    message = "refused by outbound policy"

    def __init__(self, *, rule: str, reason: str = "") -> None:
        super().__init__(reason=reason)
        self.rule = rule


class Unreachable(OutboundError):
    """The name did not resolve, or no vetted address accepted a connection, or the connection
    broke before a response."""

    message = "unreachable"


class TimedOut(OutboundError):
    message = "timed out"


class ResponseTooLarge(OutboundError):
    message = "response too large"


class InvalidResponse(OutboundError):
    """Something answered, but not with HTTP."""

    message = "invalid response"


# --- Address policy ---------------------------------------------------------------------------


def _ranges(table: tuple[tuple[str, str], ...]) -> tuple[tuple[Any, str], ...]:
    """(network, name) pairs from (CIDR text, name) pairs."""
    return tuple((ipaddress.ip_network(net), name) for net, name in table)


# Refused IPv4 ranges, each with the name the server log gives it. Written out rather than taken
# from ``ipaddress.is_global``, whose answer differs between Python patch releases and which
# calls multicast global.
_V4_REFUSED: tuple[tuple[ipaddress.IPv4Network, str], ...] = _ranges(
    (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved (and broadcast)"),
    )
)
# IPv6: only global unicast (2000::/3) can be public; inside it, these are not.
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V6_REFUSED: tuple[tuple[ipaddress.IPv6Network, str], ...] = _ranges(
    (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("fc00::/7", "unique local (private)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments (Teredo, benchmarking, ORCHID)"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def address_problem(address: str) -> str | None:
    """``None`` if the portal may connect to ``address``, else the name of its class (for logs)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id (fe80::1%eth0)
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv4Address):
        return next((name for net, name in _V4_REFUSED if ip in net), None)
    # IPv6 forms that lead to an IPv4 address are judged by that address.
    embedded: ipaddress.IPv4Address | None = None
    form = ""
    if ip.ipv4_mapped is not None:
        embedded, form = ip.ipv4_mapped, "IPv4-mapped"
    elif ip in _NAT64:
        embedded, form = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    elif ip.sixtofour is not None:
        embedded, form = ip.sixtofour, "6to4"
    if embedded is not None:
        inner = address_problem(str(embedded))
        return f"{form} {inner}" if inner else None
    named = next((name for net, name in _V6_REFUSED if ip in net), None)
    if named:
        return named
    return None if ip in _V6_GLOBAL_UNICAST else "reserved"


# --- Resolution (replaceable by tests) --------------------------------------------------------

Resolver = Callable[[str, int], list[str]]


def system_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the system resolver's order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# Looked up at call time: tests swap it (monkeypatch.setattr(outbound, "resolve", stub)) to make a
# name resolve to whatever they need, e.g. to 127.0.0.1 at send time (DNS rebinding).
resolve: Resolver = system_resolve


# --- Targets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A URL that passed the URL rules: what to connect to and what to ask for."""

    scheme: str
    host: str  # as written in the URL, lower case, without brackets; sent in Host and SNI
    port: int
    path: str  # path and query, never empty
    allow_listed: bool


@dataclass(frozen=True)
class Plan:
    """A target and the vetted addresses of this one resolution: connect to these, nothing else."""

    target: Target
    addresses: tuple[str, ...]


def _normal_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host))  # one spelling per IP literal ([0::1] is ::1)
    except ValueError:
        return host


def allowed_hosts() -> set[tuple[str, int | None]]:
    """``OUTBOUND_ALLOWED_HOSTS`` as (host, port or None) pairs. Accepts ``host``, ``host:port``,
    ``[v6]``, ``[v6]:port`` and a bare IPv6 literal."""
    entries: set[tuple[str, int | None]] = set()
    for raw in settings.OUTBOUND_ALLOWED_HOSTS:
        entry = raw.strip()
        if not entry:
            continue
        port_text = ""
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else rest
        elif entry.count(":") == 1:
            host, port_text = entry.split(":")
        else:
            host = entry
        try:
            port = int(port_text) if port_text else None
        except ValueError:
            raise ImproperlyConfigured(f"OUTBOUND_ALLOWED_HOSTS: {raw!r} is not host or host:port.") from None
        entries.add((_normal_host(host), port))
    return entries


def parse(url: str, *, require_https: bool = False) -> Target:
    """Check the URL rules (scheme, credentials, port, allow-list); no DNS. Raises ``Refused``.
    ``require_https``: plain http only for allow-listed hosts."""
    if not isinstance(url, str) or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise Refused(rule="url", reason="empty URL, whitespace or control characters")
    try:
        parts = urlsplit(url)
        explicit_port = parts.port
    except ValueError as exc:
        raise Refused(rule="url", reason=f"unparseable URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused(rule="scheme", reason=f"scheme {scheme!r}")
    if not parts.hostname:
        raise Refused(rule="url", reason="no host")
    if parts.username is not None or parts.password is not None:
        raise Refused(rule="url", reason="credentials in the URL")
    host = _normal_host(parts.hostname)
    port = explicit_port if explicit_port is not None else (443 if scheme == "https" else 80)
    allowed = allowed_hosts()
    exact = (host, port) in allowed
    allow_listed = exact or (host, None) in allowed
    if not exact and port not in settings.OUTBOUND_ALLOWED_PORTS:
        raise Refused(rule="port", reason=f"port {port}")
    if require_https and scheme != "https" and not allow_listed:
        raise Refused(rule="scheme", reason="https required")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    # Percent-encode what is not ASCII (an IRI path); what is already encoded stays as it is.
    path = quote(path, safe=string.punctuation)
    return Target(scheme=scheme, host=host, port=port, path=path, allow_listed=allow_listed)


def vet(url: str, *, require_https: bool = False) -> Plan:
    """Parse ``url``, resolve its host once and check every address. Raises ``Refused`` (policy)
    or ``Unreachable`` (the name does not resolve). The returned plan pins the addresses."""
    target = parse(url, require_https=require_https)
    try:
        addresses = tuple(resolve(target.host, target.port))
    except (OSError, UnicodeError) as exc:
        raise Unreachable(reason=f"cannot resolve {target.host}: {exc}") from None
    if not addresses:
        raise Unreachable(reason=f"{target.host} resolved to nothing")
    if any(address_problem(address) == "not an IP address" for address in addresses):
        raise Unreachable(reason=f"{target.host}: the resolver returned something that is not an address")
    if not target.allow_listed:
        # One forbidden address refuses the whole name: a name that mixes a public and an internal
        # address must not reach the internal one on a later try.
        for address in addresses:
            problem = address_problem(address)
            if problem:
                log.warning(
                    "Outbound request to %s refused: %s resolves to %s (%s)", url, target.host, address, problem
                )
                raise Refused(rule="address", reason=f"{target.host} resolves to {address} ({problem})")
    return Plan(target=target, addresses=addresses)


# --- Pinned connections -----------------------------------------------------------------------


def _open_socket(address: str, port: int, timeout: float | None) -> socket.socket:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((address, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to ``address`` that names ``host`` in the request (no DNS of its own)."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.pinned_address = address

    def connect(self) -> None:
        self.sock = _open_socket(self.pinned_address, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to ``address`` with SNI and certificate check for ``host`` (the name in the URL)."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.pinned_address = address
        self.tls_context = context

    def connect(self) -> None:
        raw = _open_socket(self.pinned_address, self.port, self.timeout)
        try:
            tls = self.tls_context.wrap_socket(raw, server_hostname=self.host, do_handshake_on_connect=False)
        except BaseException:
            raw.close()
            raise
        # Set before the handshake so the watchdog can close it if the handshake drags on.
        self.sock = tls
        tls.do_handshake()


class _Watchdog:
    """Closes the connection's socket when the deadline passes: per-operation socket timeouts
    alone would let a server that sends one byte at a time hold a request for ever."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        self.fired = False
        self._connection = connection
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        sock = self._connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


# --- Requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """What the server answered. ``headers`` has lower-case names (repeated headers joined with
    ", "); ``body`` is at most the request's ``max_bytes``. A 3xx is returned as it is."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    url: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status < 400

    def json(self) -> Any:
        return jsonlib.loads(self.body)


def _default_tls_context() -> ssl.SSLContext:
    # Certificate and host name checks on (CERT_REQUIRED, check_hostname), system trust store
    # (or SSL_CERT_FILE).
    return ssl.create_default_context()


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    json: Any = None,
    timeout: float | None = None,
    max_bytes: int | None = None,
    require_https: bool = False,
    tls_context: ssl.SSLContext | None = None,
) -> Response:
    """Send one request under the outbound policy and return the response, whatever its status.

    ``json`` (instead of ``body``) is sent as ``application/json``. ``timeout`` is the total time
    for the whole exchange (default ``OUTBOUND_TIMEOUT_SECONDS``), ``max_bytes`` the largest body
    read (default ``OUTBOUND_MAX_RESPONSE_BYTES``; more raises ``ResponseTooLarge``).
    ``require_https`` allows plain http only to allow-listed hosts. ``tls_context`` replaces the
    default verifying context (e.g. to trust a private CA); it must keep verification on.
    Raises ``Refused``, ``Unreachable``, ``TimedOut``, ``ResponseTooLarge`` or ``InvalidResponse``.
    """
    if tls_context is not None and not (tls_context.check_hostname and tls_context.verify_mode == ssl.CERT_REQUIRED):
        raise ValueError("An outbound TLS context must verify the certificate and the host name.")
    total = float(settings.OUTBOUND_TIMEOUT_SECONDS if timeout is None else timeout)
    cap = int(settings.OUTBOUND_MAX_RESPONSE_BYTES if max_bytes is None else max_bytes)
    deadline = time.monotonic() + total
    send_headers = {"User-Agent": USER_AGENT, "Connection": "close"}
    if json is not None:
        body = jsonlib.dumps(json, separators=(",", ":")).encode()
        send_headers["Content-Type"] = "application/json"
    send_headers.update(headers or {})
    plan = vet(url, require_https=require_https)
    context = (tls_context or _default_tls_context()) if plan.target.scheme == "https" else None
    return _send(plan, context, _Call(method, url, send_headers, body, cap, deadline))


@dataclass(frozen=True)
class _Call:
    """One request as it is sent: the method, the URL asked for, headers and body, the largest
    response body read (``cap``) and when it must be over (``time.monotonic`` value)."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    cap: int
    deadline: float


def _send(plan: Plan, context: ssl.SSLContext | None, call: _Call) -> Response:
    """Try the plan's vetted addresses in turn until one accepts the connection, then exchange
    the request with it; only a connection refused or reset before anything was sent moves on to
    the next address."""
    target = plan.target
    failure: OutboundError = Unreachable(reason=f"no address of {target.host} accepted a connection")
    for address in plan.addresses:
        remaining = call.deadline - time.monotonic()
        if remaining <= 0:
            raise TimedOut(reason=f"{target.host}: deadline passed before connecting")
        connection = _pinned_connection(target, address, remaining, context)
        try:
            with _Watchdog(connection, remaining) as watchdog:
                try:
                    connection.connect()
                except (TimeoutError, ssl.SSLError) as exc:
                    raise _failure(exc, watchdog, target, address) from None
                except OSError as exc:
                    failure = _failure(exc, watchdog, target, address)
                    if isinstance(failure, TimedOut):
                        raise failure from None
                    continue
                try:
                    return _exchange(connection, watchdog, target, call)
                except (OSError, http.client.HTTPException) as exc:
                    raise _failure(exc, watchdog, target, address) from None
        finally:
            connection.close()
    log.info("Outbound request to %s failed: %s", call.url, failure.reason)
    raise failure


def _pinned_connection(
    target: Target, address: str, timeout: float, context: ssl.SSLContext | None
) -> http.client.HTTPConnection:
    """A connection to ``address`` that speaks to ``target``'s host name (Host header, TLS SNI
    and certificate check) without resolving it again."""
    if context is not None:
        return _PinnedHTTPSConnection(target.host, target.port, address=address, timeout=timeout, context=context)
    return _PinnedHTTPConnection(target.host, target.port, address=address, timeout=timeout)


def _exchange(connection: http.client.HTTPConnection, watchdog: _Watchdog, target: Target, call: _Call) -> Response:
    cap = call.cap
    connection.request(call.method, target.path, body=call.body, headers=dict(call.headers))
    answer = connection.getresponse()
    names: dict[str, str] = {}
    for name, value in answer.getheaders():
        key = name.lower()
        names[key] = f"{names[key]}, {value}" if key in names else value
    declared = names.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise ResponseTooLarge(reason=f"{target.host} declared {declared} bytes, cap {cap}")
    chunks: list[bytes] = []
    size = 0
    while True:
        if connection.sock is not None:
            connection.sock.settimeout(max(call.deadline - time.monotonic(), 0.001))
        chunk = answer.read(min(_READ_CHUNK, cap + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            raise ResponseTooLarge(reason=f"{target.host} sent more than {cap} bytes")
    # http.client reports a connection closed early (by the server, or by the watchdog) as the
    # end of the body: tell a cut-off body from a complete one.
    if watchdog.fired:
        raise TimedOut(reason=f"{target.host}: deadline passed while reading the body")
    if answer.length:
        raise InvalidResponse(reason=f"{target.host}: body ended {answer.length} bytes early")
    return Response(status=answer.status, headers=names, body=b"".join(chunks), url=call.url)


def _failure(exc: BaseException, watchdog: _Watchdog, target: Target, address: str) -> OutboundError:
    """The safe error for a transport failure; the detail stays in ``reason`` (server log)."""
    detail = f"{target.host} ({address}:{target.port}): {type(exc).__name__}: {exc}"
    if watchdog.fired or isinstance(exc, TimeoutError):
        return TimedOut(reason=detail)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Unreachable("TLS certificate not valid for the host", reason=detail)
    if isinstance(exc, http.client.RemoteDisconnected):
        return Unreachable(reason=detail)
    if isinstance(exc, http.client.HTTPException):
        return InvalidResponse(reason=detail)
    return Unreachable(reason=detail)


def get(url: str, **kwargs: Any) -> Response:
    """``request("GET", url, ...)``."""
    return request("GET", url, **kwargs)


def post(url: str, **kwargs: Any) -> Response:
    """``request("POST", url, ...)``."""
    return request("POST", url, **kwargs)
