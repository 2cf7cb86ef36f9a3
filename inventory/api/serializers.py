"""API shapes of the inventory (API.md "Integration fields"). Input serializers only parse and
resolve references (people by username, scopes by code, integrations by id); the services
decide and write."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance.api.input import StrictInputMixin
from governance.models import User
from governance.validators import validate_single_line
from inventory.models import (
    AccessLevel,
    Credential,
    CredentialType,
    DataClassification,
    Integration,
    OwnerRole,
    OwnershipTransfer,
    Scope,
    Sensitivity,
    TransferStatus,
)
from inventory.risk import ROTATION_MAX_AGE
from inventory.selectors import integrations_for


class ScopeSerializer(serializers.ModelSerializer[Scope]):
    system = serializers.CharField(source="system.code", read_only=True, help_text="Code of the resource system.")
    sensitivity = serializers.ChoiceField(choices=Sensitivity.choices, read_only=True)
    access = serializers.ChoiceField(choices=AccessLevel.choices, read_only=True)

    class Meta:
        model = Scope
        fields = ["code", "system", "name", "description", "sensitivity", "access", "is_active"]
        read_only_fields = fields


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


class RiskFactorSerializer(serializers.Serializer[dict[str, Any]]):
    code = serializers.CharField()
    points = serializers.IntegerField()
    reason = serializers.CharField()


_USERS = User.objects.filter(is_active=True, is_service_account=False)


class PendingTransferSerializer(serializers.ModelSerializer[OwnershipTransfer]):
    """An owner role waiting for the named person's consent."""

    to_user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = OwnershipTransfer
        fields = ["id", "role", "to_user", "created_at"]
        read_only_fields = fields


class IntegrationSerializer(serializers.ModelSerializer[Integration]):
    """An integration as the API shows it."""

    business_owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    technical_owner = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    backup_owner = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    data_classifications = serializers.ListField(child=serializers.ChoiceField(choices=DataClassification.choices))
    requested_scopes = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)
    credentials = CredentialSerializer(many=True, read_only=True)
    invokes = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    tags = serializers.ListField(child=serializers.CharField())
    risk_factors = RiskFactorSerializer(many=True, read_only=True)
    pending_transfers = serializers.SerializerMethodField(
        help_text="Owner roles proposed to someone who has not answered yet (they change once accepted)."
    )

    class Meta:
        model = Integration
        fields = [
            "id",
            "name",
            "kind",
            "purpose",
            "vendor",
            "environment",
            "business_owner",
            "technical_owner",
            "backup_owner",
            "data_classifications",
            "acts_for_users",
            "autonomy",
            "requested_scopes",
            "workload_identity",
            "credentials",
            "invokes",
            "ticket_ref",
            "tags",
            "status",
            "risk_score",
            "risk_tier",
            "risk_factors",
            "orphaned",
            "pending_transfers",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(PendingTransferSerializer(many=True))
    def get_pending_transfers(self, obj: Integration) -> list[dict[str, Any]]:
        # Prefetched by the selectors (``open_transfers``); read here only when it was not.
        rows = getattr(obj, "open_transfers", None)
        if rows is None:
            rows = obj.transfers.filter(status=TransferStatus.PROPOSED).select_related("to_user").order_by("pk")
        return list(PendingTransferSerializer(rows, many=True).data)


class IntegrationWriteSerializer(StrictInputMixin, serializers.Serializer[dict[str, Any]]):
    """What an owner sends to register (POST) or change (PATCH) an integration."""

    name = serializers.CharField(max_length=150, validators=[validate_single_line])
    kind = serializers.ChoiceField(choices=Integration._meta.get_field("kind").choices)
    purpose = serializers.CharField()
    vendor = serializers.CharField(
        max_length=120,
        required=False,
        allow_blank=True,
        validators=[validate_single_line],
        help_text="Empty for in-house.",
    )
    environment = serializers.ChoiceField(choices=Integration._meta.get_field("environment").choices, required=False)
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
    autonomy = serializers.ChoiceField(choices=Integration._meta.get_field("autonomy").choices, required=False)
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
    credentials = CredentialSerializer(many=True, required=False, max_length=settings.INTEGRATION_MAX_CREDENTIALS)
    # Built by hand to carry the limit (``many=True`` passes no validators to the list).
    invokes = serializers.ManyRelatedField(
        child_relation=serializers.PrimaryKeyRelatedField(queryset=Integration.objects.none()),
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        # Only integrations the caller can see may be named (others look like unknown ids).
        field = self.fields["invokes"]
        field.child_relation.queryset = integrations_for(request.user if request else None)  # type: ignore[attr-defined]


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
    from_user = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    to_user = serializers.SlugRelatedField(slug_field="username", read_only=True)
    proposed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

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


class HistoryEntrySerializer(serializers.Serializer[dict[str, Any]]):
    at = serializers.DateTimeField(help_text="When.")
    who = serializers.CharField(help_text="Username of who made the change (empty: unknown).")
    source = serializers.ChoiceField(choices=[("history", "field history"), ("audit", "audit event")])
    action = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    changes = ChangeSerializer(many=True)


def rotation_status(cred: Credential) -> str:
    """``expired``, ``never_expires``, ``rotation_due`` or ``ok`` — shown next to each credential."""
    now = timezone.now()
    if cred.expires_at and cred.expires_at <= now:
        return "expired"
    last = cred.last_rotated_at or cred.created_at
    if last and now - last > ROTATION_MAX_AGE:
        return "rotation_due"
    if cred.expires_at is None:
        return "never_expires"
    return "ok"
