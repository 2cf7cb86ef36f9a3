"""The kernel's figures for /metrics: the email outbox, the webhook outbox, the worker and the
audit trail (its head, its last verification and checkpoint, and how far each SIEM sink has
taken it). Read from the database at scrape time, eight queries in all whatever the data."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Min, Q
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ, Task
from prometheus_client.core import GaugeMetricFamily, Metric

from governance.models import (
    AuditChainCheck,
    AuditCheckpoint,
    AuditEvent,
    AuditStreamPosition,
    EmailStatus,
    OutboundEmail,
)
from governance.observability.registry import register_source
from governance.scheduling import allowed_task_functions
from governance.webhooks.models import DeliveryStatus, WebhookDelivery

# Worker functions outside the allow-list (a refused task names whatever was written in its row)
# are counted together, so a label cannot take arbitrary values.
OTHER_FUNCTION = "other"


def register() -> None:
    register_source("outbox", outbox_metrics)
    register_source("webhooks", webhook_metrics)
    register_source("worker", worker_metrics)
    register_source("audit", audit_metrics)


def _age_seconds(oldest: datetime | None, now: datetime) -> float:
    return max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0


def outbox_metrics() -> Iterator[Metric]:
    """One query: emails waiting, being sent and given up, and the oldest one waiting."""
    now = timezone.now()
    backlog = (EmailStatus.PENDING, EmailStatus.SENDING, EmailStatus.FAILED)
    row = OutboundEmail.objects.filter(status__in=backlog).aggregate(
        oldest=Min("created_at", filter=Q(status=EmailStatus.PENDING)),
        **{status.value: Count("id", filter=Q(status=status)) for status in backlog},
    )
    emails = GaugeMetricFamily(
        "governance_outbox_emails",
        "Emails in the outbox by status: pending (waiting or retrying), sending, failed (given up).",
        labels=["status"],
    )
    for status in backlog:
        emails.add_metric([status.value], row[status.value])
    yield emails
    yield GaugeMetricFamily(
        "governance_outbox_oldest_pending_age_seconds",
        "Age of the oldest email still waiting to be sent (0 when none waits).",
        value=_age_seconds(row["oldest"], now),
    )


def webhook_metrics() -> Iterator[Metric]:
    """One query: deliveries waiting (and of those, retrying), being sent and given up (the dead
    letters), and the oldest one waiting."""
    now = timezone.now()
    backlog = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.FAILED)
    row = WebhookDelivery.objects.filter(status__in=backlog).aggregate(
        oldest=Min("created_at", filter=Q(status=DeliveryStatus.PENDING)),
        retrying=Count("id", filter=Q(status=DeliveryStatus.PENDING, attempts__gt=0)),
        **{status.value: Count("id", filter=Q(status=status)) for status in backlog},
    )
    deliveries = GaugeMetricFamily(
        "governance_webhook_deliveries",
        "Webhook deliveries by status: pending (waiting or retrying), sending, failed (given up after "
        "WEBHOOK_RETRY_HOURS: dead letters).",
        labels=["status"],
    )
    for status in backlog:
        deliveries.add_metric([status.value], row[status.value])
    yield deliveries
    yield GaugeMetricFamily(
        "governance_webhook_deliveries_retrying",
        "Pending webhook deliveries that have failed at least once and wait for their next attempt.",
        value=row["retrying"],
    )
    yield GaugeMetricFamily(
        "governance_webhook_oldest_pending_age_seconds",
        "Age of the oldest webhook delivery still waiting (0 when none waits).",
        value=_age_seconds(row["oldest"], now),
    )


def worker_metrics() -> Iterator[Metric]:
    """Two queries with the ORM broker (one with Redis): failed tasks by function, tasks queued."""
    allowed = allowed_task_functions()
    failures: dict[str, int] = {}
    for row in Task.objects.filter(success=False).values("func").annotate(count=Count("id")).order_by():
        function = row["func"] if row["func"] in allowed else OTHER_FUNCTION
        failures[function] = failures.get(function, 0) + row["count"]
    failed = GaugeMetricFamily(
        "governance_worker_task_failures",
        "Failed background tasks the worker has recorded, by function (django-q2 keeps every failure "
        "until an operator deletes it: alert on an increase).",
        labels=["function"],
    )
    for function, count in sorted(failures.items()):
        failed.add_metric([function], count)
    yield failed
    queued = GaugeMetricFamily(
        "governance_worker_queued_tasks",
        "Tasks waiting in the broker for a worker, by queue (cluster name).",
        labels=["queue"],
    )
    for queue, count in _queued_tasks().items():
        queued.add_metric([queue], count)
    yield queued


def _queued_tasks() -> dict[str, int]:
    if Conf.ORM:
        # Every queue of the ORM broker in one query; a row locked into the future is being run.
        rows = OrmQ.objects.filter(lock__lte=timezone.now()).values("key").annotate(count=Count("id")).order_by()
        queued = {row["key"]: row["count"] for row in rows}
        return {Conf.CLUSTER_NAME: 0, **queued}
    return {Conf.CLUSTER_NAME: _broker().queue_size()}


@functools.cache
def _broker() -> Any:
    """The Redis broker (its connection pool), made once per process."""
    from django_q.brokers import get_broker

    return get_broker()


def audit_metrics() -> Iterator[Metric]:
    """Four queries: the newest event, the newest chain verification, the newest checkpoint and
    the stream positions."""
    head = AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0
    yield GaugeMetricFamily(
        "governance_audit_last_event_id", "Id of the newest audit event (0 for an empty trail).", value=head
    )
    check = AuditChainCheck.objects.order_by("-checked_at", "-id").values("checked_at", "intact").first()
    yield _optional(
        "governance_audit_chain_intact",
        "Whether the last walk of the audit chain found it intact (1) or broken (0); absent before the first walk.",
        None if check is None else float(check["intact"]),
    )
    yield _optional(
        "governance_audit_chain_checked_timestamp_seconds",
        "When the audit chain was last walked (Unix time).",
        None if check is None else check["checked_at"].timestamp(),
    )
    signed_at = AuditCheckpoint.objects.order_by("-sequence").values_list("signed_at", flat=True).first()
    yield _optional(
        "governance_audit_checkpoint_timestamp_seconds",
        "When the newest audit checkpoint was signed (Unix time); absent before the first.",
        None if signed_at is None else signed_at.timestamp(),
    )
    yield from _stream_metrics()


def _stream_metrics() -> Iterator[Metric]:
    streamed = GaugeMetricFamily(
        "governance_audit_stream_last_event_id",
        "Id of the last audit event each SIEM sink took; behind governance_audit_last_event_id while it catches up.",
        labels=["sink"],
    )
    written = GaugeMetricFamily(
        "governance_audit_stream_written_timestamp_seconds",
        "When each SIEM sink last took events (Unix time).",
        labels=["sink"],
    )
    for position in AuditStreamPosition.objects.values("sink", "last_event_id", "updated_at"):
        streamed.add_metric([position["sink"]], position["last_event_id"])
        if position["updated_at"] is not None:
            written.add_metric([position["sink"]], position["updated_at"].timestamp())
    yield streamed
    yield written


def _optional(name: str, documentation: str, value: float | None) -> Metric:
    """A gauge with no sample when there is nothing to report yet (rather than a misleading 0)."""
    family = GaugeMetricFamily(name, documentation)
    if value is not None:
        family.add_metric([], value)
    return family
