"""Where the audit stream goes: a JSON-lines file with size-based rotation, and a syslog collector
(RFC 5424, over UDP or TCP).

Each sink takes a chunk of lines, one per audit event, and either takes all of them or raises
``OSError``. The file sink also says which event it holds last (``last_written``), so that a
crash between its write and the saving of the stream position loses nothing and repeats nothing.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlsplit

from django.conf import settings

from governance.observability.config import FileSinkConfig, SyslogAddress

# How far back from the end of the file a last line is looked for, in steps of this size.
_TAIL_BLOCK = 64 * 1024


@dataclass(frozen=True)
class StreamLine:
    """One audit event as the SIEM receives it: ``fields`` (a JSON object) and its encoding."""

    event_id: int
    event_hash: str
    created_at: str
    fields: dict[str, object]

    def encoded(self) -> bytes:
        """The JSON object in ASCII (anything else escaped): one line, whatever the event holds."""
        return json.dumps(self.fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


@dataclass(frozen=True)
class Written:
    """The last event a sink holds, as the sink itself records it."""

    event_id: int
    event_hash: str


class Sink(Protocol):
    name: str

    @property
    def target(self) -> str: ...

    def open(self) -> None: ...

    def last_written(self) -> Written | None: ...

    def write(self, lines: list[StreamLine]) -> None: ...

    def close(self) -> None: ...


class FileSink:
    """Appends one line per event to ``path`` and rotates it, the way ``RotatingFileHandler`` does,
    when the next line would take it past ``max_bytes``: ``path`` becomes ``path.1``, ``path.1``
    becomes ``path.2``, ..., and ``path.<backups>`` is dropped. A line is never split: a line longer
    than ``max_bytes`` fills a file of its own. Every chunk is flushed to disk (fsync) before the
    stream position moves past it.

    Only one run writes at a time (the stream position's row lock), so the file's own last line
    is the truth about what it holds: a chunk written before a crash that kept the position from
    being saved is found there and not written again, and a line cut off by a crash half-way is
    removed and written whole."""

    name = "file"

    def __init__(self, config: FileSinkConfig) -> None:
        self.path = config.path
        self.max_bytes = config.max_bytes
        self.backups = config.backups

    @property
    def target(self) -> str:
        return str(self.path)

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        """Nothing stays open between chunks."""

    def backup(self, index: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{index}")

    def last_written(self) -> Written | None:
        """The event on the file's last complete line (or, right after a rotation, on its newest
        backup's), after cutting off an incomplete last line."""
        _drop_incomplete_line(self.path)
        for candidate in (self.path, self.backup(1)):
            line = _last_line(candidate)
            if line is not None:
                return _parse_written(candidate, line)
        return None

    def write(self, lines: list[StreamLine]) -> None:
        fd = _open_append(self.path)
        try:
            size = os.fstat(fd).st_size
            pending = bytearray()
            for line in lines:
                data = line.encoded() + b"\n"
                filled = size + len(pending)
                if self.max_bytes and filled and filled + len(data) > self.max_bytes:
                    _write_all(fd, bytes(pending))
                    os.fsync(fd)
                    os.close(fd)
                    fd = -1
                    self._rotate()
                    fd = _open_append(self.path)
                    size, pending = 0, bytearray()
                pending += data
            _write_all(fd, bytes(pending))
            os.fsync(fd)
        finally:
            if fd >= 0:
                os.close(fd)

    def _rotate(self) -> None:
        for index in range(self.backups - 1, 0, -1):
            if self.backup(index).exists():
                os.replace(self.backup(index), self.backup(index + 1))
        os.replace(self.path, self.backup(1))


def _open_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _drop_incomplete_line(path: Path) -> None:
    """Cut the file back to its last newline: what follows it is a line a crash interrupted."""
    try:
        handle = path.open("r+b")
    except FileNotFoundError:
        return
    with handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        end = _last_newline_before(handle, size)
        handle.truncate(end + 1 if end >= 0 else 0)
        handle.flush()
        os.fsync(handle.fileno())


def _last_newline_before(handle: IO[bytes], end: int) -> int:
    """Offset of the last newline before ``end`` in the open binary file, -1 when none."""
    position = end
    while position > 0:
        start = max(0, position - _TAIL_BLOCK)
        handle.seek(start)
        block = handle.read(position - start)
        found = block.rfind(b"\n")
        if found >= 0:
            return start + found
        position = start
    return -1


def _last_line(path: Path) -> bytes | None:
    """The last complete line of the file (without its newline), None if it has none."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    with handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return None
        start = _last_newline_before(handle, size - 1) + 1
        handle.seek(start)
        return handle.read(size - 1 - start)


def _parse_written(path: Path, line: bytes) -> Written:
    try:
        fields = json.loads(line)
        return Written(event_id=int(fields["id"]), event_hash=str(fields["hash"]))
    except (ValueError, KeyError, TypeError) as exc:
        # Not a line this stream wrote: streaming on could repeat or skip events, so stop here.
        raise OSError(f"the last line of {path} is not an audit stream line ({exc}); move the file away") from exc


# Facility authpriv (10), severity notice (5): security messages, kept apart by collectors (the
# audit checkpoints' syslog witness uses the same).
SYSLOG_PRIORITY = 10 * 8 + 5
SYSLOG_APP_NAME = "governance-audit"
SYSLOG_MSGID = "audit"
SYSLOG_TIMEOUT_SECONDS = 10.0
# The largest datagram sent: a bigger event travels without its before/after (marked truncated;
# its hash still links the chain). Over TCP every event travels whole.
UDP_MAX_BYTES = 60_000


class SyslogSink:
    """One RFC 5424 message per event: ``<85>1 TIMESTAMP HOSTNAME governance-audit - audit - {json}``
    with the event's time and the portal's host name (from SITE_URL); the JSON is ASCII, so the
    message needs no byte-order mark. UDP: one datagram per message. TCP: octet-counted frames
    (RFC 6587: ``LENGTH SP MESSAGE``), the framing RFC 5425 collectors expect.

    What "each event once" means here: the position moves only after the whole chunk was handed to
    the socket, so a failure repeats at most that chunk (at least once: the SIEM deduplicates on
    the event's ``id``). Over TCP a chunk the collector's socket accepted is delivered; over UDP
    nothing tells whether a datagram arrived."""

    name = "syslog"

    def __init__(self, address: SyslogAddress) -> None:
        self.address = address
        self.hostname = _portal_hostname()
        self._socket: socket.socket | None = None
        self._sockaddr: tuple[object, ...] = ()

    @property
    def target(self) -> str:
        return str(self.address)

    def open(self) -> None:
        kind = socket.SOCK_STREAM if self.address.transport == "tcp" else socket.SOCK_DGRAM
        family, kind, proto, _name, sockaddr = socket.getaddrinfo(self.address.host, self.address.port, type=kind)[0]
        sock = socket.socket(family, kind, proto)
        sock.settimeout(SYSLOG_TIMEOUT_SECONDS)
        try:
            if kind == socket.SOCK_STREAM:
                sock.connect(sockaddr)
        except OSError:
            sock.close()
            raise
        self._socket, self._sockaddr = sock, sockaddr

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def last_written(self) -> Written | None:
        """A collector says nothing back: the position alone tells what was sent."""
        return None

    def write(self, lines: list[StreamLine]) -> None:
        if self._socket is None:
            raise OSError("the syslog sink is not open")
        if self.address.transport == "tcp":
            frames = []
            for line in lines:
                message = self.message(line)
                frames.append(b"%d %s" % (len(message), message))
            self._socket.sendall(b"".join(frames))
            return
        for line in lines:
            self._socket.sendto(self.message(line, limit=UDP_MAX_BYTES), self._sockaddr)

    def message(self, line: StreamLine, *, limit: int | None = None) -> bytes:
        header = f"<{SYSLOG_PRIORITY}>1 {line.created_at} {self.hostname} {SYSLOG_APP_NAME} - {SYSLOG_MSGID} - "
        message = header.encode("ascii") + line.encoded()
        if limit is not None and len(message) > limit:
            smaller = StreamLine(
                line.event_id,
                line.event_hash,
                line.created_at,
                {**line.fields, "before": None, "after": None, "truncated": True},
            )
            message = header.encode("ascii") + smaller.encoded()
        return message


def _portal_hostname() -> str:
    """The portal's name in SITE_URL (the same from every machine and container), else the
    machine's; "-" (RFC 5424's nil value) when neither is printable ASCII."""
    name = urlsplit(settings.SITE_URL).hostname or socket.gethostname()
    printable = name.isascii() and all(33 <= ord(char) <= 126 for char in name)
    return name[:255] if name and printable else "-"
