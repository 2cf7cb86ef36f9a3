"""The audit trail streamed to a SIEM: every event once, in the chain's order, as one JSON object
per event with its ``hash`` and ``prev_hash``.

Each line holds exactly the fields the event's hash covers plus ``id`` and ``hash``: the SIEM can
check every line (SHA-256 of the line without ``id`` and ``hash``, as canonical JSON: sorted keys,
no spaces, UTF-8) and the chain (each ``prev_hash`` is the ``hash`` of the line before; the first
event's is 64 zeros).

Order: audit writers extend the chain one at a time and each commits before the next takes the
chain's lock, so ids grow in chain order and no event can commit below an id already read.

Each sink has a position (``AuditStreamPosition``): the last event it took. A run reads the events
after it in chunks; for each chunk it locks the position row, writes the chunk, and moves the
position in the same transaction, so two runs at once take turns and never write an event twice,
and a failed write leaves the position where it was. A crash after a write and before the position
was saved is recovered from the sink when it can tell (the file's last line); the syslog sink
cannot, and may repeat that one chunk (see ``SyslogSink``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance.audit import HASHED_FIELDS, hash_payload
from governance.models import AuditEvent, AuditStreamPosition
from governance.observability import config
from governance.observability.sinks import FileSink, Sink, StreamLine, SyslogSink

log = logging.getLogger(__name__)

CHUNK_SIZE = 500
# Events one periodic run streams to a sink at most, so a first run over a long trail stays well
# inside the worker's timeout; the next minute's run continues.
RUN_LIMIT = 100_000

# The fields of a line: those the event's hash covers, its id and its hash.
LINE_FIELDS = ("id", *HASHED_FIELDS, "hash")


class StreamFailed(Exception):
    """A sink could not take the events (unreachable, unwritable, or not holding what the trail
    says): its position did not move. Names every sink that failed."""


@dataclass
class StreamResult:
    sink: str
    target: str
    written: int = 0
    last_event_id: int = 0
    # The last event an interrupted run had already written to the sink, found there (file sink).
    recovered_through: int | None = None


def configured_sinks() -> list[Sink]:
    sinks: list[Sink] = []
    file_config = config.file_sink_config()
    if file_config is not None:
        sinks.append(FileSink(file_config))
    address = config.syslog_address()
    if address is not None:
        sinks.append(SyslogSink(address))
    return sinks


def stream_configured(*, limit: int | None = RUN_LIMIT, only: str | None = None) -> list[StreamResult]:
    """Stream to every configured sink (or the one named ``only``), each up to ``limit`` events
    (None: until it has caught up). A sink that fails does not hold back the others; the failures
    are raised together at the end."""
    results: list[StreamResult] = []
    failures: list[str] = []
    for sink in configured_sinks():
        if only is not None and sink.name != only:
            continue
        try:
            results.append(stream_sink(sink, limit=limit))
        except (OSError, StreamFailed) as exc:
            log.error("Audit stream to %s %s failed: %s", sink.name, sink.target, exc)
            failures.append(f"{sink.name} ({sink.target}): {exc}")
    if failures:
        raise StreamFailed("; ".join(failures))
    return results


def stream_sink(sink: Sink, *, limit: int | None = RUN_LIMIT, chunk_size: int = CHUNK_SIZE) -> StreamResult:
    """Write the events after the sink's position, chunk by chunk, until it has caught up or
    ``limit`` events were written."""
    AuditStreamPosition.objects.get_or_create(sink=sink.name)
    result = StreamResult(sink=sink.name, target=sink.target)
    sink.open()
    try:
        while limit is None or result.written < limit:
            size = chunk_size if limit is None else min(chunk_size, limit - result.written)
            written, last_event_id, recovered = _stream_chunk(sink, size)
            result.written += written
            result.last_event_id = last_event_id
            if recovered is not None:
                result.recovered_through = recovered
            if written < size and recovered is None:
                break
    finally:
        sink.close()
    if result.written:
        log.info(
            "Audit stream to %s %s: %d events, through #%d.",
            sink.name,
            sink.target,
            result.written,
            result.last_event_id,
        )
    return result


def _stream_chunk(sink: Sink, size: int) -> tuple[int, int, int | None]:
    """One chunk under the position's lock: (events written, last event id, the id recovered
    from the sink or None)."""
    with transaction.atomic():
        # Held until the position is saved: a second run waits here, then reads the new position
        # (on SQLite the IMMEDIATE transaction serialises the runs the same way).
        position = AuditStreamPosition.objects.select_for_update().get(sink=sink.name)
        recovered = _recover(sink, position)
        rows = list(AuditEvent.objects.filter(id__gt=position.last_event_id).order_by("id").values(*LINE_FIELDS)[:size])
        if rows:
            _check_continuity(sink, position.last_hash, rows)
            sink.write([stream_line(row) for row in rows])
        if rows or recovered is not None:
            _save_position(position, sink, rows)
        return len(rows), position.last_event_id, recovered


def _recover(sink: Sink, position: AuditStreamPosition) -> int | None:
    """Move the position (in memory) past what the sink already holds beyond it: the chunk of a
    run that wrote and then could not save its position. The sink must hold the trail's own
    event there, or streaming stops: it would be another trail's file, or this trail rewritten."""
    written = sink.last_written()
    if written is None or written.event_id < position.last_event_id:
        # Nothing there, or the file was moved away after rotation: the position is the truth.
        return None
    expected = _hash_of(written.event_id, position)
    if expected != written.event_hash:
        raise StreamFailed(
            f"the sink's last line is audit event #{written.event_id} with a hash this trail does not have "
            f"there: it is not this trail's stream (or the trail was rewritten); move it away and run again"
        )
    if written.event_id == position.last_event_id:
        return None
    # The interrupted run's events are in the sink: count them as written (one query, only here).
    position.events_written += AuditEvent.objects.filter(
        id__gt=position.last_event_id, id__lte=written.event_id
    ).count()
    position.last_event_id, position.last_hash = written.event_id, written.event_hash
    return written.event_id


def _hash_of(event_id: int, position: AuditStreamPosition) -> str | None:
    if event_id == position.last_event_id:
        return position.last_hash
    return AuditEvent.objects.filter(id=event_id).values_list("hash", flat=True).first()


def _check_continuity(sink: Sink, last_hash: str, rows: list[dict[str, Any]]) -> None:
    """A break in the chain is streamed as it is (the SIEM's own check shows it) and logged."""
    for row in rows:
        if row["prev_hash"] != last_hash:
            log.error(
                "Audit stream to %s: event #%d does not follow the event streamed before it (its prev_hash "
                "differs): the trail was altered there; `manage.py verify_audit` names the break.",
                sink.name,
                row["id"],
            )
        last_hash = row["hash"]


def _save_position(position: AuditStreamPosition, sink: Sink, rows: list[dict[str, Any]]) -> None:
    if rows:
        position.last_event_id, position.last_hash = rows[-1]["id"], rows[-1]["hash"]
        position.events_written += len(rows)
    position.target = sink.target
    position.updated_at = timezone.now()
    position.save(update_fields=["last_event_id", "last_hash", "events_written", "target", "updated_at"])


def stream_line(row: dict[str, Any]) -> StreamLine:
    """The line of one event (``row``: its ``LINE_FIELDS``); the time written as the hash reads it."""
    fields = {"id": row["id"], **hash_payload(row), "hash": row["hash"]}
    return StreamLine(event_id=row["id"], event_hash=row["hash"], created_at=fields["created_at"], fields=fields)
