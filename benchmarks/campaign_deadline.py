"""The deadline of a campaign over 100,000 grants that nobody reviewed: time ``campaign_close``
with the default action "revoke" (the sweep's work at the deadline: every open item defaulted and
audited, every grant revoked, its history row written and audited, in set-based chunks written by
``CAMPAIGN_DEADLINE_WORKERS`` connections side by side), with the time spent appending to the
audit trail (``audit_append`` with the webhook outbox its listeners write, summed over the workers:
the part of each chunk written one chunk at a time), the statements sent, the CPU time of this
Python process and of the PostgreSQL server (all its processes, read from ``/proc``: the server
must run on this machine), and its peak memory.

    DATABASE_URL=sqlite:////tmp/bench_campaigns.sqlite3 python -m benchmarks campaign_deadline
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> python -m benchmarks campaign_deadline

Same data as ``campaign_launch`` (it seeds it once); each run launches a fresh campaign (not
timed), closes it (timed), then puts the grants back to active for the next run. Each run adds
about 200,000 audit events. The machine's load average is printed with the figures.
Environment: BENCH_GRANTS (100000), BENCH_OWNERS (500), BENCH_RUNS (3), BENCH_CHUNK (the
deadline's chunk size), BENCH_WORKERS (the deadline's workers), BENCH_VACUUM (1: vacuum
the tables between runs), BENCH_TRACE (1: one more run under tracemalloc for peak allocations).
"""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from benchmarks.campaign_launch import bench_definition, seed


@dataclass
class _Split:
    """Seconds spent in ``audit_append`` (summed over the workers) and statements sent, during one
    close."""

    audit: float = 0.0
    statements: int = 0


def _server_cpu_seconds() -> float | None:
    """User and system CPU seconds used so far by every process of the PostgreSQL server on this
    machine (its backends, those that have exited counted in their parent's children time, and its
    writer, checkpointer and autovacuum); None for SQLite or a server elsewhere. CPU time does not
    grow with the machine's load as wall time does."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    total, found = 0, False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:
            continue  # exited meanwhile
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()
        if name == "postgres" or name.startswith("postgres:"):
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
            found = True
    return total / os.sysconf("SC_CLK_TCK") if found else None


@contextmanager
def _measured(split: _Split) -> Iterator[None]:
    """Time every append to the audit trail the deadline makes (summed over its workers: the part
    of each chunk written one chunk at a time) and count the statements sent on every connection,
    for the duration of the block."""
    from django.db import connection
    from django.db.backends.signals import connection_created

    from approvals.campaigns.services import deadline
    from governance import audit

    original: Callable[..., Any] = audit.audit_append
    lock = threading.Lock()

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                split.audit += time.perf_counter() - started

    def counted(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        with lock:
            split.statements += 1
        return execute(sql, params, many, context)

    def wrap_new(sender: Any, connection: Any, **kwargs: Any) -> None:
        connection.execute_wrappers.append(counted)  # the deadline's workers' connections

    deadline.audit_append = timed  # type: ignore[attr-defined]
    connection_created.connect(wrap_new)
    try:
        with connection.execute_wrapper(counted):
            yield
    finally:
        connection_created.disconnect(wrap_new)
        deadline.audit_append = original  # type: ignore[attr-defined]


def _vacuum_and_analyze() -> None:
    """Clean up what the previous run left (100,000 grants put back to active, 100,000 items
    deleted) and refresh the planner's statistics of the review items, as autovacuum has done by
    the time a deadline comes days after its launch: otherwise autovacuum sweeps the last run's
    dead rows during this one, and right after a launch of 100,000 items the planner would still
    believe the campaign has none (and read all its open items for every chunk)."""
    from django.db import connection

    from approvals.campaigns.models import ReviewItem
    from governance.models import AuditEvent
    from inventory.models import Grant

    if connection.vendor == "postgresql":
        tables = [ReviewItem, Grant, Grant.history.model, AuditEvent]
        with connection.cursor() as cursor:
            for model in tables:
                cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(model._meta.db_table)}")


def _analyze_items() -> None:
    """Only the planner's statistics of the review items (``BENCH_VACUUM=0``: the last run's dead
    rows are left to autovacuum, which may sweep them during this run)."""
    from django.db import connection

    from approvals.campaigns.models import ReviewItem

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(ReviewItem._meta.db_table)}")


def _seconds(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f} s"


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


@dataclass
class _Run:
    elapsed: float
    split: _Split
    peak: int
    defaulted: int
    revoked: int
    load: str
    python_cpu: float
    database_cpu: float | None


def _medians(results: list[_Run]) -> str:
    times = [run.elapsed for run in results]
    database_cpus = [run.database_cpu for run in results if run.database_cpu is not None]
    return (
        f"close median {statistics.median(times):.2f} s over {len(results)} runs "
        f"(min {min(times):.2f}, max {max(times):.2f}); "
        f"audit appends median {statistics.median(run.split.audit for run in results):.2f} s; "
        f"CPU median: Python {statistics.median(run.python_cpu for run in results):.2f} s, database server "
        f"{_seconds(statistics.median(database_cpus) if database_cpus else None)}"
    )


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from approvals.campaigns import services
    from approvals.campaigns.models import ReviewItem
    from approvals.campaigns.services.deadline import DEADLINE_CHUNK
    from inventory.models import Grant

    runs = int(os.environ.get("BENCH_RUNS", "3"))
    chunk = int(os.environ.get("BENCH_CHUNK", str(DEADLINE_CHUNK)))
    workers = int(os.environ.get("BENCH_WORKERS", str(settings.CAMPAIGN_DEADLINE_WORKERS)))
    system, admin, _active, _owners = seed()
    actor, definition = bench_definition(
        "Benchmark deadline", system, admin, default_action="revoke", apply_mode="immediate"
    )
    grants = Grant.objects.filter(scope__system=system)
    reset = {"status": "active", "ended_at": None, "ended_by": None, "end_reason": ""}
    grants.exclude(status="active").update(**reset)  # what an interrupted run left revoked
    total = grants.count()

    def one_run(measure_memory: bool) -> _Run:
        campaign = services.campaign_create(actor=actor, definition=definition)
        services.campaign_launch_request(actor=actor, campaign=campaign, enqueue=False)
        services.campaign_launch_run(campaign_id=campaign.pk)
        if os.environ.get("BENCH_VACUUM", "1") == "1":
            _vacuum_and_analyze()
        else:
            _analyze_items()
        load = _load()
        split = _Split()
        if measure_memory:
            tracemalloc.start()
        cpu_before = (time.process_time(), _server_cpu_seconds())
        with _measured(split):
            started = time.perf_counter()
            services.campaign_close(campaign=campaign, size=chunk, workers=workers)
            elapsed = time.perf_counter() - started
        python_cpu = time.process_time() - cpu_before[0]
        server_after = _server_cpu_seconds()
        database_cpu = server_after - cpu_before[1] if server_after is not None and cpu_before[1] is not None else None
        peak = 0
        if measure_memory:
            _current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        defaulted = ReviewItem.objects.filter(campaign=campaign, status="revoked", by_default=True).count()
        revoked = grants.filter(status="revoked").count()
        # Back to where it started for the next run.
        ReviewItem.objects.filter(campaign=campaign).delete()
        grants.update(**reset)
        return _Run(elapsed, split, peak, defaulted, revoked, load, python_cpu, database_cpu)

    results = []
    for number in range(runs):
        run = one_run(measure_memory=False)
        results.append(run)
        print(
            f"run {number + 1}: {run.defaulted} items defaulted, {run.revoked} grants revoked in {run.elapsed:.2f} s "
            f"(audit appends {run.split.audit:.2f} s; {run.split.statements} statements; "
            f"CPU: Python {run.python_cpu:.2f} s, database server "
            f"{_seconds(run.database_cpu)}; load average before {run.load}; "
            f"max RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)"
        )
        assert run.defaulted == run.revoked == total, (run.defaulted, run.revoked, total)
    print(
        f"database: {connection.vendor}; open items at the deadline: {total}; chunk {chunk}; workers {workers}; "
        f"load now {_load()}"
    )
    print(_medians(results))
    if os.environ.get("BENCH_TRACE", "1") == "1":
        traced = one_run(measure_memory=True)
        print(
            f"peak Python allocations during a close (tracemalloc, run took {traced.elapsed:.2f} s traced): "
            f"{traced.peak / 1024 / 1024:.1f} MiB; process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
        )
