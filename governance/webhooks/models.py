"""Outbound webhooks: subscriptions, the delivery outbox and every attempt.

A ``WebhookDelivery`` is written by the audit listener (``governance.webhooks.events``) in the
transaction of the change it reports, so a change and its outbound event commit together. The
sender claims a row with a conditional UPDATE (any number of workers is safe), keeps the order
per (subscription, target) and records every attempt in ``WebhookAttempt``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DELETED = "deleted", "Deleted"


class WebhookSubscription(models.Model):
    """Where to POST which events. The signing secret is stored encrypted (Fernet, key derived
    from SECRET_KEY) and shown once, at creation; ``secret_fingerprint`` (``sha256:`` and 16 hex
    digits of its hash, never any character of the secret) lets people recognise it.
    Deleting keeps the row (its deliveries stay visible) and gives up what is still queued."""

    name = models.CharField(max_length=100)
    target_url = models.URLField(max_length=500)
    event_types = models.JSONField(default=list, help_text="Patterns such as integration.* or grant.revoked.")
    secret_encrypted = models.TextField()
    secret_fingerprint = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=10, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.name} → {self.target_url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (given up)"


# Deliveries that still hold back later ones for the same (subscription, target).
OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


class WebhookDelivery(models.Model):
    """One event for one subscription (the outbox row). ``event_id`` is the id the receiver
    sees; it is the same across retries and redeliveries, so the receiver can deduplicate."""

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(default=uuid.uuid4)
    event_type = models.CharField(max_length=80)
    occurred_at = models.DateTimeField()
    audit_event = models.ForeignKey(
        "governance.AuditEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_type = models.CharField(max_length=80)
    target_id = models.CharField(max_length=64)
    # What happened, as the payload's ``details`` shows it: the audit event's repr, actor, owner,
    # before/after and reason, or what an emitted event said. Also the object's representation
    # when its app has registered none or the object is gone.
    details = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    give_up_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["subscription", "event_id"], name="webhook_delivery_event_once")]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["subscription", "target_type", "target_id", "id"]),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.target_type}:{self.target_id} → {self.subscription_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery: what the receiver answered, or the transport error."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-attempted_at", "-id"]

    def __str__(self) -> str:
        return f"attempt {self.pk} of delivery {self.delivery_id}: {self.status_code or self.error[:40]}"
