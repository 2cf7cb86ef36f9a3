"""Appending to the audit trail: many concurrent writers, and one bulk writer.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> python -m benchmarks audit_append

Concurrent: ``BENCH_THREADS`` threads, each with its own connection, each running
``BENCH_TX`` transactions of a small business change (one row updated) and its
``audit_record``; reports committed events/s, the p50/p95 wait to acquire the chain lock
(``pg_advisory_xact_lock``) and the p50/p95 time the lock is held (acquired to committed).
``BENCH_SHAPE`` says where the event is written in the transaction: ``last`` (after the change,
as services do), ``first`` (before it: the lock is then held across the change too), or
``unchained``: no chain lock and no read of the head (every event follows the genesis hash) —
the writer's side of a design that chains committed events in a separate step, to measure what
that design could gain. ``unchained`` leaves a broken chain behind: use a throwaway database.

Bulk: ``audit_record_many`` of ``BENCH_BULK`` events in calls of ``BENCH_CHUNK`` events (1,000;
several sizes separated by commas) in one transaction (how a campaign deadline writes), commit
included: events/s, median of ``BENCH_RUNS``, with the CPU time of this process and of its
database server process (on a loaded machine wall time is an upper bound; CPU time is not).

It migrates the database of ``DATABASE_URL`` and adds users ``bench_append_*``; run it on a
database of its own. Environment: BENCH_THREADS (20; 0 skips the concurrent writers), BENCH_TX (50), BENCH_SHAPE
(last), BENCH_BULK (100000), BENCH_CHUNK (1000), BENCH_RUNS (3).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Any


def _uptime() -> str:
    with open("/proc/loadavg") as handle:
        return "load " + " ".join(handle.read().split()[:3])


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class _LockTimer:
    """Wraps the chain lock to time how long each writer waits for it and, until its
    transaction commits, holds it."""

    def __init__(self) -> None:
        from governance import audit

        self.audit = audit
        self.original = audit._lock_chain
        self.waits: list[float] = []
        self.acquired = threading.local()

    def __enter__(self) -> _LockTimer:
        def timed_lock() -> None:
            started = time.perf_counter()
            self.original()
            self.acquired.at = time.perf_counter()
            self.waits.append(self.acquired.at - started)

        self.audit._lock_chain = timed_lock
        return self

    def __exit__(self, *exc: object) -> None:
        self.audit._lock_chain = self.original


def _writer(user: Any, transactions: int, shape: str, timer: _LockTimer, holds: list[float]) -> None:
    from django.db import connection, transaction

    from governance.audit import audit_record
    from governance.models import User

    try:
        for index in range(transactions):
            with transaction.atomic():
                if shape == "first":
                    audit_record(actor=user, action="bench.renamed", target=user, after={"n": index})
                User.objects.filter(pk=user.pk).update(first_name=f"n{index}")
                if shape != "first":
                    audit_record(actor=user, action="bench.renamed", target=user, after={"n": index})
            holds.append(time.perf_counter() - timer.acquired.at)
    finally:
        connection.close()


def concurrent(users: list[Any], transactions: int, shape: str) -> None:
    from governance import audit

    holds: list[float] = []
    original = (audit._lock_chain, audit._last_hash)
    if shape == "unchained":
        audit._lock_chain, audit._last_hash = (lambda: None), (lambda: audit.GENESIS_HASH)
    with _LockTimer() as timer:
        threads = [threading.Thread(target=_writer, args=(user, transactions, shape, timer, holds)) for user in users]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    audit._lock_chain, audit._last_hash = original
    events = len(users) * transactions
    ms = 1000
    print(
        f"concurrent ({len(users)} threads, shape {shape}): {events} events in {elapsed:.2f} s = "
        f"{events / elapsed:,.0f} events/s; lock wait p50 {_percentile(timer.waits, 0.5) * ms:.1f} ms, "
        f"p95 {_percentile(timer.waits, 0.95) * ms:.1f} ms; lock held p50 {_percentile(holds, 0.5) * ms:.1f} ms, "
        f"p95 {_percentile(holds, 0.95) * ms:.1f} ms ({_uptime()})"
    )


def bulk(user: Any, count: int, runs: int, chunk: int) -> None:
    """``audit_record_many`` of ``count`` events in calls of ``chunk``, in one transaction (commit
    included): median wall time, and the CPU time of this process and of its database server
    process (independent of the load that other work puts on the machine)."""
    from django.db import transaction

    from benchmarks.audit_verify import Timing, _timed
    from governance import audit

    timings: list[Timing] = []
    for _ in range(runs):
        specs = [
            audit.EventSpec(
                action="grant.revoked",
                target_type="inventory.grant",
                target_id=str(index),
                target_repr=f"Grant {index}",
                owner=user,
                before={"status": "active"},
                after={"status": "revoked", "end_reason": "campaign default"},
                reason="Not reviewed before the deadline",
            )
            for index in range(count)
        ]

        def write(specs: list[Any] = specs) -> None:
            with transaction.atomic():
                for start in range(0, count, chunk):
                    audit.audit_record_many(actor=user, events=specs[start : start + chunk])

        timing, _ = _timed(write)
        timings.append(timing)
        print(f"  bulk run: {count} events in calls of {chunk}: {timing} ({_uptime()})")
    median = statistics.median(t.wall for t in timings)
    client = statistics.median(t.client_cpu for t in timings)
    server = statistics.median(t.server_cpu for t in timings)
    print(
        f"bulk audit_record_many, calls of {chunk}: {count} events, median {median:.2f} s over {runs} runs = "
        f"{count / median:,.0f} events/s; median CPU {client:.2f} s here + {server:.2f} s in the database = "
        f"{count / (client + server):,.0f} events per CPU second ({_uptime()})"
    )


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from governance.models import User

    call_command("migrate", verbosity=0)
    threads = int(os.environ.get("BENCH_THREADS", "20"))
    users = [
        User.objects.get_or_create(username=f"bench_append_{n}", defaults={"email": f"bench_append_{n}@example.com"})[0]
        for n in range(max(1, threads))
    ]
    shape = os.environ.get("BENCH_SHAPE", "last")
    if threads:
        concurrent(users, int(os.environ.get("BENCH_TX", "50")), shape)
    if shape == "unchained":
        return
    chunks = [int(size) for size in os.environ.get("BENCH_CHUNK", "1000").split(",")]
    for chunk in chunks:
        bulk(users[0], int(os.environ.get("BENCH_BULK", "100000")), int(os.environ.get("BENCH_RUNS", "3")), chunk)
