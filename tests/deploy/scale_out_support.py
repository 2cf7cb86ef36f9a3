"""What the scale-out test runs against: a database of its own (cloned from a migrated template),
its own Redis queue and cache prefix, real gunicorn and qcluster processes, a webhook receiver
that fails on purpose, and the seed data written with set-based SQL.

Child processes need committed rows, so the test never uses the pytest test database: it clones
``scaleout_tpl_<digest of the migrations>`` (migrated once, kept for later runs: migrating costs
a minute here) into ``scaleout_<random>`` and drops the clone afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
TEMPLATE_PREFIX = "scaleout_tpl_"
# One advisory lock serialises building the template and cloning it between concurrent runs.
TEMPLATE_LOCK = 0x5CA1E0
# The periodic jobs this test relies on; the others are moved a day ahead in the clone so that a
# template migrated days ago does not fire a day's digests and snapshots into the counts.
KEPT_SCHEDULES = ("outbox-flush", "webhooks-sweep", "campaigns-sweep")


# --- PostgreSQL -----------------------------------------------------------------------------------


def _server() -> dict[str, Any]:
    database = settings.DATABASES["default"]
    return {
        "host": database.get("HOST") or "127.0.0.1",
        "port": int(database.get("PORT") or 5432),
        "user": database.get("USER") or "postgres",
        "password": database.get("PASSWORD") or "",
    }


def database_url(name: str) -> str:
    server = _server()
    auth = quote(server["user"], safe="")
    if server["password"]:
        auth += ":" + quote(server["password"], safe="")
    return f"postgres://{auth}@{server['host']}:{server['port']}/{name}"


def connect(dbname: str = "postgres") -> psycopg.Connection[Any]:
    server = _server()
    return psycopg.connect(dbname=dbname, autocommit=True, connect_timeout=10, **server)


def migrations_digest() -> str:
    """Names the migrated state: every project migration file and the Django version."""
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/*.py")) + sorted(ROOT.glob("*/*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    import django

    digest.update(django.get_version().encode())
    return digest.hexdigest()[:12]


def _exists(admin: psycopg.Connection[Any], name: str) -> bool:
    return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def _migrate(name: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env={**env, "DATABASE_URL": database_url(name)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]


def clone_migrated_database(name: str, env: dict[str, str]) -> None:
    """Create ``name`` as a copy of the migrated template (building the template first if this
    set of migrations has none yet; templates of other migration sets are dropped)."""
    template = TEMPLATE_PREFIX + migrations_digest()
    with connect() as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", [TEMPLATE_LOCK])
        try:
            if not _exists(admin, template):
                building = f"{template}_building"
                admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{building}"')
                _migrate(building, env)
                admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{template}"')
            stale = admin.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s AND datname <> %s",
                [TEMPLATE_PREFIX + "%", template],
            ).fetchall()
            for (old,) in stale:
                admin.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", [TEMPLATE_LOCK])


def drop_database(name: str) -> None:
    with connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Seed data --------------------------------------------------------------------------------------

SEED_SQL = """
INSERT INTO governance_user (password, is_superuser, username, first_name, last_name, email, is_staff,
    is_active, date_joined, display_name, department, is_service_account)
SELECT '!', false, name, '', '', name || '@example.com', name = 'so_admin', true, now(), name, '', false
FROM (SELECT 'so_admin' AS name UNION ALL
      SELECT 'so_owner_' || lpad(n::text, 4, '0') FROM generate_series(0, %(owners)s - 1) AS n) AS people;

INSERT INTO governance_user_groups (user_id, group_id)
SELECT u.id, g.id FROM governance_user u JOIN auth_group g
  ON (u.username = 'so_admin' AND g.name = 'iam_admin') OR (u.username LIKE 'so_owner_%%' AND g.name = 'business_user');

INSERT INTO inventory_resourcesystem (code, name, description, audience, token_algorithm, environment)
VALUES ('scaleout', 'Scale-out system', '', '', 'ES256', 'production');

INSERT INTO inventory_scope (name, code, description, sensitivity, access, is_active, system_id, jit_eligible)
SELECT 's' || n, 'scaleout:s' || n, '', 'high', 'read', true, s.id, false
FROM generate_series(0, %(scopes)s - 1) AS n, inventory_resourcesystem s WHERE s.code = 'scaleout';

INSERT INTO inventory_integration (name, kind, purpose, vendor, environment, data_classifications,
    acts_for_users, autonomy, workload_identity, ticket_ref, tags, status, risk_score, risk_tier,
    risk_factors, orphaned, status_reason, created_at, updated_at, business_owner_id, technical_owner_id, search_text)
SELECT 'Scale-out bot ' || n, 'agent', 'scale-out test', '', 'production', '[]', false, 'suggest_only', '',
    '', '[]', 'active', 50, 'high', '[]', false, '', now(), now(), owners.ids[1 + n %% %(owners)s],
    owners.ids[1 + (n + 1) %% %(owners)s], ''
FROM generate_series(0, %(integrations)s - 1) AS n,
     (SELECT array_agg(id ORDER BY username) AS ids FROM governance_user WHERE username LIKE 'so_owner_%%') AS owners;

INSERT INTO inventory_grant (status, source_type, source_id, granted_at, end_reason, integration_id, scope_id)
SELECT 'active', 'seed', '0', now(), '', i.id, s.id
FROM inventory_integration i CROSS JOIN inventory_scope s
WHERE i.name LIKE 'Scale-out bot %%' AND s.code LIKE 'scaleout:%%';

UPDATE django_q_schedule SET next_run = now() + interval '1 day' WHERE name <> ALL(%(kept)s);
UPDATE django_q_schedule SET next_run = now() WHERE name = ANY(%(kept)s);
"""


def seed(dbname: str, *, owners: int, integrations: int, scopes: int) -> None:
    """An IAM admin ``so_admin``, ``owners`` business users ``so_owner_NNNN`` owning
    ``integrations`` active integrations in turn (business owner, and the next one technical owner), each with an active grant of every one of
    ``scopes`` scopes of the system ``scaleout``."""
    params = {"owners": owners, "integrations": integrations, "scopes": scopes, "kept": list(KEPT_SCHEDULES)}
    with connect(dbname) as conn, conn.transaction():
        for statement in SEED_SQL.split(";\n"):
            if statement.strip():
                conn.execute(statement, params)


def query(dbname: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with connect(dbname) as conn:
        return conn.execute(sql, params).fetchall()


# --- Processes ----------------------------------------------------------------------------------------


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of every child: this one without what points at the test run's own
    database, broker or mail, plus ``extra``."""
    dropped = ("DATABASE_URL", "REDIS_URL", "GOVERNANCE_TESTING", "DJANGO_ENV", "TEST_DATABASE_NAME", "EMAIL_URL")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    seed_bytes = secrets.token_bytes(32)
    env.update(
        PYTHONUNBUFFERED="1",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        # A checkpoint signed during the run uses this key, never one written into the project folder.
        AUDIT_SIGNING_KEY=base64.b64encode(seed_bytes).decode(),
    )
    env.update(extra)
    return env


class Processes:
    """Children started in their own process groups, each logging to its own file; ``stop``
    ends every group (TERM, then KILL)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str], env: dict[str, str]) -> Path:
        log_path = self.folder / f"{name}.log"
        with log_path.open("wb") as log:
            self.children[name] = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, process_group=0
            )
        return log_path

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def exited(self) -> dict[str, int]:
        return {name: code for name, child in self.children.items() if (code := child.poll()) is not None}

    def stop(self) -> None:
        for child in self.children.values():
            _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children.values():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
            # Whatever the group still holds (a worker that ignored TERM) is killed.
            _signal_group(child.pid, signal.SIGKILL)
            child.wait(timeout=10)


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --- HTTP -------------------------------------------------------------------------------------------------


def api(base: str, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    """One API call with ``Authorization: Token``; returns the status and the decoded JSON."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Token {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return bool(response.status)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class FlakyReceiver:
    """A webhook receiver that answers a 500 to every third request that is an event's first,
    and stalls one in ninety-nine past the sender's timeout; the rest it accepts (200). It checks each signature
    and counts, per event id, the requests seen and the ones it accepted."""

    def __init__(self, secret: str, stall_seconds: float) -> None:
        self.secret = secret
        self.stall_seconds = stall_seconds
        self.lock = threading.Lock()
        self.requests = 0
        self.hits: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()
        self.refused = 0
        self.stalled = 0
        self.bad_signatures = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def signature_ok(self, header: str, body: bytes) -> bool:
        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        expected = hmac.new(self.secret.encode(), f"{parts.get('t', '')}.".encode() + body, hashlib.sha256)
        return hmac.compare_digest(expected.hexdigest(), parts.get("v1", ""))

    def outcome(self, event_id: str, signed: bool) -> str:
        """``accept``, ``refuse`` or ``stall`` for the next request, counted."""
        with self.lock:
            self.requests += 1
            self.hits[event_id] += 1
            if not signed:
                self.bad_signatures += 1
                return "refuse"
            # Only first attempts fail, so that every delivery settles at its first retry (a
            # retry waits for the minute's sweep) and each failure is one retry exactly.
            first_attempt = self.hits[event_id] == 1
            if first_attempt and self.requests % 99 == 0:
                self.stalled += 1
                return "stall"
            if first_attempt and self.requests % 3 == 0:
                self.refused += 1
                return "refuse"
            self.accepted[event_id] += 1
            return "accept"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signed = receiver.signature_ok(self.headers.get("X-Signature", ""), body)
                verdict = receiver.outcome(self.headers.get("X-Event-Id", ""), signed)
                if verdict == "stall":
                    time.sleep(receiver.stall_seconds)
                try:
                    self.send_response(200 if verdict == "accept" else 500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting (the stalled case)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def __enter__(self) -> FlakyReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- Redis ----------------------------------------------------------------------------------------------


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@contextmanager
def own_redis_keys(url: str, queue_name: str, cache_prefix: str) -> Iterator[None]:
    """Deletes, afterwards, the keys of this run only: its queue, its cluster statistics and its
    cache entries (never a flush of the database)."""
    import redis

    try:
        yield
    finally:
        client = redis.Redis.from_url(url)
        patterns = (queue_name, f"{queue_name}:*", f"django_q:{queue_name}:*", f"{cache_prefix}:*")
        for pattern in patterns:
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)
