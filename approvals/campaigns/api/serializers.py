from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from approvals.campaigns.models import (
    DEFINITION_FIELDS,
    Campaign,
    CampaignDefinition,
    ItemDecision,
    ReviewerRule,
    ReviewItem,
)
from governance.api.input import StrictInputMixin, trimmed_pattern
from governance.api.schema import GROUP_NAMES
from governance.models import User
from governance.roles import ASSIGNABLE_GROUPS
from governance.validators import validate_single_line
from inventory.choices import IntegrationKind, RiskTier, Sensitivity
from inventory.selectors import resource_systems

# The shape of a five-field cron expression (which the service then parses with croniter); DRF
# strips the ends first, so the published pattern allows whitespace around it. A value of this
# shape that croniter still refuses ("61 * * * *") is a 422.
_CRON_FIELD = "[0-9A-Za-z*?,/#-]+"
CRON_PATTERN = trimmed_pattern(f"{_CRON_FIELD}(?: +{_CRON_FIELD}){{4}}", blank=True)


class _Username(serializers.SlugRelatedField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("slug_field", "username")
        kwargs.setdefault("queryset", User.objects.all())
        super().__init__(**kwargs)


@extend_schema_field({"type": "string", "enum": [*GROUP_NAMES, None]})
class _GroupName(serializers.SlugRelatedField):
    """A role or reviewer pool by name (the schema lists them: they are fixed in code)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("slug_field", "name")
        kwargs.setdefault("queryset", Group.objects.filter(name__in=ASSIGNABLE_GROUPS))
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)


class CampaignDefinitionSerializer(StrictInputMixin, serializers.ModelSerializer[CampaignDefinition]):
    # The service refuses the "group" rule without its group; the schema says so too.
    required_when = {"reviewer_group": ("reviewer_rule", (ReviewerRule.GROUP,))}

    owner = _Username()
    reviewer_group = _GroupName()
    fallback_group = _GroupName()
    second_stage_group = _GroupName()
    fallback_user = _Username(required=False, allow_null=True)
    business_owners = _Username(many=True, required=False)
    resource_systems = serializers.SlugRelatedField(
        slug_field="code", queryset=resource_systems(), many=True, required=False
    )
    risk_tiers = serializers.ListField(child=serializers.ChoiceField(choices=RiskTier.choices), required=False)
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=IntegrationKind.choices), required=False)
    vendors = serializers.ListField(
        child=serializers.CharField(max_length=120, validators=[validate_single_line]), required=False
    )
    sensitivities = serializers.ListField(child=serializers.ChoiceField(choices=Sensitivity.choices), required=False)
    reminder_days = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)

    class Meta:
        model = CampaignDefinition
        fields = ["id", *DEFINITION_FIELDS, "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {
            "name": {"validators": [validate_single_line]},
            "duration_days": {"min_value": 1},
            "escalate_days_before": {"min_value": 1},
            "recurrence": {"validators": [validate_single_line, RegexValidator(CRON_PATTERN)]},
        }


class CampaignSerializer(serializers.ModelSerializer[Campaign]):
    owner: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)
    definition_name = serializers.CharField(source="definition.name", read_only=True)
    progress_percent = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "definition",
            "definition_name",
            "owner",
            "status",
            "granularity",
            "default_action",
            "apply_mode",
            "second_stage",
            "reminder_days",
            "escalate_days_before",
            "created_at",
            "launched_at",
            "deadline",
            "closed_at",
            "total_expected",
            "processed",
            "items_total",
            "launch_finished_at",
            "progress_percent",
        ]
        read_only_fields = fields

    def get_progress_percent(self, obj: Campaign) -> int:
        if obj.status in ("active", "closed"):
            return 100
        return int(obj.processed * 100 / obj.total_expected) if obj.total_expected else 0


class CampaignCreateSerializer(StrictInputMixin, serializers.Serializer[Any]):
    definition = serializers.PrimaryKeyRelatedField(queryset=CampaignDefinition.objects.all())
    name = serializers.CharField(required=False, allow_blank=True, max_length=200, validators=[validate_single_line])
    launch = serializers.BooleanField(required=False, default=False, help_text="Launch at once.")


class ReviewItemSerializer(serializers.ModelSerializer[ReviewItem]):
    integration_name = serializers.CharField(source="integration.name", read_only=True)
    scope = serializers.SerializerMethodField()
    reviewer: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    reviewer_group: serializers.SlugRelatedField[Group] = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True
    )
    decided_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    decision = serializers.ChoiceField(
        choices=ItemDecision.choices,
        allow_blank=True,
        read_only=True,
        help_text="certify or revoke; empty while the item is open.",
    )
    grant_ids = serializers.SerializerMethodField()

    class Meta:
        model = ReviewItem
        fields = [
            "id",
            "campaign",
            "integration",
            "integration_name",
            "grant",
            "grant_ids",
            "scope",
            "reviewer",
            "reviewer_group",
            "assigned_reason",
            "critical",
            "status",
            "decision",
            "decided_by",
            "decided_at",
            "comment",
            "by_default",
            "confirmed_at",
            "applied_at",
            "flagged",
            "escalated_at",
        ]
        read_only_fields = fields

    def get_scope(self, obj: ReviewItem) -> str | None:
        return obj.grant.scope.code if obj.grant_id and obj.grant else None

    def get_grant_ids(self, obj: ReviewItem) -> list[int]:
        return obj.covered_grant_ids()


class DecisionInSerializer(StrictInputMixin, serializers.Serializer[Any]):
    # The service refuses a revoke without a comment; the schema says so too.
    required_when = {"comment": ("decision", (ItemDecision.REVOKE,))}

    decision = serializers.ChoiceField(choices=ItemDecision.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)
