"""What exists: the scope catalog, integrations (the NHIs being governed), their credentials and
the grants they hold. State changes go through ``inventory.services``; nothing here saves a
status by itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from inventory.choices import (  # noqa: F401  (the vocabulary is read from here too)
    RISK_TIER_ORDER,
    AccessLevel,
    Autonomy,
    CredentialType,
    DataClassification,
    Environment,
    GrantStatus,
    IntegrationKind,
    IntegrationStatus,
    OwnerRole,
    RiskTier,
    Sensitivity,
    TransferStatus,
)

if TYPE_CHECKING:
    from governance.models import User


class ResourceSystem(models.Model):
    """A system that holds data or actions (Microsoft Graph, Salesforce, the HR database).
    Its ``owners`` are the resource owners that workflows and campaigns can ask."""

    code = models.SlugField(max_length=40, unique=True, help_text="Short code used in scope codes, e.g. msgraph.")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    owners = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="owned_systems")

    history = HistoricalRecords(m2m_fields=[owners])
    _history_user: User | None  # set before save(): the change's author in the history

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Scope(models.Model):
    """One permission on one resource system, e.g. ``msgraph:Mail.Read``."""

    system = models.ForeignKey(ResourceSystem, on_delete=models.PROTECT, related_name="scopes")
    name = models.CharField(max_length=120)
    code = models.CharField(max_length=170, unique=True, editable=False, help_text="system:name")
    description = models.TextField(blank=True)
    sensitivity = models.CharField(max_length=10, choices=Sensitivity.choices, default=Sensitivity.MEDIUM)
    access = models.CharField(max_length=10, choices=AccessLevel.choices, default=AccessLevel.READ)
    is_active = models.BooleanField(default=True, help_text="Retired scopes cannot be requested any more.")

    history = HistoricalRecords()
    _history_user: User | None  # set before save(): the change's author in the history

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["system", "name"], name="scope_unique_per_system")]

    def __str__(self) -> str:
        return self.code


class Integration(models.Model):
    """One AI tool, agent, plugin or automation: the non-human identity being governed.

    ``requested_scopes`` is what its owners ask for; what it actually holds is its active
    ``grants``. ``data_classifications`` and ``tags`` are JSON lists (filtered with
    ``icontains`` on the quoted value, which works on SQLite and PostgreSQL alike).
    """

    name = models.CharField(max_length=150)
    kind = models.CharField(max_length=20, choices=IntegrationKind.choices)
    purpose = models.TextField()
    vendor = models.CharField(max_length=120, blank=True, help_text="Empty for an in-house integration.")
    environment = models.CharField(max_length=20, choices=Environment.choices, default=Environment.PRODUCTION)
    business_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="business_owned_integrations"
    )
    technical_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="technical_owned_integrations",
    )
    backup_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="backup_owned_integrations",
    )
    data_classifications = models.JSONField(default=list, blank=True)
    acts_for_users = models.BooleanField(
        default=False, help_text="Uses delegated user context (acts as the signed-in user)."
    )
    autonomy = models.CharField(max_length=20, choices=Autonomy.choices, default=Autonomy.HUMAN_IN_LOOP)
    requested_scopes = models.ManyToManyField(Scope, blank=True, related_name="requested_by")
    workload_identity = models.CharField(
        max_length=300, blank=True, help_text="e.g. spiffe://example.org/ns/ai/sa/agent or an OIDC issuer and subject."
    )
    invokes = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="invoked_by")
    ticket_ref = models.CharField(max_length=100, blank=True, db_index=True)
    tags = models.JSONField(default=list, blank=True)

    status = models.CharField(
        max_length=12, choices=IntegrationStatus.choices, default=IntegrationStatus.DRAFT, db_index=True
    )
    risk_score = models.PositiveIntegerField(default=0)
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, default=RiskTier.LOW, db_index=True)
    risk_factors = models.JSONField(default=list, blank=True)
    orphaned = models.BooleanField(default=False, db_index=True, help_text="An owner left; IAM must find a new one.")
    status_reason = models.TextField(blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="created_integrations"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    # Lower-cased name, vendor, ticket, tags and purpose, kept by the services: the list's word
    # search reads one column (with a trigram index on PostgreSQL) instead of five.
    search_text = models.TextField(blank=True, default="", editable=False)

    history = HistoricalRecords(m2m_fields=[requested_scopes, invokes], excluded_fields=["updated_at", "search_text"])
    # Set before save() for django-simple-history: who made the change and why; and, while the
    # services write the related sets, that those writes add no history row of their own (one
    # change is one row).
    _history_user: User | None
    _change_reason: str | None
    skip_history_when_saving: bool
    # Set by the list selectors on the rows they return: how many grants are active.
    active_grants: int

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["business_owner", "status"]),
            # The list's default order: a page of 25 reads the index instead of sorting every row.
            models.Index(fields=["name", "id"], name="integration_name_id"),
            # The IAM team's usual question: "what is active and high risk?"
            models.Index(fields=["status", "risk_tier"], name="integration_status_tier"),
        ]
        permissions = [("suspend_integration", "Can suspend (kill switch) any integration")]

    def __str__(self) -> str:
        return self.name

    def owner_ids(self) -> set[int]:
        return {i for i in (self.business_owner_id, self.technical_owner_id, self.backup_owner_id) if i}


class Credential(models.Model):
    """Metadata of a credential an integration uses, never a secret value: ``identifier`` is a
    key id, client id, account name or certificate fingerprint (the services refuse anything
    that looks like a secret)."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="credentials")
    type = models.CharField(max_length=30, choices=CredentialType.choices)
    identifier = models.CharField(
        max_length=200, help_text="Key id, client id, account or fingerprint — never the secret."
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_rotated_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()
    _history_user: User | None  # set before save(): the change's author in the history

    class Meta:
        ordering = ["integration_id", "id"]

    def __str__(self) -> str:
        return f"{self.get_type_display()} {self.identifier}"


class Grant(models.Model):
    """An integration holding a scope. Every grant knows where it came from and when it ends:
    ``source_type``/``source_id`` name what justified it, e.g.
    ``approvals.accessrequest`` and the request's id — inventory does not import approvals."""

    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="grants")
    scope = models.ForeignKey(Scope, on_delete=models.PROTECT, related_name="grants")
    status = models.CharField(max_length=10, choices=GrantStatus.choices, default=GrantStatus.ACTIVE)
    source_type = models.CharField(max_length=60)
    source_id = models.CharField(max_length=64)
    approvers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="approved_grants")
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="ended_grants"
    )
    end_reason = models.TextField(blank=True)
    expiry_warned_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="The closest expiry warning given so far (days before expiry): each is given once.",
    )

    history = HistoricalRecords(excluded_fields=["expiry_warned_days"])

    class Meta:
        ordering = ["-granted_at", "id"]
        indexes = [
            models.Index(fields=["integration", "status"]),
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["source_type", "source_id"]),
        ]
        constraints = [
            # At most one active grant of a scope per integration.
            models.UniqueConstraint(
                fields=["integration", "scope"],
                condition=models.Q(status="active"),
                name="grant_one_active_per_scope",
            )
        ]

    def __str__(self) -> str:
        return f"{self.integration} → {self.scope}"

    @property
    def is_active(self) -> bool:
        return self.status == GrantStatus.ACTIVE


class OwnershipTransfer(models.Model):
    """A proposal to hand one owner role of an integration to another person. It takes effect
    only when that person accepts it (``inventory.services.ownership_transfer_accept``);
    proposed -> accepted | declined | cancelled, nothing else."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="transfers")
    role = models.CharField(max_length=20, choices=OwnerRole.choices, default=OwnerRole.BUSINESS)
    from_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="incoming_transfers")
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=TransferStatus.choices, default=TransferStatus.PROPOSED)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()
    _history_user: User | None  # set before save(): the change's author in the history

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            # One open proposal per integration and role: a second one would race the first.
            models.UniqueConstraint(
                fields=["integration", "role"], condition=models.Q(status="proposed"), name="transfer_one_open_per_role"
            )
        ]

    def __str__(self) -> str:
        return f"{self.integration}: {self.get_role_display()} → {self.to_user}"
