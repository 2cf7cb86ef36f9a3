"""Runtime policy decisions: the in-process decision point, the decision API under load, and
replay.

Seeds (once, with the token-exchange benchmark's seeding) 10,000 active integrations with two
grants each, varies their attributes (autonomy, environment, data classes, vendors), and
enforces a 20-policy set (the shipped default set and twelve more rules reading integration,
scope, owner, time and caller attributes) with one shadow version beside it. Then measures:

* in process, p50/p95 over BENCH_POLICY_RUNS random requests:
  - ``evaluate``: one version deciding one request with cached handles (the parsed policy set,
    schema, and the request's entity slice parsed once per distinct content);
  - ``evaluate_request``: the whole decision without the database: the request's slice built
    from rows already loaded, serialised and hashed, its cached handle found, the enforced and
    the shadow version evaluated;
  - ``decide``: what a caller pays: the version check (one query), the deciding, and the log's
    insert, for one request and per request of a batch of 100 (rows loaded beforehand);
* the decision API through gunicorn (BENCH_WORKERS sync workers, production settings) at 32
  concurrent connections for BENCH_SECONDS: single requests, and batches of 100 (counted per
  decision); p50/p95 latency per HTTP request;
* replay of the newest 100,000 logged decisions (logged first by deciding random requests in
  batches, once) by a candidate version: seconds, decisions/s and the process's peak memory
  before and after.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rt_bench REDIS_URL=redis://127.0.0.1:6379/3 \\
        python -m benchmarks policy

Environment: BENCH_INTEGRATIONS (10000), BENCH_POLICY_RUNS (5000), BENCH_SECONDS (15),
BENCH_WORKERS (2), BENCH_PORT (8792), BENCH_REPLAY (100000), BENCH_SKIP ("http,replay" to skip parts).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import statistics
import time
from typing import Any

from benchmarks import token_exchange

EXTRA_POLICIES = """
@id("no-unverified-identity-on-high-scopes")
@description("High and critical scopes only for an integration whose workload identity is proven.")
forbid (principal is Integration, action, resource is Scope)
when { (resource.sensitivity == "high" || resource.sensitivity == "critical") && !principal.workload_identity_verified };

@id("no-writes-for-suggest-only")
@description("A suggest-only integration never writes.")
forbid (principal is Integration, action, resource is Scope)
when { principal.autonomy == "suggest_only" && resource.access != "read" };

@id("no-retired-scopes")
@description("A retired scope is never used.")
forbid (principal, action, resource is Scope) when { !resource.active };

@id("vendor-blocklist")
@description("Integrations of a blocked vendor get nothing.")
forbid (principal is Integration, action, resource)
when { ["BlockedCorp", "Shady AI"].contains(principal.vendor) };

@id("critical-tier-needs-task")
@description("A critical-tier integration says what each token is for.")
forbid (principal is Integration, action == Action::"exchange_token", resource)
when { principal.risk_tier == "critical" && context.task == "" };

@id("untrusted-network-no-admin")
@description("No admin scope from an untrusted network.")
forbid (principal, action, resource is Scope)
when { resource.access == "admin" && context.caller has source_ip_trusted && !context.caller.source_ip_trusted };

@id("request-budget")
@description("A gateway reporting more than 10,000 calls in the window gets nothing more.")
forbid (principal, action, resource)
when { context.caller has request_count && context.caller.request_count > 10000 };

@id("no-shell-tools-on-restricted")
@description("No shell tool on an integration handling restricted data.")
forbid (principal is Integration, action == Action::"use_scope", resource)
when { context.caller has tool && context.caller.tool like "shell*" && principal.data_classifications.contains("restricted") };

@id("plugins-read-only-on-confidential")
@description("Plugins handling confidential data only read.")
forbid (principal is Integration, action, resource is Scope)
when { principal.kind == "plugin" && principal.data_classifications.contains("confidential") && resource.access != "read" };

@id("staging-not-on-production-critical")
@description("Staging integrations stay off critical production scopes.")
forbid (principal is Integration, action, resource is Scope)
when { principal.environment == "staging" && resource.environment == "production" && resource.sensitivity == "critical" };

@id("owner-must-be-active-for-delegation")
@description("Delegated tokens only while every owner is active.")
forbid (principal is Integration, action, resource)
when { context has delegated_user && !principal.business_owner.active };

@id("weekend-no-admin")
@description("No admin scope at the weekend.")
forbid (principal, action, resource is Scope)
when { resource.access == "admin" && context.time.weekday > 5 };
"""
SHADOW_EXTRA = """
@id("shadow-no-writes-at-night")
@description("Trial: no writes at night.")
forbid (principal, action, resource is Scope)
when { resource.access == "write" && (context.time.hour < 6 || context.time.hour >= 22) };
"""


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def _versions() -> None:
    """Enforce the 20-policy set and put one shadow version beside it (once)."""
    from django.db import transaction
    from django.utils import timezone

    from runtime.models import PolicyStatus, PolicyVersion
    from runtime.policy.defaults import default_text
    from runtime.policy.source import load, text_sha256

    enforced_text = default_text() + EXTRA_POLICIES
    shadow_text = enforced_text + SHADOW_EXTRA
    assert len(load(enforced_text).ids) == 20
    if PolicyVersion.objects.filter(sha256=text_sha256(enforced_text), status=PolicyStatus.ENFORCED).exists():
        return
    with transaction.atomic():
        PolicyVersion.objects.filter(status__in=[PolicyStatus.ENFORCED, PolicyStatus.SHADOW]).update(
            status=PolicyStatus.RETIRED
        )
        number = PolicyVersion.objects.order_by("-number").values_list("number", flat=True).first() or 0
        for offset, (text, status) in enumerate(
            ((enforced_text, PolicyStatus.ENFORCED), (shadow_text, PolicyStatus.SHADOW)), start=1
        ):
            PolicyVersion.objects.create(
                number=number + offset,
                title=f"bench {status}",
                cedar_text=text,
                sha256=text_sha256(text),
                status=status,
                enforced_at=timezone.now(),
            )


def _vary_integrations() -> None:
    """Spread the bench integrations over the attributes the policies read (idempotent)."""
    from django.db.models import F, IntegerField, Value
    from django.db.models.functions import Cast, Mod

    from inventory.models import Integration

    bench = Integration.objects.filter(name__startswith="RT bench ")
    number = Cast(Mod(F("id"), Value(7)), output_field=IntegerField())
    bench.annotate(slot=number).filter(slot=1).update(autonomy="autonomous", data_classifications=["restricted"])
    bench.annotate(slot=number).filter(slot=2).update(environment="staging", vendor="Shady AI")
    bench.annotate(slot=number).filter(slot=3).update(kind="plugin", data_classifications=["confidential"])
    bench.annotate(slot=number).filter(slot=4).update(autonomy="suggest_only")


def _requests(count: int) -> list[Any]:
    """Random requests over every bench integration and its scopes, rows loaded in bulk."""
    from django.utils import timezone

    from inventory.models import Integration, Scope
    from runtime.policy import entities
    from runtime.policy.pdp import PolicyRequest

    ids = list(Integration.objects.filter(name__startswith="RT bench ").values_list("pk", flat=True))
    scopes = list(Scope.objects.filter(system__code=token_exchange.SYSTEM).select_related("system"))
    chosen = random.sample(ids, min(len(ids), count))
    loaded = entities.load_integrations(chosen, timezone.now())
    caller: list[dict[str, bool | int | str]] = [
        {},
        {"source_ip_trusted": True, "tool": "search"},
        {"request_count": 12, "tool": "shell-exec"},
    ]
    return [
        PolicyRequest(
            integration=loaded[random.choice(chosen)],
            action=random.choice(["use_scope", "exchange_token"]),
            scope=random.choice(scopes),
            task=random.choice(["", "triage ticket"]),
            caller_attributes=random.choice(caller),
        )
        for _ in range(count)
    ]


def measure_in_process(runs: int) -> None:
    from django.utils import timezone

    from runtime.policy import pdp

    requests = _requests(runs)
    enforced, shadows = pdp.active_versions()
    now = timezone.now()
    prepared = []
    for request in requests:
        context = pdp.context_of(request, now)
        text, sha256 = pdp.entities_json(pdp.slice_of(request))
        prepared.append((pdp.cedar_request(request, context), pdp.entities_handle(text, sha256)))
    timings: list[float] = []
    for question, handle in prepared:
        started = time.perf_counter_ns()
        pdp.evaluate(enforced, question, handle)
        timings.append((time.perf_counter_ns() - started) / 1000)
    p50, p95 = _percentiles(timings)
    print(f"evaluate (one version, cached handles): p50 {p50:.0f} µs  p95 {p95:.0f} µs  n={len(timings)}")
    timings = []
    for request in requests:
        started = time.perf_counter_ns()
        pdp.evaluate_request(request, enforced, shadows, now)
        timings.append((time.perf_counter_ns() - started) / 1000)
    p50, p95 = _percentiles(timings)
    print(
        f"evaluate_request (slice + hash + cached entities + enforced and {len(shadows)} shadow): "
        f"p50 {p50:.0f} µs  p95 {p95:.0f} µs"
    )
    timings = []
    for request in requests[:1000]:
        started = time.perf_counter_ns()
        pdp.decide([request], point="api")
        timings.append((time.perf_counter_ns() - started) / 1000)
    p50, p95 = _percentiles(timings)
    print(f"decide, one request (version check + deciding + log insert): p50 {p50:.0f} µs  p95 {p95:.0f} µs")
    timings = []
    for first in range(0, min(len(requests), 3000), 100):
        started = time.perf_counter_ns()
        pdp.decide(requests[first : first + 100], point="api")
        timings.append((time.perf_counter_ns() - started) / 1000 / 100)
    p50, p95 = _percentiles(timings)
    print(f"decide, batches of 100 (per request): p50 {p50:.0f} µs  p95 {p95:.0f} µs")


def _api_key() -> str:
    """An API key of a resource-server (gateway) account."""
    from django.contrib.auth.models import Group

    from governance.models import User
    from governance.roles import Role
    from governance.services.tokens import api_token_issue

    gateway, _ = User.objects.get_or_create(username="bench_gateway", defaults={"email": "gw@example.com"})
    gateway.groups.add(Group.objects.get(name=Role.RESOURCE_SERVER))
    _token, key = api_token_issue(actor=gateway, user=gateway, name="bench", expires_days=1)
    return key


def _bodies(batch: int, count: int) -> list[bytes]:
    from inventory.models import Integration, Scope

    ids = list(Integration.objects.filter(name__startswith="RT bench ").values_list("pk", flat=True)[:count])
    codes = list(Scope.objects.filter(system__code=token_exchange.SYSTEM).values_list("code", flat=True))

    def one() -> dict[str, Any]:
        return {
            "principal": {"integration": random.choice(ids)},
            "action": "use_scope",
            "resource": {"scope": random.choice(codes)},
            "context": {"task": "bench", "attributes": {"tool": "search"}},
        }

    if batch == 1:
        return [json.dumps(one()).encode() for _ in range(500)]
    return [json.dumps({"requests": [one() for _ in range(batch)]}).encode() for _ in range(50)]


def _http_request(body: bytes, key: str) -> bytes:
    return (
        b"POST /api/v1/decisions/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Proto: https\r\n"
        b"Content-Type: application/json\r\nConnection: keep-alive\r\n"
        + f"Authorization: Token {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


async def _load(port: int, key: str, bodies: list[bytes], concurrency: int, seconds: float) -> tuple[list[float], int]:
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    failures = 0

    async def client() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(_http_request(random.choice(bodies), key))
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            if head[9:12] == b"200":
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                failures += 1
            if b"connection: close" in head.lower():
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, failures


def measure_http(seconds: float, workers: int, port: int) -> None:
    key = _api_key()
    os.environ["API_RATE_LIMIT_TOKEN"] = ""
    os.environ["API_RATE_LIMIT_USER"] = ""
    server = token_exchange._start_gunicorn(port, workers)
    print(f"gunicorn: {workers} sync workers; kept-alive connections; 32 concurrent")
    try:
        asyncio.run(_load(port, key, _bodies(1, 10000), 8, 3.0))
        for batch in (1, 100):
            latencies, failures = asyncio.run(_load(port, key, _bodies(batch, 10000), 32, seconds))
            p50, p95 = _percentiles(latencies) if latencies else (0.0, 0.0)
            rate = len(latencies) * batch / seconds
            print(
                f"http POST /api/v1/decisions/ batch {batch:>3}: {rate:7.0f} decisions/s "
                f"({len(latencies) / seconds:.0f} requests/s)  p50 {p50:.1f} ms  p95 {p95:.1f} ms  failures {failures}"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)


def _log_decisions(count: int) -> None:
    from runtime.models import PolicyDecision
    from runtime.policy import pdp

    have = PolicyDecision.objects.count()
    if have >= count:
        return
    started = time.perf_counter()
    while have < count:
        requests = _requests(1000)
        for first in range(0, len(requests), 500):
            pdp.decide(requests[first : first + 500], point="api")
        have += len(requests)
    print(f"logged decisions up to {have} in {time.perf_counter() - started:.0f} s")


def measure_replay(count: int) -> None:
    from governance.models import User
    from runtime.models import PolicyReplay, PolicyStatus, PolicyVersion
    from runtime.services.replays import replay_run

    _log_decisions(count)
    shadow = PolicyVersion.objects.filter(status=PolicyStatus.SHADOW).order_by("-number").first()
    assert shadow is not None
    admin = User.objects.get(username="bench_rt_admin")
    replay = PolicyReplay.objects.create(
        candidate=shadow, candidate_sha256=shadow.sha256, limit=count, requested_by=admin
    )
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    done = replay_run(replay_id=replay.pk)
    seconds = time.perf_counter() - started
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert done is not None
    print(
        f"replay of {done.processed} decisions: {seconds:.1f} s ({done.processed / seconds:.0f}/s)  "
        f"counts {done.counts}  peak RSS {peak_before:.0f} -> {peak_after:.0f} MB"
    )


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    os.environ["SECRET_KEY"] = token_exchange._secret_key()
    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        print("note: the targets are for PostgreSQL (DATABASE_URL=postgres://...)")
    token_exchange.seed(int(os.environ.get("BENCH_INTEGRATIONS", "10000")))
    _vary_integrations()
    _versions()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    skip = set(os.environ.get("BENCH_SKIP", "").split(","))
    measure_in_process(int(os.environ.get("BENCH_POLICY_RUNS", "5000")))
    if "replay" not in skip:
        measure_replay(int(os.environ.get("BENCH_REPLAY", "100000")))
    connection.close()
    if "http" not in skip:
        measure_http(
            float(os.environ.get("BENCH_SECONDS", "15")),
            int(os.environ.get("BENCH_WORKERS", "2")),
            int(os.environ.get("BENCH_PORT", "8792")),
        )
