"""The deadline of a campaign over 100,000 grants that nobody reviewed: time ``campaign_close``
with the default action "revoke" (the sweep's work at the deadline: every open item defaulted and
audited, every grant revoked and audited, in chunks) and its peak memory.

    DATABASE_URL=sqlite:////tmp/bench_campaigns.sqlite3 python -m benchmarks campaign_deadline
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> python -m benchmarks campaign_deadline

Same data as ``campaign_launch`` (it seeds it once); each run launches a fresh campaign (not
timed), closes it (timed), then puts the grants back to active for the next run. Each run adds
about 200,000 audit events. Environment: BENCH_GRANTS (100000), BENCH_OWNERS (500), BENCH_RUNS (3).
"""

from __future__ import annotations

import os
import resource
import statistics
import time
import tracemalloc

from benchmarks.campaign_launch import bench_definition, seed


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    import django

    django.setup()
    from django.db import connection

    from approvals.campaigns import services
    from approvals.campaigns.models import ReviewItem
    from inventory.models import Grant

    runs = int(os.environ.get("BENCH_RUNS", "3"))
    system, admin, _active, _owners = seed()
    actor, definition = bench_definition(
        "Benchmark deadline", system, admin, default_action="revoke", apply_mode="immediate"
    )
    grants = Grant.objects.filter(scope__system=system)
    reset = {"status": "active", "ended_at": None, "ended_by": None, "end_reason": ""}
    grants.exclude(status="active").update(**reset)  # what an interrupted run left revoked
    total = grants.count()

    def one_run(measure_memory: bool) -> tuple[float, int, int, int]:
        campaign = services.campaign_create(actor=actor, definition=definition)
        services.campaign_launch_request(actor=actor, campaign=campaign, enqueue=False)
        services.campaign_launch_run(campaign_id=campaign.pk)
        if measure_memory:
            tracemalloc.start()
        started = time.perf_counter()
        services.campaign_close(campaign=campaign)
        elapsed = time.perf_counter() - started
        peak = 0
        if measure_memory:
            _current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        defaulted = ReviewItem.objects.filter(campaign=campaign, status="revoked", by_default=True).count()
        revoked = grants.filter(status="revoked").count()
        # Back to where it started for the next run.
        ReviewItem.objects.filter(campaign=campaign).delete()
        grants.update(**reset)
        return elapsed, peak, defaulted, revoked

    times = []
    for run in range(runs):
        elapsed, _peak, defaulted, revoked = one_run(measure_memory=False)
        times.append(elapsed)
        print(f"run {run + 1}: {defaulted} items defaulted, {revoked} grants revoked in {elapsed:.2f} s")
        assert defaulted == revoked == total, (defaulted, revoked, total)
    mem_elapsed, peak, _d, _r = one_run(measure_memory=True)
    print(f"database: {connection.vendor}; open items at the deadline: {total}")
    print(
        f"close median {statistics.median(times):.2f} s over {runs} runs (min {min(times):.2f}, max {max(times):.2f})"
    )
    print(
        f"peak Python allocations during a close (tracemalloc, run took {mem_elapsed:.2f} s traced): "
        f"{peak / 1024 / 1024:.1f} MiB; process max RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
