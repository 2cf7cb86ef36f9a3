"""Reviewer queue page with 20,000 pending requests assigned to one reviewer: render it N times
with the Django test client and report the median (target: at most 200 ms).

    DATABASE_URL=sqlite:////tmp/bench.sqlite3 python -m benchmarks queue_page
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> python -m benchmarks queue_page

It migrates the database of ``DATABASE_URL`` and adds its data once (users ``bench_owner`` and
``bench_reviewer``); run it on a database of its own, never on one holding real data.
Environment: BENCH_ITEMS (20000), BENCH_RUNS (30).
"""

from __future__ import annotations

import os
import statistics
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.test import Client

    from governance.models import User


def _seed(items: int) -> User:
    """The reviewer with ``items`` open queue items (added once; later runs reuse them)."""
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection

    from approvals.models import StepAssignment
    from benchmarks._approvals_data import pending_requests_bulk
    from governance.models import User
    from governance.roles import Pool, Role, roles_sync
    from inventory.models import ResourceSystem, Scope

    call_command("migrate", verbosity=0)
    roles_sync()
    owner, _ = User.objects.get_or_create(username="bench_owner", defaults={"email": "bench_owner@example.com"})
    reviewer, _ = User.objects.get_or_create(
        username="bench_reviewer", defaults={"email": "bench_reviewer@example.com"}
    )
    reviewer.groups.add(*Group.objects.filter(name__in=[Role.REVIEWER, Pool.IAM_REVIEWERS]))
    system, _ = ResourceSystem.objects.get_or_create(code="benchsys", defaults={"name": "Bench system"})
    scopes = [
        Scope.objects.get_or_create(
            system=system, name=name, defaults={"code": f"benchsys:{name}", "sensitivity": level}
        )[0]
        for name, level in (("read", "low"), ("write", "high"))
    ]
    have = StepAssignment.objects.filter(user=reviewer, is_open=True).count()
    if have < items:
        started = time.perf_counter()
        pending_requests_bulk(n=items - have, owner=owner, reviewer=reviewer, scopes=scopes)
        print(f"created {items - have} pending requests in {time.perf_counter() - started:.1f} s")
    # Fresh statistics after the bulk load, as autovacuum (PostgreSQL) would have by then.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return reviewer


def _client_for(reviewer: User) -> Client:
    """A signed-in client that keeps one connection for the whole run (as CONN_MAX_AGE does in
    production), so the query count sees the request's queries; warmed up."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections
    from django.test import Client

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    client = Client()
    client.force_login(reviewer)
    for _ in range(3):  # warm up: templates, caches, connection
        assert client.get("/approvals/queue/").status_code == 200
    return client


def _queries_per_render(client: Client) -> int:
    from django.db import connection

    executed: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get("/approvals/queue/")
    return len(executed)


def _timings(client: Client, path: str, runs: int) -> list[float]:
    """Milliseconds of each of ``runs`` renders of ``path``, sorted."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return sorted(timings)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from approvals.models import StepAssignment

    items = int(os.environ.get("BENCH_ITEMS", "20000"))
    runs = int(os.environ.get("BENCH_RUNS", "30"))
    # Not setup_test_environment(): its instrumented template rendering (a signal and a context
    # copy per template) would be measured too. The test client only needs its host allowed.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    reviewer = _seed(items)
    total = StepAssignment.objects.filter(user=reviewer, is_open=True).count()
    client = _client_for(reviewer)
    queries = _queries_per_render(client)
    timings = _timings(client, "/approvals/queue/", runs)
    print(
        f"queue page, {connection.vendor}, {total} items waiting for the reviewer, {runs} renders: "
        f"median {statistics.median(timings):.1f} ms, p90 {timings[int(len(timings) * 0.9) - 1]:.1f} ms, "
        f"min {timings[0]:.1f} ms, max {timings[-1]:.1f} ms, {queries} SQL queries per render"
    )
    filtered = _timings(client, "/approvals/queue/?tier=low&overdue=1", max(5, runs // 3))
    print(f"filtered (tier=low, overdue): median {statistics.median(filtered):.1f} ms")


if __name__ == "__main__":
    main()
