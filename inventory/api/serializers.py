"""API shapes of the inventory: integrations, their credentials and grants, the scope catalog and
ownership transfers. Input serializers only parse and resolve references (people by username,
scopes by code, integrations by id); the services decide and write."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance.api.input import StrictInputMixin
from governance.models import User
from governance.validators import INT64_MAX, validate_single_line
from inventory.choices import (
    AccessLevel,
    Autonomy,
    CredentialType,
    DataClassification,
    DiscoverySource,
    Environment,
    GrantStatus,
    IdentityStatus,
    IntegrationKind,
    IssuerKind,
    OwnerRole,
    Sensitivity,
    TransferStatus,
)
from inventory.issuer_keys import KeyStatus
from inventory.issuer_keys import status as key_status
from inventory.models import Credential, Grant, Integration, OwnershipTransfer, Scope, TrustedIssuer, WorkloadBinding
from inventory.selectors import binding_of, identity_status_of, integrations_for
from inventory.services import (
    CLAIM_VALUE_MAX_LENGTH,
    EXTERNAL_APP_IDS_MAX,
    INTEGRATION_INPUT_FIELDS,
    NUMBER_LIMITS,
    keys_are_pasted,
)


class ScopeSerializer(serializers.ModelSerializer[Scope]):
    system = serializers.CharField(source="system.code", read_only=True, help_text="Code of the resource system.")
    sensitivity = serializers.ChoiceField(choices=Sensitivity.choices, read_only=True)
    access = serializers.ChoiceField(choices=AccessLevel.choices, read_only=True)

    class Meta:
        model = Scope
        fields = ["code", "system", "name", "description", "sensitivity", "access", "is_active", "jit_eligible"]
        read_only_fields = fields


class ScopeWriteSerializer(StrictInputMixin, serializers.Serializer[dict[str, Any]]):
    """What IAM admins change on a scope (its name and system are part of its code: fixed)."""

    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    sensitivity = serializers.ChoiceField(choices=Sensitivity.choices, required=False)
    access = serializers.ChoiceField(choices=AccessLevel.choices, required=False)
    is_active = serializers.BooleanField(required=False, help_text="false: retired, it cannot be requested.")
    jit_eligible = serializers.BooleanField(
        required=False,
        help_text="An integration that does not hold it may ask for it at run time for one task (a reviewer "
        "decides; the grant ends by itself).",
    )


class CredentialSerializer(serializers.ModelSerializer[Credential]):
    type = serializers.ChoiceField(choices=CredentialType.choices)
    identifier = serializers.CharField(
        max_length=200,
        validators=[validate_single_line],
        help_text="Key id, client id, account or fingerprint — never the secret value.",
    )
    created_at = serializers.DateTimeField(required=False)
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Empty: never expires (a risk factor)."
    )
    last_rotated_at = serializers.DateTimeField(required=False, allow_null=True)

    class Meta:
        model = Credential
        fields = ["type", "identifier", "created_at", "expires_at", "last_rotated_at"]


class ExternalAppIdSerializer(serializers.Serializer[Any]):
    """How an identity provider or SaaS suite names the integration: discovery matches the
    OAuth grants it imports against these."""

    # The API names this field ``source``; the stubs type that name as Field's own attribute.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=DiscoverySource.choices, help_text="The provider."
    )
    app_key = serializers.CharField(
        max_length=200,
        validators=[validate_single_line],
        help_text="The provider's id of the app, exactly as it shows it: Google OAuth client id, Entra "
        "application id, Slack app id, GitHub App id, Okta client id.",
    )


class RiskFactorSerializer(serializers.Serializer[dict[str, Any]]):
    code = serializers.CharField()
    points = serializers.IntegerField()
    reason = serializers.CharField()


_USERS = User.objects.filter(is_active=True, is_service_account=False)


class PendingTransferSerializer(serializers.ModelSerializer[OwnershipTransfer]):
    """An owner role waiting for the named person's consent."""

    to_user: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = OwnershipTransfer
        fields = ["id", "role", "to_user", "created_at"]
        read_only_fields = fields


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "maxLength": CLAIM_VALUE_MAX_LENGTH},
            {"type": "number"},
            {"type": "boolean"},
        ]
    }
)
class ClaimValueField(serializers.JSONField):
    """A required claim's value: a string, a number or a boolean (no list, object or null)."""

    def to_internal_value(self, data: Any) -> Any:
        # Taken as sent (no JSON round trip): the service checks the value rules again.
        if not isinstance(data, (str, int, float)):
            raise serializers.ValidationError("A value is a string, a number or true/false.")
        if isinstance(data, str) and len(data) > CLAIM_VALUE_MAX_LENGTH:
            raise serializers.ValidationError(f"At most {CLAIM_VALUE_MAX_LENGTH} characters.")
        return data


class WorkloadBindingSerializer(serializers.ModelSerializer[WorkloadBinding]):
    """An integration's workload identity, as its tokens must prove it."""

    issuer = serializers.CharField(source="issuer.issuer", read_only=True, help_text="The issuer's exact iss.")
    issuer_id = serializers.IntegerField(read_only=True, help_text="Id of the trusted issuer.")
    required_claims = serializers.DictField(
        child=ClaimValueField(),
        read_only=True,
        help_text="Claim equalities every token must also carry: dotted claim path -> string, number or boolean.",
    )

    class Meta:
        model = WorkloadBinding
        fields = ["issuer", "issuer_id", "subject", "required_claims", "first_verified_at", "last_verified_at"]
        read_only_fields = fields


class WorkloadBindingInSerializer(StrictInputMixin, serializers.Serializer[dict[str, Any]]):
    """The workload identity to bind: the issuer (by its exact iss, or its id: exactly one of the
    two, else a 422), the subject and optional claim equalities."""

    issuer = serializers.CharField(
        required=False, max_length=300, help_text="The trusted issuer's exact iss (or give issuer_id)."
    )
    issuer_id = serializers.IntegerField(
        required=False, min_value=1, max_value=INT64_MAX, help_text="The trusted issuer's id."
    )
    subject = serializers.CharField(
        max_length=300, help_text="The exact sub of its workload tokens (a SPIFFE ID for a SPIFFE issuer)."
    )
    required_claims = serializers.DictField(
        child=ClaimValueField(),
        required=False,
        default=dict,
        help_text="Up to 10 claim equalities: dotted claim path -> string, number or boolean.",
    )


class IntegrationSerializer(serializers.ModelSerializer[Integration]):
    """An integration as the API shows it."""

    business_owner: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    technical_owner: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    backup_owner: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    data_classifications = serializers.ListField(child=serializers.ChoiceField(choices=DataClassification.choices))
    requested_scopes: serializers.SlugRelatedField[Scope] = serializers.SlugRelatedField(
        slug_field="code", many=True, read_only=True
    )
    credentials = CredentialSerializer(many=True, read_only=True)
    invokes: serializers.PrimaryKeyRelatedField[Integration] = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True
    )
    tags = serializers.ListField(child=serializers.CharField())
    external_app_ids = ExternalAppIdSerializer(
        many=True,
        read_only=True,
        help_text="How the identity providers name it (source and app key), sorted; discovery matches "
        "the OAuth grants it finds against these.",
    )
    risk_factors = RiskFactorSerializer(many=True, read_only=True)
    pending_transfers = serializers.SerializerMethodField(
        help_text="Owner roles proposed to someone who has not answered yet (they change once accepted)."
    )
    identity_status = serializers.SerializerMethodField(
        help_text="proven: bound and proved by an accepted token; bound: never proved yet; declared: only the "
        "free-text workload_identity; none. Only a bound integration can obtain tokens."
    )
    workload_binding = serializers.SerializerMethodField(
        help_text="The workload identity its tokens must prove (null: not bound). "
        "Set with PUT /integrations/{id}/workload-binding/."
    )

    class Meta:
        model = Integration
        fields = [
            "id",
            *INTEGRATION_INPUT_FIELDS,
            "status",
            "risk_score",
            "risk_tier",
            "risk_factors",
            "orphaned",
            "pending_transfers",
            "identity_status",
            "workload_binding",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=IdentityStatus.choices))
    def get_identity_status(self, obj: Integration) -> str:
        return str(identity_status_of(obj))

    @extend_schema_field(WorkloadBindingSerializer(allow_null=True))
    def get_workload_binding(self, obj: Integration) -> dict[str, Any] | None:
        # Joined by the selectors (no query per row).
        binding = binding_of(obj)
        return dict(WorkloadBindingSerializer(binding).data) if binding is not None else None

    @extend_schema_field(PendingTransferSerializer(many=True))
    def get_pending_transfers(self, obj: Integration) -> list[dict[str, Any]]:
        # Prefetched by the selectors (``open_transfers``); read here only when it was not.
        rows = getattr(obj, "open_transfers", None)
        if rows is None:
            rows = obj.transfers.filter(status=TransferStatus.PROPOSED).select_related("to_user").order_by("pk")
        return list(PendingTransferSerializer(rows, many=True).data)


class VisibleIntegrationField(serializers.PrimaryKeyRelatedField[Integration]):
    """An integration by id, among those the caller may see: any other id is refused like an
    unknown one. (The empty ``queryset`` only names the model, for the schema.)"""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(queryset=Integration.objects.none(), **kwargs)

    def get_queryset(self) -> QuerySet[Integration]:
        request = self.context.get("request")
        return integrations_for(request.user if request else None)


class IntegrationWriteSerializer(StrictInputMixin, serializers.Serializer[dict[str, Any]]):
    """What an owner sends to register (POST) or change (PATCH) an integration."""

    name = serializers.CharField(max_length=150, validators=[validate_single_line])
    kind = serializers.ChoiceField(choices=IntegrationKind.choices)
    purpose = serializers.CharField()
    vendor = serializers.CharField(
        max_length=120,
        required=False,
        allow_blank=True,
        validators=[validate_single_line],
        help_text="Empty for in-house.",
    )
    environment = serializers.ChoiceField(choices=Environment.choices, required=False)
    business_owner = serializers.SlugRelatedField(
        slug_field="username", queryset=_USERS, required=False, help_text="Username; default: you."
    )
    technical_owner = serializers.SlugRelatedField(
        slug_field="username", queryset=_USERS, required=False, allow_null=True
    )
    backup_owner = serializers.SlugRelatedField(slug_field="username", queryset=_USERS, required=False, allow_null=True)
    data_classifications = serializers.ListField(
        child=serializers.ChoiceField(choices=DataClassification.choices), required=False
    )
    acts_for_users = serializers.BooleanField(required=False)
    autonomy = serializers.ChoiceField(choices=Autonomy.choices, required=False)
    requested_scopes = serializers.SlugRelatedField(
        slug_field="code",
        many=True,
        queryset=Scope.objects.filter(is_active=True),
        required=False,
        help_text="Scope codes.",
    )
    workload_identity = serializers.CharField(
        max_length=300, required=False, allow_blank=True, validators=[validate_single_line]
    )
    credentials: serializers.ListSerializer[Credential] = serializers.ListSerializer(
        child=CredentialSerializer(), required=False, max_length=settings.INTEGRATION_MAX_CREDENTIALS
    )
    # Built by hand to carry the limit (``many=True`` passes no validators to the list).
    invokes = serializers.ManyRelatedField(
        child_relation=VisibleIntegrationField(),
        required=False,
        validators=[MaxLengthValidator(settings.INTEGRATION_MAX_INVOKES)],
        help_text="Ids of integrations it calls.",
    )
    ticket_ref = serializers.CharField(
        max_length=100, required=False, allow_blank=True, validators=[validate_single_line]
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=50, validators=[validate_single_line]),
        required=False,
        max_length=settings.INTEGRATION_MAX_TAGS,
    )
    external_app_ids: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=ExternalAppIdSerializer(),
        required=False,
        max_length=EXTERNAL_APP_IDS_MAX,
        help_text="Replaces the recorded ones (send [] to remove them all). A source and app key "
        "another integration holds is a 422.",
    )


class IntegrationCreateSerializer(IntegrationWriteSerializer):
    submit = serializers.BooleanField(
        required=False, default=False, help_text="Submit for approval at once (else a draft)."
    )


class ReasonSerializer(StrictInputMixin, serializers.Serializer[dict[str, Any]]):
    reason = serializers.CharField(help_text="Why; recorded in the audit trail.")


class OptionalReasonSerializer(StrictInputMixin, serializers.Serializer[dict[str, Any]]):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class TransferProposeSerializer(StrictInputMixin, serializers.Serializer[dict[str, Any]]):
    to_user = serializers.SlugRelatedField(
        slug_field="username", queryset=_USERS, help_text="Username of the proposed owner."
    )
    role = serializers.ChoiceField(choices=OwnerRole.choices, default=OwnerRole.BUSINESS)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class OwnershipTransferSerializer(serializers.ModelSerializer[OwnershipTransfer]):
    from_user: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    to_user: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)
    proposed_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = OwnershipTransfer
        fields = [
            "id",
            "integration",
            "role",
            "from_user",
            "to_user",
            "proposed_by",
            "reason",
            "status",
            "created_at",
            "decided_at",
        ]
        read_only_fields = fields


class ChangeSerializer(serializers.Serializer[dict[str, Any]]):
    field = serializers.CharField()
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


class HistoryEntrySerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField(help_text="When.")
    who = serializers.CharField(help_text="Username of who made the change (empty: unknown).")
    # The API names this field ``source``; the stubs type that name as Field's own attribute.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=[("history", "field history"), ("audit", "audit event")]
    )
    action = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    changes = ChangeSerializer(many=True)


class HistoryPageSerializer(serializers.Serializer[Any]):
    """A page of an integration's history, newest first, cut on time rather than counted."""

    next = serializers.URLField(allow_null=True, help_text="The older changes (null: none are left).")
    previous = serializers.URLField(allow_null=True, help_text="The newer changes (null: this is the newest page).")
    results = HistoryEntrySerializer(many=True)


class GrantSerializer(serializers.ModelSerializer[Grant]):
    integration_name = serializers.CharField(source="integration.name", read_only=True)
    scope = serializers.CharField(source="scope.code", read_only=True)
    approvers: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", many=True, read_only=True
    )
    ended_by = serializers.CharField(source="ended_by.username", read_only=True, allow_null=True, default=None)
    active = serializers.SerializerMethodField()
    last_used_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When an access token carrying its scope was last issued."
    )
    uses_last_30_days = serializers.IntegerField(
        read_only=True, help_text="Access tokens carrying its scope issued in the last 30 days (UTC days)."
    )

    class Meta:
        model = Grant
        fields = [
            "id",
            "integration",
            "integration_name",
            "scope",
            "status",
            "active",
            "source_type",
            "source_id",
            "approvers",
            "granted_at",
            "expires_at",
            "ended_at",
            "ended_by",
            "end_reason",
            "last_used_at",
            "uses_last_30_days",
        ]
        read_only_fields = fields

    def get_active(self, grant: Grant) -> bool:
        return grant.status == GrantStatus.ACTIVE


class GrantRevokeInSerializer(StrictInputMixin, serializers.Serializer[Any]):
    reason = serializers.CharField(min_length=1, max_length=2000)


# --- Trusted workload issuers -----------------------------------------------------------------


class IssuerKeySerializer(serializers.Serializer[dict[str, str]]):
    kid = serializers.CharField(help_text="The key id (empty when the key names none).")
    algorithm = serializers.CharField()


class TrustedIssuerSerializer(serializers.ModelSerializer[TrustedIssuer]):
    """A trusted workload issuer with the state of its keys (as last stored)."""

    kind = serializers.ChoiceField(choices=IssuerKind.choices, read_only=True)
    # Plain strings: empty when not set (a "uri" format would refuse the empty string).
    discovery_url = serializers.CharField(
        read_only=True, help_text="OpenID Connect: the discovery document (empty: <issuer>/.well-known/...)."
    )
    jwks_uri = serializers.CharField(
        read_only=True, help_text="Where the keys are: from discovery (OpenID Connect), the bundle URL (SPIFFE)."
    )
    allowed_algorithms = serializers.ListField(child=serializers.CharField(), read_only=True)
    jwks = serializers.SerializerMethodField(
        help_text="The pasted JWKS (static, SPIFFE without a bundle URL); else null."
    )
    keys = serializers.SerializerMethodField(help_text="Ids and algorithms of the keys held.")
    keys_stale = serializers.SerializerMethodField(
        help_text="True: fetched keys too old to be trusted (tokens refused)."
    )
    bindings_count = serializers.IntegerField(read_only=True, help_text="Integrations bound to it.")

    class Meta:
        model = TrustedIssuer
        fields = [
            "id",
            "name",
            "kind",
            "issuer",
            "discovery_url",
            "jwks_uri",
            "jwks",
            "allowed_algorithms",
            "audience",
            "max_token_age_seconds",
            "clock_skew_seconds",
            "key_cache_seconds",
            "is_active",
            "keys",
            "keys_fetched_at",
            "keys_error",
            "keys_error_at",
            "keys_stale",
            "bindings_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def _status(self, issuer: TrustedIssuer) -> KeyStatus:
        return key_status(issuer)

    @extend_schema_field({"type": "object", "nullable": True, "additionalProperties": True})
    def get_jwks(self, issuer: TrustedIssuer) -> dict[str, Any] | None:
        return issuer.jwks if keys_are_pasted(issuer) else None

    @extend_schema_field(IssuerKeySerializer(many=True))
    def get_keys(self, issuer: TrustedIssuer) -> list[dict[str, str]]:
        return self._status(issuer).keys

    def get_keys_stale(self, issuer: TrustedIssuer) -> bool:
        return self._status(issuer).stale


def _seconds(field: str, help_text: str) -> serializers.IntegerField:
    low, high = NUMBER_LIMITS[field]
    return serializers.IntegerField(required=False, min_value=low, max_value=high, help_text=help_text)


class TrustedIssuerChangeSerializer(StrictInputMixin, serializers.Serializer[dict[str, Any]]):
    """A change of an issuer's configuration (any subset); the kind is fixed."""

    name = serializers.CharField(required=False, max_length=120, validators=[validate_single_line])
    issuer = serializers.CharField(
        required=False,
        max_length=300,
        validators=[validate_single_line],
        help_text="The exact iss of its tokens: an https URL (OpenID Connect), spiffe://<trust domain> (SPIFFE).",
    )
    discovery_url = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        validators=[validate_single_line],
        help_text="OpenID Connect; empty: <issuer>/.well-known/...",
    )
    jwks_uri = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        validators=[validate_single_line],
        help_text="SPIFFE: the JWT bundle URL.",
    )
    jwks = serializers.JSONField(
        required=False, allow_null=True, help_text="A pasted JWKS of public keys (static; SPIFFE without a bundle URL)."
    )
    allowed_algorithms = serializers.ListField(
        child=serializers.CharField(max_length=16),
        required=False,
        min_length=1,
        max_length=10,
        help_text="Among RS256/384/512, ES256/384/512, PS256/384/512, EdDSA (not for SPIFFE); none and HMAC are refused.",
    )
    audience = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=300,
        validators=[validate_single_line],
        help_text="Empty: the portal's token endpoint URL.",
    )
    max_token_age_seconds = _seconds("max_token_age_seconds", "Tokens issued longer ago are refused.")
    clock_skew_seconds = _seconds("clock_skew_seconds", "At most 60.")
    key_cache_seconds = _seconds("key_cache_seconds", "How long fetched keys are used before a refetch.")
    is_active = serializers.BooleanField(
        required=False, help_text="false: every token it issues is refused (allowed while integrations are bound)."
    )


class TrustedIssuerCreateSerializer(TrustedIssuerChangeSerializer):
    """A new trusted issuer (active at once)."""

    name = serializers.CharField(max_length=120, validators=[validate_single_line])
    kind = serializers.ChoiceField(choices=IssuerKind.choices, help_text="Fixed once created.")
    issuer = serializers.CharField(
        max_length=300,
        validators=[validate_single_line],
        help_text="The exact iss of its tokens: an https URL (OpenID Connect), spiffe://<trust domain> (SPIFFE).",
    )
    is_active = None  # type: ignore[assignment]  # a new issuer is active
