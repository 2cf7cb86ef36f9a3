"""The deadline of a campaign over 100,000 grants that nobody reviewed: time ``campaign_close``
with the default action "revoke" (the sweep's work at the deadline: every open item defaulted and
audited, every grant revoked, its history row written and audited, in set-based chunks), split
into the time spent writing audit events (``audit_record_many``, with the webhook outbox its
listeners write) and the rest (items, grants, history), the CPU time of this Python process and
of the PostgreSQL backend serving it (read from ``/proc``: the server must run on this machine),
and its peak memory.

    DATABASE_URL=sqlite:////tmp/bench_campaigns.sqlite3 python -m benchmarks campaign_deadline
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> python -m benchmarks campaign_deadline

Same data as ``campaign_launch`` (it seeds it once); each run launches a fresh campaign (not
timed), closes it (timed), then puts the grants back to active for the next run. Each run adds
about 200,000 audit events. The machine's load average is printed with the figures.
Environment: BENCH_GRANTS (100000), BENCH_OWNERS (500), BENCH_RUNS (3), BENCH_CHUNK (the
deadline's chunk size), BENCH_TRACE (1: one more run under tracemalloc for peak allocations).
"""

from __future__ import annotations

import os
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from benchmarks.campaign_launch import bench_definition, seed


@dataclass
class _Split:
    """Seconds spent in ``audit_record_many`` and statements sent, during one close."""

    audit: float = 0.0
    statements: int = 0


def _backend_pid() -> int | None:
    """The database server process serving this connection, when it runs on this machine
    (PostgreSQL): its CPU time is read from ``/proc``."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = int(cursor.fetchone()[0])
    return pid if os.path.exists(f"/proc/{pid}/stat") else None


def _cpu_seconds(pid: int | None) -> float:
    """User and system CPU seconds used so far by process ``pid`` (this process when None): CPU
    time does not grow with the machine's load as wall time does."""
    if pid is None:
        return time.process_time()
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _measured(split: _Split) -> Iterator[None]:
    """Time every ``audit_record_many`` call the deadline makes (its own and through the grants'
    service) and count the statements sent, for the duration of the block."""
    from django.db import connection

    from approvals.campaigns.services import deadline
    from governance import audit
    from inventory.services import grants

    original: Callable[..., Any] = audit.audit_record_many

    def timed(**kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(**kwargs)
        finally:
            split.audit += time.perf_counter() - started

    def counted(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        split.statements += 1
        return execute(sql, params, many, context)

    modules = (deadline, grants)
    for module in modules:
        module.audit_record_many = timed  # type: ignore[attr-defined]
    try:
        with connection.execute_wrapper(counted):
            yield
    finally:
        for module in modules:
            module.audit_record_many = original  # type: ignore[attr-defined]


def _analyze_items() -> None:
    """Refresh the planner's statistics of the review items, as autovacuum has done by the time
    a deadline comes days after its launch (right after a launch of 100,000 items the planner
    would still believe the campaign has none, and read all its open items for every chunk)."""
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


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    import django

    django.setup()
    from django.db import connection

    from approvals.campaigns import services
    from approvals.campaigns.models import ReviewItem
    from approvals.campaigns.services.deadline import DEADLINE_CHUNK
    from inventory.models import Grant

    runs = int(os.environ.get("BENCH_RUNS", "3"))
    chunk = int(os.environ.get("BENCH_CHUNK", str(DEADLINE_CHUNK)))
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
        _analyze_items()
        load = _load()
        split = _Split()
        if measure_memory:
            tracemalloc.start()
        backend = _backend_pid()
        cpu_before = (_cpu_seconds(None), _cpu_seconds(backend) if backend else 0.0)
        with _measured(split):
            started = time.perf_counter()
            services.campaign_close(campaign=campaign, size=chunk)
            elapsed = time.perf_counter() - started
        python_cpu = _cpu_seconds(None) - cpu_before[0]
        database_cpu = _cpu_seconds(backend) - cpu_before[1] if backend else None
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
        rest = run.elapsed - run.split.audit
        print(
            f"run {number + 1}: {run.defaulted} items defaulted, {run.revoked} grants revoked in {run.elapsed:.2f} s "
            f"(audit events {run.split.audit:.2f} s, items/grants/history {rest:.2f} s; "
            f"{run.split.statements} statements; CPU: Python {run.python_cpu:.2f} s, database backend "
            f"{_seconds(run.database_cpu)}; load average before {run.load}; "
            f"max RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)"
        )
        assert run.defaulted == run.revoked == total, (run.defaulted, run.revoked, total)
    times = [run.elapsed for run in results]
    audit_times = [run.split.audit for run in results]
    rest_times = [run.elapsed - run.split.audit for run in results]
    python_cpus = [run.python_cpu for run in results]
    database_cpus = [run.database_cpu for run in results if run.database_cpu is not None]
    print(f"database: {connection.vendor}; open items at the deadline: {total}; chunk {chunk}; load now {_load()}")
    print(
        f"close median {statistics.median(times):.2f} s over {runs} runs (min {min(times):.2f}, max {max(times):.2f}); "
        f"audit events median {statistics.median(audit_times):.2f} s; items/grants/history median {statistics.median(rest_times):.2f} s; "
        f"CPU median: Python {statistics.median(python_cpus):.2f} s, database backend "
        f"{_seconds(statistics.median(database_cpus) if database_cpus else None)}"
    )
    if os.environ.get("BENCH_TRACE", "1") == "1":
        traced = one_run(measure_memory=True)
        print(
            f"peak Python allocations during a close (tracemalloc, run took {traced.elapsed:.2f} s traced): "
            f"{traced.peak / 1024 / 1024:.1f} MiB; process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
        )
