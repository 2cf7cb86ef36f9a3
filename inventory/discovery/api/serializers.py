"""API shapes of discovery: imports, findings with their app, consents and revocations, scope
mappings, and the input of each action. Input serializers only parse and resolve references
(people by username); the services decide and write."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance.api.input import StrictInputMixin
from governance.models import User
from governance.validators import INT64_MAX, validate_single_line
from inventory.api.serializers import RiskFactorSerializer
from inventory.choices import AccessLevel, Environment, IntegrationKind, Sensitivity
from inventory.discovery.choices import FindingKind, Source
from inventory.discovery.models import (
    DiscoveredApp,
    DiscoveredConsent,
    DiscoveryImport,
    Finding,
    Remediation,
    ScopeMapping,
)

# The people an action may name: active, human accounts (an unknown username is a 422).
_PEOPLE = User.objects.filter(is_active=True, is_service_account=False)
_OBJECT = {"type": "object", "additionalProperties": {}}


def _username(**kwargs: Any) -> serializers.CharField:
    """A read-only username through a relation that may be empty (null then)."""
    return serializers.CharField(read_only=True, allow_null=True, default=None, **kwargs)


# --- Imports ----------------------------------------------------------------------------------


class DiscoveryImportSerializer(serializers.ModelSerializer[DiscoveryImport]):
    started_by = _username(source="started_by.username", help_text="Who uploaded it (null for a scheduled pull).")
    counts = serializers.SerializerMethodField(
        help_text="What the import found: records, apps, consents, apps_new, consents_new, consents_changed, "
        "people_matched, people_unmatched, findings (opened, by type) and closed."
    )

    class Meta:
        model = DiscoveryImport
        fields = [
            "id",
            "source",
            "tenant",
            "method",
            "complete",
            "status",
            "file_name",
            "file_sha256",
            "file_bytes",
            "started_by",
            "created_at",
            "started_at",
            "finished_at",
            "records",
            "counts",
            "error",
            "error_record",
            "error_field",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "error": {"help_text": "Why it failed (empty unless failed)."},
            "error_record": {"help_text": "The number of the record at fault, from 1 (null: the file as a whole)."},
            "error_field": {"help_text": "The provider's field at fault, dotted when nested."},
        }

    @extend_schema_field(_OBJECT)
    def get_counts(self, imp: DiscoveryImport) -> dict[str, Any]:
        return dict(imp.counts or {})


@extend_schema_field({"type": "string", "format": "binary", "minLength": 1})
class ExportFileField(serializers.FileField):
    """The uploaded file: at least one byte (an empty file is refused, naming ``file``)."""


class ImportUploadSerializer(serializers.Serializer[dict[str, Any]]):
    """A provider's export as its API returns it (one page, pages one after the other, or JSON
    lines), sent as multipart/form-data. Form fields are strings, so ``complete`` is the word
    ``true`` or ``false``."""

    source = serializers.ChoiceField(  # type: ignore[assignment]  # a field named like Field.source
        choices=Source.choices, help_text="Which provider the file comes from."
    )
    tenant = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=200,
        validators=[validate_single_line],
        help_text="The provider's tenant: Google customer, Entra tenant id, Slack enterprise, GitHub org, Okta org.",
    )
    complete = serializers.ChoiceField(
        choices=[("true", "true"), ("false", "false")],
        required=False,
        default="true",
        help_text="true: the file lists everything the source holds for the tenant, and what it does not "
        "mention is gone; false: a part only.",
    )
    file = ExportFileField(
        max_length=255, allow_empty_file=False, help_text="The export (size limit: DISCOVERY_UPLOAD_MAX_BYTES)."
    )


# --- Findings ---------------------------------------------------------------------------------


class DiscoveredAppSerializer(serializers.ModelSerializer[DiscoveredApp]):
    scopes = serializers.ListField(child=serializers.CharField(), help_text="Every scope the provider shows.")
    details = serializers.SerializerMethodField(help_text="What else the provider says about the app.")

    class Meta:
        model = DiscoveredApp
        fields = [
            "id",
            "source",
            "tenant",
            "app_key",
            "alt_key",
            "name",
            "publisher",
            "publisher_verified",
            "admin_consent",
            "scopes",
            "people_count",
            "details",
            "integration",
            "present",
            "first_seen",
            "last_seen",
        ]
        read_only_fields = fields

    @extend_schema_field(_OBJECT)
    def get_details(self, app: DiscoveredApp) -> dict[str, Any]:
        return dict(app.details or {})


class ScopeRowSerializer(serializers.Serializer[dict[str, Any]]):
    """A scope the provider shows, with the catalog scope it maps to."""

    provider_scope = serializers.CharField(help_text="The scope as the provider names it.")
    scope = serializers.CharField(
        source="scope.code",
        allow_null=True,
        default=None,
        help_text="The catalog scope's code it maps to (null: unmapped).",
    )
    sensitivity = serializers.ChoiceField(choices=Sensitivity.choices)
    access = serializers.ChoiceField(choices=AccessLevel.choices)
    estimated = serializers.BooleanField(
        help_text="true: sensitivity and access are estimated from the name (no mapping yet)."
    )


class ProviderCallSerializer(serializers.Serializer[dict[str, Any]]):
    method = serializers.CharField(help_text="The HTTP method, or MANUAL where the provider has no API for it.")
    url = serializers.CharField()
    description = serializers.CharField()
    ids = serializers.JSONField(help_text="The provider's ids the call names.")


class RemediationSerializer(serializers.ModelSerializer[Remediation]):
    provider_calls = ProviderCallSerializer(many=True, read_only=True)
    requested_by = _username(source="requested_by.username")
    person = serializers.CharField(
        source="consent.person_key",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="The consent it revokes (null: every consent of the app).",
    )

    class Meta:
        model = Remediation
        fields = [
            "id",
            "consent",
            "person",
            "provider_calls",
            "reason",
            "status",
            "requested_by",
            "requested_at",
            "executed_at",
            "result",
        ]
        read_only_fields = fields


class FindingSerializer(serializers.ModelSerializer[Finding]):
    type = serializers.ChoiceField(source="kind", choices=FindingKind.choices, read_only=True)
    previous_type = serializers.ChoiceField(
        source="previous_kind",
        choices=FindingKind.choices,
        allow_blank=True,
        read_only=True,
        help_text="For a gone finding: the type it was (else empty).",
    )
    app_name = serializers.CharField(source="app.name", read_only=True, allow_null=True, default=None)
    publisher = serializers.CharField(source="app.publisher", read_only=True, allow_null=True, default=None)
    integration_name = serializers.CharField(source="integration.name", read_only=True, allow_null=True, default=None)
    extra_scopes = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Drift: the provider's scopes beyond the integration's grants; shadow: the app's scopes when opened.",
    )
    risk_factors = RiskFactorSerializer(many=True, read_only=True)
    assigned_owner = _username(source="assigned_owner.username")

    class Meta:
        model = Finding
        fields = [
            "id",
            "type",
            "status",
            "source",
            "tenant",
            "app_key",
            "app",
            "app_name",
            "publisher",
            "integration",
            "integration_name",
            "title",
            "extra_scopes",
            "previous_type",
            "risk_score",
            "risk_tier",
            "risk_factors",
            "people_affected",
            "assigned_owner",
            "opened_at",
            "updated_at",
            "closed_at",
            "last_import",
            "resolution",
        ]
        read_only_fields = fields


class FindingDetailSerializer(FindingSerializer):
    discovered_app = DiscoveredAppSerializer(source="app", read_only=True, allow_null=True)
    scopes = serializers.SerializerMethodField(
        help_text="The app's scopes, mapped to the catalog where a mapping exists."
    )
    remediations = serializers.SerializerMethodField(help_text="The revocations asked for, newest first.")

    class Meta(FindingSerializer.Meta):
        fields = [*FindingSerializer.Meta.fields, "discovered_app", "scopes", "remediations"]
        read_only_fields = fields

    # The view reads both beside the finding (``scope_rows`` and ``remediations`` in the context):
    # one query each, whatever the number of scopes and revocations.
    @extend_schema_field(ScopeRowSerializer(many=True))
    def get_scopes(self, finding: Finding) -> list[dict[str, Any]]:
        return list(ScopeRowSerializer(self.context.get("scope_rows", []), many=True).data)

    @extend_schema_field(RemediationSerializer(many=True))
    def get_remediations(self, finding: Finding) -> list[dict[str, Any]]:
        return list(RemediationSerializer(self.context.get("remediations", []), many=True).data)


class ConsentSerializer(serializers.ModelSerializer[DiscoveredConsent]):
    person = _username(source="person.username", help_text="The portal user it matched (null: nobody).")
    scopes = serializers.ListField(child=serializers.CharField(), read_only=True)
    grant_ids = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = DiscoveredConsent
        fields = [
            "id",
            "person_key",
            "person_email",
            "person",
            "consent_type",
            "scopes",
            "grant_ids",
            "present",
            "first_seen",
            "last_seen",
            "response",
            "asked_at",
            "respond_by",
            "responded_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "person_key": {"help_text": "The person as the provider names them; * for an admin consent for everyone."}
        }


# --- Actions on a finding ---------------------------------------------------------------------


class FindingClaimInSerializer(StrictInputMixin, serializers.Serializer[dict[str, Any]]):
    """Register the app as an integration owned by ``owner`` (default: you), prefilled from what
    the provider shows; any field given here replaces the prefilled value."""

    owner = serializers.SlugRelatedField(
        slug_field="username", queryset=_PEOPLE, required=False, help_text="Username of its owner; default: you."
    )
    name = serializers.CharField(required=False, max_length=150, validators=[validate_single_line])
    kind = serializers.ChoiceField(choices=IntegrationKind.choices, required=False)
    purpose = serializers.CharField(required=False, max_length=5000)
    vendor = serializers.CharField(required=False, allow_blank=True, max_length=120, validators=[validate_single_line])
    environment = serializers.ChoiceField(choices=Environment.choices, required=False)
    submit = serializers.BooleanField(
        required=False, default=True, help_text="Submit it for approval at once (false: a draft)."
    )


class FindingSanctionInSerializer(StrictInputMixin, serializers.Serializer[dict[str, Any]]):
    """Register an app admin-consented for everyone once, with you (an IAM admin) as its owner;
    any field given here replaces the prefilled value."""

    name = serializers.CharField(required=False, max_length=150, validators=[validate_single_line])
    kind = serializers.ChoiceField(choices=IntegrationKind.choices, required=False)
    purpose = serializers.CharField(required=False, max_length=5000)


class FindingReasonInSerializer(StrictInputMixin, serializers.Serializer[dict[str, Any]]):
    reason = serializers.CharField(max_length=2000, help_text="Why; recorded in the audit trail.")


class FindingRevokeInSerializer(FindingReasonInSerializer):
    consent = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=INT64_MAX,
        help_text="Id of one consent of the app to revoke (default: every consent the provider shows).",
    )


class FindingAssignInSerializer(StrictInputMixin, serializers.Serializer[dict[str, Any]]):
    owner = serializers.SlugRelatedField(
        slug_field="username", queryset=_PEOPLE, help_text="Username of the person who should decide."
    )


# --- Scope mappings ---------------------------------------------------------------------------


class ScopeMappingSerializer(serializers.ModelSerializer[ScopeMapping]):
    scope = serializers.CharField(source="scope.code", read_only=True, help_text="The catalog scope's code.")
    updated_by = _username(source="updated_by.username")

    class Meta:
        model = ScopeMapping
        fields = ["id", "source", "provider_scope", "scope", "updated_by", "updated_at"]
        read_only_fields = fields


class ScopeMappingInSerializer(StrictInputMixin, serializers.Serializer[dict[str, Any]]):
    """Map a provider's scope to the catalog (a mapping for the same source and provider scope is
    replaced)."""

    source = serializers.ChoiceField(choices=Source.choices)  # type: ignore[assignment]  # named like Field.source
    provider_scope = serializers.CharField(
        max_length=300, validators=[validate_single_line], help_text="The scope as the provider names it."
    )
    scope = serializers.CharField(min_length=3, max_length=170, help_text="The catalog scope's code (system:name).")
