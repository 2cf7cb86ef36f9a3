"""The inventory pages at scale: 100,000 integrations holding 1,000,000 grants. Times the list page,
a filtered search, a text search, an owner's list, a detail page and the list endpoint with the
Django test client and reports the median and 95th percentile of each (target: median at most
200 ms) and its SQL query count.

    DATABASE_URL=sqlite:////tmp/inventory_bench.sqlite3 python -m benchmarks inventory_lists
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/inventory_bench python -m benchmarks inventory_lists

It migrates the database of ``DATABASE_URL`` and adds its rows once (users ``bench_owner_*`` and
``bench_reviewer``); run it on a database of its own, never on one holding real data. The rows are
written with bulk inserts (going through the services would take hours; this measures reading).
Environment: BENCH_INTEGRATIONS (100000), BENCH_GRANTS_PER (10), BENCH_OWNERS (1000), BENCH_RUNS (30).
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

KINDS = ["chatbot", "agent", "plugin", "automation", "embedded_model", "other"]
TIERS = ["low", "medium", "high", "critical"]
STATUSES = ["active", "active", "active", "pending", "draft", "suspended", "retired"]
CLASSES = [["internal"], ["internal", "confidential"], ["public"], ["restricted"]]
VENDORS = ["", "", "OpenAI", "Anthropic", "Zapier", "Microsoft", "Google"]
WORDS = ["invoice", "support", "sales", "hr", "finance", "legal", "code", "mail"]


def _user(username: str, role: str) -> Any:
    from django.contrib.auth.models import Group

    from governance.models import User

    user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
    user.groups.set(Group.objects.filter(name=role))
    return user


def _bench_scopes(count: int) -> list[Any]:
    """The ``bench`` system's scopes (made once), of every sensitivity and access."""
    from inventory.models import ResourceSystem, Scope

    system, _ = ResourceSystem.objects.get_or_create(code="bench", defaults={"name": "Bench system"})
    return [
        Scope.objects.get_or_create(
            system=system,
            name=f"s{i}",
            defaults={"code": f"bench:s{i}", "sensitivity": TIERS[i % 4], "access": ["read", "write", "admin"][i % 3]},
        )[0]
        for i in range(count)
    ]


def _bench_integration(i: int, owners: list[Any], now: Any) -> Any:
    from inventory.models import Integration
    from inventory.services import search_text_of

    integration = Integration(
        name=f"Bench {WORDS[i % 8]} integration {i:06}",
        kind=KINDS[i % 6],
        purpose=f"Benchmark integration number {i} handling {WORDS[(i * 7) % 8]} work.",
        vendor=VENDORS[i % 7],
        business_owner=owners[i % len(owners)],
        technical_owner=owners[(i + 1) % len(owners)],
        status=STATUSES[i % 7],
        risk_tier=TIERS[(i // 7) % 4],
        risk_score=(i * 13) % 100,
        risk_factors=[{"code": "autonomous", "points": 20, "reason": "It acts autonomously."}],
        data_classifications=CLASSES[i % 4],
        tags=[WORDS[i % 8]],
        ticket_ref=f"CHG-{i}",
        created_at=now,
        updated_at=now,
    )
    integration.search_text = search_text_of(integration)
    return integration


def _add_integrations(start: int, count: int, owners: list[Any], now: Any) -> None:
    from django.db import transaction

    from inventory.models import Integration

    batch = 5000
    for first in range(start, count, batch):
        rows = [_bench_integration(i, owners, now) for i in range(first, min(first + batch, count))]
        with transaction.atomic():
            Integration.objects.bulk_create(rows, batch_size=1000)


def _add_scopes_and_grants(scopes: list[Any], grants_per: int, now: Any) -> None:
    """Two requested scopes per bench integration, and ``grants_per`` active grants of those
    that hold none yet (one INSERT ... SELECT)."""
    from django.db import connection, transaction

    from inventory.models import Grant, Integration

    ids = list(Integration.objects.filter(name__startswith="Bench ").values_list("pk", flat=True))
    through = Integration.requested_scopes.through
    grant_table = Grant._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(ids), 20_000):
            through.objects.bulk_create(
                [
                    through(integration_id=pk, scope_id=scopes[(pk + k) % len(scopes)].pk)
                    for pk in ids[start : start + 20_000]
                    for k in range(2)
                ],
                batch_size=5000,
                ignore_conflicts=True,
            )
        scope_ids = [s.pk for s in scopes[:grants_per]]
        placeholders = ",".join(["%s"] * len(scope_ids))
        cursor.execute(
            f"INSERT INTO {grant_table} (integration_id, scope_id, status, source_type, source_id, granted_at, end_reason) "
            f"SELECT i.id, s.id, 'active', 'bench', '1', %s, '' FROM inventory_integration i "
            f"CROSS JOIN inventory_scope s WHERE i.name LIKE 'Bench %%' AND s.id IN ({placeholders}) "
            f"AND NOT EXISTS (SELECT 1 FROM {grant_table} g WHERE g.integration_id = i.id)",
            [now, *scope_ids],
        )


def seed(*, integrations: int, grants_per: int, owners: int) -> None:
    """Migrate, then add (once) the bench integrations, their owners, scopes and grants."""
    from django.core.management import call_command
    from django.utils import timezone

    from governance.roles import Role, roles_sync
    from inventory.models import Integration

    call_command("migrate", verbosity=0)
    roles_sync()
    have = Integration.objects.filter(name__startswith="Bench ").count()
    if have >= integrations:
        return
    started = time.perf_counter()
    people = [_user(f"bench_owner_{i}", Role.BUSINESS_USER) for i in range(owners)]
    scopes = _bench_scopes(max(grants_per, 20))
    now = timezone.now()
    _add_integrations(have, integrations, people, now)
    _add_scopes_and_grants(scopes, grants_per, now)
    print(f"seeded in {time.perf_counter() - started:.0f} s")


def _measure(client: Any, label: str, user: Any, url: str, runs: int) -> None:
    """Render ``url`` as ``user`` once to count its queries, then ``runs`` times to time it."""
    from django.db import connection

    client.force_login(user)
    client.get(url)  # warm up
    queries: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    assert b"No integrations match" not in response.content, f"{url} shows no row: not a fair measure"
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[int(len(times) * 0.95) - 1]
    print(f"{label:32} median {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms   {len(queries)} queries   {url}")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections, connection
    from django.test import Client

    from governance.models import User
    from governance.roles import Role
    from inventory.models import Grant, Integration

    seed(
        integrations=int(os.environ.get("BENCH_INTEGRATIONS", "100000")),
        grants_per=int(os.environ.get("BENCH_GRANTS_PER", "10")),
        owners=int(os.environ.get("BENCH_OWNERS", "1000")),
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    reviewer = _user("bench_reviewer", Role.REVIEWER)
    owner = User.objects.get(username="bench_owner_0")
    target = Integration.objects.filter(name__startswith="Bench ", business_owner=owner).order_by("id").first()
    assert target is not None
    # The test client only needs its host allowed (not setup_test_environment, whose instrumented
    # template rendering would be measured too); one connection for the whole run, as
    # CONN_MAX_AGE keeps it in production.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    print(f"{connection.vendor}: {Integration.objects.count()} integrations, {Grant.objects.count()} grants")
    runs = int(os.environ.get("BENCH_RUNS", "30"))
    client = Client()
    for label, user, url in (
        ("list page (reviewer sees all)", reviewer, "/inventory/"),
        ("filtered search", reviewer, "/inventory/?q=invoice&status=active&risk_tier=high&kind=plugin"),
        ("text search only", reviewer, "/inventory/?q=invoice"),
        ("list page (business owner)", owner, "/inventory/"),
        ("detail page", reviewer, f"/inventory/{target.pk}/"),
        ("list endpoint", reviewer, "/api/v1/integrations/?page_size=50"),
    ):
        _measure(client, label, user, url, runs)


if __name__ == "__main__":
    main()
