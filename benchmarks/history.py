"""An integration's history with 100,000 changes (history rows and audit events, interleaved in
time, a tenth of them tied to the same instant across the sources): time the API's first page,
a page deep in the middle, and the detail page's timeline (first and deep), with the median of
N requests each (target: at most 200 ms) and the queries per request.

    DATABASE_URL=sqlite:////tmp/bench_history.sqlite3 python -m benchmarks history
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> python -m benchmarks history

It migrates the database of ``DATABASE_URL`` and adds its data once (user ``bench_h_owner``,
integration "History bench"), with plain INSERTs: the audit events it adds carry made-up hashes,
so never run it on a database whose audit chain matters. Environment: BENCH_CHANGES (100000),
BENCH_RUNS (20), BENCH_PAGE (50).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.test import Client

    from inventory.models import Integration

_CHUNK = 5000


def _integration() -> Integration:
    """The benchmark's integration, registered through the service once."""
    from django.core.management import call_command

    from governance.models import User
    from governance.roles import Role, roles_sync
    from inventory import services
    from inventory.models import Integration, ResourceSystem, Scope

    call_command("migrate", verbosity=0)
    roles_sync()
    owner, created = User.objects.get_or_create(
        username="bench_h_owner", defaults={"email": "bench_h_owner@example.com"}
    )
    if created:
        from django.contrib.auth.models import Group

        owner.groups.add(*Group.objects.filter(name=Role.BUSINESS_USER))
    existing = Integration.objects.filter(name="History bench", business_owner=owner).first()
    if existing:
        return existing
    system, _ = ResourceSystem.objects.get_or_create(code="benchhist", defaults={"name": "Bench history"})
    scope, _ = Scope.objects.get_or_create(
        system=system, name="read", defaults={"code": "benchhist:read", "sensitivity": "low"}
    )
    return services.integration_register(
        actor=owner,
        values={
            "name": "History bench",
            "kind": "chatbot",
            "purpose": "Changes a lot.",
            "business_owner": owner,
            "autonomy": "suggest_only",
            "workload_identity": "spiffe://example.org/ns/ai/sa/history-bench",
            "requested_scopes": [scope],
        },
    )


def _insert(model: Any, rows: Iterator[dict[str, Any]]) -> int:
    """Plain multi-row INSERTs of ``rows`` (attribute name -> value) into ``model``'s table,
    ``_CHUNK`` at a time; the values prepared by the fields as a save would."""
    from django.db import connection, transaction

    fields = list(model._meta.concrete_fields)
    written = 0
    batch: list[list[Any]] = []

    def flush() -> None:
        columns = ", ".join(connection.ops.quote_name(field.column) for field in used)
        sql = f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(used))})"
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, batch)
        batch.clear()

    used: list[Any] = []
    for row in rows:
        if not used:
            used = [field for field in fields if field.attname in row]
        batch.append([field.get_db_prep_save(row[field.attname], connection) for field in used])
        written += 1
        if len(batch) == _CHUNK:
            flush()
    if batch:
        flush()
    return written


def _seed(integration: Integration, changes: int) -> None:
    """Half the changes as history rows (each with its requested scope, as the service writes
    them), half as audit events about the integration, two seconds apart, all before the
    integration was registered; every tenth event at the very instant of a history row."""
    from governance.models import AuditEvent

    historical = integration.history.model
    have = (
        historical.objects.filter(id=integration.pk).count()
        + AuditEvent.objects.filter(target_type="inventory.integration", target_id=str(integration.pk)).count()
    )
    if have >= changes:
        return
    started = time.perf_counter()
    template = historical.objects.filter(id=integration.pk).order_by("history_id").values().first()
    assert template is not None
    base = template["history_date"] - timedelta(days=1)
    template.pop("history_id")
    halves = (changes - have + 1) // 2
    history_rows = (
        {
            **template,
            "history_date": base - timedelta(seconds=2 * number),
            "history_type": "~",
            "purpose": f"Changes a lot ({number}).",
        }
        for number in range(halves)
    )
    _insert_history(historical, integration, history_rows, base)
    _insert(AuditEvent, _events(integration, base, halves, template["history_user_id"]))
    print(f"added {2 * halves} changes in {time.perf_counter() - started:.1f} s")


def _insert_history(historical: Any, integration: Integration, rows: Iterator[dict[str, Any]], base: datetime) -> None:
    """The history ``rows``, then the requested scopes at each of them (those of the latest row)."""
    scope_rows = historical._meta.get_field("historicalintegration_requested_scopes").related_model
    latest = (
        historical.objects.filter(id=integration.pk).order_by("-history_id").values_list("history_id", flat=True)[0]
    )
    scopes = list(scope_rows.objects.filter(history_id=latest).values("id", "scope_id"))
    assert scopes, "the integration was registered with a requested scope"
    _insert(historical, rows)
    added = historical.objects.filter(id=integration.pk, history_date__lte=base).values_list("history_id", flat=True)
    _insert(
        scope_rows,
        (
            {
                "id": scope["id"],
                "history_id": history_id,
                "integration_id": integration.pk,
                "scope_id": scope["scope_id"],
            }
            for history_id in added.iterator()
            for scope in scopes
        ),
    )


def _events(integration: Integration, base: datetime, count: int, user_id: int | None) -> Iterator[dict[str, Any]]:
    for number in range(count):
        tied = number % 10 == 0
        yield {
            "created_at": base - timedelta(seconds=2 * number + (0 if tied else 1)),
            "actor_id": user_id,
            "actor_username": "bench_h_owner",
            "actor_kind": "human",
            "owner_id": user_id,
            "owner_username": "bench_h_owner",
            "action": "integration.changed",
            "target_type": "inventory.integration",
            "target_id": str(integration.pk),
            "target_repr": str(integration)[:255],
            "before": {"purpose": f"Changes a lot ({number + 1})."},
            "after": {"purpose": f"Changes a lot ({number})."},
            "reason": "",
            "request_id": "",
            "client_ip": None,
            "prev_hash": f"bench-{integration.pk}-{number - 1}",
            "hash": f"bench-{integration.pk}-{number}",
        }


def _client(integration: Integration) -> Client:
    """A signed-in client keeping one connection for the whole run (as CONN_MAX_AGE does in
    production), warmed up."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections
    from django.test import Client

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    client = Client()
    client.force_login(integration.business_owner)
    for _ in range(2):
        assert client.get(f"/api/v1/integrations/{integration.pk}/history/").status_code == 200
    return client


def _measured(client: Client, path: str, runs: int) -> tuple[list[float], float, int, int]:
    """Milliseconds of each of ``runs`` requests of ``path`` (sorted), the median CPU time of
    this process (the database server's not counted on PostgreSQL), the queries of one and the
    entries it showed (API) or its length in bytes (page)."""
    from django.db import connection

    executed: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(path)
    assert response.status_code == 200, response.content[:500]
    shown = len(response.json().get("results", [None])) if path.startswith("/api/") else len(response.content)
    timings, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        assert client.get(path).status_code == 200
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return sorted(timings), statistics.median(cpu), len(executed), shown


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from governance.models import AuditEvent
    from inventory import timeline

    changes = int(os.environ.get("BENCH_CHANGES", "100000"))
    runs = int(os.environ.get("BENCH_RUNS", "20"))
    size = int(os.environ.get("BENCH_PAGE", "50"))
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    integration = _integration()
    _seed(integration, changes)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh statistics after the bulk load, as autovacuum would have
    historical = integration.history.model
    rows = historical.objects.filter(id=integration.pk).order_by("-history_date", "-history_id")
    middle = rows.values_list("history_date", "history_id")[rows.count() // 2]
    deep = timeline.Cursor(timeline.Position(middle[0], timeline.HISTORY_RANK, middle[1])).encode()
    client = _client(integration)
    api = f"/api/v1/integrations/{integration.pk}/history/?page_size={size}"
    detail = f"/inventory/{integration.pk}/"
    total = (
        rows.count()
        + AuditEvent.objects.filter(target_type="inventory.integration", target_id=str(integration.pk)).count()
    )
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"history of one integration, {connection.vendor}, {total} changes, page of {size}, load average {load}")
    for name, path in [
        ("API integration (not the history: what any request costs here)", f"/api/v1/integrations/{integration.pk}/"),
        ("API first page", api),
        ("API deep page (middle)", f"{api}&cursor={deep}"),
        ("detail page, newest changes", detail),
        ("detail page, deep changes", f"{detail}?changes={deep}"),
    ]:
        timings, cpu, queries, shown = _measured(client, path, runs)
        what = f"{shown} entries" if path.startswith("/api/") else f"{shown // 1024} KiB"
        print(
            f"{name}: median {statistics.median(timings):.1f} ms, p90 {timings[int(len(timings) * 0.9) - 1]:.1f} ms, "
            f"min {timings[0]:.1f} ms, max {timings[-1]:.1f} ms, this process's CPU {cpu:.1f} ms, {queries} SQL queries, {what}"
        )
    print(f"load average after: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
