"""The kernel's own controls (audit trail, webhooks and ticketing): registered from
``ControlsConfig.ready``. Also the small helpers every app's evidence uses: the start of a look-back
window, a share that never rounds up to 100 %, and a link to a filtered list page.

Each ``evidence()`` runs a fixed number of queries whatever the size of the trail or the outbox:
aggregates and the newest rows by an indexed column, never a walk of the rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from governance.controls.registry import HIGHER, LOWER, Control, Figure, Threshold, register_control
from governance.models import AuditChainCheck, AuditCheckpoint, AuditEvent
from governance.webhooks.models import DeliveryStatus, SubscriptionStatus, WebhookDelivery, WebhookSubscription

# --- Helpers shared by the apps' evidence ---------------------------------------------------------


def window_start(days: int) -> datetime:
    """The start of a look-back window of ``days`` ending now, in whole seconds: the figure counts
    from exactly the time its list link names."""
    return (timezone.now() - timedelta(days=days)).replace(microsecond=0)


def share(part: int, whole: int, *, better: str = HIGHER) -> float | None:
    """``part`` of ``whole`` in percent to one decimal, never rounded towards the good side: when
    higher is better it is cut (9,999 of 10,000 never reads 100), when lower is better it is
    rounded up (1 of 10,000 reads 0.1, never 0). None when there is nothing to count."""
    if not whole:
        return None
    tenths = 1000 * part / whole
    return (math.floor(tenths) if better == HIGHER else math.ceil(tenths)) / 10


def list_link(url_name: str, *args: Any, **params: Any) -> str:
    """The path of a portal page (``url_name``) with ``params`` as its query string (a date-time
    as ISO 8601; empty values left out)."""
    query = {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in params.items()
        if value not in (None, "")
    }
    path = reverse(url_name, args=args)
    return f"{path}?{urlencode(query)}" if query else path


def hours_since(moment: datetime) -> float:
    """Whole hours and tenths from ``moment`` to now (never negative)."""
    return max(0.0, math.floor((timezone.now() - moment).total_seconds() / 360) / 10)


def when(moment: datetime | None) -> str:
    """A time as the evidence sentences write it (UTC, to the minute)."""
    if moment is None:
        return ""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


# --- Tamper-evident audit trail with anchoring ---------------------------------------------------

AUDIT_TRAIL = "audit-trail"
# Verification and checkpoints run hourly; a figure older than two hours means the worker stopped.
AUDIT_HOURS = Threshold(met=2, partly=26)
CHECK_WINDOW_DAYS = 30


def _never_hours(first_event_at: datetime | None) -> float | None:
    """For something never done: hours the trail has gone without it (since its first event);
    None when the trail is empty too, and there is nothing to protect yet."""
    return hours_since(first_event_at) if first_event_at is not None else None


def _verification_figures(first_event_at: datetime | None) -> list[Figure]:
    since = window_start(CHECK_WINDOW_DAYS)
    last = AuditChainCheck.objects.order_by("-checked_at", "-id").first()
    recent = AuditChainCheck.objects.filter(checked_at__gte=since).aggregate(
        checks=Count("pk"), broken=Count("pk", filter=Q(intact=False))
    )
    if last is None:
        age = _never_hours(first_event_at)
        age_detail = (
            "The chain has never been verified (the hourly task or manage.py verify_audit records each walk)."
            if age is not None
            else "The audit trail is empty: there is nothing to verify yet."
        )
    else:
        age = hours_since(last.checked_at)
        verdict = "intact" if last.intact else f"BROKEN at #{last.broken_event_id or '?'}: {last.problem}"
        against = f", held against checkpoint {last.checkpoint_sequence}" if last.checkpoint_sequence else ""
        age_detail = f"Last verified {when(last.checked_at)} ({last.events_checked} events{against}): {verdict}."
    broken = recent["broken"] if recent["checks"] else None
    broken_detail = (
        f"{recent['broken']} of {recent['checks']} verifications in the last {CHECK_WINDOW_DAYS} days "
        "found the chain broken."
        if recent["checks"]
        else f"No verification of the chain in the last {CHECK_WINDOW_DAYS} days."
    )
    trail = list_link("audit-list")
    return [
        Figure(
            key=f"{AUDIT_TRAIL}.verified_hours",
            label="Hours since the audit chain was last verified",
            value=age,
            threshold=AUDIT_HOURS,
            unit="hours",
            better=LOWER,
            detail=age_detail,
            records_url=trail,
            records=lambda: _checks(since),
        ),
        Figure(
            key=f"{AUDIT_TRAIL}.broken_verifications",
            label=f"Verifications that found the chain broken ({CHECK_WINDOW_DAYS} days)",
            value=broken,
            threshold=Threshold(met=0),
            unit="count",
            better=LOWER,
            detail=broken_detail,
            records_url=trail,
            records=lambda: _checks(since),
        ),
    ]


def _checks(since: datetime) -> Iterator[Mapping[str, Any]]:
    yield from (
        AuditChainCheck.objects.filter(checked_at__gte=since)
        .order_by("-checked_at", "-id")
        .values("id", "checked_at", "events_checked", "intact", "broken_event_id", "problem", "checkpoint_sequence")
        .iterator()
    )


# A witness that holds the checkpoint outside the database: written (file, syslog) or handed to
# the outbox (email, webhook). A failed one holds nothing.
WITNESS_FAILED = "failed"


def _checkpoint_figures(first_event_at: datetime | None) -> list[Figure]:
    since = window_start(CHECK_WINDOW_DAYS)
    last = AuditCheckpoint.objects.order_by("-sequence").first()
    trail = list_link("audit-list")
    if last is None:
        age = _never_hours(first_event_at)
        age_detail = (
            "No checkpoint of the trail has ever been signed (the hourly task or manage.py audit_checkpoint signs one)."
            if age is not None
            else "The audit trail is empty: there is nothing to anchor yet."
        )
        witnesses, witness_detail = None, "No checkpoint has been signed yet: nothing was handed to a witness."
    else:
        age = hours_since(last.signed_at)
        age_detail = (
            f"Checkpoint {last.sequence} signed {when(last.signed_at)}: {last.event_count} events, "
            f"newest #{last.last_event_id}, key {last.key_id}."
        )
        held = [w for w in last.witnesses if w.get("status") != WITNESS_FAILED]
        witnesses = len(held)
        named = ", ".join(f"{w.get('kind')} {w.get('target')} ({w.get('status')})" for w in last.witnesses)
        witness_detail = (
            f"Checkpoint {last.sequence} was handed to {witnesses} of {len(last.witnesses)} external witnesses"
            + (f": {named}." if named else " (none configured: AUDIT_WITNESS_FILE, _SYSLOG, _EMAIL or a webhook).")
        )
    return [
        Figure(
            key=f"{AUDIT_TRAIL}.checkpoint_hours",
            label="Hours since the last signed checkpoint",
            value=age,
            threshold=AUDIT_HOURS,
            unit="hours",
            better=LOWER,
            detail=age_detail,
            records_url=trail,
            records=lambda: _checkpoints(since),
        ),
        Figure(
            key=f"{AUDIT_TRAIL}.checkpoint_witnesses",
            label="External witnesses holding the last checkpoint",
            value=witnesses,
            threshold=Threshold(met=1),
            unit="count",
            better=HIGHER,
            detail=witness_detail,
            records_url=trail,
            records=lambda: _checkpoints(since),
        ),
    ]


def _checkpoints(since: datetime) -> Iterator[Mapping[str, Any]]:
    rows = AuditCheckpoint.objects.filter(signed_at__gte=since).order_by("-sequence")
    fields = ("sequence", "signed_at", "event_count", "last_event_id", "head_hash", "key_id")
    for row in rows.values(*fields, "witnesses").iterator():
        witnesses = row["witnesses"] or []
        yield {
            **{name: row[name] for name in fields},
            "witnesses": "; ".join(f"{w.get('kind')} {w.get('target')}: {w.get('status')}" for w in witnesses),
        }


def audit_trail_evidence() -> list[Figure]:
    """Four queries: the newest verification, the verifications of the window, the newest
    checkpoint, and the first event (for how long the trail went unverified or unanchored)."""
    first = AuditEvent.objects.order_by("id").values_list("created_at", flat=True).first()
    return [*_verification_figures(first), *_checkpoint_figures(first)]


# --- Webhook and ticketing integration -----------------------------------------------------------

WEBHOOKS = "webhooks-ticketing"
DELIVERY_WINDOW_DAYS = 30


def _subscriptions_figure() -> Figure:
    active = WebhookSubscription.objects.filter(status=SubscriptionStatus.ACTIVE).count()
    return Figure(
        key=f"{WEBHOOKS}.subscriptions",
        label="Active webhook subscriptions",
        value=active,
        threshold=Threshold(met=1),
        unit="count",
        better=HIGHER,
        detail=(
            f"{active} active subscriptions send the portal's events to ticketing and other systems."
            if active
            else "No active webhook subscription: no ticketing or other system hears of the portal's changes."
        ),
        records_url=list_link("webhooks:list"),
        records=_subscriptions,
    )


def webhooks_evidence() -> list[Figure]:
    """Two queries: the deliveries of the window by status, and the active subscriptions."""
    since = window_start(DELIVERY_WINDOW_DAYS)
    counts = WebhookDelivery.objects.filter(created_at__gte=since).aggregate(
        delivered=Count("pk", filter=Q(status=DeliveryStatus.DELIVERED)),
        failed=Count("pk", filter=Q(status=DeliveryStatus.FAILED)),
        waiting=Count("pk", filter=Q(status__in=(DeliveryStatus.PENDING, DeliveryStatus.SENDING))),
    )
    settled = counts["delivered"] + counts["failed"]
    window = f"in the last {DELIVERY_WINDOW_DAYS} days"
    page = list_link("webhooks:list")
    return [
        Figure(
            key=f"{WEBHOOKS}.delivered",
            label=f"Webhook deliveries delivered ({DELIVERY_WINDOW_DAYS} days)",
            value=share(counts["delivered"], settled),
            threshold=Threshold(met=99, partly=95),
            detail=(
                f"{counts['delivered']} of {settled} webhook deliveries {window} that were settled reached their "
                f"receiver; {counts['failed']} were given up after a day of retries, {counts['waiting']} are "
                "still being tried."
                if settled
                else f"No webhook delivery {window} has been settled ({counts['waiting']} still being tried)."
            ),
            records_url=page,
            records=lambda: _deliveries(since),
        ),
        Figure(
            key=f"{WEBHOOKS}.failed",
            label=f"Webhook deliveries given up ({DELIVERY_WINDOW_DAYS} days)",
            value=counts["failed"] if settled or counts["waiting"] else None,
            threshold=Threshold(met=0, partly=5),
            unit="count",
            better=LOWER,
            detail=(
                f"{counts['failed']} deliveries {window} failed for a day and were given up (an IAM admin can "
                "redeliver)."
                if settled or counts["waiting"]
                else f"No webhook delivery {window}."
            ),
            records_url=page,
            records=lambda: _deliveries(since, status=DeliveryStatus.FAILED),
        ),
        _subscriptions_figure(),
    ]


def _deliveries(since: datetime, *, status: str = "") -> Iterator[Mapping[str, Any]]:
    rows = WebhookDelivery.objects.filter(created_at__gte=since)
    if status:
        rows = rows.filter(status=status)
    yield from (
        rows.order_by("-id")
        .values(
            "id",
            "subscription_id",
            "subscription__name",
            "event_id",
            "event_type",
            "target_type",
            "target_id",
            "occurred_at",
            "status",
            "attempts",
            "delivered_at",
            "last_status_code",
            "last_error",
        )
        .iterator()
    )


def _subscriptions() -> Iterator[Mapping[str, Any]]:
    rows = WebhookSubscription.objects.filter(status=SubscriptionStatus.ACTIVE).order_by("name", "id")
    for row in rows.values("id", "name", "target_url", "event_types", "created_at").iterator():
        yield {**row, "event_types": " ".join(row["event_types"] or [])}


def register() -> None:
    """Register the kernel's controls with the registry."""
    register_control(
        Control(
            id=AUDIT_TRAIL,
            title="Tamper-evident audit trail with anchoring",
            description=(
                "Every change and privileged action writes an audit event in the same transaction, each "
                "event hashed with the one before it, so an edit or a deletion breaks the chain. Rows cannot "
                "be updated or deleted through the portal. Every hour the worker walks the chain and signs a "
                "checkpoint of its head with a key kept outside the database, handed to external witnesses "
                "(file, syslog, email, webhook): a rewrite of the whole chain no longer matches them."
            ),
            app="governance",
            evidence=audit_trail_evidence,
            order=90,
        )
    )
    register_control(
        Control(
            id=WEBHOOKS,
            title="Webhook and ticketing integration",
            description=(
                "Ticketing systems open and follow requests through the API with a ticket reference; every "
                "audited change is queued as a signed webhook in the transaction of the change, delivered in "
                "order per object with retries for a day, each attempt recorded, and redelivered on demand."
            ),
            app="governance",
            evidence=webhooks_evidence,
            order=140,
        )
    )
