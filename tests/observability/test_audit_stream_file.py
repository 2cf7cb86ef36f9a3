"""The audit trail streamed to a JSON-lines file: every event once, in the chain's order, across
rotations and interrupted runs; each line checkable by itself and against the line before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from governance import scheduling
from governance.audit import GENESIS_HASH
from governance.management.commands import audit_stream as audit_stream_command
from governance.models import AuditEvent, AuditStreamPosition, User
from governance.observability import config, stream, tasks
from governance.observability.sinks import FileSink
from tests.observability.conftest import line_hash, trail, write_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def stream_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "siem" / "audit.jsonl"
    with override_settings(
        AUDIT_STREAM_FILE=str(path), AUDIT_STREAM_FILE_MAX_BYTES=0, AUDIT_STREAM_FILE_BACKUPS=1, AUDIT_STREAM_SYSLOG=""
    ):
        yield path


def file_sink() -> FileSink:
    file_config = config.file_sink_config()
    assert file_config is not None
    return FileSink(file_config)


def files_in_order(path: Path) -> list[Path]:
    """The rotated files oldest first (FILE.N ... FILE.1), then the current one."""
    backups = sorted(path.parent.glob(f"{path.name}.*"), key=lambda backup: int(backup.suffix[1:]), reverse=True)
    return [*backups, path] if path.exists() else backups


def read_lines(path: Path) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for part in files_in_order(path):
        data = part.read_bytes()
        assert not data or data.endswith(b"\n"), f"{part} ends in the middle of a line"
        lines.extend(json.loads(line) for line in data.splitlines())
    return lines


def streamed(path: Path) -> list[tuple[int, str]]:
    return [(line["id"], line["hash"]) for line in read_lines(path)]


def test_every_event_once_in_order_with_its_hash_and_the_previous_one(stream_file: Path, owner: User) -> None:
    write_events(owner, 30)
    results = stream.stream_configured()
    assert [(result.sink, result.written) for result in results] == [("file", len(trail()))]
    lines = read_lines(stream_file)
    assert [(line["id"], line["hash"]) for line in lines] == trail()
    previous = GENESIS_HASH
    for line in lines:
        # What a SIEM checks: each line's own hash, and the chain from one line to the next.
        assert line_hash(line) == line["hash"]
        assert line["prev_hash"] == previous
        previous = line["hash"]
    last = AuditEvent.objects.order_by("-id").first()
    assert last is not None
    position = AuditStreamPosition.objects.get(sink="file")
    assert (position.last_event_id, position.last_hash, position.target) == (last.pk, last.hash, str(stream_file))


def test_a_line_holds_the_event_as_the_trail_does(stream_file: Path, owner: User) -> None:
    event = write_events(owner, 1, reason="Line one\nline two — ünïcode")[0]
    stream.stream_configured()
    raw = stream_file.read_bytes().splitlines()[-1]
    assert raw.isascii()  # anything else is escaped: one line whatever the event holds
    line = json.loads(raw)
    assert line == {
        "id": event.pk,
        "created_at": event.created_at.isoformat(timespec="microseconds"),
        "actor_username": "owner",
        "actor_kind": "human",
        "owner_username": "owner",
        "action": "test.streamed",
        "target_type": "test.thing",
        "target_id": "0",
        "target_repr": "Thing 0 — «quoted»\nsecond line",
        "before": None,
        "after": {"number": 0, "note": "naïve café"},
        "reason": "Line one\nline two — ünïcode",
        "request_id": "",
        "client_ip": None,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def test_a_second_run_writes_only_the_new_events(stream_file: Path, owner: User) -> None:
    write_events(owner, 5)
    stream.stream_configured()
    assert stream.stream_configured()[0].written == 0
    write_events(owner, 7)
    assert stream.stream_configured()[0].written == 7
    assert streamed(stream_file) == trail()


def test_a_run_streams_in_chunks_up_to_its_limit_and_the_next_one_continues(stream_file: Path, owner: User) -> None:
    write_events(owner, 25)
    total = len(trail())
    first = stream.stream_sink(file_sink(), limit=10, chunk_size=4)
    assert first.written == 10
    assert streamed(stream_file) == trail()[:10]
    rest = stream.stream_sink(file_sink(), limit=None, chunk_size=4)
    assert rest.written == total - 10
    assert streamed(stream_file) == trail()


@pytest.mark.parametrize("backups", [50, 2])
def test_rotation_keeps_every_line_once_in_order_and_never_splits_one(
    stream_file: Path, owner: User, backups: int
) -> None:
    write_events(owner, 40)
    with override_settings(AUDIT_STREAM_FILE_MAX_BYTES=3000, AUDIT_STREAM_FILE_BACKUPS=backups):
        # Several runs, so rotation also happens between runs, not only within one.
        stream.stream_sink(file_sink(), limit=15, chunk_size=6)
        write_events(owner, 20)
        stream.stream_sink(file_sink(), limit=None, chunk_size=6)
    parts = files_in_order(stream_file)
    assert len(parts) == 3 if backups == 2 else len(parts) > 3
    for part in parts:
        assert part.stat().st_size <= 3000
    everything = trail()
    kept = streamed(stream_file)
    if backups == 50:
        assert kept == everything
    else:
        # The oldest rotated files are gone; what is kept is the newest events, whole and in order.
        assert kept and kept[-1] == everything[-1]
        assert kept == everything[-len(kept) :]
        assert not stream_file.with_name("audit.jsonl.3").exists()


def test_a_line_longer_than_the_limit_fills_a_file_of_its_own(stream_file: Path, owner: User) -> None:
    write_events(owner, 2)
    write_events(owner, 1, after={"blob": "x" * 5000})
    write_events(owner, 2)
    with override_settings(AUDIT_STREAM_FILE_MAX_BYTES=3000, AUDIT_STREAM_FILE_BACKUPS=50):
        stream.stream_configured()
    assert streamed(stream_file) == trail()
    big = [part for part in files_in_order(stream_file) if part.stat().st_size > 3000]
    assert len(big) == 1 and len(big[0].read_bytes().splitlines()) == 1


def test_a_crash_after_the_write_and_before_the_position_is_saved_repeats_nothing(
    stream_file: Path, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_events(owner, 25)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed between the write and the position")

    with monkeypatch.context() as patch:
        patch.setattr(stream, "_save_position", crash)
        with pytest.raises(RuntimeError):
            stream.stream_sink(file_sink(), chunk_size=10)
    assert AuditStreamPosition.objects.get(sink="file").last_event_id == 0
    on_file = streamed(stream_file)
    assert on_file == trail()[:10]

    result = stream.stream_sink(file_sink(), chunk_size=10)
    assert result.recovered_through == on_file[-1][0]
    assert result.written == len(trail()) - 10
    assert streamed(stream_file) == trail()
    position = AuditStreamPosition.objects.get(sink="file")
    # The recovered chunk counts as written: the sink holds every event once.
    assert (position.last_event_id, position.events_written) == (trail()[-1][0], len(trail()))


def test_a_crash_right_after_a_rotation_is_recovered_from_the_newest_backup(
    stream_file: Path, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_events(owner, 20)
    real_rotate = FileSink._rotate

    def rotate_then_crash(sink: FileSink) -> None:
        real_rotate(sink)
        raise OSError("killed after renaming the full file, before the next line")

    with override_settings(AUDIT_STREAM_FILE_MAX_BYTES=3000, AUDIT_STREAM_FILE_BACKUPS=50):
        with monkeypatch.context() as patch:
            patch.setattr(FileSink, "_rotate", rotate_then_crash)
            with pytest.raises(OSError, match="killed"):
                stream.stream_sink(file_sink(), limit=None, chunk_size=len(trail()))
        assert not stream_file.exists()
        assert AuditStreamPosition.objects.get(sink="file").last_event_id == 0
        written_before = streamed(stream_file)
        result = stream.stream_sink(file_sink(), limit=None, chunk_size=len(trail()))
    assert result.recovered_through == written_before[-1][0]
    assert streamed(stream_file) == trail()
    assert AuditStreamPosition.objects.get(sink="file").events_written == len(trail())


def test_a_line_cut_off_by_a_crash_is_written_again_whole(stream_file: Path, owner: User) -> None:
    write_events(owner, 3)
    stream.stream_configured()
    cut = stream_file.read_bytes().splitlines()[-1][:40]
    # A crash half-way through the last line of a chunk whose position was never saved.
    position = AuditStreamPosition.objects.get(sink="file")
    before_last = trail()[-2]
    AuditStreamPosition.objects.filter(pk=position.pk).update(last_event_id=before_last[0], last_hash=before_last[1])
    data = stream_file.read_bytes()
    stream_file.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 1] + cut)
    write_events(owner, 2)
    stream.stream_configured()
    assert streamed(stream_file) == trail()


def test_a_file_moved_away_starts_afresh_from_the_position(stream_file: Path, owner: User) -> None:
    write_events(owner, 4)
    stream.stream_configured()
    done = len(trail())
    stream_file.rename(stream_file.with_name("archived.jsonl"))
    write_events(owner, 3)
    stream.stream_configured()
    assert streamed(stream_file) == trail()[done:]


def test_a_file_of_another_trail_stops_the_stream(stream_file: Path, owner: User) -> None:
    write_events(owner, 2)
    stream_file.parent.mkdir(parents=True)
    stream_file.write_text(json.dumps({"id": 10**9, "hash": "f" * 64}) + "\n")
    with pytest.raises(stream.StreamFailed, match="not this trail's stream"):
        stream.stream_configured()
    assert AuditStreamPosition.objects.get(sink="file").last_event_id == 0
    stream_file.write_text("not json\n")
    with pytest.raises(stream.StreamFailed, match="not an audit stream line"):
        stream.stream_configured()


def test_no_sink_configured_streams_nothing_without_a_query(django_assert_num_queries: Any) -> None:
    with override_settings(AUDIT_STREAM_FILE="", AUDIT_STREAM_SYSLOG=""), django_assert_num_queries(0):
        assert tasks.audit_stream() == 0


@pytest.mark.parametrize("events", [12, 400])
def test_a_chunk_costs_three_queries_whatever_its_size(
    stream_file: Path, owner: User, django_assert_num_queries: Any, events: int
) -> None:
    write_events(owner, events)
    AuditStreamPosition.objects.create(sink="file")
    chunk_size = len(trail()) // 2 + 1
    # The position's get_or_create (1), then per chunk: lock, events, position (3) in their
    # transaction (a savepoint and its release inside the test's); the second chunk, shorter than
    # the first, ends the run.
    with django_assert_num_queries(1 + (3 + 2) * 2):
        stream.stream_sink(file_sink(), limit=None, chunk_size=chunk_size)
    assert streamed(stream_file) == trail()


def test_the_worker_streams_every_minute(stream_file: Path, owner: User) -> None:
    task = next(task for task in scheduling.registered() if task.name == "audit-stream")
    assert (task.func, task.cron) == ("governance.observability.tasks.audit_stream", "* * * * *")
    assert scheduling.is_allowed_task(task.func)
    write_events(owner, 3)
    assert tasks.audit_stream() == len(trail())
    assert streamed(stream_file) == trail()


def test_the_command_streams_and_reports(stream_file: Path, owner: User, capsys: pytest.CaptureFixture[str]) -> None:
    write_events(owner, 3)
    call_command("audit_stream")
    last = trail()[-1][0]
    assert f"file {stream_file}: {len(trail())} events written, through #{last}." in capsys.readouterr().out
    call_command("audit_stream", "--sink", "file")
    assert f"up to date, through #{last}" in capsys.readouterr().out
    assert streamed(stream_file) == trail()


def test_the_command_follows_new_events_until_interrupted(
    stream_file: Path, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_events(owner, 2)
    rounds: list[float] = []

    def between_rounds(interval: float) -> None:
        rounds.append(interval)
        if len(rounds) == 1:
            write_events(owner, 4)  # written while the command waits
            return
        raise KeyboardInterrupt

    monkeypatch.setattr(audit_stream_command, "between_rounds", between_rounds)
    call_command("audit_stream", "--follow", "--interval", "2")
    assert rounds == [2.0, 2.0]
    assert streamed(stream_file) == trail()


def test_the_command_says_what_is_missing(tmp_path: Path) -> None:
    with (
        override_settings(AUDIT_STREAM_FILE="", AUDIT_STREAM_SYSLOG=""),
        pytest.raises(CommandError, match="No audit stream sink"),
    ):
        call_command("audit_stream")
    with override_settings(AUDIT_STREAM_FILE=str(tmp_path / "audit.jsonl"), AUDIT_STREAM_SYSLOG=""):
        with pytest.raises(CommandError, match="syslog sink is not configured"):
            call_command("audit_stream", "--sink", "syslog")


def test_an_unwritable_file_fails_loudly_and_keeps_the_position(
    stream_file: Path, owner: User, caplog: pytest.LogCaptureFixture
) -> None:
    write_events(owner, 2)
    stream_file.parent.mkdir(parents=True)
    stream_file.mkdir()  # a directory where the file should be
    with pytest.raises(stream.StreamFailed, match="file"):
        stream.stream_configured()
    assert AuditStreamPosition.objects.get(sink="file").last_event_id == 0
    assert "Audit stream to file" in caplog.text


def test_streaming_writes_no_audit_event_of_its_own(stream_file: Path, owner: User) -> None:
    # Each run would otherwise leave one more event to stream: the position is bookkeeping.
    write_events(owner, 2)
    before = len(trail())
    stream.stream_configured()
    stream.stream_configured()
    assert len(trail()) == before
