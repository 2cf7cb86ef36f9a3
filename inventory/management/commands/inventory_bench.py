"""Benchmark of the inventory pages at scale: seeds 100,000 integrations holding 1,000,000 grants
(once, in bulk SQL), then times the list page, a filtered search and a detail page with the
Django test client and reports the median and 95th percentile (target: median at most 200 ms).

    DATABASE_URL=sqlite:////tmp/inventory_bench.sqlite3 python manage.py inventory_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/inventory_bench python manage.py inventory_bench

Run it on a database of its own (it migrates it and adds its rows), never on one holding real
data. The rows are written with INSERT ... SELECT: going through the services would take hours,
and the benchmark is about reading.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.test import Client
from django.test.utils import setup_test_environment
from django.utils import timezone

from governance.models import User
from governance.roles import Role, roles_sync
from inventory.models import Integration, ResourceSystem, Scope
from inventory.services import search_text_of

KINDS = ["chatbot", "agent", "plugin", "automation", "embedded_model", "other"]
TIERS = ["low", "medium", "high", "critical"]
STATUSES = ["active", "active", "active", "pending", "draft", "suspended", "retired"]
CLASSES = [["internal"], ["internal", "confidential"], ["public"], ["restricted"]]
VENDORS = ["", "", "OpenAI", "Anthropic", "Zapier", "Microsoft", "Google"]


def _with_search_text(integ: Integration) -> Integration:
    integ.search_text = search_text_of(integ)
    return integ


class Command(BaseCommand):
    help = "Seed 100k integrations / 1M grants (once) and time the inventory list, search and detail pages."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--integrations", type=int, default=100_000)
        parser.add_argument("--grants-per", type=int, default=10)
        parser.add_argument("--owners", type=int, default=1000)
        parser.add_argument("--runs", type=int, default=30)

    def handle(self, *args: Any, **opts: Any) -> None:
        setup_test_environment()
        call_command("migrate", verbosity=0)
        roles_sync()
        n, per = opts["integrations"], opts["grants_per"]
        self._seed(n=n, per=per, owners=opts["owners"])
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        reviewer = self._user("bench_reviewer", Role.REVIEWER)
        owner = User.objects.get(username="bench_owner_0")
        client = Client()
        target = Integration.objects.filter(name__startswith="Bench ", business_owner=owner).order_by("id").first()
        assert target is not None
        cases = [
            ("list page (reviewer sees all)", reviewer, "/inventory/"),
            ("filtered search", reviewer, "/inventory/?q=invoice&status=active&risk_tier=high&kind=plugin"),
            ("text search only", reviewer, "/inventory/?q=invoice"),
            ("list page (business owner)", owner, "/inventory/"),
            ("detail page", reviewer, f"/inventory/{target.pk}/"),
            ("list endpoint", reviewer, "/api/v1/integrations/?page_size=50"),
        ]
        self.stdout.write(
            f"{connection.vendor}: {Integration.objects.count()} integrations, "
            f"{Integration.grants.rel.related_model.objects.count()} grants"
        )
        for label, user, url in cases:
            client.force_login(user)
            client.get(url)  # warm up
            times = []
            queries: list[str] = []

            def count(
                execute: Any, sql: str, params: Any, many: bool, context: Any, queries: list[str] = queries
            ) -> Any:
                queries.append(sql)
                return execute(sql, params, many, context)

            # Counted with a wrapper: the test client's request_started signal resets connection.queries.
            with connection.execute_wrapper(count):
                response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            assert b"No integrations match" not in response.content, f"{url} shows no row: not a fair measure"
            for _ in range(opts["runs"]):
                started = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            p95 = times[int(len(times) * 0.95) - 1]
            self.stdout.write(
                f"{label:32} median {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms   "
                f"{len(queries)} queries   {url}"
            )

    def _user(self, username: str, role: str) -> User:
        from django.contrib.auth.models import Group

        user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        user.groups.set(Group.objects.filter(name=role))
        return user

    def _seed(self, *, n: int, per: int, owners: int) -> None:
        have = Integration.objects.filter(name__startswith="Bench ").count()
        if have >= n:
            return
        started = time.perf_counter()
        people = [self._user(f"bench_owner_{i}", Role.BUSINESS_USER) for i in range(owners)]
        system, _ = ResourceSystem.objects.get_or_create(code="bench", defaults={"name": "Bench system"})
        scopes = []
        for i in range(max(per, 20)):
            scope, _ = Scope.objects.get_or_create(
                system=system,
                name=f"s{i}",
                defaults={
                    "code": f"bench:s{i}",
                    "sensitivity": TIERS[i % 4],
                    "access": ["read", "write", "admin"][i % 3],
                },
            )
            scopes.append(scope)
        now = timezone.now()
        words = ["invoice", "support", "sales", "hr", "finance", "legal", "code", "mail"]
        batch = 5000
        for start in range(have, n, batch):
            rows = [
                _with_search_text(
                    Integration(
                        name=f"Bench {words[i % 8]} integration {i:06}",
                        kind=KINDS[i % 6],
                        purpose=f"Benchmark integration number {i} handling {words[(i * 7) % 8]} work.",
                        vendor=VENDORS[i % 7],
                        business_owner=people[i % owners],
                        technical_owner=people[(i + 1) % owners],
                        status=STATUSES[i % 7],
                        risk_tier=TIERS[(i // 7) % 4],
                        risk_score=(i * 13) % 100,
                        risk_factors=[{"code": "autonomous", "points": 20, "reason": "It acts autonomously."}],
                        data_classifications=CLASSES[i % 4],
                        tags=[words[i % 8]],
                        ticket_ref=f"CHG-{i}",
                        created_at=now,
                        updated_at=now,
                    )
                )
                for i in range(start, min(start + batch, n))
            ]
            with transaction.atomic():
                Integration.objects.bulk_create(rows, batch_size=1000)
        ids = list(Integration.objects.filter(name__startswith="Bench ").values_list("pk", flat=True))
        through = Integration.requested_scopes.through
        grant_table = Integration.grants.rel.related_model._meta.db_table
        with transaction.atomic(), connection.cursor() as cursor:
            for start in range(0, len(ids), 20_000):
                chunk = ids[start : start + 20_000]
                through.objects.bulk_create(
                    [
                        through(integration_id=pk, scope_id=scopes[(pk + k) % len(scopes)].pk)
                        for pk in chunk
                        for k in range(2)
                    ],
                    batch_size=5000,
                    ignore_conflicts=True,
                )
            scope_ids = [s.pk for s in scopes[:per]]
            placeholders = ",".join(["%s"] * len(scope_ids))
            cursor.execute(
                f"INSERT INTO {grant_table} (integration_id, scope_id, status, source_type, source_id, granted_at, end_reason) "
                f"SELECT i.id, s.id, 'active', 'bench', '1', %s, '' FROM inventory_integration i "
                f"CROSS JOIN inventory_scope s WHERE i.name LIKE 'Bench %%' AND s.id IN ({placeholders}) "
                f"AND NOT EXISTS (SELECT 1 FROM {grant_table} g WHERE g.integration_id = i.id)",
                [now, *scope_ids],
            )
        self.stdout.write(f"seeded in {time.perf_counter() - started:.0f} s")
