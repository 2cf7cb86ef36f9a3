"""Recertification campaigns: definitions kept by IAM admins, campaign runs made from them, and
the review items a run assigns to reviewers.

State changes go through ``approvals.campaigns.services``; nothing here saves a status by itself.

Campaign:   draft -> launching -> active -> closed   (draft -> cancelled)
ReviewItem: open -> certified | revoked                   (a reviewer's decision)
            open -> awaiting_confirmation -> certified | revoked   (second stage on critical keeps)
            open | awaiting_confirmation -> revoked | kept_flagged | (reassigned, still open)
                                                           (the default action at the deadline)
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from inventory.models import Grant, Integration, ResourceSystem


class ReviewerRule(models.TextChoices):
    BUSINESS_OWNER = "business_owner", "The integration's business owner"
    TECHNICAL_OWNER = "technical_owner", "The integration's technical owner"
    OWNER_MANAGER = "owner_manager", "The business owner's manager"
    SYSTEM_OWNER = "system_owner", "The resource system's owner"
    GROUP = "group", "A named group"


class Granularity(models.TextChoices):
    GRANT = "grant", "One item per grant"
    INTEGRATION = "integration", "One item per integration"


class SecondStage(models.TextChoices):
    NONE = "none", "None"
    CRITICAL_KEEPS = "critical_keeps", "Confirm every keep on critical items"


class DefaultAction(models.TextChoices):
    REVOKE = "revoke", "Revoke"
    KEEP_FLAG = "keep_flag", "Keep and flag"
    ESCALATE = "escalate", "Escalate (then revoke after the grace period)"


class ApplyMode(models.TextChoices):
    IMMEDIATE = "immediate", "At once"
    AT_CLOSE = "at_close", "At the close of the campaign"


# The fields a definition's editor sets, in the order the API shows them; the many-to-many ones
# are set after the row is saved.
DEFINITION_FIELDS: tuple[str, ...] = (
    "name",
    "description",
    "owner",
    "is_active",
    "risk_tiers",
    "kinds",
    "vendors",
    "sensitivities",
    "resource_systems",
    "business_owners",
    "not_reviewed_days",
    "reviewer_rule",
    "reviewer_group",
    "fallback_group",
    "fallback_user",
    "forbid_self_review",
    "granularity",
    "second_stage",
    "second_stage_group",
    "duration_days",
    "default_action",
    "escalation_grace_days",
    "apply_mode",
    "reminder_days",
    "escalate_days_before",
    "recurrence",
)
DEFINITION_M2M_FIELDS: tuple[str, ...] = ("resource_systems", "business_owners")


class CampaignDefinition(models.Model):
    """What a recertification covers, who reviews it and what happens to what nobody decides.

    Changed only through ``services.definition_save``, which also keeps its django-q2 schedule
    (named ``campaign-definition-<id>``) in step with ``recurrence``.
    """

    name = models.CharField(max_length=150, unique=True)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="owned_campaign_definitions",
        help_text="Accountable for the campaigns run from this definition.",
    )
    is_active = models.BooleanField(default=True)

    # Selection: empty lists mean "any"; all empty = every active grant.
    risk_tiers = models.JSONField(default=list, blank=True)
    kinds = models.JSONField(default=list, blank=True)
    vendors = models.JSONField(default=list, blank=True)
    sensitivities = models.JSONField(default=list, blank=True)
    resource_systems = models.ManyToManyField(ResourceSystem, blank=True, related_name="+")
    business_owners = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    not_reviewed_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Only integrations with no decided review item in this many days."
    )

    reviewer_rule = models.CharField(max_length=20, choices=ReviewerRule.choices, default=ReviewerRule.BUSINESS_OWNER)
    reviewer_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    fallback_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    fallback_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    forbid_self_review = models.BooleanField(
        default=True, help_text="An integration's only owner never reviews it alone: the fallback does."
    )
    granularity = models.CharField(max_length=12, choices=Granularity.choices, default=Granularity.GRANT)
    second_stage = models.CharField(max_length=20, choices=SecondStage.choices, default=SecondStage.NONE)
    second_stage_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    duration_days = models.PositiveIntegerField(default=14)
    default_action = models.CharField(max_length=12, choices=DefaultAction.choices, default=DefaultAction.REVOKE)
    escalation_grace_days = models.PositiveIntegerField(default=7)
    apply_mode = models.CharField(max_length=12, choices=ApplyMode.choices, default=ApplyMode.IMMEDIATE)
    reminder_days = models.JSONField(default=list, blank=True, help_text="Days before the deadline, e.g. [7, 1].")
    escalate_days_before = models.PositiveIntegerField(
        null=True, blank=True, help_text="Days before the deadline at which undecided reviewers are escalated."
    )
    recurrence = models.CharField(max_length=100, blank=True, help_text="Cron expression (UTC), e.g. 0 6 1 1,4,7,10 *")

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords(m2m_fields=[resource_systems, business_owners], excluded_fields=["updated_at"])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def schedule_name(self) -> str:
        return f"campaign-definition-{self.pk}"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    LAUNCHING = "launching", "Launching"
    ACTIVE = "active", "Running"
    CLOSED = "closed", "Closed"
    CANCELLED = "cancelled", "Cancelled"


# The allowed moves of Campaign.status, checked under lock by
# ``services.transitions.campaign_transition`` at every change. A launch that resumes after an
# interruption stays "launching": that is no move.
CAMPAIGN_TRANSITIONS: dict[str, tuple[str, ...]] = {
    CampaignStatus.DRAFT: (CampaignStatus.LAUNCHING, CampaignStatus.CANCELLED),
    CampaignStatus.LAUNCHING: (CampaignStatus.ACTIVE,),
    CampaignStatus.ACTIVE: (CampaignStatus.CLOSED,),
    CampaignStatus.CLOSED: (),
    CampaignStatus.CANCELLED: (),
}


class Campaign(models.Model):
    """One run of a definition. The definition's behaviour is copied at creation so that editing
    the definition never changes a running campaign. ``cursor`` is the last grant (or
    integration) id turned into items: an interrupted launch resumes after it."""

    definition = models.ForeignKey(CampaignDefinition, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_campaigns")
    status = models.CharField(
        max_length=12, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT, db_index=True
    )
    run_key = models.CharField(
        max_length=80, blank=True, help_text="Scheduled slot that made this run (unique per definition)."
    )

    granularity = models.CharField(max_length=12, choices=Granularity.choices)
    default_action = models.CharField(max_length=12, choices=DefaultAction.choices)
    apply_mode = models.CharField(max_length=12, choices=ApplyMode.choices)
    second_stage = models.CharField(max_length=20, choices=SecondStage.choices)
    reminder_days = models.JSONField(default=list, blank=True)
    escalate_days_before = models.PositiveIntegerField(null=True, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    launched_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    # Launch progress (the page polls these while the worker runs).
    total_expected = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(default=0)
    items_total = models.PositiveIntegerField(default=0)
    launch_finished_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["processed", "cursor", "items_total", "total_expected"])

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["definition", "run_key"], condition=~models.Q(run_key=""), name="campaign_one_run_per_slot"
            )
        ]

    def __str__(self) -> str:
        return self.name


class ItemStatus(models.TextChoices):
    OPEN = "open", "Open"
    AWAITING_CONFIRMATION = "awaiting_confirmation", "Awaiting confirmation"
    CERTIFIED = "certified", "Certified"
    REVOKED = "revoked", "Revoked"
    KEPT_FLAGGED = "kept_flagged", "Kept and flagged"


UNDECIDED = (ItemStatus.OPEN, ItemStatus.AWAITING_CONFIRMATION)


class ItemDecision(models.TextChoices):
    """What a reviewer (or the default action) decided about a review item."""

    CERTIFY = "certify", "Certify (keep)"
    REVOKE = "revoke", "Revoke"


class ReviewItem(models.Model):
    """One thing to keep or let go: a grant, or (per-integration granularity) every selected
    grant of an integration (``grant_ids``). Assigned to a person or to a group."""

    # Indexes are kept to what the queries use (a launch writes 100k rows; every index costs):
    # the composite indexes and unique constraints below lead with campaign, reviewer and
    # integration, so those foreign keys need no index of their own. No query reads items by
    # grant alone (grants are ended, never deleted; within a campaign the unique constraint
    # serves), so grant has none. Items assigned to a group are indexed by it; those assigned
    # to a person (most of them) add no entry there.
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items", db_index=False)
    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="+", db_index=False)
    grant = models.ForeignKey(
        Grant, null=True, blank=True, on_delete=models.PROTECT, related_name="review_items", db_index=False
    )
    grant_ids = models.JSONField(default=list, blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="review_items",
        db_index=False,
    )
    reviewer_group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    assigned_reason = models.CharField(max_length=200, blank=True)
    critical = models.BooleanField(default=False)

    status = models.CharField(max_length=24, choices=ItemStatus.choices, default=ItemStatus.OPEN)
    decision = models.CharField(max_length=10, choices=ItemDecision.choices, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    by_default = models.BooleanField(default=False, help_text="Decided by the default action at the deadline.")
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True, help_text="When a revocation took effect.")
    flagged = models.BooleanField(default=False)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["integration_id", "id"]
        indexes = [
            models.Index(fields=["campaign", "status"]),
            # The campaign last: a reviewer's open items per campaign (their panels, the header's
            # count on every page) are read from this index alone.
            models.Index(fields=["reviewer", "status", "campaign"], name="review_item_reviewer_open"),
            models.Index(fields=["integration", "decided_at"]),
            models.Index(
                fields=["reviewer_group"], condition=models.Q(reviewer_group__isnull=False), name="review_item_by_group"
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "grant"], name="review_item_one_per_grant"),
            models.UniqueConstraint(
                fields=["campaign", "integration"],
                condition=models.Q(grant__isnull=True),
                name="review_item_one_per_integration",
            ),
        ]

    def __str__(self) -> str:
        return f"Review #{self.pk} {self.integration_id}/{self.grant_id}"

    def covered_grant_ids(self) -> list[int]:
        return [self.grant_id] if self.grant_id else list(self.grant_ids)
