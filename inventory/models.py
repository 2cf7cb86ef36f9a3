"""What exists: the scope catalog, integrations (the NHIs being governed), their credentials and
the grants they hold. State changes go through ``inventory.services``; nothing here saves a
status by itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone
from guardian.models import UserObjectPermissionBase
from simple_history.models import HistoricalRecords

from inventory.choices import (  # noqa: F401  (the vocabulary is read from here too)
    DEFAULT_ISSUER_ALGORITHMS,
    RISK_TIER_ORDER,
    AccessLevel,
    Autonomy,
    CredentialType,
    DataClassification,
    DiscoverySource,
    Environment,
    GrantStatus,
    IntegrationKind,
    IntegrationStatus,
    IssuerKind,
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
    audience = models.CharField(
        max_length=300,
        blank=True,
        help_text="How its resource servers name themselves in tokens (the aud claim), e.g. its API's URL. "
        "Empty: urn:ai-governance:system:<code>.",
    )
    token_algorithm = models.CharField(
        max_length=8,
        choices=[("ES256", "ES256"), ("RS256", "RS256")],
        default="ES256",
        help_text="How the portal signs access tokens for it (RS256 for resource servers that only accept RSA).",
    )
    environment = models.CharField(
        max_length=20,
        choices=Environment.choices,
        default=Environment.PRODUCTION,
        help_text="Which environment its data lives in: runtime policy can keep development integrations out of "
        "production systems.",
    )

    history = HistoricalRecords(m2m_fields=[owners])
    _history_user: User | None  # set before save(): the change's author in the history

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def token_audience(self) -> str:
        return self.audience or f"urn:ai-governance:system:{self.code}"


class Scope(models.Model):
    """One permission on one resource system, e.g. ``msgraph:Mail.Read``."""

    system = models.ForeignKey(ResourceSystem, on_delete=models.PROTECT, related_name="scopes")
    name = models.CharField(max_length=120)
    code = models.CharField(max_length=170, unique=True, editable=False, help_text="system:name")
    description = models.TextField(blank=True)
    sensitivity = models.CharField(max_length=10, choices=Sensitivity.choices, default=Sensitivity.MEDIUM)
    access = models.CharField(max_length=10, choices=AccessLevel.choices, default=AccessLevel.READ)
    is_active = models.BooleanField(default=True, help_text="Retired scopes cannot be requested any more.")
    jit_eligible = models.BooleanField(
        default=False,
        help_text="An integration that does not hold it may ask for it at run time, for one task; "
        "a reviewer decides and the grant ends by itself.",
    )

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
            # The IAM team's usual question: "what is active and high risk?", and of which kind:
            # the list's three filters answered from the index alone.
            models.Index(fields=["status", "risk_tier", "kind"], name="integration_status_tier_kind"),
            # The list's other sorts (each with the id that breaks ties): a page reads the index
            # instead of sorting half a million rows.
            models.Index(fields=["risk_score", "id"], name="integration_risk_score_id"),
            models.Index(fields=["status", "id"], name="integration_status_id"),
            models.Index(fields=["kind", "id"], name="integration_kind_id"),
            models.Index(fields=["vendor", "id"], name="integration_vendor_id"),
            models.Index(fields=["updated_at", "id"], name="integration_updated_id"),
            # Risk held per business owner (the dashboard's top owners), index-only on PostgreSQL.
            models.Index(
                fields=["status", "business_owner"],
                include=["risk_score", "risk_tier"],
                name="integration_status_owner_risk",
            ),
        ]
        permissions = [
            ("suspend_integration", "Can suspend (kill switch) any integration"),
            # Held on one integration (a guardian object permission), never model-wide: its
            # co-owners and delegates, named by an owner.
            ("act_on_integration", "May act on this integration beside its owners"),
        ]

    def __str__(self) -> str:
        return self.name

    def owner_ids(self) -> set[int]:
        return {i for i in (self.business_owner_id, self.technical_owner_id, self.backup_owner_id) if i}


class ExternalAppId(models.Model):
    """The integration as an identity provider or SaaS suite knows it: the provider's app key
    (Google OAuth client id, Entra application id, Slack app id, GitHub App id, Okta client id).
    Discovery matches what it imports against these: one integration per (source, app key)."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="external_app_ids")
    source = models.CharField(max_length=20, choices=DiscoverySource.choices)
    app_key = models.CharField(max_length=200, help_text="The provider's id of the app, exactly as it shows it.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["source", "app_key"]
        constraints = [
            models.UniqueConstraint(fields=["source", "app_key"], name="inventory_external_app_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()}: {self.app_key}"


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

    # Every index is written again when a grant ends (its status is indexed: no HOT update), so
    # there are none the composite indexes below already serve: (integration, status) and
    # (scope, granted_at, id) lead with these foreign keys.
    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="grants", db_index=False)
    scope = models.ForeignKey(Scope, on_delete=models.PROTECT, related_name="grants", db_index=False)
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
    # When a token carrying this grant's scope was last issued (written by the runtime's log
    # sealer, at most once a minute per grant); per-day counts are in ``GrantUsageDay``.
    last_used_at = models.DateTimeField(null=True, blank=True)
    expiry_warned_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="The closest expiry warning given so far (days before expiry): each is given once.",
    )

    # The history is read by grant (its id) and time, never by integration, scope or who ended a
    # grant: no index on those (each would be written for every grant ended). Its author is kept
    # as the other references of a history row are, without a database constraint (checked per
    # row at each commit); deleting a user still clears it (on_delete runs in Django).
    history = HistoricalRecords(
        excluded_fields=["expiry_warned_days", "last_used_at"],
        no_db_index=["integration", "scope", "ended_by"],
        user_db_constraint=False,
    )

    class Meta:
        ordering = ["-granted_at", "id"]
        indexes = [
            # The grant list's order: a page of 50 reads the index instead of sorting every grant.
            models.Index(fields=["-granted_at", "id"], name="grant_granted_desc_id"),
            # The grants of one scope in that order (the list's scope filter).
            models.Index(fields=["scope", "-granted_at", "id"], name="grant_scope_granted_desc_id"),
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


class GrantUsageDay(models.Model):
    """How many access tokens carrying a grant's scope were issued on one day (UTC). Written in
    bulk by the runtime's log sealer; read for "uses in the last 30 days"."""

    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="usage_days")
    day = models.DateField()
    uses = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["grant_id", "day"]
        constraints = [models.UniqueConstraint(fields=["grant", "day"], name="grant_usage_one_row_per_day")]

    def __str__(self) -> str:
        return f"{self.grant_id} {self.day}: {self.uses}"


def default_issuer_algorithms() -> list[str]:
    return list(DEFAULT_ISSUER_ALGORITHMS)


class TrustedIssuer(models.Model):
    """An issuer of workload tokens the portal believes: an OpenID Connect issuer (keys found
    through its discovery document), a SPIFFE trust domain (its JWT bundle) or a static JWKS.

    ``issuer`` is the exact ``iss`` its tokens carry (for a SPIFFE trust domain,
    ``spiffe://<trust domain>``; JWT-SVIDs without ``iss`` are matched by their SPIFFE ID).
    ``jwks`` holds the pasted keys (static, SPIFFE without a bundle URL) or the last set fetched
    successfully; the ``keys_*`` columns say when keys were last fetched and why the last refresh
    failed, if it did. Changes go through ``inventory.services`` (audited)."""

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=12, choices=IssuerKind.choices)
    issuer = models.CharField(max_length=300, unique=True, help_text="The exact iss claim of its tokens.")
    discovery_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="OpenID Connect: the discovery document (default: <issuer>/.well-known/openid-configuration).",
    )
    jwks_uri = models.URLField(
        max_length=500,
        blank=True,
        help_text="Where the keys are (OpenID Connect: from discovery; SPIFFE: the bundle endpoint).",
    )
    jwks = models.JSONField(default=dict, blank=True)
    allowed_algorithms = models.JSONField(default=default_issuer_algorithms)
    audience = models.CharField(
        max_length=300, blank=True, help_text="The aud its tokens must carry (empty: the portal's token endpoint URL)."
    )
    max_token_age_seconds = models.PositiveIntegerField(default=3600)
    clock_skew_seconds = models.PositiveSmallIntegerField(default=30)
    key_cache_seconds = models.PositiveIntegerField(default=300)
    is_active = models.BooleanField(default=True)
    keys_fetched_at = models.DateTimeField(null=True, blank=True)
    keys_error = models.TextField(blank=True)
    keys_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords(
        excluded_fields=["jwks", "keys_fetched_at", "keys_error", "keys_error_at", "updated_at"]
    )
    _history_user: User | None  # set before save(): the change's author in the history

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class WorkloadBinding(models.Model):
    """An integration's workload identity: the issuer, the exact ``sub`` of its tokens and claim
    equalities every token must also carry (``required_claims``: dotted claim path -> value, e.g.
    ``{"repository_id": "123456", "kubernetes.io.namespace": "ai"}``). A token that matches no
    binding, or several, is refused. ``first_verified_at``/``last_verified_at`` are set when a
    token proving it was accepted ("proven" vs "declared only")."""

    integration = models.OneToOneField(Integration, on_delete=models.CASCADE, related_name="workload_binding")
    issuer = models.ForeignKey(TrustedIssuer, on_delete=models.PROTECT, related_name="bindings")
    subject = models.CharField(max_length=300)
    required_claims = models.JSONField(default=dict, blank=True)
    # SHA-256 of the canonical JSON of required_claims: one binding per (issuer, subject, claims).
    claims_key = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    first_verified_at = models.DateTimeField(null=True, blank=True)
    last_verified_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["claims_key", "updated_at", "first_verified_at", "last_verified_at"])
    _history_user: User | None  # set before save(): the change's author in the history

    class Meta:
        ordering = ["integration_id"]
        indexes = [models.Index(fields=["issuer", "subject"], name="binding_issuer_subject")]
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject", "claims_key"], name="binding_one_per_identity")
        ]

    def __str__(self) -> str:
        return f"{self.issuer.issuer} {self.subject}"

    @property
    def is_proven(self) -> bool:
        return self.first_verified_at is not None


class IntegrationUserObjectPermission(UserObjectPermissionBase):
    """A guardian object permission on one integration, with a real foreign key (indexed and
    joined like any other, instead of guardian's generic text id): ``act_on_integration`` makes
    a person a co-owner or delegate who sees, edits and renews that integration. Written only by
    ``inventory.services.integration_delegate_add``/``_remove`` (audited)."""

    content_object = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="user_permissions")

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "integration permission of a person"
