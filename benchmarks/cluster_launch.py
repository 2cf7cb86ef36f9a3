"""A campaign launch of 100,000 grants with 1, 2 and 3 django-q2 clusters (``manage.py qcluster``
processes) on PostgreSQL and Redis: from the launch request to the campaign running (the launch
task), and to every reviewer's email sent (one task per email, shared by the clusters). Prints
the medians and how many tasks each cluster ran.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> python -m benchmarks cluster_launch

It migrates the database of ``DATABASE_URL`` and adds the data of ``campaign_launch`` once (users
``bench_c_*``): run it on a database of its own. Redis: ``REDIS_URL`` (default
redis://127.0.0.1:6379/0), on a queue of its own (``Q_NAME``) whose keys it deletes afterwards.
Environment: BENCH_GRANTS (100000), BENCH_OWNERS (500), BENCH_RUNS (2), BENCH_CLUSTERS (1,2,3),
BENCH_Q_WORKERS (1: worker processes per cluster).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_PROCESSED = re.compile(r"Processed '([\w.]+)'")


def _wait(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> float:
    """Seconds until ``predicate`` holds (raises after ``timeout``)."""
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"not done after {timeout:.0f} s")
        time.sleep(interval)
    return time.perf_counter() - started


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Clusters:
    """``count`` qcluster processes, each in its own process group and log file."""

    def __init__(self, count: int, folder: Path) -> None:
        self.logs = [folder / f"cluster{count}-{number}.log" for number in range(count)]
        self.children: list[subprocess.Popen[bytes]] = []
        for log_path in self.logs:
            with log_path.open("wb") as log:
                self.children.append(
                    subprocess.Popen(
                        [sys.executable, "manage.py", "qcluster"],
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        process_group=0,
                    )
                )
        _wait(lambda: all("running." in path.read_text(errors="replace") for path in self.logs), 120, 0.5)

    def processed(self) -> list[int]:
        """Tasks each cluster has finished so far."""
        return [len(_PROCESSED.findall(path.read_text(errors="replace"))) for path in self.logs]

    def stop(self) -> None:
        for child in self.children:
            try:
                os.killpg(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for child in self.children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def _one_launch(actor: Any, definition: Any, clusters: Clusters) -> tuple[float, float, list[int], int]:
    """Launch through the queue; returns (s to running, s to every email sent, tasks each
    cluster ran for the launch, items)."""
    from django_q.brokers import get_broker

    from approvals.campaigns import services
    from approvals.campaigns.models import Campaign, ReviewItem
    from governance.models import OutboundEmail

    campaign = services.campaign_create(actor=actor, definition=definition)
    before = clusters.processed()
    started = time.perf_counter()
    services.campaign_launch_request(actor=actor, campaign=campaign)
    _wait(lambda: Campaign.objects.filter(pk=campaign.pk, status="active").exists(), 900)
    running = time.perf_counter() - started
    emails = OutboundEmail.objects.filter(key__startswith=f"campaign-{campaign.pk}-assigned-")
    _wait(lambda: emails.exists() and not emails.exclude(status="sent").exists(), 900)
    mailed = time.perf_counter() - started
    # Emails may be sent by the minute's outbox flush while their own tasks still wait in the
    # queue: count the tasks once the queue is empty and the clusters have logged them all.
    # A cluster takes tasks from Redis ahead of running them: wait until its log stops growing.
    broker = get_broker()
    _wait(lambda: broker.queue_size() == 0, 900)
    counts, still = clusters.processed(), 0
    while still < 5:
        time.sleep(1)
        latest = clusters.processed()
        still = still + 1 if latest == counts else 0
        counts = latest
    spread = [after - earlier for after, earlier in zip(counts, before, strict=True)]
    items = ReviewItem.objects.filter(campaign=campaign).count()
    # Keep the database the same size for the next run.
    ReviewItem.objects.filter(campaign=campaign).delete()
    Campaign.objects.filter(pk=campaign.pk).update(status="closed")
    return running, mailed, spread, items


def _environment(queue_name: str, mail_dir: Path) -> None:
    """Settings shared by this process (which queues the launch) and the clusters it starts."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ["Q_NAME"] = queue_name
    os.environ["CACHE_KEY_PREFIX"] = queue_name
    os.environ["Q_WORKERS"] = os.environ.get("BENCH_Q_WORKERS", "1")
    os.environ["EMAIL_URL"] = f"filemail://{mail_dir}"
    os.environ["DEBUG"] = "0"


def _delete_queue_keys(queue_name: str) -> None:
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    for pattern in (queue_name, f"django_q:{queue_name}:*", f"{queue_name}:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


def main() -> None:
    queue_name = f"bench-{secrets.token_hex(4)}"
    folder = Path(tempfile.mkdtemp(prefix="cluster_launch_"))
    _environment(queue_name, folder / "mail")
    import django

    django.setup()
    from django.db import connection

    from benchmarks.campaign_launch import bench_definition, seed

    if connection.vendor != "postgresql":
        print("cluster_launch needs DATABASE_URL on PostgreSQL (and a Redis server): skipped")
        return
    runs = int(os.environ.get("BENCH_RUNS", "2"))
    counts = [int(count) for count in os.environ.get("BENCH_CLUSTERS", "1,2,3").split(",")]
    system, admin, total, n_owners = seed()
    actor, definition = bench_definition("Benchmark cluster launch", system, admin)
    connection.close()  # the clusters fork after this point; they open their own
    results: dict[int, list[tuple[float, float, list[int], int]]] = {}
    try:
        for count in counts:
            clusters = Clusters(count, folder)
            try:
                results[count] = []
                for run in range(runs):
                    outcome = _one_launch(actor, definition, clusters)
                    assert outcome[3] == total, (outcome[3], total)
                    results[count].append(outcome)
                    print(
                        f"{count} cluster(s), run {run + 1}: running after {outcome[0]:.2f} s, "
                        f"{n_owners} emails sent after {outcome[1]:.2f} s; tasks per cluster {outcome[2]} "
                        f"(load {_load()})"
                    )
            finally:
                clusters.stop()
    finally:
        _delete_queue_keys(queue_name)
        shutil.rmtree(folder, ignore_errors=True)
    print(f"database: PostgreSQL; grants: {total}; reviewers (emails): {n_owners}; runs per count: {runs}")
    for count, outcomes in results.items():
        print(
            f"{count} cluster(s): launch to running median {statistics.median(o[0] for o in outcomes):.2f} s, "
            f"to every email sent median {statistics.median(o[1] for o in outcomes):.2f} s"
        )
