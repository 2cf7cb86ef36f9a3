from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from approvals.models import AccessRequest, Decision, DecisionKind, RequestStep
from governance.api.input import StrictInputMixin

if TYPE_CHECKING:
    from inventory.models import Scope


class AccessRequestDecisionSerializer(serializers.ModelSerializer[Decision]):
    reviewer = serializers.CharField(source="reviewer.username", read_only=True, help_text="Who decided.")
    reviewer_name = serializers.CharField(source="reviewer.label", read_only=True)
    on_behalf_of = serializers.CharField(
        source="on_behalf_of.username",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="The reviewer a delegate decided for while they were away (null: the reviewer decided).",
    )
    approved_scopes: serializers.SlugRelatedField[Scope] = serializers.SlugRelatedField(
        slug_field="code", many=True, read_only=True
    )
    step = serializers.CharField(source="step.name", read_only=True)

    class Meta:
        model = Decision
        fields = [
            "id",
            "step",
            "reviewer",
            "reviewer_name",
            "on_behalf_of",
            "decision",
            "comment",
            "approved_scopes",
            "expires_at",
            "created_at",
        ]
        read_only_fields = fields


class AccessRequestStepSerializer(serializers.ModelSerializer[RequestStep]):
    reviewers = serializers.SerializerMethodField(help_text="Usernames of the people who may decide this step.")
    decisions = AccessRequestDecisionSerializer(many=True, read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = RequestStep
        fields = [
            "id",
            "round",
            "order",
            "name",
            "status",
            "rule",
            "quorum",
            "sla_hours",
            "sla_minutes",
            "due_at",
            "escalated_at",
            "decided_at",
            "decided_by",
            "reviewers",
            "decisions",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_reviewers(self, step: RequestStep) -> list[str]:
        # An assignment an IAM admin moved to someone else is no longer theirs to decide.
        return [a.user.username for a in step.assignments.all() if a.reassigned_at is None]


class AccessRequestSerializer(serializers.ModelSerializer[AccessRequest]):
    # A change request (type policy_change) is about no integration: both are null, and its
    # subject_label / subject_url say what it changes.
    integration_name = serializers.CharField(source="integration.name", read_only=True, allow_null=True, default=None)
    requester = serializers.CharField(source="requester.username", read_only=True)
    requested_scopes: serializers.SlugRelatedField[Scope] = serializers.SlugRelatedField(
        slug_field="code", many=True, read_only=True
    )

    class Meta:
        model = AccessRequest
        fields = [
            "id",
            "type",
            "status",
            "integration",
            "integration_name",
            "requester",
            "requested_scopes",
            "ticket_ref",
            "justification",
            "risk_tier",
            "round",
            "created_at",
            "updated_at",
            "closed_at",
            "outcome_reason",
            "subject_label",
            "subject_url",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "integration": {"help_text": "The integration's id; null for a change request (a policy change)."},
            "subject_label": {"help_text": "What a change request is about; empty for a request about an integration."},
            "subject_url": {"help_text": "The portal path of what a change request changes; empty otherwise."},
        }


class AccessRequestDetailSerializer(AccessRequestSerializer):
    steps = AccessRequestStepSerializer(many=True, read_only=True)

    class Meta(AccessRequestSerializer.Meta):
        fields = [*AccessRequestSerializer.Meta.fields, "steps"]
        read_only_fields = fields


class AccessRequestDecisionInSerializer(StrictInputMixin, serializers.Serializer[Any]):
    # The service refuses a reject or request_changes without a comment; the schema says so too.
    required_when = {"comment": ("decision", (DecisionKind.REJECT, DecisionKind.REQUEST_CHANGES))}

    decision = serializers.ChoiceField(choices=DecisionKind.choices)
    comment = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=5000,
        help_text="Required to reject or to request changes.",
    )
    approved_scopes = serializers.ListField(
        child=serializers.CharField(min_length=3, max_length=170),
        required=False,
        allow_empty=False,
        min_length=1,
        help_text="Scope codes to approve (a subset of the requested ones); default all.",
    )
    expires_at = serializers.DateTimeField(required=False, help_text="An earlier expiry than the tier's default.")
    step = serializers.IntegerField(
        required=False, min_value=1, help_text="The step id the caller decides (default: the current one)."
    )


class AccessRequestWithdrawInSerializer(StrictInputMixin, serializers.Serializer[Any]):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
