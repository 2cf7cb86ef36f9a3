"""What discovery knows: each import of a provider's grants, the apps and consents it found, the
scope mappings IAM keeps, the findings that need a decision and the revocations asked for.

State changes go through ``inventory.discovery.services`` (claims, revocations, assignments) and
``inventory.discovery.importer`` (imports); nothing here saves a status by itself."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from inventory.choices import RiskTier, Sensitivity
from inventory.discovery.choices import (
    ConsentResponse,
    ConsentType,
    FindingKind,
    FindingStatus,
    ImportMethod,
    ImportStatus,
    RemediationStatus,
    Source,
)


class DiscoveryImport(models.Model):
    """One import of one source's data, uploaded or pulled: who, when, what and how it went.

    ``complete`` says the data is everything the source lists for ``tenant``: only then are the
    apps and consents it does not mention marked absent (findings ``gone`` and ``stale``).
    ``counts`` holds what the import found: ``records``, ``apps``, ``consents``, ``apps_new``,
    ``consents_new``, ``consents_changed``, ``people_matched``, ``people_unmatched`` and
    ``findings`` (opened, by kind: ``{"shadow": 3, ...}``) and ``closed`` (findings closed)."""

    source = models.CharField(max_length=20, choices=Source.choices)
    tenant = models.CharField(
        max_length=200,
        blank=True,
        help_text="The provider's tenant: Google customer, Entra tenant id, Slack enterprise, GitHub org, Okta org.",
    )
    method = models.CharField(max_length=10, choices=ImportMethod.choices)
    complete = models.BooleanField(
        default=True, help_text="The data lists everything the source holds: what it does not mention is gone."
    )
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED, db_index=True)
    file_name = models.CharField(max_length=255, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    file_bytes = models.BigIntegerField(default=0)
    # Where the uploaded or pulled data waits for the worker; the file is deleted once imported.
    spool_path = models.CharField(max_length=500, blank=True, editable=False)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    records = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    error_record = models.PositiveIntegerField(null=True, blank=True)
    error_field = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_source_display()} import #{self.pk}"


class DiscoveredApp(models.Model):
    """A third-party app some provider shows grants for: one row per (source, tenant, app key)."""

    source = models.CharField(max_length=20, choices=Source.choices)
    tenant = models.CharField(max_length=200, blank=True)
    app_key = models.CharField(max_length=200)
    # A second key the provider uses for the same app (Entra: the service principal's object id
    # beside the application id); external app ids match either.
    alt_key = models.CharField(max_length=200, blank=True)
    name = models.CharField(max_length=300)
    publisher = models.CharField(max_length=300, blank=True)
    publisher_verified = models.BooleanField(null=True, blank=True)
    admin_consent = models.BooleanField(default=False, help_text="Someone consented for everyone in the tenant.")
    scopes = models.JSONField(default=list, blank=True, help_text="Every scope the provider shows, as it names them.")
    people_count = models.PositiveIntegerField(default=0)
    details = models.JSONField(default=dict, blank=True)
    integration = models.ForeignKey(
        "inventory.Integration", null=True, blank=True, on_delete=models.SET_NULL, related_name="discovered_apps"
    )
    risk_score = models.PositiveIntegerField(default=0)
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, default=RiskTier.LOW)
    risk_factors = models.JSONField(default=list, blank=True)
    present = models.BooleanField(default=True, help_text="Listed by the source's last complete import.")
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    first_import = models.ForeignKey(DiscoveryImport, null=True, on_delete=models.SET_NULL, related_name="+")
    last_import = models.ForeignKey(DiscoveryImport, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "tenant", "app_key"], name="discovery_app_unique"),
        ]
        indexes = [models.Index(fields=["source", "tenant", "present"], name="discovery_app_present")]

    def __str__(self) -> str:
        return self.name


class DiscoveredConsent(models.Model):
    """One person's (or an admin's, for everyone) consent to an app, as the provider shows it.

    ``person_key`` is the person as the provider gave them (email, username or its own user id;
    ``*`` for an admin consent for everyone); ``person`` is the portal user it matched, if any.
    ``grant_ids`` are the provider's ids to revoke (Graph grant ids, Okta grant ids; empty where
    the revoke call names the person and app instead). ``response`` tracks the question discovery
    asked the person about a shadow app.

    An import writes this table by the million (and re-writes ``last_seen`` and ``last_import``
    of every row it lists), so it carries only the indexes its reads need: the unique (app,
    person key) one serves an app's consents and the (person, response) one a person's. The
    database checks the app of each row; ``person`` and ``last_import`` are kept by the ORM
    (deleting a user or an import still empties them): a checked foreign key costs a lookup per
    row written, which was half an import's time in the database."""

    app = models.ForeignKey(DiscoveredApp, on_delete=models.CASCADE, related_name="consents", db_index=False)
    person_key = models.CharField(max_length=320)
    person_email = models.CharField(max_length=320, blank=True)
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="discovered_consents",
        db_index=False,
        db_constraint=False,
    )
    consent_type = models.CharField(max_length=10, choices=ConsentType.choices, default=ConsentType.USER)
    scopes = models.JSONField(default=list, blank=True)
    grant_ids = models.JSONField(default=list, blank=True)
    present = models.BooleanField(default=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    last_import = models.ForeignKey(
        DiscoveryImport, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False, db_constraint=False
    )
    response = models.CharField(max_length=12, choices=ConsentResponse.choices, default=ConsentResponse.NOT_ASKED)
    asked_at = models.DateTimeField(null=True, blank=True)
    respond_by = models.DateTimeField(null=True, blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["app_id", "person_key"]
        constraints = [
            models.UniqueConstraint(fields=["app", "person_key"], name="discovery_consent_unique"),
        ]
        indexes = [
            models.Index(fields=["person", "response"], name="discovery_consent_person"),
            models.Index(fields=["response", "respond_by"], name="discovery_consent_due"),
        ]

    def __str__(self) -> str:
        return f"{self.person_key} → {self.app_id}"


class ScopeMapping(models.Model):
    """A provider's scope name mapped to the portal's scope catalog, kept by IAM admins. A scope
    with no mapping is shown raw, with a sensitivity estimated from its name."""

    source = models.CharField(max_length=20, choices=Source.choices)
    provider_scope = models.CharField(max_length=300)
    scope = models.ForeignKey("inventory.Scope", on_delete=models.PROTECT, related_name="discovery_mappings")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["source", "provider_scope"]
        constraints = [
            models.UniqueConstraint(fields=["source", "provider_scope"], name="discovery_scope_mapping_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.source}: {self.provider_scope}"


class Finding(models.Model):
    """Something an import found that needs a decision.

    ``shadow``: an app no registered integration claims (by external app id); ``drift``: a
    registered integration the provider shows with scopes beyond its active grants
    (``extra_scopes``, as the provider names them); ``stale``: an integration's external app id the
    provider's complete listing no longer has (``app`` may be None); ``gone``: a previous finding's
    app no longer present (``previous_kind`` says which). At most one unclosed finding per
    (source, tenant, app key, kind)."""

    kind = models.CharField(max_length=10, choices=FindingKind.choices, db_index=True)
    status = models.CharField(max_length=20, choices=FindingStatus.choices, default=FindingStatus.OPEN, db_index=True)
    source = models.CharField(max_length=20, choices=Source.choices, db_index=True)
    tenant = models.CharField(max_length=200, blank=True)
    app_key = models.CharField(max_length=200)
    app = models.ForeignKey(DiscoveredApp, null=True, blank=True, on_delete=models.CASCADE, related_name="findings")
    integration = models.ForeignKey(
        "inventory.Integration", null=True, blank=True, on_delete=models.SET_NULL, related_name="discovery_findings"
    )
    title = models.CharField(max_length=300)
    extra_scopes = models.JSONField(default=list, blank=True)
    previous_kind = models.CharField(max_length=10, choices=FindingKind.choices, blank=True)
    risk_score = models.PositiveIntegerField(default=0)
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, default=RiskTier.LOW, db_index=True)
    risk_factors = models.JSONField(default=list, blank=True)
    people_affected = models.PositiveIntegerField(default=0, db_index=True)
    assigned_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="assigned_findings"
    )
    opened_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    opened_by_import = models.ForeignKey(DiscoveryImport, null=True, on_delete=models.SET_NULL, related_name="+")
    last_import = models.ForeignKey(DiscoveryImport, null=True, on_delete=models.SET_NULL, related_name="+")
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["-people_affected", "-risk_score", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "tenant", "app_key", "kind"],
                condition=Q(closed_at__isnull=True),
                name="discovery_finding_one_unclosed",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "kind"], name="discovery_finding_status"),
            models.Index(fields=["-people_affected", "-risk_score", "id"], name="discovery_finding_rank"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title}"


class Remediation(models.Model):
    """A revocation asked for: what to revoke at the provider (``provider_calls``: each
    ``{"method", "url", "description", "ids"}``), for the ticketing system to carry out (a
    ``discovery.revoke_requested`` webhook event) or for the portal to call itself where the
    connector has write credentials (``status`` and ``result`` say how that went)."""

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="remediations")
    consent = models.ForeignKey(
        DiscoveredConsent, null=True, blank=True, on_delete=models.SET_NULL, related_name="remediations"
    )
    provider_calls = models.JSONField(default=list)
    reason = models.TextField(blank=True)
    status = models.CharField(
        max_length=10, choices=RemediationStatus.choices, default=RemediationStatus.REQUESTED, db_index=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    executed_at = models.DateTimeField(null=True, blank=True)
    result = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"Revocation #{self.pk} of finding {self.finding_id}"


__all__ = [
    "ConsentResponse",
    "ConsentType",
    "DiscoveredApp",
    "DiscoveredConsent",
    "DiscoveryImport",
    "Finding",
    "FindingKind",
    "FindingStatus",
    "ImportMethod",
    "ImportStatus",
    "Remediation",
    "RemediationStatus",
    "ScopeMapping",
    "Sensitivity",
    "Source",
]
