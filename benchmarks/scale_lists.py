"""Every list at the scale of a 5,000-person company on PostgreSQL: 500,000 integrations,
5,000,000 grants, 50,000 access requests waiting for one reviewer. Times each list page and list
endpoint (the inventory, its filters and word search, an owner's list, the detail page, the
grants, the reviewer queue and its endpoint, the request list, the dashboard) with the Django
test client, signed in as the role that uses it, and prints the median and 95th percentile
(target: median at most 200 ms) and the SQL queries of each; then the sizing of the database:
rows, table and index size per table, and the whole database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scale_bench python -m benchmarks scale_lists
    DATABASE_URL=... python -m benchmarks.scale_lists --reseed     # drop, recreate, seed again

The data is written once by ``benchmarks._scale_data`` (about ten minutes on two cores) and
reused by later runs; ``--reseed`` (or BENCH_RESEED=1) starts over. Run it on a database of its
own whose name contains "bench", never on one holding real data.
Environment: BENCH_RUNS (15), and the sizes of ``benchmarks._scale_data`` (BENCH_INTEGRATIONS,
BENCH_GRANTS_PER, BENCH_PEOPLE, BENCH_PENDING, BENCH_DECIDED).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

# Tables the sizing reports, in the order a reader looks for them.
SIZED_TABLES = [
    "inventory_integration",
    "inventory_grant",
    "inventory_integration_requested_scopes",
    "inventory_historicalintegration",
    "approvals_accessrequest",
    "approvals_accessrequest_requested_scopes",
    "approvals_requeststep",
    "approvals_stepassignment",
    "governance_user",
    "governance_auditevent",
    "controls_metricsnapshot",
]


def load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def count_queries(client: Any, url: str) -> tuple[int, int, float]:
    """(status, number of SQL queries, ms spent waiting for them) of one GET of ``url``: on a
    loaded machine the SQL time shows what the database itself costs."""
    from django.db import connection

    spent: list[float] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent.append((time.perf_counter() - started) * 1000)

    with connection.execute_wrapper(count):
        response = client.get(url)
    return response.status_code, len(spent), sum(spent)


def measure(client: Any, label: str, url: str, runs: int) -> dict[str, Any]:
    """One warm-up, one counted GET, then ``runs`` timed ones; what the table prints."""
    warm = client.get(url)
    assert warm.status_code == 200, (url, warm.status_code)
    status, queries, sql_ms = count_queries(client, url)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "label": label,
        "url": url,
        "median": statistics.median(times),
        "p95": times[max(int(len(times) * 0.95) - 1, 0)],
        "queries": queries,
        "sql_ms": sql_ms,
        "status": status,
        "load": os.getloadavg()[0],
    }


def cases() -> list[tuple[str, str, str]]:
    """(role's username, label, url) of every list measured."""
    from benchmarks import _scale_data as data
    from governance.models import User
    from inventory.models import Integration

    owner = User.objects.get(username="scale_user_00042")
    mine = Integration.objects.filter(business_owner=owner).order_by("id").values_list("pk", flat=True).first()
    admin, reviewer, auditor = data.IAM_ADMIN, data.REVIEWER, data.AUDITOR
    owned = owner.username
    return [
        # The floor on this machine: an empty list's page of the API, what every request costs.
        (admin, "floor: an empty API list", "/api/v1/ownership-transfers/"),
        (admin, "inventory page", "/inventory/"),
        (auditor, "inventory page (auditor)", "/inventory/"),
        (admin, "inventory, status filter", "/inventory/?status=active"),
        (admin, "inventory, status+tier+kind", "/inventory/?status=active&risk_tier=high&kind=plugin"),
        (admin, "inventory, text search (broad)", "/inventory/?q=invoice"),
        (admin, "inventory, text search (narrow)", "/inventory/?q=000042"),
        (admin, "inventory, search + filters", "/inventory/?q=invoice&status=active&risk_tier=high&kind=plugin"),
        (admin, "inventory, sorted by risk", "/inventory/?ordering=-risk_score"),
        (admin, "inventory, owner filter", f"/inventory/?owner={owned}"),
        (admin, "inventory, page 200", "/inventory/?page=200"),
        (owned, "owner's inventory page", "/inventory/"),
        (owned, "owner's text search", "/inventory/?q=invoice"),
        (owned, "detail page (owner)", f"/inventory/{mine}/"),
        (admin, "detail page (IAM admin)", f"/inventory/{mine}/"),
        (admin, "orphaned integrations page", "/inventory/orphaned/"),
        (admin, "API integrations", "/api/v1/integrations/"),
        (admin, "API integrations, filters", "/api/v1/integrations/?status=active&risk_tier=high&kind=plugin"),
        (admin, "API integrations, q", "/api/v1/integrations/?q=invoice"),
        (owned, "API integrations (owner)", "/api/v1/integrations/"),
        (admin, "API grants", "/api/v1/grants/"),
        (admin, "API grants, active", "/api/v1/grants/?active=true"),
        (admin, "API grants, one scope", "/api/v1/grants/?scope=scale07:Perm03"),
        (admin, "API grants, one integration", f"/api/v1/grants/?integration={mine}"),
        (owned, "API grants (owner)", "/api/v1/grants/"),
        (reviewer, "reviewer queue page", "/approvals/queue/?view=cards"),
        (reviewer, "reviewer queue, low+overdue", "/approvals/queue/?tier=low&overdue=1"),
        (reviewer, "reviewer queue, table by risk", "/approvals/queue/?view=table&sort=risk"),
        (reviewer, "API queue (assigned_to_me)", "/api/v1/access-requests/?assigned_to_me=true"),
        (admin, "API access requests", "/api/v1/access-requests/"),
        (admin, "request list page", "/approvals/requests/"),
        (admin, "dashboard", "/dashboard/"),
        (reviewer, "home page (reviewer)", "/"),
    ]


def measure_all(runs: int) -> list[dict[str, Any]]:
    from django.conf import settings
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections
    from django.test import Client

    from governance.models import User

    # The test client only needs its host allowed (setup_test_environment's instrumented
    # template rendering would be measured too); one connection for the run, as CONN_MAX_AGE
    # keeps it in production.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    clients: dict[str, Client] = {}
    results = []
    for username, label, url in cases():
        if username not in clients:
            clients[username] = Client()
            clients[username].force_login(User.objects.get(username=username))
        result = measure(clients[username], label, url, runs)
        results.append(result)
        print(
            f"{label:34} {result['median']:7.1f} ms  p95 {result['p95']:7.1f} ms  {result['queries']:3} queries "
            f"(SQL {result['sql_ms']:6.1f} ms)  load {result['load']:5.2f}  {url}",
            flush=True,
        )
    return results


def sizing() -> None:
    """Rows (exact), table and index size of each big table, and the database's size."""
    from django.db import connection

    print("\nsizing (PostgreSQL)")
    print(f"{'table':42} {'rows':>11} {'table':>9} {'indexes':>9} {'total':>9}  indexes")
    with connection.cursor() as cursor:
        for table in SIZED_TABLES:
            cursor.execute(
                f"SELECT (SELECT count(*) FROM {table}), pg_size_pretty(pg_table_size(%s::regclass)), "
                "pg_size_pretty(pg_indexes_size(%s::regclass)), pg_size_pretty(pg_total_relation_size(%s::regclass)), "
                "(SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass)",
                [table, table, table, table],
            )
            rows, table_size, index_size, total, indexes = cursor.fetchone()
            print(f"{table:42} {rows:>11,} {table_size:>9} {index_size:>9} {total:>9}  {indexes}")
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        print(f"database total: {cursor.fetchone()[0]}")
        cursor.execute(
            "SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_index i ON i.indexrelid = c.oid WHERE i.indrelid IN ('inventory_integration'::regclass, "
            "'inventory_grant'::regclass) ORDER BY pg_relation_size(c.oid) DESC"
        )
        print("indexes of the two big tables: " + ", ".join(f"{name} {size}" for name, size in cursor.fetchall()))


def coverage_task() -> None:
    """The hourly coverage task (every control's evidence counted), whose stored counts the
    dashboard and the home pages read: run once first, as production's schedule would have."""
    from governance.controls import dashboard_panels

    started = time.perf_counter()
    written = dashboard_panels.coverage_snapshot()
    print(f"hourly coverage task: {time.perf_counter() - started:.1f} s, {written} rows (load {load()})")


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    import django

    django.setup()
    from django.db import connection

    from benchmarks import _scale_data

    fresh = "--reseed" in (argv or []) or os.environ.get("BENCH_RESEED") == "1"
    _scale_data.seed(fresh=fresh)
    runs = int(os.environ.get("BENCH_RUNS", "15"))
    coverage_task()
    print(f"{connection.vendor} {connection.settings_dict['NAME']}; load average {load()} on {os.cpu_count()} CPUs")
    results = measure_all(runs)
    over = [result["label"] for result in results if result["median"] > 200]
    print(f"\n{len(results)} lists, median of {runs} runs each; over 200 ms: {', '.join(over) or 'none'}")
    sizing()
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main(sys.argv[1:])
