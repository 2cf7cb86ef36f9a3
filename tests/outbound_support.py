"""Test doubles around ``governance.outbound`` that are not the system under test: a DNS resolver
stub (``outbound.resolve`` is meant to be swapped), a bare TCP listener that records every
connection it accepts (to prove that none was made), and a small scripted HTTP(S) server."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeDNS:
    """A resolver: names resolve only to what a test set (``dns.set("hooks.example.com",
    "93.184.215.14")``); IP literals, in every spelling the system resolver accepts
    (``2130706433``, ``0x7f.1``), resolve to themselves without any network; any other name
    does not resolve. ``lookups`` records every name asked, in order."""

    names: dict[str, list[str]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    def set(self, host: str, *addresses: str) -> None:
        self.names[host] = list(addresses)

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host in self.names:
            return list(self.names[host])
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


class Listener:
    """A TCP socket listening on 127.0.0.1 that accepts, counts and closes every connection."""

    def __init__(self) -> None:
        self.accepted = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port: int = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self._sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._sock.close()
        self._thread.join(timeout=5)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunked: bool = False  # send the body chunked, without Content-Length


class HTTPStub:
    """A scripted HTTP (or, with ``tls``, HTTPS) server on 127.0.0.1: answers every request with
    ``reply`` and records it in ``seen``."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.reply = Reply()
        self.seen: list[Seen] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
                reply = stub.reply
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    if reply.chunked:
                        for start in range(0, len(reply.body), 4096):
                            piece = reply.body[start : start + 4096]
                            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        self.wfile.write(b"0\r\n\r\n")
                    elif self.command != "HEAD":
                        self.wfile.write(reply.body)
                except OSError:  # the client stopped reading (size cap): expected
                    pass

            do_GET = do_POST = do_PUT = do_HEAD = _any  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def http_stub(tls: ssl.SSLContext | None = None) -> Iterator[HTTPStub]:
    stub = HTTPStub(tls)
    try:
        yield stub
    finally:
        stub.close()


@contextmanager
def listener() -> Iterator[Listener]:
    lst = Listener()
    try:
        yield lst
    finally:
        lst.close()
