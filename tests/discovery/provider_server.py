"""A provider's API as a real local HTTP server that answers from recorded exchanges.

Recordings live in ``tests/discovery/recorded/<name>.json``: ``{"exchanges": [{"request":
"GET /path?query", "status": 200, "headers": {...}, "body": <JSON>}, ...]}``. ``{base}`` in any
string of a recording (a next-page link, a ``Link`` header) becomes the server's own base URL.
Several exchanges for the same request answer in turn, the last one repeating. A request nobody
recorded answers 404 and is kept in ``unexpected``; every request is kept in ``seen``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).parent / "recorded"


@dataclass
class Exchange:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # sent as JSON
    raw: bytes | None = None  # sent as it is, instead of ``body``
    delay: float = 0.0  # seconds before answering


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


def _fill(value: Any, base: str) -> Any:
    """``value`` with ``{base}`` replaced by ``base`` in every string."""
    if isinstance(value, str):
        return value.replace("{base}", base)
    if isinstance(value, list):
        return [_fill(item, base) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, base) for key, item in value.items()}
    return value


class ProviderServer:
    def __init__(self) -> None:
        self.routes: dict[str, list[Exchange]] = {}
        self.seen: list[Seen] = []
        self.unexpected: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                exchange = server._answer(self.command, self.path, dict(self.headers.items()), body)
                if exchange.delay:
                    time.sleep(exchange.delay)
                payload = exchange.raw if exchange.raw is not None else b""
                if exchange.raw is None and exchange.body is not None:
                    payload = json.dumps(exchange.body).encode()
                try:
                    self.send_response(exchange.status)
                    for name, value in exchange.headers.items():
                        self.send_header(name, value)
                    if payload:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up waiting (a timeout under test): expected
                    pass

            do_GET = do_POST = do_DELETE = do_PUT = _any  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.base = f"http://{self.host}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def add(
        self,
        request: str,
        status: int = 200,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        raw: bytes | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer ``request`` ("GET /path?query") with this exchange (after those added before)."""
        exchange = Exchange(
            status=status, headers=_fill(headers or {}, self.base), body=_fill(body, self.base), raw=raw, delay=delay
        )
        self.routes.setdefault(request, []).append(exchange)

    def load(self, name: str) -> None:
        """Add every exchange of ``recorded/<name>.json``."""
        recording = json.loads((RECORDED / f"{name}.json").read_text())
        for item in recording["exchanges"]:
            self.add(item["request"], item.get("status", 200), item.get("body"), item.get("headers"))

    def _answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Exchange:
        with self._lock:
            self.seen.append(Seen(method, target, headers, body))
            queue = self.routes.get(f"{method} {target}")
            if not queue:
                self.unexpected.append(f"{method} {target}")
                return Exchange(status=404, body={"error": "not recorded"})
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def requests(self, method: str = "", prefix: str = "") -> list[Seen]:
        return [seen for seen in self.seen if (not method or seen.method == method) and seen.target.startswith(prefix)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def provider_server() -> Iterator[ProviderServer]:
    server = ProviderServer()
    try:
        yield server
    finally:
        server.close()
