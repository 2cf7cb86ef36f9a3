"""The production shape, for real: gunicorn with two workers and three ``qcluster`` processes on
one PostgreSQL database and one Redis queue. Over the API an IAM admin subscribes a flaky
receiver (it refuses or stalls a third of the first attempts) to ``review_item.decided`` and
launches a campaign of 20,000 grants; twenty reviewers then certify 2,000 items (one over the
API, the others through the bulk decision service).
Nothing may be made, mailed or delivered twice or lost: every grant has one item, every
reviewer one email, every decision one delivery that the receiver accepted once (however many
attempts it took), and the work shows up in the logs of more than one cluster.

Needs PostgreSQL (``DATABASE_URL``) and a Redis server (``REDIS_URL``, or 127.0.0.1:6379);
skipped otherwise. It runs on a database and a queue of its own and deletes them afterwards.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings

from tests.deploy import scale_out_support as support
from tests.mail_support import Mailbox, free_port

OWNERS = 200
INTEGRATIONS = 4_000
SCOPES = 5
ITEMS = INTEGRATIONS * SCOPES  # 20,000
DECIDING_REVIEWERS = 20
DECISIONS = DECIDING_REVIEWERS * (ITEMS // OWNERS)  # 2,000
CLUSTERS = 3
REDIS_URL = settings.REDIS_URL or "redis://127.0.0.1:6379/0"

pytestmark = [
    pytest.mark.scale_out,
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="scale-out test: needs DATABASE_URL on PostgreSQL (it runs in .ci/run's PostgreSQL pass)",
    ),
    pytest.mark.skipif(
        not support.redis_answers(REDIS_URL), reason=f"scale-out test: needs a Redis server at {REDIS_URL}"
    ),
]

TOKENS_SCRIPT = """
import json
from io import StringIO
from django.core.management import call_command
names = ["so_admin"] + ["so_owner_%04d" % n for n in range({reviewers})]
tokens = {{}}
for name in names:
    out = StringIO()
    call_command("issue_api_token", name, stdout=out, stderr=StringIO())
    tokens[name] = out.getvalue().strip()
print(json.dumps(tokens))
"""


class Portal:
    """The running deployment: its address, folder of logs, database and processes."""

    def __init__(self, tmp_path: Path, processes: support.Processes, dbname: str, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.processes = processes
        self.dbname = dbname
        self.env = env
        self.base = env["SITE_URL"]

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.processes.log(name)[-3000:]}" for name in self.processes.children)

    def tokens(self) -> dict[str, str]:
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", TOKENS_SCRIPT.format(reviewers=DECIDING_REVIEWERS)],
            cwd=support.ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        tokens: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
        return tokens


class SmtpSink(Mailbox):
    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server that refuses its first few messages ("451 try later")."""
    mailbox = SmtpSink(free_port())
    mailbox.refuse = 5
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def receiver() -> Iterator[support.FlakyReceiver]:
    with support.FlakyReceiver(secret=secrets.token_urlsafe(32), stall_seconds=1.6) as flaky:
        yield flaky


@pytest.fixture
def portal(tmp_path: Path, smtp_sink: SmtpSink, receiver: support.FlakyReceiver) -> Iterator[Portal]:
    """A database of its own, seeded; gunicorn (two workers) and three clusters on it."""
    run = secrets.token_hex(4)
    dbname, queue_name = f"scaleout_{run}", f"scaleout-{run}"
    port = free_port()
    env = support.child_env(
        {
            "DATABASE_URL": support.database_url(dbname),
            "REDIS_URL": REDIS_URL,
            "Q_NAME": queue_name,
            "CACHE_KEY_PREFIX": queue_name,
            "Q_WORKERS": "1",
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp_sink.port}",
            "SITE_URL": f"http://127.0.0.1:{port}",
            "OUTBOUND_ALLOWED_HOSTS": f"127.0.0.1:{receiver.port}",
            "OUTBOUND_TIMEOUT_SECONDS": "1",
            "WEBHOOK_TIMEOUT_SECONDS": "1",
            "WEBHOOK_RETRY_BASE_SECONDS": "1",
            "OUTBOX_RETRY_BASE_SECONDS": "1",
        }
    )
    processes = support.Processes(tmp_path)
    with support.own_redis_keys(REDIS_URL, queue_name, queue_name):
        try:
            support.clone_migrated_database(dbname, env)
            support.seed(dbname, owners=OWNERS, integrations=INTEGRATIONS, scopes=SCOPES)
            processes.start(
                "web",
                [sys.executable, "-m", "gunicorn", "governance.wsgi:application", "--workers", "2"]
                + ["--bind", f"127.0.0.1:{port}", "--timeout", "120"],
                env,
            )
            for number in range(CLUSTERS):
                processes.start(f"cluster{number}", [sys.executable, "manage.py", "qcluster"], env)
            deployment = Portal(tmp_path, processes, dbname, env)
            _wait_until_up(deployment, port)
            yield deployment
        finally:
            processes.stop()
            support.drop_database(dbname)


def _wait_until_up(portal: Portal, port: int) -> None:
    clusters = [name for name in portal.processes.children if name.startswith("cluster")]

    def ready() -> bool:
        assert not portal.processes.exited(), portal.logs()
        web = support.answers(f"http://127.0.0.1:{port}/accounts/login/")
        return web and all("running." in portal.processes.log(name) for name in clusters)

    assert support.wait_for(ready, 90), portal.logs()


# --- The run -------------------------------------------------------------------------------------------------


def _launch(portal: Portal, admin: str, receiver: support.FlakyReceiver) -> int:
    """Subscribe the receiver and launch the campaign over the API; returns the campaign's id."""
    status, body = support.api(
        portal.base,
        "POST",
        "/api/v1/webhooks/",
        admin,
        {
            "name": "flaky receiver",
            "target_url": receiver.url,
            "event_types": ["review_item.decided"],
            "secret": receiver.secret,
        },
    )
    assert status == 201, body
    status, body = support.api(
        portal.base,
        "POST",
        "/api/v1/campaign-definitions/",
        admin,
        {
            "name": "Scale-out recertification",
            "owner": "so_admin",
            "resource_systems": ["scaleout"],
            "reviewer_rule": "business_owner",
            "duration_days": 14,
        },
    )
    assert status == 201, body
    status, body = support.api(
        portal.base, "POST", "/api/v1/campaigns/", admin, {"definition": body["id"], "launch": True}
    )
    assert status == 201, body
    campaign_id = int(body["id"])

    def launched() -> bool:
        status, body = support.api(portal.base, "GET", f"/api/v1/campaigns/{campaign_id}/", admin)
        assert status == 200, body
        return body["status"] == "active"

    assert support.wait_for(launched, 120, interval=1), portal.logs()
    return campaign_id


DECIDE_SCRIPT = """
from approvals.campaigns.models import ReviewItem
from approvals.campaigns.services import review_items_decide_many
from governance.models import User
for user in User.objects.filter(username__in={names!r}).order_by("username"):
    items = list(ReviewItem.objects.filter(campaign_id={campaign}, reviewer=user).order_by("pk"))
    result = review_items_decide_many(actor=user, items=items, decision="certify", comment="still needed")
    assert len(result.decided) == len(items) and not result.failed, result.failed
"""


def _decide_over_api(portal: Portal, token: str, item_ids: list[int]) -> list[tuple[int, Any]]:
    """Certify ``item_ids`` one request each, four at a time (both web workers busy)."""

    def certify(item_id: int) -> tuple[int, Any]:
        return support.api(
            portal.base,
            "POST",
            f"/api/v1/review-items/{item_id}/decision/",
            token,
            {"decision": "certify", "comment": "still needed"},
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        return [answer for answer in pool.map(certify, item_ids) if answer[0] != 200]


def _decide(portal: Portal, tokens: dict[str, str], campaign_id: int) -> None:
    """The deciding reviewers certify every item assigned to them: the first one over the API,
    the others at the same time through the bulk decision service (a management command), as
    the review page's bulk form does."""
    reviewers = sorted(name for name in tokens if name != "so_admin")
    api_reviewer, bulk_reviewers = reviewers[0], reviewers[1:]
    rows = support.query(
        portal.dbname,
        "SELECT i.id FROM campaigns_reviewitem i JOIN governance_user u ON u.id = i.reviewer_id"
        " WHERE i.campaign_id = %s AND u.username = %s ORDER BY i.id",
        [campaign_id, api_reviewer],
    )
    assert len(rows) == ITEMS // OWNERS
    # Two processes share the bulk reviewers, as two people deciding at the same time would.
    logs = [portal.tmp_path / f"decide{number}.log" for number in range(2)]
    bulk = []
    for names, log_path in zip((bulk_reviewers[0::2], bulk_reviewers[1::2]), logs, strict=True):
        with log_path.open("wb") as log:
            bulk.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "manage.py",
                        "shell",
                        "-c",
                        DECIDE_SCRIPT.format(names=names, campaign=campaign_id),
                    ],
                    cwd=support.ROOT,
                    env=portal.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        failures = _decide_over_api(portal, tokens[api_reviewer], [item_id for (item_id,) in rows])
        codes = [process.wait(timeout=900) for process in bulk]
    finally:
        for process in bulk:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert failures == []
    assert codes == [0, 0], [log_path.read_text(errors="replace")[-3000:] for log_path in logs]


def _settled(portal: Portal) -> bool:
    deliveries = support.query(
        portal.dbname, "SELECT count(*) FROM webhooks_webhookdelivery WHERE status <> 'delivered'"
    )[0][0]
    emails = support.query(portal.dbname, "SELECT count(*) FROM governance_outboundemail WHERE status <> 'sent'")[0][0]
    return deliveries == 0 and emails == 0


_PROCESSED = re.compile(r"Processed '([\w.]+)' \(([\w-]+)\)")


def _tasks_by_cluster(portal: Portal) -> dict[str, list[tuple[str, str]]]:
    """(function, task name) of every task each cluster's log says it finished."""
    return {
        name: _PROCESSED.findall(portal.processes.log(name))
        for name in portal.processes.children
        if name.startswith("cluster")
    }


def test_three_clusters_share_the_work_and_lose_or_repeat_nothing(
    portal: Portal, smtp_sink: SmtpSink, receiver: support.FlakyReceiver
) -> None:
    started = time.monotonic()
    tokens = portal.tokens()
    campaign_id = _launch(portal, tokens["so_admin"], receiver)
    launched = time.monotonic()
    _decide(portal, tokens, campaign_id)
    decided = time.monotonic()
    assert support.wait_for(lambda: _settled(portal), 600, interval=1), portal.logs()
    print(
        f"tokens and launch {launched - started:.1f} s, {DECISIONS} decisions {decided - launched:.1f} s,"
        f" settled {time.monotonic() - decided:.1f} s later"
    )

    # Every grant has exactly one item; the campaign counts them all.
    items = support.query(
        portal.dbname,
        "SELECT count(*), count(DISTINCT grant_id) FROM campaigns_reviewitem WHERE campaign_id = %s",
        [campaign_id],
    )[0]
    assert items == (ITEMS, ITEMS)
    assert support.query(portal.dbname, "SELECT items_total FROM campaigns_campaign WHERE id = %s", [campaign_id]) == [
        (ITEMS,)
    ]
    certified = support.query(
        portal.dbname,
        "SELECT count(*) FROM campaigns_reviewitem WHERE campaign_id = %s AND decision = 'certify'",
        [campaign_id],
    )
    assert certified == [(DECISIONS,)]

    # One email per reviewer, received once each by the mail server (after its refusals).
    owners = {f"so_owner_{number:04d}@example.com" for number in range(OWNERS)}
    received = Counter(smtp_sink.recipients())
    assert smtp_sink.refused == 5
    assert received == Counter(owners)
    assert support.query(portal.dbname, "SELECT count(*) FROM governance_outboundemail") == [(OWNERS,)]

    # One delivery per decision, each accepted once by the receiver, however many tries it took.
    deliveries = support.query(
        portal.dbname, "SELECT event_id::text, attempts FROM webhooks_webhookdelivery WHERE status = 'delivered'"
    )
    assert len(deliveries) == DECISIONS
    attempts = {event_id: count for event_id, count in deliveries}
    assert receiver.bad_signatures == 0
    assert receiver.accepted == Counter(dict.fromkeys(attempts, 1))
    assert receiver.hits == Counter(attempts)
    assert receiver.refused > 0 and receiver.stalled > 0
    # Each refused or stalled first attempt was retried once, and nothing else was.
    assert sum(1 for count in attempts.values() if count == 2) == receiver.refused + receiver.stalled
    assert max(attempts.values()) == 2

    # Spread: more than one cluster sent email and webhooks, and no task ran twice.
    by_cluster = _tasks_by_cluster(portal)
    sending = {
        cluster: [name for _func, name in tasks if name.startswith(("webhook-", "outbox-"))]
        for cluster, tasks in by_cluster.items()
    }
    assert sum(1 for names in sending.values() if names) >= 2, {c: len(n) for c, n in sending.items()}
    every_name = [name for names in sending.values() for name in names]
    assert len(every_name) == len(set(every_name))
    print(
        "tasks per cluster:",
        {cluster: Counter(func.rsplit(".", 1)[-1] for func, _name in tasks) for cluster, tasks in by_cluster.items()},
    )
