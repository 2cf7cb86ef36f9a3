"""The token endpoint under load: integrations trading workload tokens for access tokens.

Seeds (once) 10,000 active integrations, each bound to a workload identity of a bench issuer
(a static JWKS whose private key this script holds) and holding two grants on the ``rtbench``
system; then measures

* the in-process core: ``runtime.exchange.token_exchange`` (verify the workload token, find the
  binding, decide on the grants, mint, append the log record) and, apart, its CPU-only part
  (signature check of the workload token + minting) — p50/p95 over BENCH_CORE_RUNS calls;
* HTTP: gunicorn (BENCH_WORKERS sync workers, production settings; 2 measured best on 2 cores,
  ahead of 3 and 5: the work is CPU-bound and PostgreSQL needs its share) answering POST /oauth/token
  from an asyncio load generator at 1, 8 and 32 concurrent connections for BENCH_SECONDS each:
  exchanges/s, p50/p95/p99 latency, errors, the load generator's own CPU share, and the
  server's resident memory (all gunicorn processes) before and after each level.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rt_bench REDIS_URL=redis://127.0.0.1:6379/3 \\
        python -m benchmarks token_exchange

Run it on a database of its own. Environment: BENCH_INTEGRATIONS (10000), BENCH_SECONDS (15),
BENCH_WORKERS (2), BENCH_CORE_RUNS (3000), BENCH_LEVELS ("1,8,32"), BENCH_PORT (8791),
BENCH_GUNICORN_ARGS (extra gunicorn options, e.g. "-k gthread --threads 4"), BENCH_KEEP_ALIVE=1
(clients keep their connections, for a server that keeps them).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

SYSTEM = "rtbench"
ISSUER = "https://bench-workloads.example.com"
KEY_FILE = Path("var/bench-workload-issuer.pem")
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


def _private_key() -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if KEY_FILE.exists():
        return serialization.load_pem_private_key(KEY_FILE.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    KEY_FILE.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    KEY_FILE.chmod(0o600)
    return key


def _public_jwks(key: Any) -> dict[str, Any]:
    import jwt

    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk |= {"kid": "bench-1", "use": "sig", "alg": "ES256"}
    return {"keys": [jwk]}


def _seed_catalog(admin: Any, key: Any) -> tuple[Any, list[Any]]:
    from inventory.models import ResourceSystem, Scope, TrustedIssuer

    TrustedIssuer.objects.get_or_create(
        issuer=ISSUER,
        defaults={"name": "Bench workloads", "kind": "static_jwks", "jwks": _public_jwks(key)},
    )
    system, _ = ResourceSystem.objects.get_or_create(code=SYSTEM, defaults={"name": "Runtime bench system"})
    scopes = [
        Scope.objects.get_or_create(
            system=system, name=name, defaults={"code": f"{SYSTEM}:{name}", "sensitivity": "low", "access": access}
        )[0]
        for name, access in (("read", "read"), ("write", "write"))
    ]
    return system, scopes


def seed(count: int) -> None:
    """Migrate, then add (once) the bench owners, integrations, bindings and grants in bulk."""
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from governance.models import User
    from governance.roles import roles_sync
    from inventory.models import Grant, Integration, TrustedIssuer, WorkloadBinding
    from inventory.services.identities import claims_key_of

    call_command("migrate", verbosity=0)
    roles_sync()
    admin, _ = User.objects.get_or_create(username="bench_rt_admin", defaults={"email": "rt@example.com"})
    _, scopes = _seed_catalog(admin, _private_key())
    issuer = TrustedIssuer.objects.get(issuer=ISSUER)
    have = Integration.objects.filter(name__startswith="RT bench ").count()
    if have >= count:
        return
    started = time.perf_counter()
    owners = [
        User.objects.get_or_create(username=f"bench_rt_owner_{i}", defaults={"email": f"rt{i}@example.com"})[0]
        for i in range(100)
    ]
    now, empty_key = timezone.now(), claims_key_of({})
    for first in range(have, count, 2000):
        with transaction.atomic():
            rows = Integration.objects.bulk_create(
                [
                    Integration(
                        name=f"RT bench {i:06}",
                        kind="agent",
                        purpose="Runtime benchmark agent.",
                        business_owner=owners[i % len(owners)],
                        status="active",
                        risk_tier="low",
                        created_at=now,
                        updated_at=now,
                    )
                    for i in range(first, min(first + 2000, count))
                ]
            )
            WorkloadBinding.objects.bulk_create(
                WorkloadBinding(integration=row, issuer=issuer, subject=f"bench:{row.name}", claims_key=empty_key)
                for row in rows
            )
            Grant.objects.bulk_create(
                Grant(integration=row, scope=scope, source_type="bench", source_id="1", granted_at=now)
                for row in rows
                for scope in scopes
            )
    print(f"seeded {count - have} integrations in {time.perf_counter() - started:.0f} s")


def workload_tokens(count: int) -> list[str]:
    """One workload token per bench integration (ES256, valid for an hour)."""
    import jwt
    from django.conf import settings

    key = _private_key()
    now = int(time.time())
    names = [f"RT bench {i:06}" for i in range(count)]
    return [
        jwt.encode(
            {
                "iss": ISSUER,
                "sub": f"bench:{name}",
                "aud": settings.RUNTIME_TOKEN_AUDIENCE,
                "iat": now,
                "exp": now + 3600,
            },
            key,
            algorithm="ES256",
            headers={"kid": "bench-1"},
        )
        for name in names
    ]


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))]

    return statistics.median(ordered), at(0.95), at(0.99)


def _params(token: str) -> dict[str, str]:
    return {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": token,
        "subject_token_type": JWT_TYPE,
        "audience": SYSTEM,
        "scope": f"{SYSTEM}:read",
    }


def measure_core(tokens: list[str], runs: int) -> None:
    """The exchange in this process, with its queries and the log write; then its CPU part."""
    import jwt

    from runtime import tokens as portal_tokens
    from runtime.exchange import token_exchange

    token_exchange(_params(tokens[0]))  # keys made, caches warm
    samples = []
    for _ in range(runs):
        params = _params(random.choice(tokens))
        started = time.perf_counter()
        token_exchange(params)
        samples.append((time.perf_counter() - started) * 1000)
    p50, p95, p99 = _percentiles(samples)
    print(f"core, full (verify + 2 reads + mint + log insert): p50 {p50:.3f} ms  p95 {p95:.3f} ms  p99 {p99:.3f} ms")
    public = _private_key().public_key()
    claims = {
        "iss": "x",
        "aud": SYSTEM,
        "sub": "integration:1",
        "client_id": "integration:1",
        "scope": f"{SYSTEM}:read",
        "jti": "0" * 32,
    }
    cpu = []
    for _ in range(runs):
        token = random.choice(tokens)
        started = time.perf_counter()
        jwt.decode(token, public, algorithms=["ES256"], options={"verify_aud": False})
        portal_tokens.mint({**claims, "iat": int(time.time()), "exp": int(time.time()) + 300})
        cpu.append((time.perf_counter() - started) * 1000)
    p50, p95, _ = _percentiles(cpu)
    print(f"core, CPU only (verify workload JWT + mint access token):  p50 {p50:.3f} ms  p95 {p95:.3f} ms")


def _gunicorn_rss_mb(master_pid: int) -> float:
    """Resident memory of the gunicorn master and its workers, in MB (from /proc)."""
    pids = [master_pid]
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    if children.exists():
        pids += [int(pid) for pid in children.read_text().split()]
    total_kb = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def _request(body: bytes, *, keep_alive: bool) -> bytes:
    return (
        b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Proto: https\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        + (b"Connection: keep-alive\r\n" if keep_alive else b"Connection: close\r\n")
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


async def _one(port: int, body: bytes) -> tuple[float, int]:
    """One request on a new connection (closed by the server after answering)."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_request(body, keep_alive=False))
    await writer.drain()
    response = await reader.read()
    writer.close()
    status = int(response[9:12]) if response.startswith(b"HTTP/1.") else 0
    return (time.perf_counter() - started) * 1000, status


class _Connection:
    """A kept-alive connection, as an agent's HTTP client pool keeps one: reopened when the
    server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, body: bytes) -> tuple[float, int]:
        started = time.perf_counter()
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        writer.write(_request(body, keep_alive=True))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        if b"connection: close" in head.lower():
            writer.close()
            self.streams = None
        return (time.perf_counter() - started) * 1000, int(head[9:12])


async def _load(
    port: int, bodies: list[bytes], concurrency: int, seconds: float, keep_alive: bool = False
) -> tuple[list[float], int]:
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    failures = 0

    async def client() -> None:
        nonlocal failures
        connection = _Connection(port)
        while time.perf_counter() < deadline:
            body = random.choice(bodies)
            latency, status = await (connection.send(body) if keep_alive else _one(port, body))
            if status == 200:
                latencies.append(latency)
            else:
                failures += 1

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, failures


def _start_gunicorn(port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_ENV": "production",
        "SECRET_KEY": os.environ["SECRET_KEY"],
        "ALLOWED_HOSTS": "127.0.0.1",
        "RUNTIME_TOKEN_RATE_PER_MINUTE": "0",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "governance.wsgi",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            *os.environ.get("BENCH_GUNICORN_ARGS", "").split(),
        ],
        env=env,
    )
    for _ in range(100):
        time.sleep(0.2)
        try:
            asyncio.run(_one(port, b""))
            return process
        except OSError:
            continue
    process.kill()
    raise RuntimeError("gunicorn did not start")


def measure_http(tokens: list[str], levels: list[int], seconds: float, workers: int, port: int) -> None:
    bodies = [urllib.parse.urlencode(_params(token)).encode() for token in tokens]
    server = _start_gunicorn(port, workers)
    keep_alive = os.environ.get("BENCH_KEEP_ALIVE", "") == "1"
    print(
        f"gunicorn: {workers} workers {os.environ.get('BENCH_GUNICORN_ARGS', '(sync)')}; "
        f"{'kept-alive connections' if keep_alive else 'a new connection per request'}"
    )
    try:
        asyncio.run(_load(port, bodies, 8, 3.0))  # warm every worker (keys, connections)
        for concurrency in levels:
            rss_before = _gunicorn_rss_mb(server.pid)
            cpu_before, wall_before = time.process_time(), time.perf_counter()
            latencies, failures = asyncio.run(_load(port, bodies, concurrency, seconds, keep_alive))
            cpu, wall = time.process_time() - cpu_before, time.perf_counter() - wall_before
            rss_after = _gunicorn_rss_mb(server.pid)
            p50, p95, p99 = _percentiles(latencies)
            print(
                f"http {concurrency:>2} concurrent: {len(latencies) / wall:7.0f} exchanges/s  p50 {p50:6.1f} ms  "
                f"p95 {p95:6.1f} ms  p99 {p99:6.1f} ms  failures {failures}  load generator CPU {cpu / wall:.0%} "
                f"of one core  server RSS {rss_before:.0f} -> {rss_after:.0f} MB"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)


def _secret_key() -> str:
    """One SECRET_KEY for this process and gunicorn's (the signing keys are encrypted under it),
    kept in var/ so a second run reads the keys the first one made."""
    path = Path("var/bench-secret-key")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(60))
        path.chmod(0o600)
    return path.read_text().strip()


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    os.environ["SECRET_KEY"] = _secret_key()
    os.environ.setdefault("RUNTIME_TOKEN_RATE_PER_MINUTE", "0")
    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        print("note: the targets are for PostgreSQL (DATABASE_URL=postgres://...)")
    count = int(os.environ.get("BENCH_INTEGRATIONS", "10000"))
    seed(count)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    tokens = workload_tokens(count)
    measure_core(tokens, int(os.environ.get("BENCH_CORE_RUNS", "3000")))
    connection.close()
    levels = [int(level) for level in os.environ.get("BENCH_LEVELS", "1,8,32").split(",")]
    measure_http(
        tokens,
        levels,
        float(os.environ.get("BENCH_SECONDS", "15")),
        int(os.environ.get("BENCH_WORKERS", "2")),
        int(os.environ.get("BENCH_PORT", "8791")),
    )
