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
from governance.validators import validate_single_line
from inventory.choices import (
    AccessLevel,
    Autonomy,
    CredentialType,
    DataClassification,
    Environment,
    GrantStatus,
    IntegrationKind,
    OwnerRole,
    Sensitivity,
    TransferStatus,
)
from inventory.models import Credential, Grant, Integration, OwnershipTransfer, Scope
from inventory.selectors import integrations_for
from inventory.services import INTEGRATION_INPUT_FIELDS


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

    to_user: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = OwnershipTransfer
        fields = ["id", "role", "to_user", "created_at"]
        read_only_fields = fields


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
    risk_factors = RiskFactorSerializer(many=True, read_only=True)
    pending_transfers = serializers.SerializerMethodField(
        help_text="Owner roles proposed to someone who has not answered yet (they change once accepted)."
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


class GrantSerializer(serializers.ModelSerializer[Grant]):
    integration_name = serializers.CharField(source="integration.name", read_only=True)
    scope = serializers.CharField(source="scope.code", read_only=True)
    approvers: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", many=True, read_only=True
    )
    ended_by = serializers.CharField(source="ended_by.username", read_only=True, allow_null=True, default=None)
    active = serializers.SerializerMethodField()

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
        ]
        read_only_fields = fields

    def get_active(self, grant: Grant) -> bool:
        return grant.status == GrantStatus.ACTIVE


class GrantRevokeInSerializer(StrictInputMixin, serializers.Serializer[Any]):
    reason = serializers.CharField(min_length=1, max_length=2000)
