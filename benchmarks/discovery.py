"""Discovery at scale: import 1,000,000 Google consents, import them again, and list 100,000 findings.

1. Writes (streamed, never held in memory) a Google Workspace file as a pull would: the directory's
   users pages, then one ``tokens.list`` page per user; 50,000 people × 20 apps = 1,000,000
   tokens. Nine people in ten are portal users (matched by email), the rest are not.
2. Imports it through ``importer.import_path`` in a child process (a fresh interpreter, as the
   worker would run it): wall time, the child's peak resident memory (its VmHWM, beside its
   resident memory once Django is loaded) and the CPU time of the child and of its PostgreSQL
   server process (what the import costs whatever else the machine runs). Targets: at most 60 s
   and 200 MiB.
3. Imports the same file again (target: at most 60 s) and proves nothing changed but
   ``last_seen``/``last_import``: row counts and per-column checksums of the apps, consents and
   findings before and after, and every consent's ``last_import`` now the second import.
4. Adds (once, in bulk) 100,000 findings and times the work list page and the findings endpoint
   with the Django test client as an IAM admin, as they open and filtered, searched, sorted and
   paged deep: median and 95th percentile (target: median at most 200 ms) and the SQL query count.

The machine's state (CPU, load average, memory, disk, versions) is printed first, and the load
again at the end: on a shared machine the wall times follow the load.

    createdb -h 127.0.0.1 -U postgres disc_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/disc_bench python -m benchmarks discovery

It migrates the database of ``DATABASE_URL`` and adds its rows (users ``bench_d_*``, tenants
``bench-import`` and ``bench-findings``); run it on a database of its own, never on one holding
real data. Each run first deletes the previous run's imported rows, so the first import is a
first import. Environment: BENCH_PEOPLE (50000), BENCH_APPS (20), BENCH_FINDINGS (100000),
BENCH_RUNS (30), BENCH_DIR (where the file is written; a temporary folder by default),
BENCH_SKIP ("import,list" to skip parts).
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

IMPORT_TENANT = "bench-import"
FINDINGS_TENANT = "bench-findings"
ADMIN = "bench_d_admin"
USERS_PAGE = 500
SCOPE = "https://www.googleapis.com/auth/"

# What the bench apps ask for: AI tools of every kind, from sign-in only to full mailbox access.
APP_SCOPES: list[list[str]] = [
    ["openid", SCOPE + "userinfo.email", SCOPE + "calendar.readonly", SCOPE + "drive.file"],
    [SCOPE + "userinfo.email", SCOPE + "gmail.readonly", SCOPE + "gmail.compose"],
    [SCOPE + "presentations", SCOPE + "drive.readonly"],
    ["openid", SCOPE + "userinfo.profile"],
    [SCOPE + "drive", SCOPE + "documents", SCOPE + "spreadsheets"],
    ["https://mail.google.com/", SCOPE + "userinfo.email"],
    [SCOPE + "calendar", SCOPE + "calendar.events", "openid"],
    [SCOPE + "admin.directory.user.readonly", SCOPE + "admin.directory.group.readonly"],
]
APP_WORDS = ["Notes", "Mail", "Slides", "Chat", "Docs", "Inbox", "Calendar", "Directory", "Meeting", "Code"]


def _person_id(index: int) -> str:
    """A directory user id shaped like Google's (21 digits)."""
    return f"1{index:020d}"


def _person_email(index: int) -> str:
    return f"bench_d_{index:05d}@bench.example.com"


def _token_prefixes(apps: int) -> list[str]:
    """Each app's token as JSON up to its ``userKey`` value; a token is prefix + user id + '"}'."""
    prefixes = []
    for number in range(apps):
        token = {
            "kind": "admin#directory#token",
            "etag": f'"bench-etag-{number}"',
            "clientId": f"{700000000000 + number}-bench{number:03d}ai{'x' * 20}.apps.googleusercontent.com",
            "displayText": f"Bench {APP_WORDS[number % len(APP_WORDS)]} AI {number:02d}",
            "scopes": APP_SCOPES[number % len(APP_SCOPES)],
            "anonymous": False,
            "nativeApp": number % 7 == 6,
        }
        prefixes.append(json.dumps(token, separators=(",", ":"))[:-1] + ',"userKey":"')
    return prefixes


def write_google_file(out: IO[str], *, people: int, apps: int) -> int:
    """Write the users pages, then each person's tokens page, one JSON document a line; returns the
    number of tokens written. Memory stays flat: one page at a time."""
    for start in range(0, people, USERS_PAGE):
        users = [
            {"kind": "admin#directory#user", "id": _person_id(index), "primaryEmail": _person_email(index)}
            for index in range(start, min(start + USERS_PAGE, people))
        ]
        page = {"kind": "admin#directory#users", "etag": f'"bench-users-{start}"', "users": users}
        out.write(json.dumps(page, separators=(",", ":")) + "\n")
    prefixes = _token_prefixes(apps)
    for index in range(people):
        user_key = _person_id(index)
        items = ",".join(prefix + user_key + '"}' for prefix in prefixes)
        out.write(f'{{"kind":"admin#directory#tokenList","etag":"\\"bench-list-{index}\\"","items":[{items}]}}\n')
    return people * apps


def _vm_status(field: str) -> int:
    """A memory figure of this process from /proc (KiB); 0 where /proc is not there."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (from /proc; 0 where it is not there)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backend_pid() -> int:
    """The PostgreSQL server process of this connection (0 on other databases)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def child_import(path: str) -> None:
    """In the child: import ``path`` as the bench IAM admin and print what happened as JSON."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    import django

    django.setup()
    from governance.models import User
    from inventory.discovery.choices import ImportMethod
    from inventory.discovery.importer import import_path

    admin = User.objects.get(username=ADMIN)
    rss_ready = _vm_status("VmRSS")
    # CPU time says what the import costs whatever else the machine runs meanwhile: this
    # process's (every thread) and its PostgreSQL server process's.
    backend = _backend_pid()
    backend_cpu, own_cpu = _cpu_seconds(backend) if backend else 0.0, time.process_time()
    started = time.perf_counter()
    imp = import_path(
        actor=admin,
        source="google",
        tenant=IMPORT_TENANT,
        path=Path(path),
        method=ImportMethod.UPLOAD,
        complete=True,
        file_name=Path(path).name,
    )
    elapsed = time.perf_counter() - started
    own_cpu = time.process_time() - own_cpu
    backend_cpu = _cpu_seconds(backend) - backend_cpu if backend else 0.0
    result = {
        "cpu_seconds": own_cpu,
        "db_cpu_seconds": backend_cpu,
        "import_id": imp.pk,
        "status": imp.status,
        "records": imp.records,
        "counts": imp.counts,
        "error": imp.error,
        "seconds": elapsed,
        "rss_ready_kib": rss_ready,
        "hwm_kib": _vm_status("VmHWM"),
    }
    print("RESULT " + json.dumps(result), flush=True)


def _run_import(path: Path) -> dict[str, Any]:
    """Import ``path`` in a fresh interpreter; its result, with the wall time seen from here."""
    # The connection must outlive the import for the child to read its server process's CPU time
    # at the end: with the default CONN_MAX_AGE (60 s) the queueing after the commit closes it.
    env = {**os.environ, "CONN_MAX_AGE": "86400"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.discovery", "import", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    wall = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(
            f"the import process failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    result["wall"] = wall
    return result


def _report_import(label: str, result: dict[str, Any]) -> None:
    hwm = result["hwm_kib"] / 1024
    print(
        f"{label}: {result['status']}, {result['records']} records in {result['seconds']:.1f} s "
        f"(process wall {result['wall']:.1f} s, target <= 60 s); peak RSS {hwm:.0f} MiB "
        f"(target <= 200 MiB; {result['rss_ready_kib'] / 1024:.0f} MiB once Django was loaded)"
    )
    print(
        f"  CPU time: importing process {result['cpu_seconds']:.1f} s, its PostgreSQL server process "
        f"{result['db_cpu_seconds']:.1f} s; load average now {os.getloadavg()[0]:.2f}"
    )
    print(f"  counts: {json.dumps(result['counts'], sort_keys=True)}")
    if result["error"]:
        print(f"  error: {result['error']}")


def _bench_people(people: int) -> None:
    """The portal users the file's people match (made once): nine in ten of them."""
    from governance.models import User

    existing = set(User.objects.filter(username__startswith="bench_d_").values_list("username", flat=True))
    missing = [
        User(username=f"bench_d_{index:05d}", email=_person_email(index))
        for index in range(people)
        if index % 10 and f"bench_d_{index:05d}" not in existing
    ]
    User.objects.bulk_create(missing, batch_size=5000)


def _user_with_role(username: str, role: str) -> Any:
    from django.contrib.auth.models import Group

    from governance.models import User

    user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@bench.example.com"})
    user.groups.set(Group.objects.filter(name=role))
    return user


def _delete_tenant(tenant: str) -> None:
    """Delete a bench tenant's discovery rows with set-based statements (the ORM's cascade would
    load a million consents into memory first)."""
    from django.db import connection

    from inventory.discovery.models import DiscoveredApp, DiscoveredConsent, DiscoveryImport, Finding, Remediation

    app_ids = f"SELECT id FROM {DiscoveredApp._meta.db_table} WHERE tenant = %s"
    finding_ids = f"SELECT id FROM {Finding._meta.db_table} WHERE tenant = %s"
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Remediation._meta.db_table} WHERE finding_id IN ({finding_ids})", [tenant])
        cursor.execute(f"DELETE FROM {Finding._meta.db_table} WHERE tenant = %s", [tenant])
        cursor.execute(f"DELETE FROM {DiscoveredConsent._meta.db_table} WHERE app_id IN ({app_ids})", [tenant])
        cursor.execute(f"DELETE FROM {DiscoveredApp._meta.db_table} WHERE tenant = %s", [tenant])
        cursor.execute(f"DELETE FROM {DiscoveryImport._meta.db_table} WHERE tenant = %s", [tenant])
        if connection.vendor == "postgresql":
            # Reclaim the deleted rows now, so that a run does not measure the last one's dead
            # rows (autovacuum would get to them at a time of its choosing).
            for model in (Finding, DiscoveredConsent, DiscoveredApp, DiscoveryImport):
                cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


# What a re-import may change: when the data was last seen, and by which import.
MAY_CHANGE = {"last_seen", "last_import"}


def _snapshot_tables() -> list[tuple[str, Any, str]]:
    """(label, model, WHERE clause selecting the import tenant's rows) of what an import writes."""
    from inventory.discovery.models import DiscoveredApp, DiscoveredConsent, Finding

    apps = f"SELECT id FROM {DiscoveredApp._meta.db_table} WHERE tenant = %s"
    return [
        ("apps", DiscoveredApp, "tenant = %s"),
        ("consents", DiscoveredConsent, f"app_id IN ({apps})"),
        ("findings", Finding, "tenant = %s"),
    ]


def _column_sums(model: Any, where: str, columns: list[str]) -> tuple[int, list[int]]:
    """Row count and, per column, an order-independent checksum of (row id, value) over the rows
    ``where`` selects: one scan in PostgreSQL, a streamed pass in Python elsewhere."""
    from django.db import connection

    table = model._meta.db_table
    quoted = [connection.ops.quote_name(column) for column in columns]
    if connection.vendor == "postgresql":
        sums = ", ".join(
            f"COALESCE(SUM(hashtextextended(id::text || '|' || COALESCE({column}::text, '<null>'), 0)), 0)"
            for column in quoted
        )
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*), {sums} FROM {table} WHERE {where}", [IMPORT_TENANT])
            row = cursor.fetchone()
        return int(row[0]), [int(value) for value in row[1:]]
    totals = [0] * len(columns)
    count = 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {', '.join(quoted)} FROM {table} WHERE {where}", [IMPORT_TENANT])
        while rows := cursor.fetchmany(10_000):
            for row in rows:
                count += 1
                for position, value in enumerate(row[1:]):
                    totals[position] += hash((row[0], repr(value)))
    return count, totals


def snapshot() -> dict[str, tuple[int, dict[str, int]]]:
    """Per table: its row count and a checksum of each column a re-import must not change."""
    result: dict[str, tuple[int, dict[str, int]]] = {}
    for label, model, where in _snapshot_tables():
        columns = [field.column for field in model._meta.concrete_fields if field.name not in MAY_CHANGE]
        count, sums = _column_sums(model, where, columns)
        result[label] = (count, dict(zip(columns, sums, strict=True)))
    return result


def _compare(before: dict[str, tuple[int, dict[str, int]]], after: dict[str, tuple[int, dict[str, int]]]) -> bool:
    """Print what differs between two snapshots; True when nothing does."""
    same = True
    for label, (count, sums) in before.items():
        count_after, sums_after = after[label]
        changed = [column for column, value in sums.items() if sums_after[column] != value]
        if count != count_after or changed:
            same = False
            print(f"  CHANGED {label}: rows {count} -> {count_after}; columns {', '.join(changed) or 'none'}")
        else:
            print(f"  unchanged {label}: {count} rows, {len(sums)} columns checksummed (all but {sorted(MAY_CHANGE)})")
    return same


def _moved_to(import_id: int) -> tuple[int, int]:
    """How many of the import tenant's consents, and how many present ones, the import ``import_id``
    last saw."""
    from inventory.discovery.models import DiscoveredConsent

    consents = DiscoveredConsent.objects.filter(app__tenant=IMPORT_TENANT)
    return consents.filter(last_import_id=import_id).count(), consents.filter(present=True).count()


def bench_import(people: int, apps: int, folder: Path) -> None:
    """Write the file, import it, import it again; report times, memory and the proof."""
    from django.db import connection

    _delete_tenant(IMPORT_TENANT)
    path = folder / "google-tokens.jsonl"
    started = time.perf_counter()
    with path.open("w", encoding="utf-8", buffering=1 << 20) as out:
        tokens = write_google_file(out, people=people, apps=apps)
    size = path.stat().st_size
    print(
        f"file: {tokens} tokens ({people} people x {apps} apps) + {-(-people // USERS_PAGE)} users pages, "
        f"{size / 1024 / 1024:.0f} MiB, written in {time.perf_counter() - started:.1f} s"
    )
    connection.close()  # the child imports; this process holds no transaction open meanwhile
    first = _run_import(path)
    _report_import("import", first)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    before = snapshot()
    second = _run_import(path)
    _report_import("re-import", second)
    after = snapshot()
    same = _compare(before, after)
    moved, present = _moved_to(second["import_id"])
    print(
        f"re-import changed nothing but last_seen/last_import: {'yes' if same else 'NO'}; "
        f"consents whose last_import is the re-import: {moved} of {present} present"
    )
    path.unlink()


SOURCES = ["google", "entra", "slack", "github", "okta"]
KINDS = ["shadow"] * 14 + ["drift"] * 4 + ["stale", "gone"]
STATUSES = ["open"] * 12 + ["escalated", "revoke_requested", "claimed", "dismissed", "revoked", "resolved"]
TIERS = ["low", "medium", "high", "critical"]


def _findings_batch(start: int, size: int, now: Any) -> tuple[list[Any], list[Any]]:
    """``size`` bench apps and one finding of each, every kind, status, source and tier mixed."""
    from inventory.discovery.models import DiscoveredApp, Finding

    rng = random.Random(start)
    apps, findings = [], []
    for index in range(start, start + size):
        source = SOURCES[index % len(SOURCES)]
        name = f"Bench {APP_WORDS[index % len(APP_WORDS)]} assistant {index:06d}"
        tier = TIERS[rng.randrange(4)]
        people = rng.randrange(1, 400)
        opened = now - timedelta(days=rng.randrange(120), minutes=index % 1440)
        apps.append(
            DiscoveredApp(
                source=source,
                tenant=FINDINGS_TENANT,
                app_key=f"bench-app-{index}",
                name=name,
                publisher=f"Vendor {index % 997}",
                scopes=["openid", f"{source}.read", f"{source}.write"],
                people_count=people,
                risk_score=rng.randrange(100),
                risk_tier=tier,
                first_seen=opened,
                last_seen=now,
            )
        )
        status = STATUSES[rng.randrange(len(STATUSES))]
        closed = status in {"claimed", "dismissed", "revoked", "resolved"}
        findings.append(
            Finding(
                kind=KINDS[index % len(KINDS)],
                status=status,
                source=source,
                tenant=FINDINGS_TENANT,
                app_key=f"bench-app-{index}",
                title=name,
                extra_scopes=[f"{source}.write"],
                risk_score=apps[-1].risk_score,
                risk_tier=tier,
                risk_factors=[{"code": "scope", "points": 20, "reason": "Write access to business data."}],
                people_affected=people,
                opened_at=opened,
                updated_at=opened,
                closed_at=now if closed else None,
            )
        )
    return apps, findings


def seed_findings(count: int) -> None:
    """Add (once) ``count`` findings of the findings tenant, with their apps, in bulk."""
    from django.db import transaction
    from django.utils import timezone

    from inventory.discovery.models import DiscoveredApp, Finding

    have = Finding.objects.filter(tenant=FINDINGS_TENANT).count()
    if have >= count:
        return
    _delete_tenant(FINDINGS_TENANT)
    started = time.perf_counter()
    now = timezone.now()
    for start in range(0, count, 5000):
        apps, findings = _findings_batch(start, min(5000, count - start), now)
        with transaction.atomic():
            made = DiscoveredApp.objects.bulk_create(apps, batch_size=1000)
            if made and made[0].pk is None:  # backends without RETURNING ids
                keys = {app.app_key: app.pk for app in DiscoveredApp.objects.filter(tenant=FINDINGS_TENANT)}
                for app in made:
                    app.pk = keys[app.app_key]
            for app, finding in zip(made, findings, strict=True):
                finding.app = app
            Finding.objects.bulk_create(findings, batch_size=1000)
    print(f"added {count} findings in {time.perf_counter() - started:.1f} s")


def _measure(client: Any, label: str, url: str, runs: int) -> None:
    """Fetch ``url`` once to count its queries, then ``runs`` times to time it."""
    from django.db import connection

    client.get(url)  # warm up
    queries: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[max(int(len(times) * 0.95) - 1, 0)]
    print(f"{label:34} median {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms   {len(queries)} queries   {url}")


def list_urls(unclosed: int) -> list[tuple[str, str]]:
    """What to time: the lists as they open, filtered, searched, sorted, and their middle page
    (the bench's unclosed findings are the active ones the work list shows)."""
    web_page, api_page = max(unclosed // 25 // 2, 1), max(unclosed // 50 // 2, 1)
    return [
        ("work list (active, most people first)", "/discovery/findings/"),
        ("work list, filtered", "/discovery/findings/?source=slack&kind=shadow&risk_tier=high"),
        ("work list, text search", "/discovery/findings/?q=assistant+0042"),
        ("work list, newest first", "/discovery/findings/?ordering=-opened"),
        (f"work list, page {web_page}", f"/discovery/findings/?page={web_page}"),
        ("API list", "/api/v1/discovery/findings/"),
        ("API list, filtered", "/api/v1/discovery/findings/?source=github&type=drift&status=open"),
        (f"API list, page {api_page}", f"/api/v1/discovery/findings/?page={api_page}"),
    ]


def bench_list(count: int, runs: int) -> None:
    """Time the work list page and the findings endpoint over ``count`` findings."""
    from django.conf import settings
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections, connection
    from django.test import Client

    from governance.roles import Role
    from inventory.discovery.models import Finding

    seed_findings(count)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    admin = _user_with_role(ADMIN, Role.IAM_ADMIN)
    # The test client only needs its host allowed; one connection for the whole run, as
    # CONN_MAX_AGE keeps it in production.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    unclosed = Finding.objects.filter(closed_at__isnull=True).count()
    print(f"findings: {Finding.objects.count()} in all, {unclosed} unclosed")
    client = Client()
    client.force_login(admin)
    for label, url in list_urls(unclosed):
        _measure(client, label, url, runs)


def _proc_value(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def machine_state(folder: Path) -> Iterable[str]:
    """What the figures depend on: CPU, load, memory, disk, Python, Django and the database."""
    import django
    from django.db import connection

    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    yield f"cpu: {os.cpu_count()} x {_proc_value('/proc/cpuinfo', 'model name')}; load average (1, 5, 15 min): {load}"
    yield (
        f"memory: total {_proc_value('/proc/meminfo', 'MemTotal')}, available {_proc_value('/proc/meminfo', 'MemAvailable')}; "
        f"free disk where the file goes ({folder}): {shutil.disk_usage(folder).free / 1024**3:.0f} GiB"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
        server = cursor.fetchone()[0]
    yield f"python {platform.python_version()} on {platform.platform()}; django {django.get_version()}"
    yield f"database: {connection.vendor} {server.split(' on ')[0]}"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from governance.roles import Role, roles_sync

    people = int(os.environ.get("BENCH_PEOPLE", "50000"))
    apps = int(os.environ.get("BENCH_APPS", "20"))
    findings = int(os.environ.get("BENCH_FINDINGS", "100000"))
    runs = int(os.environ.get("BENCH_RUNS", "30"))
    skip = set(filter(None, os.environ.get("BENCH_SKIP", "").split(",")))
    if connection.vendor != "postgresql":
        print("note: the targets are for PostgreSQL (DATABASE_URL=postgres://...)")
    call_command("migrate", verbosity=0)
    roles_sync()
    _user_with_role(ADMIN, Role.IAM_ADMIN)
    _bench_people(people)
    with tempfile.TemporaryDirectory(prefix="bench-discovery-", dir=os.environ.get("BENCH_DIR")) as folder:
        for line in machine_state(Path(folder)):
            print(line)
        if "import" not in skip:
            bench_import(people, apps, Path(folder))
    if "list" not in skip:
        bench_list(findings, runs)
    print(f"load average at the end (1, 5, 15 min): {', '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["import"]:
        child_import(sys.argv[2])
    else:
        main()
