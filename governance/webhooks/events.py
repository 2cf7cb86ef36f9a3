"""Outbound events: which audit actions become webhook events, how an object is represented in
an event, and the audit listener that writes the outbox in the transaction of the change.

Other apps extend this without being imported here, since the kernel never imports the apps built
on it:

* ``register_representation("inventory.integration", fn)`` — ``fn(target_id)`` returns the
  object's current API representation (a dict, with ``ticket_ref`` if it has one) or None when
  it is gone. Without one, events carry the audit event's target and before/after.
* ``emit(event_type=..., target=..., data=...)`` — an event that has no audit row of its own
  (``grant.expiring``, ``review_item.assigned``); call it inside the transaction of the change.
  ``emit_many`` does the same for a stream of objects of one type.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from governance import queue
from governance.audit import to_json
from governance.models import AuditEvent
from governance.webhooks.models import SubscriptionStatus, WebhookDelivery, WebhookSubscription

# The events a subscription can ask for, by entity. Patterns are checked against this catalog so
# that a typo is refused rather than silently never matching.
EVENT_TYPES: tuple[str, ...] = (
    "integration.registered",
    "integration.changed",
    "integration.submitted",
    "integration.suspended",
    "integration.reactivation_requested",
    "integration.retired",
    "integration.ownership_transfer_proposed",
    "access_request.created",
    "access_request.step_decided",
    "access_request.approved",
    "access_request.rejected",
    "access_request.changes_requested",
    "access_request.withdrawn",
    "access_request.escalated",
    "grant.created",
    "grant.expiring",
    "grant.expired",
    "grant.revoked",
    "campaign.launched",
    "campaign.closed",
    "review_item.assigned",
    "review_item.decided",
    # Discovery of OAuth grants: an import finished, a finding opened or was decided, and a
    # revocation to carry out at the provider (its data names the provider's revoke calls).
    "discovery.imported",
    "discovery.finding_opened",
    "discovery.finding_claimed",
    "discovery.finding_dismissed",
    "discovery.revoke_requested",
    "discovery.revoked",
    # A signed checkpoint of the audit chain (governance.anchoring): a subscriber is a witness.
    "audit.checkpoint",
)
ENTITIES = frozenset(t.split(".")[0] for t in EVENT_TYPES)
# Patterns that stand for several actions: "access_request.decided" is any decision on a request.
ALIASES: dict[str, tuple[str, ...]] = {
    "access_request.decided": (
        "access_request.approved",
        "access_request.rejected",
        "access_request.changes_requested",
    ),
}
# Kernel actions that never leave the portal, whatever a pattern says (people, tokens, the
# webhooks themselves).
_PRIVATE_ENTITIES = frozenset({"user", "api_token", "outbound_email", "webhook_subscription", "webhook_delivery"})
_PATTERN = re.compile(r"^(\*|[a-z_]+\.(\*|[a-z_]+))$")
# The worker's function that sends one delivery (named, not imported: it imports the services,
# which import this module).
SEND_TASK = "governance.webhooks.tasks.delivery_send"


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid event type pattern, or None."""
    if not _PATTERN.match(pattern):
        return f"'{pattern}' is not an event type pattern (examples: integration.*, grant.revoked, *)."
    if pattern == "*" or pattern in ALIASES:
        return None
    entity, verb = pattern.split(".")
    if entity not in ENTITIES:
        return f"Unknown entity '{entity}' in '{pattern}' (known: {', '.join(sorted(ENTITIES))})."
    if verb != "*" and pattern not in EVENT_TYPES:
        return f"Unknown event type '{pattern}'."
    return None


def matches(patterns: Iterable[str], event_type: str) -> bool:
    if event_type.split(".")[0] in _PRIVATE_ENTITIES:
        return False
    for pattern in patterns:
        if pattern in ALIASES:
            if event_type in ALIASES[pattern]:
                return True
        elif fnmatch.fnmatchcase(event_type, pattern):
            return True
    return False


# --- Representations --------------------------------------------------------------------------

Representation = Callable[[str], dict[str, Any] | None]
_REPRESENTATIONS: dict[str, Representation] = {}


def register_representation(target_type: str, fn: Representation) -> None:
    """``target_type`` is ``<app_label>.<model_name>`` as in the audit trail."""
    _REPRESENTATIONS[target_type] = fn


def represent(target_type: str, target_id: str, details: dict[str, Any]) -> dict[str, Any]:
    """The object's current API representation, or, when its app registered none or the object is
    gone, its type and id with the event's ``details``."""
    fn = _REPRESENTATIONS.get(target_type)
    if fn is not None:
        data = fn(target_id)
        if data is not None:
            data = dict(data)
            if not data.get("ticket_ref"):
                data["ticket_ref"] = ticket_ref_of(target_type, target_id)
            return to_json(data)
    data = {"target_type": target_type, "target_id": target_id, **details}
    data.setdefault("ticket_ref", ticket_ref_of(target_type, target_id))
    return to_json(data)


def ticket_ref_of(target_type: str, target_id: str) -> str:
    """The target's ``ticket_ref``, or its integration's / request's, without knowing the apps:
    models are looked up by label and read for a ``ticket_ref`` attribute."""
    try:
        model = apps.get_model(target_type)
        obj = model._default_manager.filter(pk=target_id).first()
    except (LookupError, ValueError, TypeError):
        return ""
    for candidate in (obj, getattr(obj, "request", None), getattr(obj, "integration", None)):
        ref = getattr(candidate, "ticket_ref", None)
        if isinstance(ref, str) and ref:
            return ref
    return ""


# --- Writing the outbox -----------------------------------------------------------------------


def _active_subscriptions() -> list[tuple[int, list[str]]]:
    # One small query per audited change (not per event): a bulk deadline writing 100k events
    # in one audit_record_many call costs one query here when nothing subscribes.
    return list(WebhookSubscription.objects.filter(status=SubscriptionStatus.ACTIVE).values_list("id", "event_types"))


def subscribers(event_type: str) -> list[int]:
    """The active subscriptions that ask for ``event_type``."""
    return [sub_id for sub_id, patterns in _active_subscriptions() if matches(patterns, event_type)]


def _details(event: AuditEvent) -> dict[str, Any]:
    """What the audit event says happened, as the payload's ``details`` shows it."""
    return {
        "repr": event.target_repr,
        "actor": event.actor_username,
        "owner": event.owner_username,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
    }


def on_audit_events(events: Sequence[AuditEvent]) -> None:
    """Audit listener: one outbox row per (matching subscription, event), in the same transaction."""
    if not events:
        return
    subs = _active_subscriptions()
    if not subs:
        return
    rows = []
    for event in events:
        for sub_id, patterns in subs:
            if matches(patterns, event.action):
                rows.append(
                    _row(
                        sub_id=sub_id,
                        event_type=event.action,
                        occurred_at=event.created_at,
                        target_type=event.target_type,
                        target_id=event.target_id,
                        details=_details(event),
                        audit_event=event,
                    )
                )
    _write(rows)


def emit(
    *,
    event_type: str,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str = "",
    data: dict[str, Any] | None = None,
) -> int:
    """Queue an event that has no audit row (``grant.expiring``, ``review_item.assigned``) for
    every matching subscription, in the caller's transaction. Returns how many were queued."""
    if target is not None:
        target_type = f"{target._meta.app_label}.{target._meta.model_name}"
        target_id = str(target.pk)
    rows = [
        _row(
            sub_id=sub_id,
            event_type=event_type,
            occurred_at=timezone.now(),
            target_type=target_type,
            target_id=target_id,
            details=to_json(data or {}),
            audit_event=None,
        )
        for sub_id in subscribers(event_type)
    ]
    _write(rows)
    return len(rows)


def emit_many(
    *, event_type: str, target_type: str, targets: Iterable[tuple[str, dict[str, Any]]], chunk: int = 2000
) -> int:
    """``emit`` for many objects of one type (a campaign launch assigns 100,000 items): one
    subscription query, then rows written in chunks as ``targets`` (``(target_id, data)``) is
    consumed, so the caller can stream it. Returns how many deliveries were queued."""
    subs = subscribers(event_type)
    if not subs:
        return 0
    queued = 0
    batch: list[WebhookDelivery] = []
    now = timezone.now()
    for target_id, data in targets:
        details = to_json(data)
        for sub_id in subs:
            batch.append(
                _row(
                    sub_id=sub_id,
                    event_type=event_type,
                    occurred_at=now,
                    target_type=target_type,
                    target_id=str(target_id),
                    details=details,
                    audit_event=None,
                )
            )
        if len(batch) >= chunk:
            _write(batch)
            queued += len(batch)
            batch = []
    _write(batch)
    return queued + len(batch)


def _row(
    *,
    sub_id: int,
    event_type: str,
    occurred_at: datetime,
    target_type: str,
    target_id: str,
    details: dict[str, Any],
    audit_event: AuditEvent | None,
) -> WebhookDelivery:
    now = timezone.now()
    return WebhookDelivery(
        subscription_id=sub_id,
        event_type=event_type,
        occurred_at=occurred_at,
        audit_event=audit_event,
        target_type=target_type,
        target_id=target_id,
        details=details,
        next_attempt_at=now,
        give_up_at=now + timedelta(hours=settings.WEBHOOK_RETRY_HOURS),
        created_at=now,
    )


def _write(rows: list[WebhookDelivery]) -> None:
    if not rows:
        return
    created = WebhookDelivery.objects.bulk_create(rows, batch_size=1000)
    # Bulk jobs are swept by the schedule; a few events are sent at once after commit.
    if len(created) <= 50 and all(row.pk for row in created):
        send_after_commit([row.pk for row in created])


def send_after_commit(delivery_ids: list[int]) -> None:
    """Queue the sending of these deliveries once the current transaction commits (at once when
    there is none). The sweep sends them anyway if they could not be queued."""
    transaction.on_commit(lambda: _queue_sends(delivery_ids))


def _queue_sends(delivery_ids: list[int]) -> None:
    """One send task per delivery, pushed to the broker together."""
    queue.enqueue_many(SEND_TASK, [(delivery_id,) for delivery_id in delivery_ids], name="webhook-{}")
