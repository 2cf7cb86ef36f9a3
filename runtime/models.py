"""The runtime's own rows: the portal's signing keys, the log of token issuances and refusals
(sealed in batches into the audit chain), and revoked token ids."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class KeyState(models.TextChoices):
    # Published in the JWKS, not yet signing: resource servers' caches learn it first.
    NEXT = "next", "Next (published, not signing yet)"
    CURRENT = "current", "Current (signing)"
    # Published, no longer signing: tokens it signed still verify until they have expired.
    PREVIOUS = "previous", "Previous (published until its tokens expire)"
    RETIRED = "retired", "Retired (not published)"


class SigningKey(models.Model):
    """A key pair the portal signs access tokens with. ``kid`` is the RFC 7638 thumbprint of the
    public key; the private key is stored encrypted (``runtime.keys``), never in clear."""

    kid = models.CharField(max_length=64, unique=True)
    algorithm = models.CharField(max_length=8)
    public_jwk = models.JSONField()
    private_key_encrypted = models.TextField()
    state = models.CharField(max_length=10, choices=KeyState.choices, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Published from created_at; may sign from sign_after (one resource-server cache lifetime later).
    sign_after = models.DateTimeField()
    activated_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)
    # A previous key leaves the JWKS after this time (every token it signed has expired by then).
    remove_after = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one signing and one waiting key per algorithm: two processes creating the
            # first keys at once, or two rotations racing, make one of them fail and re-read.
            models.UniqueConstraint(
                fields=["algorithm"], condition=models.Q(state="current"), name="signingkey_one_current_per_algorithm"
            ),
            models.UniqueConstraint(
                fields=["algorithm"], condition=models.Q(state="next"), name="signingkey_one_next_per_algorithm"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.algorithm} {self.kid[:12]} ({self.state})"


class TokenOutcome(models.TextChoices):
    ISSUED = "issued", "Issued"
    REFUSED = "refused", "Refused"


class TokenEventBatch(models.Model):
    """A sealed run of token events: ``digest`` = SHA-256 over the previous batch's digest and
    each event's digest in id order. Each batch is one audit event in the audit chain, so the
    log is tamper-evident without every issuance taking the chain's lock."""

    sealed_at = models.DateTimeField(default=timezone.now)
    first_event_id = models.BigIntegerField()
    last_event_id = models.BigIntegerField()
    count = models.PositiveIntegerField()
    previous_digest = models.CharField(max_length=64)
    digest = models.CharField(max_length=64, unique=True)
    audit_event_id = models.BigIntegerField(null=True, blank=True)
    # Whether its issued events have been counted into the grants' usage (runtime.log.usage_apply).
    usage_applied = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"batch {self.pk}: {self.count} events"


class TokenEvent(models.Model):
    """One issuance or refusal at the token endpoint: who asked (workload issuer and subject, the
    integration it proved to be, its accountable owner, the user it acted for, the chain of
    integrations), what for (audience, scopes asked, task) and what it got (scopes, ``jti``,
    expiry) or why not (``error`` and ``reason``). ``digest`` is computed at insert over every
    field but ``batch``; the sealer fills ``batch`` later."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    outcome = models.CharField(max_length=8, choices=TokenOutcome.choices)
    error = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)
    integration = models.ForeignKey(
        "inventory.Integration", null=True, blank=True, on_delete=models.PROTECT, related_name="token_events"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acting_for = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    workload_issuer = models.CharField(max_length=300, blank=True)
    workload_subject = models.CharField(max_length=300, blank=True)
    # Integration ids of the calling chain, outermost caller first, this integration last.
    chain = models.JSONField(default=list, blank=True)
    audience = models.CharField(max_length=300, blank=True)
    scopes_requested = models.JSONField(default=list, blank=True)
    scopes_granted = models.JSONField(default=list, blank=True)
    grant_ids = models.JSONField(default=list, blank=True)
    jti = models.CharField(max_length=64, blank=True, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    task = models.CharField(max_length=200, blank=True)
    digest = models.CharField(max_length=64)
    batch = models.ForeignKey(TokenEventBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="events")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["integration", "at"], name="tokenevent_integration_at"),
            models.Index(fields=["outcome", "at"], name="tokenevent_outcome_at"),
            models.Index(fields=["owner", "at"], name="tokenevent_owner_at"),
            models.Index(fields=["batch", "id"], name="tokenevent_batch_id"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} {self.jti or self.error} at {self.at:%Y-%m-%d %H:%M:%S}"


class TokenRevocation(models.Model):
    """An access token revoked before its expiry (RFC 7009): introspection answers
    ``active: false`` for its ``jti`` at once. Kept until the token would have expired."""

    jti = models.CharField(max_length=64, unique=True)
    revoked_at = models.DateTimeField(default=timezone.now)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-revoked_at"]

    def __str__(self) -> str:
        return self.jti
