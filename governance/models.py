"""The kernel's data: people, the audit trail, API tokens, the email outbox and the remembered
responses of ``Idempotency-Key`` requests."""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib.auth.models import AbstractUser
from django.db import models, transaction
from django.utils import timezone
from simple_history.models import HistoricalRecords


class User(AbstractUser):
    """A person, or a service account used by an integration (ticketing system, AI agent).

    ``manager`` feeds the "requester's manager" reviewer pools and escalations. Role membership
    is group membership (see ``governance.roles``). Deactivating a user goes through
    ``governance.services.user_deactivate`` so their integrations become orphaned.
    """

    display_name = models.CharField(max_length=150, blank=True)
    department = models.CharField(max_length=120, blank=True)
    manager = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    is_service_account = models.BooleanField(
        default=False,
        help_text="A non-human account used by an integration through API tokens; its actions "
        "are audited with actor kind 'integration'.",
    )

    history = HistoricalRecords(excluded_fields=["last_login", "password"])

    # Set on the instance by the service that audits its own password change, so that ``save``
    # does not record that change a second time (see ``governance.accounts``).
    _password_change_audited: bool

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        ordering = ["username"]

    def __str__(self) -> str:
        return self.username

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, and audit in the same transaction a password or superuser change that did not
        come through a service (Django's ``changepassword`` and ``createsuperuser`` commands, its
        password views, a shell): see ``governance.accounts``. This is the safety net under the
        rule that privilege and password changes go through audited services, not a place for
        rules; the services audit their own changes."""
        from governance import accounts  # accounts -> audit -> this module

        changes = accounts.unserviced_changes(self, kwargs.get("update_fields"))
        if not changes:
            super().save(*args, **kwargs)
            return
        with transaction.atomic():
            super().save(*args, **kwargs)
            accounts.record_unserviced_changes(self, changes)

    @property
    def label(self) -> str:
        """Name shown in pages and emails: the display name, or the full name, or the username."""
        return self.display_name or self.get_full_name() or self.username


class ActorKind(models.TextChoices):
    HUMAN = "human", "Human"
    INTEGRATION = "integration", "Integration"
    SYSTEM = "system", "System"


class AuditTrailIsAppendOnly(Exception):
    pass


def _rows_name(model: type[models.Model]) -> str:
    return str(model._meta.verbose_name_plural).capitalize()


class AppendOnly(models.Model):
    """Rows that are written once: the ORM refuses to change or delete one (``AppendOnlyQuerySet``
    refuses the bulk forms). A row edited in the database itself is caught by its hash or
    signature instead."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AuditTrailIsAppendOnly(f"{_rows_name(type(self))} cannot be changed once written.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditTrailIsAppendOnly(f"{_rows_name(type(self))} cannot be deleted.")


_Row = TypeVar("_Row", bound=models.Model)


class AppendOnlyQuerySet(models.QuerySet[_Row]):
    """The QuerySet of an append-only model: no bulk update or delete."""

    def update(self, **kwargs: Any) -> int:
        raise AuditTrailIsAppendOnly(f"{_rows_name(self.model)} cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditTrailIsAppendOnly(f"{_rows_name(self.model)} cannot be deleted.")


class AuditEventQuerySet(AppendOnlyQuerySet["AuditEvent"]):
    pass


class AuditEvent(AppendOnly):
    """One privileged action, written by ``governance.audit.audit_record`` in the transaction
    of the change it records.

    Each row holds the hash of the row before it (``prev_hash``) and its own ``hash`` over its
    content and ``prev_hash``: altering, removing or inserting a row breaks the chain, which
    ``manage.py verify_audit`` detects. Rows cannot be updated or deleted through the ORM.
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The users are links for reading (the usernames are what the hash covers): no database
    # constraint, whose check would run for every event of a bulk write.
    actor = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events_as_actor",
        db_constraint=False,
    )
    actor_username = models.CharField(max_length=150, blank=True)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    owner = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events_as_owner",
        db_constraint=False,
    )
    owner_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=80)
    target_type = models.CharField(max_length=80)
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=255, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        # Every index is paid for by every event written: only those a query needs. The time
        # (``since``/``until`` filters), each user (a person's own events), the action (equality
        # and ``startswith``: one pattern index serves both on PostgreSQL), an object's events
        # (its type and id, then time and id). None on the hash: nothing looks an event up by
        # it, and a unique index would guard nothing the chain does not (equal hashes mean the
        # same event at the same place, which verification reports as a break) while costing
        # every write a step into an index of random keys, the dearest of all.
        indexes = [
            models.Index(fields=["action"], name="audit_action", opclasses=["varchar_pattern_ops"]),
            # An object's events newest first, read a page at a time past a time and id.
            models.Index(fields=["target_type", "target_id", "created_at", "id"], name="audit_target_time"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.actor_username or 'system'} {self.action} {self.target_type}:{self.target_id}"


class ApiToken(models.Model):
    """An API token. Only the SHA-256 of the key is stored; the key is shown once at issue."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, help_text="First characters of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["last_used_at"])

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class EmailStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class OutboundEmail(models.Model):
    """One email in the outbox. Written in the transaction of the change that causes it,
    delivered by a background task that retries with backoff.

    ``key`` is unique: enqueueing the same notification twice (a task run twice) stores one row,
    and a row is claimed by a conditional UPDATE before sending, so it is sent once.
    """

    key = models.CharField(max_length=200, unique=True)
    recipient = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="emails")
    to_address = models.EmailField()
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=EmailStatus.choices, default=EmailStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to_address} ({self.status})"


class ReviewerEmails(models.TextChoices):
    IMMEDIATE = "immediate", "One email for each item, as it arrives"
    DAILY = "daily", "One daily digest of everything waiting"


class NotificationPreference(models.Model):
    """How a person hears about review work (steps assigned to them, reminders, escalations): one
    email per item as it happens, or one daily digest listing everything waiting. Without a row a
    person gets immediate emails. Outcome emails to requesters are always sent at once."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="notification_preference")
    reviewer_emails = models.CharField(max_length=10, choices=ReviewerEmails.choices, default=ReviewerEmails.IMMEDIATE)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # The daily sweep reads "who wants a digest" through this index.
        indexes = [models.Index(fields=["reviewer_emails"], name="notification_pref_mode")]

    def __str__(self) -> str:
        return f"{self.user}: {self.reviewer_emails}"


class AuditChainCheck(models.Model):
    """The result of one walk of the audit chain (``verify_audit`` or the hourly task), so the
    auditor's home page can show the trail's integrity without walking it on every page view.
    ``checkpoint_sequence`` names the signed checkpoint the trail was compared with, if any."""

    checked_at = models.DateTimeField(default=timezone.now, db_index=True)
    events_checked = models.PositiveIntegerField()
    intact = models.BooleanField()
    broken_event_id = models.BigIntegerField(null=True, blank=True)
    problem = models.TextField(blank=True)
    checkpoint_sequence = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-checked_at", "-id"]

    def __str__(self) -> str:
        state = "intact" if self.intact else f"broken at #{self.broken_event_id}"
        return f"{self.checked_at:%Y-%m-%d %H:%M} {state} ({self.events_checked} events)"


class AuditCheckpointQuerySet(AppendOnlyQuerySet["AuditCheckpoint"]):
    pass


class AuditCheckpoint(AppendOnly):
    """A signed statement of the audit trail's state: after ``event_count`` events the newest is
    ``#last_event_id`` and its hash is ``head_hash``. Written by
    ``governance.anchoring.checkpoint_sign`` (hourly, or ``manage.py audit_checkpoint``), signed
    with an Ed25519 key kept outside the database, and sent to the external ``witnesses`` the
    deployment configures (recorded here as ``[{"kind", "target", "status", "detail"}]``).

    A rewrite of the trail up to ``last_event_id`` changes the hash at that id, a truncation
    removes that id; ``manage.py verify_audit`` reports both. Rows cannot be updated or deleted
    through the ORM, and a row edited in the database no longer matches its ``signature``.
    """

    sequence = models.PositiveIntegerField(unique=True, help_text="1 for the first checkpoint, then +1.")
    signed_at = models.DateTimeField(db_index=True)
    event_count = models.PositiveBigIntegerField()
    last_event_id = models.BigIntegerField(help_text="0 when the trail was empty.")
    head_hash = models.CharField(max_length=64)
    key_id = models.CharField(max_length=32, help_text="Fingerprint of the public key that verifies it.")
    signature = models.CharField(max_length=128, help_text="Ed25519 signature, base64.")
    witnesses = models.JSONField(default=list, blank=True)

    objects = AuditCheckpointQuerySet.as_manager()

    class Meta:
        ordering = ["-sequence"]

    def __str__(self) -> str:
        return f"checkpoint {self.sequence}: #{self.last_event_id} ({self.event_count} events)"


class IdempotencyStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"


class IdempotencyRecord(models.Model):
    """The first response to a POST carrying ``Idempotency-Key``, per caller (user or token), for
    24 hours (``governance.api.idempotency``). The unique constraint is what stops two concurrent
    requests with the same key from both creating: the second one finds the in-progress row and
    gets a 409."""

    caller = models.CharField(max_length=80)
    key = models.CharField(max_length=200)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    body_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=12, choices=IdempotencyStatus.choices, default=IdempotencyStatus.IN_PROGRESS)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    response_content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        # The table it was created with, when it belonged to the webhooks app.
        db_table = "webhooks_idempotencyrecord"
        constraints = [models.UniqueConstraint(fields=["caller", "key"], name="idempotency_key_once_per_caller")]

    def __str__(self) -> str:
        return f"{self.caller} {self.key} ({self.status})"


class AuditStreamSink(models.TextChoices):
    FILE = "file", "File (JSON lines)"
    SYSLOG = "syslog", "Syslog (RFC 5424)"


class AuditStreamPosition(models.Model):
    """How far the audit trail has been streamed to one SIEM sink: the last event the sink took
    (``last_event_id``) and its hash, so that the next event's ``prev_hash`` can be checked against
    it. ``governance.observability.stream`` advances it only after the sink accepted the events,
    in the transaction that holds this row locked: two runs at once take turns and never write
    the same event twice. Delivery bookkeeping like the outbox's claims, not itself audited (each
    advance would be one more event to stream)."""

    sink = models.CharField(max_length=10, choices=AuditStreamSink.choices, unique=True)
    target = models.CharField(max_length=500, blank=True, help_text="The file or syslog address written to last.")
    last_event_id = models.BigIntegerField(default=0, help_text="0 before the first event is streamed.")
    last_hash = models.CharField(max_length=64, default="0" * 64)
    events_written = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["sink"]

    def __str__(self) -> str:
        return f"{self.sink}: through #{self.last_event_id}"
