"""Campaign launch over 100,000 active grants: time ``campaign_launch_run`` (the background task's
body: items in keyset-paginated chunks, one email per reviewer, one audit event) and its peak
memory. Target: at most 60 s on SQLite and on PostgreSQL.

    DATABASE_URL=sqlite:////tmp/bench_campaigns.sqlite3 python -m benchmarks campaign_launch
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> python -m benchmarks campaign_launch

It migrates the database of ``DATABASE_URL`` and adds its data once (users ``bench_c_*``);
run it on a database of its own, never on one holding real data.
Environment: BENCH_GRANTS (100000), BENCH_OWNERS (500), BENCH_RUNS (3).
"""

from __future__ import annotations

import os
import resource
import statistics
import time
import tracemalloc
from typing import Any


def _bench_scopes(system: Any, count: int) -> list[Any]:
    """The bench system's scopes (made once), one grant of each per integration."""
    from inventory.models import Scope

    return [
        Scope.objects.get_or_create(
            system=system, name=f"s{i}", defaults={"code": f"benchc:s{i}", "sensitivity": "high"}
        )[0]
        for i in range(count)
    ]


def _bench_owners(count: int) -> list[Any]:
    """The ``bench_c_*`` users (made once), who own the bench integrations."""
    from governance.models import User

    existing = set(User.objects.filter(username__startswith="bench_c_").values_list("username", flat=True))
    User.objects.bulk_create(
        [
            User(username=f"bench_c_{i}", email=f"bench_c_{i}@example.com")
            for i in range(count)
            if f"bench_c_{i}" not in existing
        ]
    )
    return list(User.objects.filter(username__startswith="bench_c_").order_by("pk"))


def _add_integrations(owners: list[Any], scopes: list[Any], count: int) -> None:
    """``count`` active integrations owned in turn by ``owners``, each with a grant of every scope,
    in batches."""
    from inventory.models import Grant, Integration

    batch = 5000
    for start in range(0, count, batch):
        size = min(batch, count - start)
        made = Integration.objects.bulk_create(
            [
                Integration(
                    name=f"Bench bot {start + i}",
                    kind="agent",
                    purpose="benchmark",
                    status="active",
                    risk_tier="high",
                    business_owner=owners[(start + i) % len(owners)],
                    technical_owner=owners[(start + i + 1) % len(owners)],
                )
                for i in range(size)
            ]
        )
        if made and made[0].pk is None:  # backends without RETURNING ids
            made = list(Integration.objects.filter(name__startswith="Bench bot ").order_by("-pk")[:size])
        Grant.objects.bulk_create(
            [
                Grant(integration=integration, scope=scope, source_type="benchmark", source_id="0")
                for integration in made
                for scope in scopes
            ],
            batch_size=5000,
        )


def seed() -> tuple[Any, Any, int, int]:
    """Migrate, then add (once) ``BENCH_GRANTS`` active grants of ``BENCH_OWNERS`` owners in the
    system ``benchc``; returns the system, the bench admin, the active grant count and owners."""
    from django.core.management import call_command

    from governance.models import User
    from governance.roles import roles_sync
    from inventory.models import Grant, ResourceSystem

    n_grants = int(os.environ.get("BENCH_GRANTS", "100000"))
    n_owners = int(os.environ.get("BENCH_OWNERS", "500"))
    per_integration = 5
    call_command("migrate", verbosity=0)
    roles_sync()

    system, _ = ResourceSystem.objects.get_or_create(code="benchc", defaults={"name": "Bench campaigns"})
    scopes = _bench_scopes(system, per_integration)
    have = Grant.objects.filter(scope__system=system).count()  # ended ones too: an interrupted deadline run
    if have < n_grants:
        started = time.perf_counter()
        owners = _bench_owners(n_owners)
        _add_integrations(owners, scopes, (n_grants - have + per_integration - 1) // per_integration)
        made = Grant.objects.filter(scope__system=system).count() - have
        print(f"created {made} grants in {time.perf_counter() - started:.1f} s")
    total = Grant.objects.filter(scope__system=system, status="active").count()

    admin = User.objects.get_or_create(username="bench_c_admin", defaults={"email": "bench_c_admin@example.com"})[0]
    return system, admin, total, n_owners


def bench_definition(name: str, system: Any, admin: Any, **values: Any) -> tuple[Any, Any]:
    """The benchmark's campaign definition ``name`` over the bench system (made once), reviewed by
    the business owners, and the system actor the benchmarks act as."""
    from approvals.campaigns import services
    from approvals.campaigns.models import CampaignDefinition
    from governance.actors import Actor

    actor = Actor.system(on_behalf_of=admin)
    definition = CampaignDefinition.objects.filter(name=name).first() or services.definition_save(
        actor=actor,
        values={
            "name": name,
            "owner": admin,
            "resource_systems": [system],
            "reviewer_rule": "business_owner",
            "duration_days": 14,
            **values,
        },
    )
    return actor, definition


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    import django

    django.setup()
    from django.db import connection

    from approvals.campaigns import services
    from approvals.campaigns.models import Campaign, ReviewItem

    runs = int(os.environ.get("BENCH_RUNS", "3"))
    system, admin, total, n_owners = seed()
    actor, definition = bench_definition("Benchmark launch", system, admin)

    def one_run(measure_memory: bool) -> tuple[float, int, int]:
        campaign = services.campaign_create(actor=actor, definition=definition)
        services.campaign_launch_request(actor=actor, campaign=campaign, enqueue=False)
        if measure_memory:
            tracemalloc.start()
        started = time.perf_counter()
        services.campaign_launch_run(campaign_id=campaign.pk)
        elapsed = time.perf_counter() - started
        peak = 0
        if measure_memory:
            _current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        items = ReviewItem.objects.filter(campaign=campaign).count()
        # Keep the database the same size for the next run.
        ReviewItem.objects.filter(campaign=campaign).delete()
        Campaign.objects.filter(pk=campaign.pk).update(status="closed")
        return elapsed, peak, items

    times = []
    for run in range(runs):
        elapsed, _peak, items = one_run(measure_memory=False)
        times.append(elapsed)
        print(f"run {run + 1}: {items} items in {elapsed:.2f} s")
        assert items == total, (items, total)
    mem_elapsed, peak, items = one_run(measure_memory=True)
    print(f"database: {connection.vendor}; grants selected: {total}; reviewers: {n_owners}")
    print(
        f"launch median {statistics.median(times):.2f} s over {runs} runs (min {min(times):.2f}, max {max(times):.2f}); "
        f"target <= 60 s"
    )
    print(
        f"peak Python allocations during a launch (tracemalloc, run took {mem_elapsed:.2f} s traced): "
        f"{peak / 1024 / 1024:.1f} MiB; process max RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
