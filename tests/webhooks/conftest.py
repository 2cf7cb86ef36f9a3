"""The webhooks cast: a real HTTP receiver on 127.0.0.1 (a free port, in a thread) that records
what it gets and can be taken down (connections refused) and brought back on the same port —
reached through the outbound policy's allow-list (``OUTBOUND_ALLOWED_HOSTS``), which names its
host:port, as an operator would for a local receiver; hermetic DNS (names resolve only as a test
says); token-authenticated API clients (so the idempotency middleware sees a real caller)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from governance import outbound
from tests.outbound_support import FakeDNS


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # the receiver's clock when it arrived (signatures are checked against it)

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    port: int = 0
    received: list[Received] = field(default_factory=list)
    status: int = 204
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(Received(headers=dict(self.headers.items()), body=body, at=time.time()))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Down: the port refuses connections until ``start`` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    """No real DNS in webhook tests: the outbound client resolves through this stub."""
    stub = FakeDNS()
    monkeypatch.setattr(outbound, "resolve", stub)
    return stub


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    # The operator's allow-list entry for a local receiver: this host and port only.
    settings.OUTBOUND_ALLOWED_HOSTS = [*settings.OUTBOUND_ALLOWED_HOSTS, f"127.0.0.1:{r.port}"]
    yield r
    r.stop()
