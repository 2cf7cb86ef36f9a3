"""The dashboard at scale: 100,000 integrations (with their grants), discovery findings, access
requests decided over the last weeks and half a year of daily metric snapshots. Times GET
/dashboard/ and the home page of a reviewer with the Django test client (median and 95th
percentile, target: median at most 300 ms), counts their SQL queries, then times each panel's
build and render alone (to name a slow one), the hourly coverage task (run first, as the
dashboard reads what it stores) and the daily snapshot task.

    DATABASE_URL=sqlite:////tmp/dashboard_bench.sqlite3 python -m benchmarks dashboard
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dashboard_bench python -m benchmarks dashboard

It migrates the database of ``DATABASE_URL`` and adds its rows once (the inventory benchmark's
integrations, owners and grants, the discovery benchmark's findings); run it on a database of its
own, never on one holding real data. Rows are written in bulk (this measures reading).
Environment: BENCH_INTEGRATIONS (100000), BENCH_GRANTS_PER (3), BENCH_OWNERS (1000),
BENCH_FINDINGS (20000), BENCH_REQUESTS (5000), BENCH_RUNS (15).
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import timedelta
from typing import Any

SNAPSHOT_DAYS = 182
REQUEST_WEEKS = 12


def seed_requests(count: int) -> None:
    """Add (once) ``count`` access requests with their steps; most decided (approved or rejected)
    spread over the last weeks, the rest still waiting, some overdue."""
    from django.db.models import F
    from django.utils import timezone

    from approvals.models import AccessRequest, RequestStatus, RequestStep, StepStatus
    from benchmarks import _approvals_data
    from benchmarks.inventory_lists import _bench_scopes, _user
    from governance.roles import Role

    if AccessRequest.objects.filter(integration__name__startswith="Bulk integration ").count() >= count:
        return
    started = time.perf_counter()
    owner = _user("bench_owner_0", Role.BUSINESS_USER)
    reviewer = _user("bench_reviewer", Role.REVIEWER)
    _approvals_data.pending_requests_bulk(n=count, owner=owner, reviewer=reviewer, scopes=_bench_scopes(2))
    now = timezone.now()
    requests = AccessRequest.objects.annotate(slot=F("id") % (REQUEST_WEEKS * 2))
    for slot in range(REQUEST_WEEKS * 2 - 4):
        closed = now - timedelta(weeks=slot % REQUEST_WEEKS, hours=slot)
        status = RequestStatus.APPROVED if slot % 5 else RequestStatus.REJECTED
        ids = requests.filter(slot=slot).values("id")
        AccessRequest.objects.filter(id__in=ids).update(status=status, closed_at=closed)
        RequestStep.objects.filter(request_id__in=ids).update(
            status=StepStatus.APPROVED if status == RequestStatus.APPROVED else StepStatus.REJECTED,
            decided_at=closed,
            activated_at=closed - timedelta(hours=6 + slot * 3),
        )
    print(f"added {count} access requests in {time.perf_counter() - started:.1f} s")


def seed_snapshots() -> None:
    """Half a year of daily snapshots of every registered metric (made-up values: this measures
    reading them)."""
    from django.utils import timezone

    from governance import dashboard
    from governance.controls.models import MetricSnapshot

    today = timezone.localdate()
    MetricSnapshot.objects.bulk_create(
        [
            MetricSnapshot(key=metric.key, day=today - timedelta(days=back), value=float(1000 - back))
            for metric in dashboard.metrics()
            for back in range(SNAPSHOT_DAYS)
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )


def seed() -> None:
    from benchmarks import discovery, inventory_lists

    inventory_lists.seed(
        integrations=int(os.environ.get("BENCH_INTEGRATIONS", "100000")),
        grants_per=int(os.environ.get("BENCH_GRANTS_PER", "3")),
        owners=int(os.environ.get("BENCH_OWNERS", "1000")),
    )
    discovery.seed_findings(int(os.environ.get("BENCH_FINDINGS", "20000")))
    seed_requests(int(os.environ.get("BENCH_REQUESTS", "5000")))
    seed_snapshots()


def timed(action: Any, runs: int) -> tuple[float, float]:
    """Median and 95th percentile of ``runs`` calls of ``action``, in ms."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[max(int(len(times) * 0.95) - 1, 0)]


def count_queries(action: Any) -> int:
    from django.db import connection

    queries: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        action()
    return len(queries)


def measure_pages(client: Any, runs: int) -> None:
    for label, url in (("dashboard", "/dashboard/"), ("home page (reviewer)", "/")):
        response = client.get(url)  # warm up
        assert response.status_code == 200, (url, response.status_code)
        queries = count_queries(lambda url=url: client.get(url))
        median, p95 = timed(lambda url=url: client.get(url), runs)
        print(f"{label:28} median {median:7.1f} ms   p95 {p95:7.1f} ms   {queries} queries   {url}")


def measure_panels(user: Any, runs: int) -> None:
    """Each registered panel alone: its build and its template, with its own query count."""
    from django.template.loader import render_to_string
    from django.test import RequestFactory

    from governance import dashboard

    request = RequestFactory().get("/dashboard/")
    request.user = user
    for panel in dashboard.panels():

        def draw(panel: Any = panel) -> None:
            data = panel.build(request)
            if data is not None:
                render_to_string(panel.template, {**data, "data": data, "panel": panel, "panel_id": panel.key})

        queries = count_queries(draw)
        median, p95 = timed(draw, runs)
        print(f"  panel {panel.key:22} median {median:7.1f} ms   p95 {p95:7.1f} ms   {queries} queries")


def measure_coverage_task() -> None:
    """The hourly coverage task (every control's evidence measured, then the stored dashboard
    figures: risk tiers, top owners), whose rows the dashboard reads."""
    from governance.controls import tasks

    started = time.perf_counter()
    written = tasks.coverage_snapshot()
    print(f"hourly coverage task         {(time.perf_counter() - started) * 1000:7.1f} ms   {written} rows written")


def measure_snapshot_task() -> None:
    from governance.controls import snapshots

    started = time.perf_counter()
    try:
        result = snapshots.metrics_snapshot()
        outcome = f"{result.written} metrics written"
    except snapshots.MetricSnapshotFailed as failed:
        outcome = f"failed: {', '.join(failed.failed)}"
    print(f"daily snapshot task          {(time.perf_counter() - started) * 1000:7.1f} ms   {outcome}")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections, connection
    from django.test import Client

    from benchmarks.inventory_lists import _user
    from governance.roles import Role
    from inventory.models import Grant, Integration

    seed()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    reviewer = _user("bench_reviewer", Role.REVIEWER)
    # As in the inventory benchmark: only the test client's host allowed, one connection kept.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"{connection.vendor}: {Integration.objects.count()} integrations, {Grant.objects.count()} grants; "
        f"load average {load} on {os.cpu_count()} CPUs"
    )
    runs = int(os.environ.get("BENCH_RUNS", "15"))
    client = Client()
    client.force_login(reviewer)
    measure_coverage_task()
    measure_pages(client, runs)
    measure_panels(reviewer, max(runs // 3, 3))
    measure_snapshot_task()
    print(f"load average after: {', '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
