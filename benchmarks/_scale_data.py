"""Benchmark data at the scale of a 5,000-person company: 500,000 integrations, 5,000,000 grants
and 50,000 access requests waiting in one reviewer's queue, written straight into PostgreSQL
with COPY and INSERT ... SELECT (the services would take days; this data is for measuring reads).

What it writes, once (each stage skips itself when its rows are there; ``reseed`` drops and
recreates the whole database first):

- 5,000 people (``scale_user_00000`` ...) in teams of ten under a manager, all business users,
  one in fifty also a reviewer; and ``scale_iam_admin``, ``scale_reviewer`` (the queue's
  reviewer, in the IAM reviewers' pool) and ``scale_auditor``.
- a catalog of 50 resource systems with 20 scopes each;
- 500,000 integrations (each person owns about a hundred as business owner), two requested
  scopes each, and the creation record of each in the integration history (the detail page's
  timeline reads it);
- 10 grants per integration (5,000,000): active ones on active integrations, the others
  expired or revoked, with expiry dates, usage and the request that justified them;
- 50,000 open registration or expansion requests, each at its first step and assigned to
  ``scale_reviewer``; 20,000 decided requests over the last twelve weeks (the dashboard's
  throughput); half a year of daily metric snapshots.

Secondary indexes of the big tables are dropped before their bulk load and built afterwards
(several times faster than maintaining them row by row); their definitions are kept in the
table ``scale_seed_index`` until rebuilt, so an interrupted seed rebuilds them on the next run.
The seed ends with VACUUM ANALYZE, as autovacuum would have done by then.

Only PostgreSQL: COPY and the planner's statistics are what is being sized.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

PEOPLE = int(os.environ.get("BENCH_PEOPLE", "5000"))
INTEGRATIONS = int(os.environ.get("BENCH_INTEGRATIONS", "500000"))
GRANTS_PER_INTEGRATION = int(os.environ.get("BENCH_GRANTS_PER", "10"))
PENDING = int(os.environ.get("BENCH_PENDING", "50000"))
DECIDED = int(os.environ.get("BENCH_DECIDED", "20000"))
SYSTEMS = 50
SCOPES_PER_SYSTEM = 20
TEAM_SIZE = 10

IAM_ADMIN = "scale_iam_admin"
REVIEWER = "scale_reviewer"
AUDITOR = "scale_auditor"
# The integrations of the benchmark are named "Scale <word> ..." (the stages find them so).
NAME_PREFIX = "Scale "

KINDS = ["chatbot", "agent", "plugin", "automation", "embedded_model", "other"]
TIERS = ["low", "medium", "high", "critical"]
STATUSES = ["active", "active", "active", "active", "pending", "draft", "suspended", "retired"]
CLASSES = [["internal"], ["internal", "confidential"], ["public"], ["restricted"]]
VENDORS = ["", "", "OpenAI", "Anthropic", "Zapier", "Microsoft", "Google", "Salesforce"]
WORDS = ["invoice", "support", "sales", "hr", "finance", "legal", "code", "mail", "travel", "crm"]
NOUNS = ["assistant", "bot", "copilot", "sync", "agent", "summariser", "router", "classifier"]
DEPARTMENTS = ["Finance", "Sales", "Support", "HR", "Legal", "Engineering", "Marketing", "Operations"]


def _log(message: str, started: float) -> None:
    print(f"  {message} in {time.perf_counter() - started:.0f} s", flush=True)


def _scalar(sql: str, params: Iterable[Any] = ()) -> Any:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        row = cursor.fetchone()
    return row[0] if row else None


def _execute(sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params if isinstance(params, dict) else list(params))


# --- Writing rows -------------------------------------------------------------------------------


def _defaults(model: Any) -> dict[str, Any]:
    """Every concrete column of ``model`` but its id, with the field's default as COPY takes it
    (JSON as text): the rows below name only what differs."""
    values = {}
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        value = field.get_default()
        values[field.column] = json.dumps(value) if field.get_internal_type() == "JSONField" else value
    return values


def copy_rows(model: Any, rows: Iterable[dict[str, Any]]) -> int:
    """COPY ``rows`` (column -> value, the rest defaulted) into ``model``'s table."""
    from django.db import connection

    defaults = _defaults(model)
    columns = list(defaults)
    written = 0
    with connection.cursor() as cursor:
        statement = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
        with cursor.cursor.copy(statement) as copy:
            for row in rows:
                values = {**defaults, **row}
                copy.write_row([values[column] for column in columns])
                written += 1
    return written


def _secondary_indexes(table: str) -> list[tuple[str, str]]:
    """(name, definition) of the indexes of ``table`` that back no constraint (the primary key
    and unique constraints stay)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)",
            [table],
        )
        return list(cursor.fetchall())


def rebuild_deferred_indexes() -> None:
    """Build the indexes a bulk load dropped (also those of a load that was interrupted)."""
    _execute("CREATE TABLE IF NOT EXISTS scale_seed_index (name text PRIMARY KEY, definition text NOT NULL)")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT name, definition FROM scale_seed_index ORDER BY name")
        pending = list(cursor.fetchall())
        for name, definition in pending:
            started = time.perf_counter()
            cursor.execute(
                definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1).replace(
                    "CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX IF NOT EXISTS", 1
                )
            )
            cursor.execute("DELETE FROM scale_seed_index WHERE name = %s", [name])
            _log(f"index {name} built", started)


@contextmanager
def indexes_deferred(*tables: str) -> Iterator[None]:
    """Drop the secondary indexes of ``tables`` for a bulk load and build them after it."""
    rebuild_deferred_indexes()
    for table in tables:
        for name, definition in _secondary_indexes(table):
            _execute("INSERT INTO scale_seed_index (name, definition) VALUES (%s, %s)", [name, definition])
            _execute(f'DROP INDEX "{name}"')
    yield
    rebuild_deferred_indexes()


# --- Stages -------------------------------------------------------------------------------------


def seed_people() -> bool:
    """5,000 people in teams under managers, and the benchmark's three role holders."""
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from governance.models import User
    from governance.roles import Pool, Role

    if User.objects.filter(username__startswith="scale_user_").count() >= PEOPLE:
        return False
    started = time.perf_counter()
    now = timezone.now()
    names = [f"scale_user_{index:05}" for index in range(PEOPLE)] + [IAM_ADMIN, REVIEWER, AUDITOR]
    copy_rows(
        User,
        (
            {
                "password": "!",  # unusable: these people sign in through the test client only
                "username": name,
                "email": f"{name}@example.com",
                "first_name": "Scale",
                "last_name": name.rsplit("_", 1)[-1],
                "department": DEPARTMENTS[index % len(DEPARTMENTS)],
                "date_joined": now,
            }
            for index, name in enumerate(names)
        ),
    )
    # The first person of each team of ten manages the other nine (the leads have no manager).
    _execute(
        "UPDATE governance_user u SET manager_id = lead.id FROM governance_user lead "
        "WHERE u.username LIKE 'scale\\_user\\_%%' AND lead.username = 'scale_user_' || "
        "lpad(((substr(u.username, 12)::int / %s) * %s)::text, 5, '0') AND lead.id <> u.id",
        [TEAM_SIZE, TEAM_SIZE],
    )
    groups = {group.name: group.pk for group in Group.objects.all()}
    memberships: list[tuple[str, str]] = [(name, Role.BUSINESS_USER) for name in names[:PEOPLE]]
    memberships += [(names[index], Role.REVIEWER) for index in range(0, PEOPLE, 50)]
    memberships += [(IAM_ADMIN, Role.IAM_ADMIN), (REVIEWER, Role.REVIEWER), (REVIEWER, Pool.IAM_REVIEWERS)]
    memberships += [(AUDITOR, Role.AUDITOR)]
    ids = dict(User.objects.filter(username__in=names).values_list("username", "pk"))
    through = User.groups.through
    through.objects.bulk_create(
        [through(user_id=ids[name], group_id=groups[str(group)]) for name, group in memberships], batch_size=5000
    )
    _log(f"{len(names)} people", started)
    return True


def seed_catalog() -> list[int]:
    """50 resource systems of 20 scopes each; their ids, by system then name."""
    from inventory.models import ResourceSystem, Scope

    if Scope.objects.filter(code__startswith="scale").count() < SYSTEMS * SCOPES_PER_SYSTEM:
        systems = ResourceSystem.objects.bulk_create(
            [ResourceSystem(code=f"scale{index:02}", name=f"Scale system {index:02}") for index in range(SYSTEMS)],
            ignore_conflicts=True,
        )
        systems = list(ResourceSystem.objects.filter(code__startswith="scale").order_by("code"))
        Scope.objects.bulk_create(
            [
                Scope(
                    system=system,
                    name=f"Perm{index:02}",
                    code=f"{system.code}:Perm{index:02}",
                    sensitivity=TIERS[index % 4],
                    access=["read", "write", "admin"][index % 3],
                )
                for system in systems
                for index in range(SCOPES_PER_SYSTEM)
            ],
            ignore_conflicts=True,
        )
    return list(Scope.objects.filter(code__startswith="scale").order_by("code").values_list("pk", flat=True))


def _integration_row(index: int, owners: list[int], start: datetime) -> dict[str, Any]:
    word, noun = WORDS[index % len(WORDS)], NOUNS[(index // len(WORDS)) % len(NOUNS)]
    name = f"{NAME_PREFIX}{word} {noun} {index:06}"
    vendor = VENDORS[index % len(VENDORS)]
    ticket = f"CHG-{index}"
    tags = [word, WORDS[(index * 3) % len(WORDS)]]
    purpose = f"Handles {word} work for the {DEPARTMENTS[index % len(DEPARTMENTS)]} team."
    created = start + timedelta(minutes=index * 3)
    person = index % len(owners)
    return {
        "name": name,
        "kind": KINDS[index % len(KINDS)],
        "purpose": purpose,
        "vendor": vendor,
        "business_owner_id": owners[person],
        "technical_owner_id": owners[(person + 1) % len(owners)],
        "backup_owner_id": owners[(person + TEAM_SIZE) % len(owners)] if index % 3 == 0 else None,
        "data_classifications": json.dumps(CLASSES[index % len(CLASSES)]),
        "acts_for_users": index % 5 == 0,
        "tags": json.dumps(tags),
        "ticket_ref": ticket,
        "status": STATUSES[index % len(STATUSES)],
        "risk_tier": TIERS[(index // 7) % 4],
        "risk_score": (index * 13) % 100,
        "risk_factors": json.dumps([{"code": "autonomous", "points": 20, "reason": "It acts autonomously."}]),
        "orphaned": index % 997 == 0,
        "created_at": created,
        "updated_at": created,
        # As inventory.services keeps it: name, vendor, ticket, tags and purpose, lower-cased.
        "search_text": " ".join(part for part in (name, vendor, ticket, " ".join(tags), purpose) if part).lower(),
    }


def seed_integrations(scope_ids: list[int]) -> bool:
    """500,000 integrations owned by the 5,000 people, over the last three years."""
    from django.utils import timezone

    from governance.models import User
    from inventory.models import Integration

    have = Integration.objects.filter(name__startswith=NAME_PREFIX).count()
    if have >= INTEGRATIONS:
        return False
    started = time.perf_counter()
    owners = list(
        User.objects.filter(username__startswith="scale_user_").order_by("username").values_list("pk", flat=True)
    )
    start = timezone.now() - timedelta(days=3 * 365)
    with indexes_deferred(Integration._meta.db_table):
        copy_rows(Integration, (_integration_row(index, owners, start) for index in range(have, INTEGRATIONS)))
    _log(f"{INTEGRATIONS - have} integrations", started)
    return True


def _scope_table(scope_ids: list[int]) -> None:
    """``scale_scope (n, id)``: the catalog numbered from 0, for the set-based stages."""
    _execute("DROP TABLE IF EXISTS scale_scope")
    _execute("CREATE TABLE scale_scope (n int PRIMARY KEY, id bigint NOT NULL)")
    _execute(
        "INSERT INTO scale_scope (n, id) SELECT ordinality - 1, id FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(id)",
        [scope_ids],
    )


def seed_requested_scopes(scope_ids: list[int]) -> bool:
    from inventory.models import Integration

    through = Integration.requested_scopes.through
    table = through._meta.db_table
    if _scalar(
        f"SELECT EXISTS (SELECT 1 FROM {table} t JOIN inventory_integration i ON i.id = t.integration_id "
        "WHERE i.name LIKE 'Scale %%')"
    ):
        return False
    started = time.perf_counter()
    with indexes_deferred(table):
        _execute(
            f"INSERT INTO {table} (integration_id, scope_id) SELECT i.id, s.id FROM inventory_integration i "
            "CROSS JOIN generate_series(0, 1) k JOIN scale_scope s ON s.n = (i.id * 7 + k * 101) %% %s "
            "WHERE i.name LIKE 'Scale %%'",
            [len(scope_ids)],
        )
    _log("requested scopes", started)
    return True


def _id_ranges(step: int = 50_000) -> Iterator[tuple[int, int]]:
    """The benchmark integrations' ids in ranges, so that each bulk statement stays a moderate
    transaction and the log shows progress."""
    low = _scalar("SELECT min(id) FROM inventory_integration WHERE name LIKE 'Scale %%'") or 0
    high = _scalar("SELECT max(id) FROM inventory_integration WHERE name LIKE 'Scale %%'") or -1
    for first in range(low, high + 1, step):
        yield first, min(first + step - 1, high)


def seed_grants(scope_ids: list[int]) -> bool:
    """Ten grants per integration over distinct scopes: active while the integration is active
    (two in ten expired or revoked anyway), ended otherwise."""
    from django.utils import timezone

    from inventory.models import Grant

    if _scalar("SELECT EXISTS (SELECT 1 FROM inventory_grant WHERE source_id LIKE 'scale-%%')"):
        return False
    started = time.perf_counter()
    now = timezone.now()
    with indexes_deferred(Grant._meta.db_table):
        for first, last in _id_ranges():
            _execute(
                "INSERT INTO inventory_grant (integration_id, scope_id, status, source_type, source_id, granted_at, "
                "expires_at, ended_at, end_reason, last_used_at) "
                "SELECT i.id, s.id, g.status, 'approvals.accessrequest', 'scale-' || i.id, g.granted, "
                "CASE WHEN g.status = 'active' THEN %(now)s + ((i.id + k) %% 365) * interval '1 day' "
                "ELSE g.granted + interval '90 days' END, "
                "CASE WHEN g.status = 'active' THEN NULL ELSE g.granted + interval '30 days' END, "
                "CASE g.status WHEN 'revoked' THEN 'Revoked by the benchmark.' ELSE '' END, "
                "CASE WHEN (i.id + k) %% 3 = 0 THEN NULL ELSE %(now)s - ((i.id + k) %% 60) * interval '1 day' END "
                "FROM inventory_integration i CROSS JOIN generate_series(0, %(per)s - 1) k "
                "JOIN scale_scope s ON s.n = (i.id * 7 + k * 97) %% %(scopes)s "
                "CROSS JOIN LATERAL (SELECT CASE WHEN i.status = 'active' AND k < %(per)s - 2 THEN 'active' "
                "WHEN k %% 2 = 0 THEN 'expired' ELSE 'revoked' END AS status, "
                "%(now)s - (i.id %% 300) * interval '1 day' AS granted) g "
                "WHERE i.name LIKE 'Scale %%' AND i.id BETWEEN %(first)s AND %(last)s",
                {"now": now, "per": GRANTS_PER_INTEGRATION, "scopes": len(scope_ids), "first": first, "last": last},
            )
            print(f"    grants of integrations {first}..{last}", flush=True)
    _log("grants", started)
    return True


def seed_history(scope_ids: list[int]) -> bool:
    """The creation record of every integration in its history (what the detail page's timeline
    starts from), copied set-based from the integrations themselves."""
    from inventory.models import Integration

    historical = Integration.history.model
    table = historical._meta.db_table
    if _scalar(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE name LIKE 'Scale %%')"):
        return False
    started = time.perf_counter()
    source = {field.column for field in Integration._meta.concrete_fields}
    copied = [field.column for field in historical._meta.concrete_fields if field.column in source]
    with indexes_deferred(table):
        _execute(
            f"INSERT INTO {table} ({', '.join(copied)}, history_date, history_change_reason, history_type, "
            f"history_user_id) SELECT {', '.join(copied)}, created_at, 'Registered', '+', created_by_id "
            "FROM inventory_integration WHERE name LIKE 'Scale %%'"
        )
    _log("integration history", started)
    return True


def _reviewer_id() -> int:
    from governance.models import User

    return int(User.objects.get(username=REVIEWER).pk)


def seed_requests(scope_ids: list[int]) -> bool:
    """50,000 requests waiting at their first step for ``scale_reviewer`` (due from a day ago to
    three days ahead), and 20,000 decided over the last twelve weeks."""
    from django.utils import timezone

    from approvals.models import AccessRequest, RequestStep, StepAssignment
    from approvals.services import queue_keys_fill

    if AccessRequest.objects.filter(ticket_ref__startswith="SCALE-").exists():
        return False
    started = time.perf_counter()
    now = timezone.now()
    reviewer = _reviewer_id()
    _execute(
        "INSERT INTO approvals_accessrequest (type, integration_id, status, requester_id, ticket_ref, justification, "
        "risk_tier, round, created_at, updated_at, closed_at, outcome_reason, subject_label, subject_url, subject_key, "
        "payload, excluded_reviewer_ids) "
        "SELECT CASE WHEN r.n %% 3 = 0 THEN 'expansion' ELSE 'registration' END, i.id, r.status, i.business_owner_id, "
        "'SCALE-' || r.n, 'Needed for the team''s work.', i.risk_tier, 1, r.created, r.created, r.closed, '', '', '', "
        "'', '{}', '[]' FROM (SELECT id, risk_tier, business_owner_id, row_number() OVER (ORDER BY id) AS n "
        "FROM inventory_integration WHERE name LIKE 'Scale %%' AND status IN ('pending', 'active') "
        "ORDER BY id LIMIT %s) i CROSS JOIN LATERAL (SELECT i.n AS n, "
        "CASE WHEN i.n <= %s THEN 'in_review' WHEN i.n %% 5 = 0 THEN 'rejected' ELSE 'approved' END AS status, "
        "%s - ((i.n %% 84) || ' days')::interval - interval '6 hours' AS created, "
        "CASE WHEN i.n <= %s THEN NULL ELSE %s - ((i.n %% 84) || ' days')::interval END AS closed) r",
        [PENDING + DECIDED, PENDING, now, PENDING, now],
    )
    requests = "SELECT id, integration_id, status, created_at, closed_at FROM approvals_accessrequest WHERE ticket_ref LIKE 'SCALE-%%'"
    through = AccessRequest.requested_scopes.through._meta.db_table
    _execute(
        f"INSERT INTO {through} (accessrequest_id, scope_id) SELECT r.id, s.id FROM ({requests}) r "
        "CROSS JOIN generate_series(0, 1) k JOIN scale_scope s ON s.n = (r.integration_id * 11 + k * 101) %% "
        "(SELECT count(*) FROM scale_scope)"
    )
    steps = RequestStep._meta.db_table
    _execute(
        f'INSERT INTO {steps} (request_id, round, "order", name, pool_kind, rule, quorum, sla_hours, status, '
        "activated_at, remind_at, due_at, decided_at) "
        "SELECT r.id, 1, 1, 'IAM review', 'users', 'any', 1, 48, "
        "CASE r.status WHEN 'in_review' THEN 'active' ELSE r.status END, r.created_at, r.created_at + interval '1 day', "
        f"%s + ((r.id %% 96) - 24) * interval '1 hour', r.closed_at FROM ({requests}) r",
        [now],
    )
    _execute(
        f"INSERT INTO {StepAssignment._meta.db_table} "
        "(step_id, user_id, is_open, due_at, via, assigned_at, closed_reason, risk_rank, risk_score) "
        f"SELECT st.id, %s, st.status = 'active', st.due_at, 'named reviewer', st.activated_at, '', -1, 0 "
        f"FROM {steps} st JOIN approvals_accessrequest r ON r.id = st.request_id WHERE r.ticket_ref LIKE 'SCALE-%%'",
        [reviewer],
    )
    # The queue's copies of each request's tier and score, as the services set them.
    queue_keys_fill(StepAssignment.objects.filter(is_open=True, step__request__ticket_ref__startswith="SCALE-"))
    _log(f"{PENDING} pending and {DECIDED} decided requests", started)
    return True


def seed_snapshots(scope_ids: list[int]) -> bool:
    """Half a year of daily snapshots of every metric (the dashboard's trends)."""
    from benchmarks.dashboard import seed_snapshots as dashboard_snapshots
    from governance.controls.models import MetricSnapshot

    if MetricSnapshot.objects.exists():
        return False
    dashboard_snapshots()
    return True


def database_name() -> str:
    from django.db import connection

    return str(connection.settings_dict["NAME"])


def _admin_connection() -> Any:
    """A connection to the server's ``postgres`` database (to create or drop the benchmark's)."""
    import psycopg
    from django.db import connection

    settings = connection.settings_dict
    return psycopg.connect(
        host=settings.get("HOST") or "localhost",
        port=settings.get("PORT") or 5432,
        user=settings.get("USER") or "postgres",
        password=settings.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )


def reseed() -> None:
    """Drop and recreate the benchmark's database (only one whose name says it is a benchmark's)."""
    from django.db import connection

    name = database_name()
    if "bench" not in name:
        raise SystemExit(f"refusing to drop {name!r}: only a database whose name contains 'bench' is reseeded")
    connection.close()
    with _admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def ensure_database() -> None:
    """Create the benchmark's database when it does not exist yet."""
    from django.db import connection

    try:
        connection.ensure_connection()
    except Exception:  # noqa: BLE001 - any failure to connect: try creating it, then connect again
        with _admin_connection() as admin:
            admin.execute(f'CREATE DATABASE "{database_name()}"')


STAGES: list[Callable[[list[int]], bool]] = [
    seed_integrations,
    seed_requested_scopes,
    seed_grants,
    seed_history,
    seed_requests,
    seed_snapshots,
]


def seed(*, fresh: bool = False) -> None:
    """Migrate and write what is missing (everything with ``fresh``), then VACUUM ANALYZE."""
    from django.core.management import call_command
    from django.db import connection, transaction

    from governance.roles import roles_sync

    if connection.vendor != "postgresql":
        raise SystemExit("the scale benchmark runs on PostgreSQL only (DATABASE_URL=postgres://...)")
    if fresh:
        reseed()
    ensure_database()
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    roles_sync()
    _execute("SET synchronous_commit = off")
    _execute("SET maintenance_work_mem = '256MB'")
    rebuild_deferred_indexes()
    # The rows below are consistent by construction: foreign keys are not checked row by row
    # during the load (replica mode skips their triggers), which would double its time.
    _execute("SET session_replication_role = replica")
    try:
        wrote = seed_people()
        scope_ids = seed_catalog()
        _scope_table(scope_ids)
        for stage in STAGES:
            # Each stage whole or not at all: a rerun after an interruption redoes that stage.
            with transaction.atomic():
                wrote = stage(scope_ids) or wrote
    finally:
        _execute("SET session_replication_role = DEFAULT")
    if wrote:
        vacuumed = time.perf_counter()
        _execute("VACUUM ANALYZE")
        _log("VACUUM ANALYZE", vacuumed)
        _log("seeded", started)
