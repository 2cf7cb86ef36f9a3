"""Campaign launch: time ``campaign_launch_run`` (the background task's body: one
``INSERT ... SELECT`` per chunk of grants, then one email per reviewer, the items' events and one
audit event) and the process's peak memory (RSS high-water mark of the launch alone), with the
load average beside each figure. Targets on PostgreSQL: 100,000 items <= 5 s, 1,000,000 items
<= 60 s with the same peak memory as 100,000.

    DATABASE_URL=sqlite:////tmp/bench_campaigns.sqlite3 python -m benchmarks campaign_launch
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> python -m benchmarks campaign_launch
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> python -m benchmarks.campaign_launch --items 1000000 --runs 1

It migrates the database of ``DATABASE_URL`` and adds its data once per size (users ``bench_c_*``,
a resource system per size); run it on a database of its own, never on one holding real data.
On PostgreSQL the integrations and grants are copied from a template row with
``generate_series`` (a million grants in well under a minute) and the tables analysed, as a
production database's are. Environment: BENCH_ITEMS or BENCH_GRANTS (100000), BENCH_OWNERS (500),
BENCH_RUNS (3).
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from typing import Any


def _bench_scopes(system: Any, count: int) -> list[Any]:
    """The bench system's scopes (made once), one grant of each per integration."""
    from inventory.models import Scope

    return [
        Scope.objects.get_or_create(
            system=system, name=f"s{i}", defaults={"code": f"{system.code}:s{i}", "sensitivity": "high"}
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


def _columns(model: Any) -> list[str]:
    return [field.column for field in model._meta.concrete_fields if not field.primary_key]


def _copy_integrations(owners: list[Any], scopes: list[Any], count: int) -> None:
    """PostgreSQL: ``count`` integrations copied from a template row (owned in turn by
    ``owners``), each with a grant of every scope copied from a template grant, in one statement
    per table and batch."""
    from django.db import connection, transaction

    from inventory.models import Grant, Integration, ResourceSystem, Scope

    template_system, _ = ResourceSystem.objects.get_or_create(code="benchc-template", defaults={"name": "Template"})
    template_scope = Scope.objects.get_or_create(
        system=template_system, name="t", defaults={"code": "benchc-template:t", "sensitivity": "high"}
    )[0]
    template = Integration.objects.filter(name="Bench template").first()
    if template is None:
        _add_integrations(owners[:1], [template_scope], 1)
        template = Integration.objects.filter(name__startswith="Bench bot ").order_by("-pk")[0]
        Integration.objects.filter(pk=template.pk).update(name="Bench template")
    template_grant = Grant.objects.filter(integration=template).first()
    quote = connection.ops.quote_name
    integration_columns = _columns(Integration)
    overrides = {
        "name": "'Bench bot ' || number",
        "business_owner_id": "(%s::bigint[])[number %% %s + 1]",
        "technical_owner_id": "(%s::bigint[])[(number + 1) %% %s + 1]",
    }
    chosen = ", ".join(overrides.get(column, f"template.{quote(column)}") for column in integration_columns)
    owner_ids = [owner.pk for owner in owners]
    grant_columns = _columns(Grant)
    grant_values = ", ".join(
        {"integration_id": "made.id", "scope_id": "scope.id"}.get(column, f"template.{quote(column)}")
        for column in grant_columns
    )
    batch = 50_000
    for start in range(0, count, batch):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"WITH made AS (INSERT INTO {quote(Integration._meta.db_table)}"
                f" ({', '.join(map(quote, integration_columns))}) SELECT {chosen}"
                f" FROM {quote(Integration._meta.db_table)} template, generate_series(%s, %s) AS number"
                f" WHERE template.id = %s RETURNING id)"
                f" INSERT INTO {quote(Grant._meta.db_table)} ({', '.join(map(quote, grant_columns))})"
                f" SELECT {grant_values} FROM made, {quote(Grant._meta.db_table)} template,"
                f" {quote(Scope._meta.db_table)} scope WHERE template.id = %s AND scope.id = ANY(%s)",
                [
                    owner_ids,
                    len(owner_ids),
                    owner_ids,
                    len(owner_ids),
                    start,
                    min(start + batch, count) - 1,
                    template.pk,
                    template_grant.pk if template_grant else 0,
                    [scope.pk for scope in scopes],
                ],
            )


def seed(grants: int | None = None) -> tuple[Any, Any, int, int]:
    """Migrate, then add (once) ``grants`` (``BENCH_ITEMS``/``BENCH_GRANTS``, 100,000) active grants
    of ``BENCH_OWNERS`` owners in a system of their own (``benchc`` for 100,000); returns the
    system, the bench admin, the active grant count and owners."""
    from django.core.management import call_command
    from django.db import connection

    from governance.models import User
    from governance.roles import roles_sync
    from inventory.models import Grant, ResourceSystem

    default = os.environ.get("BENCH_ITEMS") or os.environ.get("BENCH_GRANTS") or "100000"
    n_grants = grants or int(default)
    n_owners = int(os.environ.get("BENCH_OWNERS", "500"))
    per_integration = 5
    call_command("migrate", verbosity=0)
    roles_sync()

    code = "benchc" if n_grants == 100_000 else f"benchc-{n_grants}"
    system, _ = ResourceSystem.objects.get_or_create(code=code, defaults={"name": f"Bench campaigns {n_grants}"})
    scopes = _bench_scopes(system, per_integration)
    have = Grant.objects.filter(scope__system=system).count()  # ended ones too: an interrupted deadline run
    if have < n_grants:
        started = time.perf_counter()
        owners = _bench_owners(n_owners)
        missing = (n_grants - have + per_integration - 1) // per_integration
        if connection.vendor == "postgresql":
            _copy_integrations(owners, scopes, missing)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        else:
            _add_integrations(owners, scopes, missing)
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


def _reset_peak_rss() -> bool:
    """Start a new RSS high-water mark for this process (Linux); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def _status_mib(field: str) -> float | None:
    """A memory figure of this process from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _peak_rss_mib() -> float:
    """The RSS high-water mark since ``_reset_peak_rss`` (the process's lifetime one elsewhere)."""
    peak = _status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _start_rss() -> str:
    """The RSS a run starts from: the peak includes it (a previous run's cleanup can leave it higher)."""
    rss = _status_mib("VmRSS")
    return "" if rss is None else f" (RSS at its start {rss:.0f} MiB)"


def _cpu_seconds() -> tuple[float, float | None]:
    """CPU seconds used so far by this process and by its PostgreSQL backend (when the server
    runs on this machine and its process can be read; None otherwise). On a shared machine they
    say what the launch costs whatever the other jobs take."""
    from django.db import connection

    usage = resource.getrusage(resource.RUSAGE_SELF)
    backend = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            backend = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            backend = None
    return usage.ru_utime + usage.ru_stime, backend


def _cpu_used(before: Any) -> str:
    own, backend = _cpu_seconds()
    used = f"CPU: Python {own - before[0]:.2f} s"
    if backend is not None and before[1] is not None:
        used += f", PostgreSQL backend {backend - before[1]:.2f} s"
    return used


def _load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def _options(argv: list[str] | None) -> tuple[int | None, int]:
    import argparse

    parser = argparse.ArgumentParser(prog="benchmarks.campaign_launch")
    parser.add_argument("--items", type=int, default=None, help="grants selected, one item each (100000)")
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    options = parser.parse_args(argv or [])
    return options.items, options.runs


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    import django

    django.setup()
    from django.db import connection

    from approvals.campaigns import services
    from approvals.campaigns.models import Campaign, ReviewItem
    from approvals.campaigns.services import launch

    items_wanted, runs = _options(argv)
    system, admin, total, n_owners = seed(items_wanted)
    name = "Benchmark launch" if system.code == "benchc" else f"Benchmark launch {system.code}"
    actor, definition = bench_definition(name, system, admin)
    phases: dict[str, Any] = {}
    cpu_before: list[Any] = [0.0, None]
    announce = launch._activate_and_announce

    def timed_announce(campaign: Any) -> Any:
        # The queue may reconnect after the announce commits: the backend's CPU is read here.
        phases["items_cpu"] = _cpu_used(cpu_before)
        started = time.perf_counter()
        try:
            return announce(campaign)
        finally:
            phases["announce"] = time.perf_counter() - started

    launch._activate_and_announce = timed_announce
    results = []
    for run in range(runs):
        campaign = services.campaign_create(actor=actor, definition=definition)
        services.campaign_launch_request(actor=actor, campaign=campaign, enqueue=False)
        exact_peak = _reset_peak_rss()
        start_rss = _start_rss()
        cpu_before[:] = _cpu_seconds()
        started = time.perf_counter()
        services.campaign_launch_run(campaign_id=campaign.pk)
        elapsed = time.perf_counter() - started
        peak = _peak_rss_mib()
        cpu = f"CPU: Python {_cpu_seconds()[0] - cpu_before[0]:.2f} s"
        items = ReviewItem.objects.filter(campaign=campaign).count()
        results.append(elapsed)
        print(
            f"run {run + 1}: {items} items in {elapsed:.2f} s (items {elapsed - phases['announce']:.2f} s, "
            f"emails/events/audit {phases['announce']:.2f} s); items {phases['items_cpu']}; whole launch {cpu}; peak RSS "
            f"{'of the launch' if exact_peak else 'of the process'} {peak:.0f} MiB{start_rss}; {_load()}"
        )
        assert items == total, (items, total)
        # Keep the database the same size for the next run.
        ReviewItem.objects.filter(campaign=campaign).delete()
        Campaign.objects.filter(pk=campaign.pk).update(status="closed")
    print(f"database: {connection.vendor}; grants selected: {total}; reviewers: {n_owners}")
    print(
        f"launch of {total} items: median {statistics.median(results):.2f} s over {runs} run(s) "
        f"(min {min(results):.2f}, max {max(results):.2f}); {_load()}"
    )


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
