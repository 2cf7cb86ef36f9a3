"""The audit trail streamed to a syslog collector: RFC 5424 messages over real UDP and TCP sockets
opened by the test, every event once and in order; a collector that is down holds the position
back, and the events follow once it is up."""

from __future__ import annotations

import json
import re
import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import override_settings

from governance.models import AuditStreamPosition, User
from governance.observability import stream
from tests.mail_support import free_port
from tests.observability.conftest import line_hash, trail, write_events

pytestmark = pytest.mark.django_db

# RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD SP MSG
MESSAGE = re.compile(
    rb"<(?P<pri>\d{1,3})>1 (?P<time>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) (?P<sd>-) (?P<msg>.*)",
    re.DOTALL,
)


def parse_message(message: bytes) -> dict[str, Any]:
    match = MESSAGE.fullmatch(message)
    assert match is not None, message[:200]
    assert match["pri"] == b"85"  # authpriv.notice
    assert match["host"].decode() == urlsplit(settings.SITE_URL).hostname
    assert (match["app"], match["procid"], match["msgid"]) == (b"governance-audit", b"-", b"audit")
    fields: dict[str, Any] = json.loads(match["msg"])
    assert match["time"].decode() == fields["created_at"]
    return fields


class UdpCollector:
    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        # Waiting for a datagram that never comes fails the test instead of hanging it.
        self.socket.settimeout(10)
        self.address = f"udp://127.0.0.1:{self.socket.getsockname()[1]}"

    def receive(self, count: int) -> list[dict[str, Any]]:
        return [parse_message(self.socket.recv(70_000)) for _ in range(count)]

    def nothing_more(self) -> bool:
        """No other datagram waits: one the test sends now arrives next (on the loopback, what was
        sent before it is in the socket's buffer already)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"end of test", self.socket.getsockname())
        return self.socket.recv(70_000) == b"end of test"


class TcpCollector(socketserver.ThreadingTCPServer):
    """Reads each connection to its end and splits it into octet-counted frames (RFC 6587)."""

    daemon_threads = True
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, port: int = 0) -> None:
        # The frames of each connection, by the order the connections were accepted in.
        self.received: dict[int, list[bytes]] = {}
        self.accepted: dict[Any, int] = {}
        self.connections = 0
        self.lock = threading.Condition()
        super().__init__(("127.0.0.1", port), _FrameReader)
        self.address = f"tcp://127.0.0.1:{self.server_address[1]}"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self, *, after_connections: int = 0) -> None:
        """Stop once ``after_connections`` connections were read to their end (a connection still
        in the listen queue would otherwise never be accepted)."""
        with self.lock:
            assert self.lock.wait_for(lambda: self.connections >= after_connections, timeout=30)
        self.shutdown()
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        # In the accepting thread, before the connection's reader starts: the true order.
        self.accepted[request] = len(self.accepted)
        super().process_request(request, client_address)

    def messages(self) -> list[dict[str, Any]]:
        with self.lock:
            return [parse_message(frame) for order in sorted(self.received) for frame in self.received[order]]


class _FrameReader(socketserver.StreamRequestHandler):
    server: TcpCollector

    def handle(self) -> None:
        frames = []
        while True:
            length = b""
            while (char := self.rfile.read(1)) not in (b" ", b""):
                length += char
            if not length:
                break
            frames.append(self.rfile.read(int(length)))
        with self.server.lock:
            self.server.received[self.server.accepted[self.request]] = frames
            self.server.connections += 1
            self.server.lock.notify_all()


@pytest.fixture
def udp() -> Iterator[UdpCollector]:
    collector = UdpCollector()
    with override_settings(AUDIT_STREAM_FILE="", AUDIT_STREAM_SYSLOG=collector.address):
        yield collector
    collector.socket.close()


@pytest.fixture
def tcp() -> Iterator[TcpCollector]:
    collector = TcpCollector()
    with override_settings(AUDIT_STREAM_FILE="", AUDIT_STREAM_SYSLOG=collector.address):
        yield collector
    collector.stop()


def test_udp_one_datagram_per_event_in_order(udp: UdpCollector, owner: User) -> None:
    write_events(owner, 12)
    results = stream.stream_configured()
    assert [(result.sink, result.written) for result in results] == [("syslog", len(trail()))]
    messages = udp.receive(len(trail()))
    assert [(fields["id"], fields["hash"]) for fields in messages] == trail()
    assert all(line_hash(fields) == fields["hash"] for fields in messages)
    assert udp.nothing_more()
    assert AuditStreamPosition.objects.get(sink="syslog").last_event_id == trail()[-1][0]


def test_udp_sends_only_new_events_at_the_next_run(udp: UdpCollector, owner: User) -> None:
    write_events(owner, 3)
    stream.stream_configured()
    udp.receive(len(trail()))
    write_events(owner, 2)
    stream.stream_configured()
    assert [fields["id"] for fields in udp.receive(2)] == [event_id for event_id, _hash in trail()[-2:]]
    assert udp.nothing_more()


def test_udp_sends_a_huge_event_without_its_before_and_after(udp: UdpCollector, owner: User) -> None:
    event = write_events(owner, 1, after={"blob": "x" * 70_000})[0]
    stream.stream_configured()
    received = [fields for fields in udp.receive(len(trail())) if fields["id"] == event.pk]
    assert received[0]["truncated"] is True and received[0]["after"] is None
    # Its hash still links the chain; the whole event is in the trail (and on a TCP or file sink).
    assert received[0]["hash"] == event.hash


def test_tcp_octet_counted_frames_every_event_once_in_order(tcp: TcpCollector, owner: User) -> None:
    write_events(owner, 30, after={"blob": "y" * 3000})
    stream.stream_sink(stream.configured_sinks()[0], limit=None, chunk_size=7)
    write_events(owner, 4)
    stream.stream_configured()
    tcp.stop(after_connections=2)
    messages = tcp.messages()
    assert [(fields["id"], fields["hash"]) for fields in messages] == trail()
    assert all(line_hash(fields) == fields["hash"] for fields in messages)
    # One connection per run, not per event.
    assert tcp.connections == 2


def test_a_collector_that_is_down_holds_the_position_and_gets_everything_once_up(owner: User) -> None:
    write_events(owner, 5)
    port = free_port()
    with override_settings(AUDIT_STREAM_FILE="", AUDIT_STREAM_SYSLOG=f"tcp://127.0.0.1:{port}"):
        with pytest.raises(stream.StreamFailed, match="syslog"):
            stream.stream_configured()
        assert not AuditStreamPosition.objects.filter(sink="syslog", last_event_id__gt=0).exists()
        collector = TcpCollector(port)
        try:
            stream.stream_configured()
        finally:
            collector.stop(after_connections=1)
    assert [(fields["id"], fields["hash"]) for fields in collector.messages()] == trail()


def test_one_sink_failing_does_not_hold_back_the_other(owner: User, tmp_path: Any) -> None:
    write_events(owner, 3)
    path = tmp_path / "audit.jsonl"
    with override_settings(AUDIT_STREAM_FILE=str(path), AUDIT_STREAM_SYSLOG=f"tcp://127.0.0.1:{free_port()}"):
        with pytest.raises(stream.StreamFailed, match="syslog"):
            stream.stream_configured()
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == [event_id for event_id, _ in trail()]
