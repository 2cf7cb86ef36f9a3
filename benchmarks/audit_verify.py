"""Verifying the audit trail at 1,000,000 events: the full walk (``manage.py verify_audit``) and
the incremental one (``verify_audit --since-checkpoint``), with peak memory.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> python -m benchmarks audit_verify
    DATABASE_URL=sqlite:////tmp/bench_audit.sqlite3 BENCH_EVENTS=100000 python -m benchmarks audit_verify

It migrates the database of ``DATABASE_URL`` and tops its trail up to ``BENCH_EVENTS`` events
once, written directly (COPY on PostgreSQL) with a correct chain computed here; run it on a
database of its own. Each run then signs a checkpoint (development key), appends ``BENCH_NEW``
events through ``audit_record_many``, times the incremental verification, then the full one
(medians of ``BENCH_RUNS``; wall time and the CPU time of this process with its worker processes
and of the database's server processes) and reports the peak resident memory.
Environment: BENCH_EVENTS (1000000), BENCH_RUNS (3), BENCH_NEW (1000), BENCH_WORKERS (1: the full
walk in one process; N: ``verify_audit --workers N``).
"""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

SEED_BATCH = 50_000
ACTIONS = ("grant.revoked", "grant.created", "integration.updated", "campaign.item.decided", "owner.changed")


def _uptime() -> str:
    with open("/proc/loadavg") as handle:
        return "load " + " ".join(handle.read().split()[:3])


def _seed_rows(user: Any, count: int, prev_hash: str, start: datetime) -> Iterator[tuple[Any, ...]]:
    """``count`` realistic events after ``prev_hash``, as rows of ``SEED_COLUMNS``."""
    from governance.audit import _CanonicalParts, _fmt_time, to_json

    for index in range(count):
        created = start + timedelta(milliseconds=index)
        values = {
            "actor_username": user.username,
            "actor_kind": "human",
            "owner_username": f"owner-{index % 500}",
            "action": ACTIONS[index % len(ACTIONS)],
            "target_type": "inventory.grant",
            "target_id": str(index),
            "target_repr": f"Grant {index} — scope read:reports on Système {index % 37}",
            "before": to_json({"status": "active", "ended_at": None}),
            "after": to_json({"status": "revoked", "ended_at": _fmt_time(created), "reason": "campaign default"}),
            "reason": "Not reviewed before the deadline" if index % 3 else "",
            "request_id": f"{index:032x}",
            "client_ip": "10.0.0.7" if index % 2 else None,
        }
        event_hash = _CanonicalParts.of(values).hash(_fmt_time(created), prev_hash)
        yield (created, user.pk, user.pk, *(values[name] for name in SEED_VALUE_NAMES), prev_hash, event_hash)
        prev_hash = event_hash


SEED_VALUE_NAMES = (
    "actor_username",
    "actor_kind",
    "owner_username",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "before",
    "after",
    "reason",
    "request_id",
    "client_ip",
)
SEED_COLUMNS = ("created_at", "actor_id", "owner_id", *SEED_VALUE_NAMES, "prev_hash", "hash")


def seed(target: int) -> Any:
    """Migrate, then top the trail up to ``target`` events; returns the bench user."""
    import json

    from django.core.management import call_command
    from django.db import connection, transaction

    from governance.audit import GENESIS_HASH
    from governance.models import AuditEvent, User

    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(username="bench_audit", defaults={"email": "bench_audit@example.com"})
    missing = target - AuditEvent.objects.count()
    if missing <= 0:
        return user
    head = AuditEvent.objects.order_by("-id").values_list("hash", "created_at").first()
    prev_hash, start = head if head is not None else (GENESIS_HASH, datetime(2026, 1, 1, tzinfo=UTC))
    started = time.perf_counter()
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    columns = ", ".join(SEED_COLUMNS)
    json_at = (SEED_COLUMNS.index("before"), SEED_COLUMNS.index("after"))
    with transaction.atomic(), connection.cursor() as cursor:
        rows = _seed_rows(user, missing, prev_hash, start + timedelta(seconds=1))
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([json.dumps(v) if i in json_at else v for i, v in enumerate(row)])
        else:
            placeholders = ", ".join(["%s"] * len(SEED_COLUMNS))
            sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
            adapt = connection.ops.adapt_datetimefield_value
            batch: list[list[Any]] = []
            for row in rows:
                batch.append([adapt(v) if i == 0 else json.dumps(v) if i in json_at else v for i, v in enumerate(row)])
                if len(batch) == SEED_BATCH:
                    cursor.executemany(sql, batch)
                    batch = []
            cursor.executemany(sql, batch)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"  seeded {missing} events in {time.perf_counter() - started:.1f} s ({_uptime()})")
    return user


def _process_cpu(pid: int) -> float | None:
    """CPU seconds process ``pid`` of this machine has used, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _DatabaseCpu:
    """CPU seconds used by the server processes of this database while it runs (PostgreSQL on this
    machine; 0 otherwise): those there at the start and those that connect meanwhile (the
    workers of ``verify_audit --workers``), sampled every ``INTERVAL`` seconds from its own
    connection, which it leaves out. A process that ends counts up to its last sample."""

    INTERVAL = 0.02

    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def _sample(self, cursor: Any) -> None:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        for (pid,) in cursor.fetchall():
            cpu = _process_cpu(pid)
            if cpu is not None:
                self.first.setdefault(pid, cpu if self.thread is None else 0.0)
                self.last[pid] = cpu

    def __enter__(self) -> _DatabaseCpu:
        from django.db import connection

        if connection.vendor != "postgresql":
            return self
        import psycopg

        self.monitor = psycopg.connect(**connection.get_connection_params(), autocommit=True)
        self._sample(self.monitor.cursor())

        def poll() -> None:
            while not self.stop.wait(self.INTERVAL):
                self._sample(self.monitor.cursor())

        self.thread = threading.Thread(target=poll, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.thread is None:
            return
        self.stop.set()
        self.thread.join()
        self._sample(self.monitor.cursor())
        self.monitor.close()

    @property
    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


@dataclass
class Timing:
    wall: float
    client_cpu: float
    server_cpu: float

    def __str__(self) -> str:
        return f"{self.wall:.2f} s wall, CPU {self.client_cpu:.2f} s here + {self.server_cpu:.2f} s in the database"


def _own_cpu() -> float:
    """CPU seconds of this process and of its children that have ended (``--workers``)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _timed(fn: Any) -> tuple[Timing, Any]:
    with _DatabaseCpu() as server:
        client = _own_cpu()
        started = time.perf_counter()
        result = fn()
        wall = time.perf_counter() - started
        client = _own_cpu() - client
    return Timing(wall, client, server.seconds), result


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    import django

    django.setup()
    from django.db import transaction

    from governance.anchoring import checkpoint_sign, verify_and_record
    from governance.audit import EventSpec, audit_record_many
    from governance.models import AuditEvent

    runs = int(os.environ.get("BENCH_RUNS", "3"))
    workers = int(os.environ.get("BENCH_WORKERS", "1"))
    new = int(os.environ.get("BENCH_NEW", "1000"))
    user = seed(int(os.environ.get("BENCH_EVENTS", "1000000")))
    total = AuditEvent.objects.count()

    rss_before = _peak_rss_mib()
    timing, checkpoint = _timed(checkpoint_sign)
    print(
        f"  checkpoint {checkpoint.sequence} signed (walks the events since the previous one): {timing} ({_uptime()})"
    )
    specs = [
        EventSpec(action="bench.appended", target_type="bench", target_id=str(i), owner=user, after={"i": i})
        for i in range(new)
    ]
    with transaction.atomic():
        timing, _events = _timed(lambda: audit_record_many(actor=user, events=specs))
    print(f"  appended {new} events after checkpoint {checkpoint.sequence}: {timing}")
    total = AuditEvent.objects.count()
    incremental: list[Timing] = []
    for _ in range(runs):
        timing, verdict = _timed(lambda: verify_and_record(since_checkpoint=True))
        assert verdict.intact and verdict.checked == new, verdict
        incremental.append(timing)
        print(f"  incremental verification: {timing}")
    print(
        f"incremental (--since-checkpoint, {new} new events after {total - new}): median "
        f"{statistics.median(t.wall for t in incremental) * 1000:.0f} ms wall over {runs} runs ({_uptime()})"
    )

    full: list[Timing] = []
    for _ in range(runs):
        timing, verdict = _timed(lambda: verify_and_record(workers=workers))
        assert verdict.intact and verdict.checked == total, verdict
        full.append(timing)
        print(f"  full verification of {total} events ({workers} process(es)): {timing} ({_uptime()})")
    median = statistics.median(t.wall for t in full)
    cpu = statistics.median(t.client_cpu + t.server_cpu for t in full)
    print(
        f"full: median {median:.2f} s wall over {runs} runs = {total / median:,.0f} events/s; median CPU "
        f"{cpu:.2f} s (here + database); peak RSS {_peak_rss_mib():.0f} MiB (before the walks "
        f"{rss_before:.0f} MiB) ({_uptime()})"
    )
