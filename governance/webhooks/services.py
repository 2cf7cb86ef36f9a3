"""Writes of the webhooks app: subscriptions (create, delete), sending a delivery, redelivery.

Every function that an admin triggers takes ``actor=`` and audits in the same transaction.
Every request goes through ``governance.outbound`` (public addresses only, checked after DNS at
subscription and again at every send, no redirects, capped time and size); a webhook needs https
unless its host is in ``OUTBOUND_ALLOWED_HOSTS``.
``delivery_send`` is the worker's: it claims the row with a conditional UPDATE that also checks
that no earlier delivery for the same (subscription, target) is still open, so events about one
object reach the receiver in order, and two workers never send the same row.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from governance import outbound
from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import Conflict, NotAllowed, ValidationFailed
from governance.models import User
from governance.validators import SINGLE_LINE_MESSAGE, has_control_characters
from governance.webhooks import events, permissions
from governance.webhooks import secrets as webhook_secrets
from governance.webhooks.models import (
    OPEN_STATUSES,
    DeliveryStatus,
    SubscriptionStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)

log = logging.getLogger(__name__)
USER_AGENT = "ai-governance-portal-webhooks/1"


# --- Subscriptions ----------------------------------------------------------------------------


def _refusal_text(refused: outbound.Refused) -> str:
    """Say which rule the URL breaks. Its scheme, port and form are the caller's own input; of a
    refused address only that it is not public is said, never what the name resolved to."""
    ports = " or ".join(str(p) for p in settings.OUTBOUND_ALLOWED_PORTS)
    hint = {
        "scheme": "use an https:// address (plain http:// only for a host in OUTBOUND_ALLOWED_HOSTS)",
        "port": f"use port {ports}",
        "url": "use a plain http(s)://host/path address, without user name or password",
        "address": "webhooks go to public hosts only (an operator may allow a host in OUTBOUND_ALLOWED_HOSTS)",
    }[refused.rule]
    return f"Target refused by outbound policy: {hint}."


def _validate_url(url: str) -> None:
    """The outbound policy at subscription time: scheme, port and every address the name resolves
    to now. A name that does not resolve at all is accepted: it may resolve later, and the check
    that counts is the one made at every send (the address is vetted again, then pinned)."""
    try:
        outbound.vet(url, require_https=True)
    except outbound.Refused as exc:
        raise ValidationFailed.on("target_url", _refusal_text(exc))
    except outbound.Unreachable:
        pass


def subscription_create(
    *, actor: Actor | User, name: str, target_url: str, event_types: Iterable[str], secret: str = ""
) -> tuple[WebhookSubscription, str]:
    """Create a subscription and return it with its signing secret in clear — the only time the
    secret is available; only its encrypted form and its fingerprint are stored. The target must
    pass the outbound policy (``_validate_url``). IAM admins only."""
    resolved = Actor.coerce(actor)
    if not permissions.can_manage_webhooks(resolved.user):
        raise NotAllowed("Only IAM admins manage webhook subscriptions.")
    patterns = [p.strip() for p in event_types if p.strip()]
    if not patterns:
        raise ValidationFailed.on("event_types", "Name at least one event type (e.g. integration.*).")
    problems = [msg for p in patterns if (msg := events.pattern_problem(p))]
    if problems:
        raise ValidationFailed("; ".join(problems), errors={"event_types": problems})
    if not name.strip():
        raise ValidationFailed.on("name", "A name is required.")
    if has_control_characters(name):  # a single line (governance.validators)
        raise ValidationFailed.on("name", SINGLE_LINE_MESSAGE)
    _validate_url(target_url)
    if secret and len(secret) < 24:
        raise ValidationFailed.on("secret", "A secret must have at least 24 characters (or leave it empty to get one).")
    clear = secret or webhook_secrets.generate()
    with transaction.atomic():
        sub = WebhookSubscription.objects.create(
            name=name.strip(),
            target_url=target_url,
            event_types=sorted(set(patterns)),
            secret_encrypted=webhook_secrets.encrypt(clear),
            secret_fingerprint=webhook_secrets.fingerprint(clear),
            created_by=resolved.user,
        )
        audit_record(
            actor=resolved,
            action="webhook_subscription.created",
            target=sub,
            owner=resolved.user if not resolved.is_system else resolved.on_behalf_of,
            after={"name": sub.name, "target_url": sub.target_url, "event_types": sub.event_types},
        )
    return sub, clear


def subscription_delete(
    *, actor: Actor | User, subscription: WebhookSubscription, reason: str = ""
) -> WebhookSubscription:
    """Stop a subscription: nothing new is queued for it and what is still queued is given up.
    Its deliveries stay visible. IAM admins only."""
    resolved = Actor.coerce(actor)
    if not permissions.can_manage_webhooks(resolved.user):
        raise NotAllowed("Only IAM admins manage webhook subscriptions.")
    with transaction.atomic():
        now = timezone.now()
        updated = WebhookSubscription.objects.filter(pk=subscription.pk, status=SubscriptionStatus.ACTIVE).update(
            status=SubscriptionStatus.DELETED, deleted_at=now
        )
        if updated != 1:
            raise Conflict("This subscription is already deleted.")
        dropped = WebhookDelivery.objects.filter(subscription=subscription, status__in=OPEN_STATUSES).update(
            status=DeliveryStatus.FAILED, last_error="Subscription deleted.", claimed_at=None
        )
        audit_record(
            actor=resolved,
            action="webhook_subscription.deleted",
            target=subscription,
            owner=resolved.user,
            before={"status": SubscriptionStatus.ACTIVE},
            after={"status": SubscriptionStatus.DELETED, "deliveries_given_up": dropped},
            reason=reason,
        )
    subscription.refresh_from_db()
    return subscription


# --- Delivery ---------------------------------------------------------------------------------


def _earlier_open() -> Exists:
    return Exists(
        WebhookDelivery.objects.filter(
            subscription_id=OuterRef("subscription_id"),
            target_type=OuterRef("target_type"),
            target_id=OuterRef("target_id"),
            id__lt=OuterRef("id"),
            status__in=OPEN_STATUSES,
        )
    )


def _claim(delivery_id: int, now: Any) -> bool:
    """Conditional UPDATE: pending, due, and nothing earlier for the same object still open."""
    stale = now - timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 6 + 60)
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .exclude(_earlier_open())
        .update(status=DeliveryStatus.SENDING, claimed_at=now)
    )
    if not claimed:
        # A worker killed mid-send leaves SENDING behind; take it over after a while.
        claimed = WebhookDelivery.objects.filter(
            pk=delivery_id, status=DeliveryStatus.SENDING, claimed_at__lt=stale
        ).update(claimed_at=now)
    return claimed == 1


def payload(delivery: WebhookDelivery) -> dict[str, Any]:
    """The JSON body: event id (stable across retries), type, when, the object's current API
    representation and its ticket_ref, and ``details``: what happened (the audit event's actor,
    reason, before/after; or what an emitted event said, e.g. the warning's days)."""
    data = events.represent(delivery.target_type, delivery.target_id, delivery.details)
    ref = data.get("ticket_ref") if isinstance(data, dict) else ""
    return {
        "id": str(delivery.event_id),
        "type": delivery.event_type,
        "occurred_at": delivery.occurred_at.isoformat(),
        "target": {"type": delivery.target_type, "id": delivery.target_id},
        "ticket_ref": ref or "",
        "data": data,
        "details": delivery.details,
    }


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """POST through the outbound client: (status code or None, the error for the delivery log).
    The log reads "refused by outbound policy", "unreachable", "timed out", "HTTP 500"... never
    a socket error or an address (no port-scanner oracle); a redirect is a failure, not followed."""
    try:
        response = outbound.post(
            url, body=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS, require_https=True
        )
    except outbound.OutboundError as exc:
        return None, str(exc)
    except Exception:
        # Not one of the client's safe errors (a bug underneath): its text may name an internal
        # host or port, so it goes to the server log only and the delivery log reads the generic.
        log.exception("Webhook POST to %s failed unexpectedly", url)
        return None, outbound.OutboundError.message
    if response.ok:
        return response.status, ""
    if response.is_redirect:
        return response.status, f"HTTP {response.status} (redirects are not followed)"
    return response.status, f"HTTP {response.status}"


def _retry_delay(attempts: int) -> timedelta:
    seconds = settings.WEBHOOK_RETRY_BASE_SECONDS * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, settings.WEBHOOK_RETRY_MAX_SECONDS))


def delivery_send(*, delivery_id: int) -> str:
    """Send one delivery if it is due and nothing earlier about the same object is still open.
    Records the attempt; on failure schedules a retry with exponential backoff until
    ``give_up_at`` (a day after the event), then marks it failed. Returns the resulting status
    (or ``blocked``/``not_due`` when it was not this worker's turn)."""
    now = timezone.now()
    if not _claim(delivery_id, now):
        status = WebhookDelivery.objects.filter(pk=delivery_id).values_list("status", flat=True).first()
        return "blocked" if status == DeliveryStatus.PENDING else (status or "missing")
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    sub = delivery.subscription
    started = time.monotonic()
    try:
        secret = webhook_secrets.decrypt(sub.secret_encrypted)
        body = json.dumps(payload(delivery), cls=DjangoJSONEncoder, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Event-Id": str(delivery.event_id),
            "X-Event-Type": delivery.event_type,
            "X-Signature": webhook_secrets.sign(secret, int(time.time()), body),
        }
    except Exception as exc:  # building the payload failed: record it like a transport error
        log.exception("Webhook delivery %s could not be built", delivery_id)
        code, error = None, f"{type(exc).__name__}: {exc}"[:2000]
    else:
        code, error = _post(sub.target_url, body, headers)
    duration = int((time.monotonic() - started) * 1000)
    return _record_result(delivery, claimed_at=now, code=code, error=error, duration_ms=duration)


def _record_result(
    delivery: WebhookDelivery, *, claimed_at: Any, code: int | None, error: str, duration_ms: int
) -> str:
    """Log the attempt and settle the delivery, together (a worker that dies here leaves neither,
    and the stale claim is retried). The outcome applies only while this worker's claim still
    holds: a delivery given up meanwhile (its subscription deleted) or taken over by another
    worker keeps the state it has now, and only counts the attempt."""
    finished = timezone.now()
    attempts = delivery.attempts + 1
    delivered = code is not None and 200 <= code < 300
    next_at = finished + _retry_delay(attempts)
    final = not delivered and next_at > delivery.give_up_at
    if delivered:
        outcome: dict[str, Any] = {"status": DeliveryStatus.DELIVERED, "delivered_at": finished, "last_error": ""}
    else:
        status = DeliveryStatus.FAILED if final else DeliveryStatus.PENDING
        outcome = {"status": status, "next_attempt_at": next_at, "last_error": error}
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery, attempted_at=finished, status_code=code, error=error, duration_ms=duration_ms
        )
        still_mine = WebhookDelivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.SENDING, claimed_at=claimed_at
        )
        if not still_mine.update(**outcome, attempts=attempts, last_status_code=code, claimed_at=None):
            WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=F("attempts") + 1)
            current = WebhookDelivery.objects.filter(pk=delivery.pk).values_list("status", flat=True).first()
            return current or "missing"
    if not delivered:
        log.warning("Webhook delivery %s attempt %s failed: %s", delivery.pk, attempts, error or code)
    return str(outcome["status"])


def due_delivery_ids(*, limit: int = 1000) -> list[int]:
    """Deliveries the sweep should try now, oldest first (so earlier events unblock later ones)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 6 + 60)
    pending = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now).exclude(
        _earlier_open()
    )
    stuck = WebhookDelivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=stale)
    return list((pending | stuck).order_by("id").values_list("id", flat=True)[:limit])


def next_in_line(delivery_id: int) -> int | None:
    """The next open delivery for the same (subscription, target), to send right after this one."""
    row = WebhookDelivery.objects.filter(pk=delivery_id).values("subscription_id", "target_type", "target_id").first()
    if row is None:
        return None
    return (
        WebhookDelivery.objects.filter(**row, id__gt=delivery_id, status=DeliveryStatus.PENDING)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )


def delivery_redeliver(*, actor: Actor | User, delivery: WebhookDelivery) -> WebhookDelivery:
    """An IAM admin sends a delivery again (same event id, so receivers can deduplicate): a
    failed or delivered one is queued again now with a fresh day of retries."""
    resolved = Actor.coerce(actor)
    if not permissions.can_manage_webhooks(resolved.user):
        raise NotAllowed("Only IAM admins redeliver webhooks.")
    with transaction.atomic():
        now = timezone.now()
        updated = WebhookDelivery.objects.filter(
            pk=delivery.pk,
            status__in=[DeliveryStatus.FAILED, DeliveryStatus.DELIVERED],
            subscription__status=SubscriptionStatus.ACTIVE,
        ).update(
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
            give_up_at=now + timedelta(hours=settings.WEBHOOK_RETRY_HOURS),
            claimed_at=None,
        )
        if updated != 1:
            raise Conflict("Only a delivered or failed delivery of an active subscription can be redelivered.")
        audit_record(
            actor=resolved,
            action="webhook_delivery.redelivered",
            target=delivery,
            owner=resolved.user,
            before={"status": delivery.status, "attempts": delivery.attempts},
            after={"status": DeliveryStatus.PENDING},
        )
        events.send_after_commit([delivery.pk])
    delivery.refresh_from_db()
    return delivery
