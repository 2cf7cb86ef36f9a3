"""What /metrics reports, on crafted data: the outbox and webhook backlogs, the worker's failures
and queue, the audit trail and its stream, token requests and policy decisions of the last five
minutes, open campaigns' progress. Read from the database at scrape time, in a fixed number of
queries however many rows there are."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django_q.models import OrmQ, Task

from approvals.campaigns import services as campaign_services
from approvals.campaigns.models import ReviewItem
from governance.models import (
    AuditChainCheck,
    AuditCheckpoint,
    AuditStreamPosition,
    EmailStatus,
    OutboundEmail,
    User,
)
from governance.observability import registry
from governance.roles import Role
from governance.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from runtime.models import PolicyDecision, PolicyStatus, PolicyVersion, TokenEvent
from tests.observability.conftest import Samples, trail

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
# Queries of one scrape, whatever the data: outbox 1, webhooks 1, worker 2, audit 4, runtime 2,
# campaigns 1.
SCRAPE_QUERIES = 11

FAMILIES = {
    "governance_http_request_duration_seconds": "histogram",
    "governance_outbox_emails": "gauge",
    "governance_outbox_oldest_pending_age_seconds": "gauge",
    "governance_webhook_deliveries": "gauge",
    "governance_webhook_deliveries_retrying": "gauge",
    "governance_webhook_oldest_pending_age_seconds": "gauge",
    "governance_worker_task_failures": "gauge",
    "governance_worker_queued_tasks": "gauge",
    "governance_audit_last_event_id": "gauge",
    "governance_audit_chain_intact": "gauge",
    "governance_audit_chain_checked_timestamp_seconds": "gauge",
    "governance_audit_checkpoint_timestamp_seconds": "gauge",
    "governance_audit_stream_last_event_id": "gauge",
    "governance_audit_stream_written_timestamp_seconds": "gauge",
    "governance_runtime_token_requests_recent": "gauge",
    "governance_runtime_policy_decisions_recent": "gauge",
    "governance_campaign_review_items": "gauge",
    "governance_campaign_review_items_decided": "gauge",
    "governance_campaign_deadline_timestamp_seconds": "gauge",
    "governance_metrics_source_up": "gauge",
}


def value(samples: Samples, family: str, /, **labels: str) -> float:
    return samples[(family, tuple(sorted(labels.items())))]


# --- Crafted data --------------------------------------------------------------------------------


def emails(status: str, count: int, *, age: timedelta = timedelta(0)) -> None:
    for _ in range(count):
        OutboundEmail.objects.create(
            key=uuid.uuid4().hex,
            to_address="someone@example.com",
            subject="Subject",
            body_text="Body",
            status=status,
            created_at=NOW - age,
        )


def deliveries(subscription: WebhookSubscription, status: str, count: int, **values: Any) -> None:
    for _ in range(count):
        WebhookDelivery.objects.create(
            subscription=subscription,
            event_type="integration.created",
            occurred_at=NOW,
            target_type="inventory.integration",
            target_id="1",
            give_up_at=NOW + timedelta(hours=24),
            status=status,
            **({"created_at": NOW} | values),
        )


def failed_task(func: str, *, success: bool = False) -> None:
    Task.objects.create(
        id=uuid.uuid4().hex, name=uuid.uuid4().hex, func=func, started=NOW, stopped=NOW, success=success
    )


def token_event(outcome: str, *, error: str = "", age: timedelta = timedelta(minutes=1)) -> None:
    TokenEvent.objects.create(at=NOW - age, outcome=outcome, error=error, digest=uuid.uuid4().hex)


def decision(verdict: str, point: str, *, enforced: bool, age: timedelta = timedelta(minutes=1)) -> None:
    version = PolicyVersion.objects.filter(status=PolicyStatus.ENFORCED).first() if enforced else None
    PolicyDecision.objects.create(
        at=NOW - age,
        decision_id=uuid.uuid4().hex,
        point=point,
        principal='Integration::"1"',
        action="use_scope",
        resource='Scope::"crm:read"',
        decision=verdict,
        policy_version=version,
        digest=uuid.uuid4().hex,
    )


@pytest.fixture
def subscription(iam_admin: User) -> WebhookSubscription:
    return WebhookSubscription.objects.create(
        name="SIEM", target_url="https://hooks.example.com/in", secret_encrypted="unused", created_by=iam_admin
    )


@pytest.fixture
def campaign(
    make_user: Callable[..., User],
    make_integration: Any,
    make_grant: Any,
    catalog: Any,
    make_definition: Any,
    launched: Any,
) -> Any:
    """A running campaign of three review items, one of them decided."""
    alice = make_user("alice", Role.BUSINESS_USER)
    integration = make_integration(alice, technical_owner=make_user("tech", Role.BUSINESS_USER))
    grants = [make_grant(integration, catalog[name]) for name in ("read", "write", "admin")]
    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        running = launched(make_definition())
    item = ReviewItem.objects.get(campaign=running, grant=grants[0])
    with time_machine.travel(NOW - timedelta(hours=1), tick=False):
        campaign_services.review_item_decide(actor=alice, item=item, decision="certify")
    return running


@pytest.fixture
def crafted(subscription: WebhookSubscription, campaign: Any) -> Any:
    OutboundEmail.objects.all().delete()  # the campaign's notifications: an outbox of our own
    emails(EmailStatus.PENDING, 2)
    emails(EmailStatus.PENDING, 1, age=timedelta(minutes=10))
    emails(EmailStatus.SENDING, 1)
    emails(EmailStatus.FAILED, 3)
    emails(EmailStatus.SENT, 4)
    deliveries(subscription, DeliveryStatus.PENDING, 2)
    deliveries(subscription, DeliveryStatus.PENDING, 1, attempts=3, created_at=NOW - timedelta(hours=2))
    deliveries(subscription, DeliveryStatus.SENDING, 1)
    deliveries(subscription, DeliveryStatus.FAILED, 4)
    deliveries(subscription, DeliveryStatus.DELIVERED, 5)
    failed_task("governance.tasks.outbox_flush")
    failed_task("governance.tasks.outbox_flush")
    failed_task("governance.observability.tasks.audit_stream")
    failed_task("subprocess.getoutput")
    failed_task("governance.tasks.ping", success=True)
    for lock in (NOW - timedelta(seconds=5), NOW, NOW - timedelta(minutes=1), NOW + timedelta(minutes=5)):
        OrmQ.objects.create(key="governance", payload="signed", lock=lock)
    AuditChainCheck.objects.create(checked_at=NOW - timedelta(hours=1), events_checked=10, intact=True)
    AuditCheckpoint.objects.create(
        sequence=1,
        signed_at=NOW - timedelta(minutes=30),
        event_count=5,
        last_event_id=5,
        head_hash="0" * 64,
        key_id="k",
        signature="s",
    )
    AuditStreamPosition.objects.create(sink="file", last_event_id=3, updated_at=NOW - timedelta(minutes=2))
    for _ in range(3):
        token_event("issued")
    token_event("refused", error="invalid_scope")
    token_event("refused", error="invalid_scope")
    token_event("refused", error="made_up_error")
    token_event("issued", age=timedelta(minutes=6))
    decision("allow", "api", enforced=True)
    decision("allow", "api", enforced=True)
    decision("deny", "token_exchange", enforced=False)
    decision("deny", "api", enforced=True, age=timedelta(minutes=10))
    return campaign


# --- The figures ---------------------------------------------------------------------------------


def test_every_family_is_served_with_its_type(scrape: Any, crafted: Any, client: Any) -> None:
    client.get("/accounts/login/")  # one request timed, so the histogram has a series
    with time_machine.travel(NOW, tick=False):
        families, _samples = scrape()
    for name, kind in FAMILIES.items():
        assert families.get(name) == kind, name
    # Not the per-process collectors of multiprocess mode: this process serves its own.
    assert "process_cpu_seconds" in families


def test_backlogs_of_the_outbox_and_the_webhooks(scrape: Any, crafted: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        _families, samples = scrape()
    assert [
        value(samples, "governance_outbox_emails", status=status) for status in ("pending", "sending", "failed")
    ] == [3, 1, 3]
    assert value(samples, "governance_outbox_oldest_pending_age_seconds") == 600
    webhook = [
        value(samples, "governance_webhook_deliveries", status=status) for status in ("pending", "sending", "failed")
    ]
    assert webhook == [3, 1, 4]
    assert value(samples, "governance_webhook_deliveries_retrying") == 1
    assert value(samples, "governance_webhook_oldest_pending_age_seconds") == 7200


def test_worker_failures_by_function_and_the_queue(scrape: Any, crafted: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        _families, samples = scrape()
    failures = {
        dict(labels)["function"]: count
        for (name, labels), count in samples.items()
        if name == "governance_worker_task_failures"
    }
    # A function outside the worker's allow-list is counted as "other", whatever the row says.
    assert failures == {
        "governance.tasks.outbox_flush": 2,
        "governance.observability.tasks.audit_stream": 1,
        "other": 1,
    }
    # A task whose lock runs into the future is being run, not waiting.
    assert value(samples, "governance_worker_queued_tasks", queue="governance") == 3


def test_the_audit_trail_its_checks_and_its_stream(scrape: Any, crafted: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        _families, samples = scrape()
    assert value(samples, "governance_audit_last_event_id") == trail()[-1][0]
    assert value(samples, "governance_audit_chain_intact") == 1
    assert value(samples, "governance_audit_chain_checked_timestamp_seconds") == (NOW - timedelta(hours=1)).timestamp()
    assert value(samples, "governance_audit_checkpoint_timestamp_seconds") == (NOW - timedelta(minutes=30)).timestamp()
    assert value(samples, "governance_audit_stream_last_event_id", sink="file") == 3
    assert (
        value(samples, "governance_audit_stream_written_timestamp_seconds", sink="file")
        == (NOW - timedelta(minutes=2)).timestamp()
    )


def test_a_broken_chain_reads_zero(scrape: Any, db: Any) -> None:
    AuditChainCheck.objects.create(checked_at=NOW, events_checked=3, intact=False, broken_event_id=2, problem="altered")
    with time_machine.travel(NOW, tick=False):
        _families, samples = scrape()
    assert value(samples, "governance_audit_chain_intact") == 0


def test_before_any_check_or_checkpoint_those_gauges_have_no_sample(scrape: Any, db: Any) -> None:
    _families, samples = scrape()
    names = {name for name, _labels in samples}
    assert "governance_audit_chain_intact" not in names
    assert "governance_audit_checkpoint_timestamp_seconds" not in names
    assert value(samples, "governance_outbox_emails", status="pending") == 0
    assert value(samples, "governance_outbox_oldest_pending_age_seconds") == 0


def test_token_requests_of_the_last_five_minutes(scrape: Any, crafted: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        _families, samples = scrape()
    name = "governance_runtime_token_requests_recent"
    assert value(samples, name, outcome="issued", error="") == 3
    assert value(samples, name, outcome="refused", error="invalid_scope") == 2
    assert value(samples, name, outcome="refused", error="other") == 1
    # Every known error has its series, at 0 until it happens.
    assert value(samples, name, outcome="refused", error="access_denied") == 0


def test_policy_decisions_of_the_last_five_minutes(scrape: Any, crafted: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        _families, samples = scrape()
    name = "governance_runtime_policy_decisions_recent"
    assert value(samples, name, decision="allow", point="api", enforced="true") == 2
    assert value(samples, name, decision="deny", point="token_exchange", enforced="false") == 1
    assert value(samples, name, decision="deny", point="api", enforced="true") == 0
    assert sum(count for (family, _labels), count in samples.items() if family == name) == 3


def test_open_campaigns_progress(scrape: Any, crafted: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        _families, samples = scrape()
    labels = {"campaign": str(crafted.pk), "name": crafted.name}
    assert value(samples, "governance_campaign_review_items", **labels) == 3
    assert value(samples, "governance_campaign_review_items_decided", **labels) == 1
    assert value(samples, "governance_campaign_deadline_timestamp_seconds", **labels) == crafted.deadline.timestamp()


def test_a_closed_campaign_leaves_the_metrics(scrape: Any, crafted: Any) -> None:
    def campaign_series(samples: Any) -> list[str]:
        return [name for name, _labels in samples if name.startswith("governance_campaign_")]

    with time_machine.travel(NOW, tick=False):
        _families, running = scrape()
        assert campaign_series(running), "the running campaign is not in the metrics"
        # Closed the way the deadline sweep closes it (undecided items get the default action).
        closed = campaign_services.campaign_close(campaign=crafted)
        closed.refresh_from_db()
        assert closed.status == "closed"
        _families, samples = scrape()
    assert not campaign_series(samples)


def test_every_source_is_up(scrape: Any, crafted: Any) -> None:
    _families, samples = scrape()
    up = {
        dict(labels)["source"]: count
        for (name, labels), count in samples.items()
        if name == "governance_metrics_source_up"
    }
    assert up == {"audit": 1, "campaigns": 1, "outbox": 1, "runtime": 1, "webhooks": 1, "worker": 1}


def test_a_failing_source_is_reported_down_and_the_others_still_served(
    scrape: Any, db: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> list[Any]:
        raise RuntimeError("the figures are not there")

    monkeypatch.setitem(registry._SOURCES, "runtime", broken)
    _families, samples = scrape()
    assert value(samples, "governance_metrics_source_up", source="runtime") == 0
    assert value(samples, "governance_metrics_source_up", source="outbox") == 1
    assert ("governance_runtime_token_requests_recent", (("error", ""), ("outcome", "issued"))) not in samples
    assert "The 'runtime' metrics could not be read" in caplog.text


# --- Cost ----------------------------------------------------------------------------------------


def _more(subscription: WebhookSubscription) -> None:
    """Ten times the rows, and a second open campaign."""
    emails(EmailStatus.PENDING, 30)
    emails(EmailStatus.FAILED, 30)
    deliveries(subscription, DeliveryStatus.PENDING, 30)
    deliveries(subscription, DeliveryStatus.FAILED, 30)
    for number in range(20):
        failed_task(f"governance.tasks.function_{number}")
        token_event("refused", error="invalid_grant")
        decision("allow", "token_exchange", enforced=True)
        OrmQ.objects.create(key="governance", payload="signed", lock=NOW)
    AuditStreamPosition.objects.create(sink="syslog", last_event_id=1, updated_at=NOW)


def test_a_scrape_costs_the_same_queries_however_many_rows(
    client: Any,
    metrics_token: str,
    crafted: Any,
    subscription: WebhookSubscription,
    make_definition: Any,
    launched: Any,
    django_assert_num_queries: Any,
) -> None:
    authorization = f"Bearer {metrics_token}"
    with django_assert_num_queries(SCRAPE_QUERIES):
        assert client.get("/metrics", HTTP_AUTHORIZATION=authorization).status_code == 200
    _more(subscription)
    launched(make_definition())
    with django_assert_num_queries(SCRAPE_QUERIES):
        assert client.get("/metrics", HTTP_AUTHORIZATION=authorization).status_code == 200


def test_an_empty_portal_costs_the_same(
    client: Any, metrics_token: str, db: Any, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(SCRAPE_QUERIES):
        assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}").status_code == 200
