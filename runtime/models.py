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
    # The runtime policy's decisions on this request: the enforced version, the deciding policies'
    # ids, and the ids of the decisions in the decision log.
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    policy_reasons = models.JSONField(default=list, blank=True)
    policy_decisions = models.JSONField(default=list, blank=True)
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


# --- Policy as code ------------------------------------------------------------------------------


class PolicyStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    # Evaluated on every request and logged beside the enforced decision, never applied.
    SHADOW = "shadow", "Shadow (log only)"
    ENFORCED = "enforced", "Enforced"
    RETIRED = "retired", "Retired"


class PolicyVersion(models.Model):
    """One version of the runtime policy set: Cedar text whose every policy carries a stable
    ``@id`` and a ``@description``, and the policy tests that travel with it (named requests
    with the decision expected). Exactly one version is enforced at a time; a version is only
    saved when it validates against the schema generated from the portal's model."""

    number = models.PositiveIntegerField(unique=True)
    title = models.CharField(max_length=200, help_text="What this version changes, in one line.")
    cedar_text = models.TextField()
    # SHA-256 of cedar_text: the version's identity in decisions, caches and replay reports.
    sha256 = models.CharField(max_length=64)
    tests = models.JSONField(default=list, blank=True)
    # The last run of its tests against the schema then current: one row per test.
    test_results = models.JSONField(default=list, blank=True)
    tests_passed = models.BooleanField(default=False)
    tests_run_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=PolicyStatus.choices, default=PolicyStatus.DRAFT, db_index=True)
    based_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Where the text came from: typed in the portal, or pushed through the API (say, from a
    # repository's CI, with the commit in source_ref).
    source = models.CharField(max_length=10, default="portal")
    source_ref = models.CharField(max_length=200, blank=True)
    # Empty for the version the portal ships (seeded by a migration).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    edited_at = models.DateTimeField(default=timezone.now)
    # The approvals request (type policy_change) that asked for it to be enforced, if any.
    change_request_id = models.BigIntegerField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    shadow_at = models.DateTimeField(null=True, blank=True)
    enforced_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    enforced_at = models.DateTimeField(null=True, blank=True)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="enforced"), name="policyversion_one_enforced"
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.number} {self.title} ({self.status})"


class PolicyEntitySnapshot(models.Model):
    """The entity data (Cedar entities JSON) one or more decisions were made with, stored once
    per distinct content: replay re-decides a logged request with exactly what was known then."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    entities = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.sha256[:12]


class PolicyDecisionBatch(models.Model):
    """A sealed run of policy decisions, chained like the token log's batches
    (``digest`` = SHA-256 over the previous digest and each decision's digest in id order) and
    each sealed into the audit chain as one event."""

    sealed_at = models.DateTimeField(default=timezone.now)
    first_decision_id = models.BigIntegerField()
    last_decision_id = models.BigIntegerField()
    count = models.PositiveIntegerField()
    previous_digest = models.CharField(max_length=64)
    digest = models.CharField(max_length=64, unique=True)
    audit_event_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"decision batch {self.pk}: {self.count} decisions"


class PolicyDecisionPoint(models.TextChoices):
    TOKEN_EXCHANGE = "token_exchange", "Token exchange"
    API = "api", "Decision API"


class PolicyDecision(models.Model):
    """One runtime access decision: the request (principal, action, resource, context — never a
    token or secret), the entity data it was decided with (by snapshot), the enforced version's
    decision and reasons (its policy ids), each shadow version's result, and the time it took.
    Append-only; ``digest`` covers every field but ``batch``."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    decision_id = models.CharField(max_length=32, unique=True)
    point = models.CharField(max_length=20, choices=PolicyDecisionPoint.choices)
    # The account that asked through the API (a gateway, a resource server, an IAM admin).
    caller = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    integration = models.ForeignKey(
        "inventory.Integration", null=True, blank=True, on_delete=models.PROTECT, related_name="policy_decisions"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    principal = models.CharField(max_length=200)
    action = models.CharField(max_length=60)
    resource = models.CharField(max_length=300)
    context = models.JSONField(default=dict, blank=True)
    # No database constraint: retention may purge a snapshot no decision refers to any more while
    # another process still remembers it; replay counts a decision without its snapshot as an error.
    snapshot = models.ForeignKey(
        PolicyEntitySnapshot, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    decision = models.CharField(max_length=5)
    reasons = models.JSONField(default=list, blank=True)
    errors = models.JSONField(default=list, blank=True)
    policy_version = models.ForeignKey(
        PolicyVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions"
    )
    # {"<version number>": {"decision": ..., "reasons": [...], "errors": [...]}} for each shadow.
    shadow = models.JSONField(default=dict, blank=True)
    latency_us = models.PositiveIntegerField(default=0)
    # What ties it to the caller's record: the token event's jti for an issuance, or the
    # gateway's own request id.
    trace = models.CharField(max_length=64, blank=True)
    digest = models.CharField(max_length=64)
    batch = models.ForeignKey(
        PolicyDecisionBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions"
    )

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["integration", "at"], name="policydecision_integration_at"),
            models.Index(fields=["decision", "at"], name="policydecision_decision_at"),
            models.Index(fields=["policy_version", "at"], name="policydecision_version_at"),
            models.Index(fields=["batch", "id"], name="policydecision_batch_id"),
        ]

    def __str__(self) -> str:
        return f"{self.decision} {self.action} {self.principal} → {self.resource}"


class ReplayStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class PolicyReplay(models.Model):
    """ "What would this version change?": a candidate version re-deciding the last ``limit``
    logged decisions, in the background, with the entity data of each decision's time. The
    report counts allow→deny and deny→allow by policy, integration and owner, with examples."""

    candidate = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="replays")
    # The candidate's text when the replay ran: a later edit makes the report stale.
    candidate_sha256 = models.CharField(max_length=64)
    limit = models.PositiveIntegerField(default=100_000)
    status = models.CharField(max_length=10, choices=ReplayStatus.choices, default=ReplayStatus.QUEUED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    # {"unchanged": n, "allow_to_deny": n, "deny_to_allow": n, "errors": n}
    counts = models.JSONField(default=dict, blank=True)
    # {"policy": {...}, "integration": {...}, "owner": {...}} → {key: {"allow_to_deny": n, "deny_to_allow": n}}
    breakdown = models.JSONField(default=dict, blank=True)
    examples = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"replay of v{self.candidate_id} ({self.status})"
