"""Two runs of the audit stream at once (the worker's and an operator's --follow, or two worker
runs overlapping) take turns on the position: every event is written once, in order. On
PostgreSQL with two threads and two connections at a barrier; on SQLite with two processes on one
database file, as two machines' commands would be."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections
from django.test import override_settings

from governance.models import AuditStreamPosition, User
from governance.observability import config, stream
from governance.observability.sinks import FileSink
from tests.observability.conftest import trail, write_events

ROOT = Path(settings.BASE_DIR)


def read_ids(path: Path) -> list[int]:
    """The event ids of the stream file and its rotated files, oldest first."""
    parts = sorted(path.parent.glob(f"{path.name}.*"), key=lambda part: int(part.suffix[1:]), reverse=True)
    ids: list[int] = []
    for part in [*parts, path]:
        data = part.read_bytes()
        assert data.endswith(b"\n")
        ids.extend(json.loads(line)["id"] for line in data.splitlines())
    return ids


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs row locks between concurrent connections in one process; SQLite is covered by the "
    "two-process test below",
)
def test_two_runs_at_once_on_postgresql_write_every_event_once_in_order(owner: User, tmp_path: Path) -> None:
    write_events(owner, 400)
    path = tmp_path / "audit.jsonl"
    outcomes: list[Any] = []
    lock = threading.Lock()
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            file_config = config.file_sink_config()
            assert file_config is not None
            barrier.wait()
            outcome: Any = stream.stream_sink(FileSink(file_config), limit=None, chunk_size=9)
        except Exception as exc:  # any failure must show in the assertion, not vanish with the thread
            outcome = exc
        finally:
            connections.close_all()
        with lock:
            outcomes.append(outcome)

    with override_settings(
        AUDIT_STREAM_FILE=str(path), AUDIT_STREAM_FILE_MAX_BYTES=40_000, AUDIT_STREAM_FILE_BACKUPS=100
    ):
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert all(isinstance(outcome, stream.StreamResult) for outcome in outcomes), outcomes
    everything = [event_id for event_id, _hash in trail()]
    assert read_ids(path) == everything
    assert sum(outcome.written for outcome in outcomes) == len(everything)
    position = AuditStreamPosition.objects.get(sink="file")
    assert (position.last_event_id, position.events_written) == (everything[-1], len(everything))


_WRITE_EVENTS = """
import django
django.setup()
from django.db import transaction
from governance.audit import EventSpec, audit_record_many
from governance.models import User
user = User.objects.create_user(username="writer", password="unused")
with transaction.atomic():
    audit_record_many(actor=user, events=[EventSpec(action="test.streamed", target_type="test", target_id=str(n), after={"n": n}) for n in range(3000)])
"""


@pytest.mark.db_agnostic
def test_two_processes_at_once_on_sqlite_write_every_event_once_in_order(tmp_path: Path) -> None:
    database = tmp_path / "portal.sqlite3"
    path = tmp_path / "siem" / "audit.jsonl"
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_ENV")}
    env.update(
        DATABASE_URL=f"sqlite:///{database}",
        DJANGO_SETTINGS_MODULE="governance.settings",
        AUDIT_STREAM_FILE=str(path),
        AUDIT_STREAM_FILE_MAX_BYTES="200000",
        AUDIT_STREAM_FILE_BACKUPS="100",
        AUDIT_STREAM_SYSLOG="",
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return done

    run("manage.py", "migrate", "--noinput")
    run("-c", _WRITE_EVENTS)
    commands = [
        subprocess.Popen(
            [sys.executable, "manage.py", "audit_stream"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for command in commands:
        _out, errors = command.communicate(timeout=600)
        assert command.returncode == 0, errors
    with sqlite3.connect(database) as db:
        everything = [row[0] for row in db.execute("SELECT id FROM governance_auditevent ORDER BY id")]
        written = db.execute("SELECT last_event_id, events_written FROM governance_auditstreamposition").fetchall()
    assert len(everything) >= 3000
    assert read_ids(path) == everything
    assert written == [(everything[-1], len(everything))]
