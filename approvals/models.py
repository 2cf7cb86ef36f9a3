"""Every decision about access: access requests, the workflows that decide them, the step
instances of each round, the reviewers assigned to a step and the decisions they make.

State changes go through ``approvals.services``; nothing here changes a status by itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone
from guardian.models import UserObjectPermissionBase
from simple_history.models import HistoricalRecords

from inventory.choices import RiskTier
from inventory.models import Integration, Scope

if TYPE_CHECKING:
    from governance.models import User


class RequestType(models.TextChoices):
    REGISTRATION = "registration", "New registration"
    EXPANSION = "expansion", "Scope expansion"
    RENEWAL = "renewal", "Renewal"
    RE_REVIEW = "re_review", "Re-review (risk raised)"
    JIT_ELEVATION = "jit_elevation", "Just-in-time elevation"
    # A change that is not about an integration (a runtime policy version to enforce or roll
    # back): decided by the same workflow machinery, applied by the handler its app registers
    # in ``approvals.extensions``.
    POLICY_CHANGE = "policy_change", "Policy change"


# Request types about no integration: they have none, ask for no scope, and their outcome is
# applied by the handler registered for the type (``approvals.extensions``).
CHANGE_TYPES: frozenset[str] = frozenset({RequestType.POLICY_CHANGE})
# Request types that run only their own workflow, never the registration's: an elevation is
# decided in minutes, a policy change by the IAM admins.
OWN_WORKFLOW_TYPES: frozenset[str] = frozenset({RequestType.JIT_ELEVATION, RequestType.POLICY_CHANGE})


class RequestStatus(models.TextChoices):
    IN_REVIEW = "in_review", "In review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATUSES = (RequestStatus.IN_REVIEW, RequestStatus.CHANGES_REQUESTED)
# Allowed moves of AccessRequest.status (the request services check them under lock).
REQUEST_TRANSITIONS: dict[str, frozenset[str]] = {
    RequestStatus.IN_REVIEW: frozenset(
        {
            RequestStatus.APPROVED,
            RequestStatus.REJECTED,
            RequestStatus.CHANGES_REQUESTED,
            RequestStatus.WITHDRAWN,
            RequestStatus.CANCELLED,
        }
    ),
    RequestStatus.CHANGES_REQUESTED: frozenset(
        {RequestStatus.IN_REVIEW, RequestStatus.WITHDRAWN, RequestStatus.CANCELLED}
    ),
    RequestStatus.APPROVED: frozenset(),
    RequestStatus.REJECTED: frozenset(),
    RequestStatus.WITHDRAWN: frozenset(),
    RequestStatus.CANCELLED: frozenset(),
}


def sla_duration(*, hours: int, minutes: int | None) -> timedelta:
    """A step's SLA: its minutes when set (steps decided within the hour, such as just-in-time
    elevations), its hours otherwise."""
    return timedelta(minutes=minutes) if minutes else timedelta(hours=hours)


def sla_text(*, hours: int, minutes: int | None) -> str:
    """The SLA as people read it: "30 minutes", "24 hours"."""
    if minutes:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{hours} hour{'s' if hours != 1 else ''}"


class PoolKind(models.TextChoices):
    GROUP = "group", "A group"
    USERS = "users", "Named people"
    RESOURCE_OWNERS = "resource_owners", "Owners of the requested scopes' systems"
    MANAGER = "manager", "The requester's manager"


class Rule(models.TextChoices):
    ANY = "any", "Any one reviewer"
    ALL = "all", "All reviewers"
    QUORUM = "quorum", "A quorum of N reviewers"


class Workflow(models.Model):
    """The ordered steps a request of ``request_type`` for an integration of ``risk_tier`` runs
    through. Configured by IAM admins in the portal; one active workflow per (type, tier)."""

    name = models.CharField(max_length=120)
    request_type = models.CharField(max_length=20, choices=RequestType.choices)
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices)
    description = models.TextField(blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["request_type", "risk_tier"]
        constraints = [models.UniqueConstraint(fields=["request_type", "risk_tier"], name="workflow_one_per_type_tier")]

    def __str__(self) -> str:
        return self.name


class WorkflowStep(models.Model):
    """One step of a workflow: who decides (the pool), how many must agree (the rule), how fast
    (SLA) and who takes over when the SLA passes (escalation). ``only_for_tiers`` skips the step
    for other risk tiers (empty: always runs)."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField(default=1)
    name = models.CharField(max_length=120)
    pool_kind = models.CharField(max_length=20, choices=PoolKind.choices, default=PoolKind.GROUP)
    pool_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    pool_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    rule = models.CharField(max_length=10, choices=Rule.choices, default=Rule.ANY)
    quorum = models.PositiveSmallIntegerField(default=1, help_text="Approvals needed when the rule is a quorum.")
    sla_hours = models.PositiveIntegerField(default=48)
    sla_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="When set, the SLA in minutes instead of the hours (for decisions due fast)."
    )
    escalation_group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="Empty: the IAM admins."
    )
    escalation_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    only_for_tiers = models.JSONField(
        default=list, blank=True, help_text="Run only for these risk tiers; empty: always."
    )

    history = HistoricalRecords(m2m_fields=[pool_users])
    # Set before save(): django-simple-history records this person as the change's author.
    _history_user: User

    class Meta:
        ordering = ["workflow_id", "order", "id"]

    def __str__(self) -> str:
        return f"{self.workflow}: {self.order}. {self.name}"

    @property
    def sla(self) -> timedelta:
        return sla_duration(hours=self.sla_hours, minutes=self.sla_minutes)

    @property
    def sla_label(self) -> str:
        return sla_text(hours=self.sla_hours, minutes=self.sla_minutes)


# A workflow step's own columns, in the order the step form shows them: what the services save
# and audit (the named people of a "users" pool are a many-to-many set beside them).
WORKFLOW_STEP_FIELDS = (
    "order",
    "name",
    "pool_kind",
    "pool_group",
    "rule",
    "quorum",
    "sla_hours",
    "sla_minutes",
    "escalation_group",
    "escalation_user",
    "only_for_tiers",
)


class GrantExpiryPolicy(models.Model):
    """Default lifetime of a grant by the integration's risk tier (configurable by IAM admins)."""

    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, unique=True)
    days = models.PositiveIntegerField()

    history = HistoricalRecords()

    class Meta:
        ordering = ["days"]

    def __str__(self) -> str:
        return f"{self.risk_tier}: {self.days} days"


MAX_EXPIRY_DAYS = 3650  # the longest default lifetime an IAM admin may set
DEFAULT_EXPIRY_DAYS: dict[str, int] = {
    RiskTier.CRITICAL: 30,
    RiskTier.HIGH: 90,
    RiskTier.MEDIUM: 180,
    RiskTier.LOW: 365,
}


class AccessRequest(models.Model):
    """A change of access to decide. ``type`` and ``integration`` never change after submission.
    Each resubmission after "changes requested" is a new ``round`` of the same request: its steps
    and decisions of earlier rounds stay, as evidence.

    A request of a change type (``CHANGE_TYPES``: a policy change) is about no integration: it
    names what it changes in ``subject_label``/``subject_url``, carries what its handler needs
    in ``payload``, asks for no scope, and keeps out of its decision, besides the requester, the
    people in ``excluded_reviewer_ids`` (say, the authors of the policy version)."""

    type = models.CharField(max_length=20, choices=RequestType.choices)
    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.PROTECT, related_name="access_requests"
    )
    status = models.CharField(max_length=20, choices=RequestStatus.choices, default=RequestStatus.IN_REVIEW)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests")
    requested_scopes = models.ManyToManyField(Scope, related_name="access_requests")
    ticket_ref = models.CharField(max_length=100, blank=True, db_index=True)
    justification = models.TextField(blank=True)
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, help_text="The tier when the round started.")
    workflow = models.ForeignKey(Workflow, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    round = models.PositiveSmallIntegerField(default=1)
    # Indexed with the id as tie-break (``accessrequest_created_id``), which serves every read by time.
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    outcome_reason = models.TextField(blank=True)
    subject_label = models.CharField(
        max_length=200, blank=True, help_text="What a change request is about (e.g. a policy version and its title)."
    )
    subject_url = models.CharField(
        max_length=300, blank=True, help_text="The portal page (a path) of what a change request changes."
    )
    # One open change request per type and key: a unique index holds it whoever opens one.
    subject_key = models.CharField(
        max_length=100, blank=True, help_text="What a change request is about, as a key (a policy version's id)."
    )
    payload = models.JSONField(default=dict, blank=True, help_text="What the change's handler needs to apply it.")
    excluded_reviewer_ids = models.JSONField(
        default=list, blank=True, help_text="People who may not decide it besides the requester (e.g. its authors)."
    )

    history = HistoricalRecords(excluded_fields=["updated_at"])
    # Set before save(): django-simple-history records this person as the change's author.
    _history_user: User

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["integration", "status"]),
            models.Index(fields=["requester", "status"]),
            # The request list reads newest first with the id as tie-break: a page is the first
            # rows of this index read backwards (many requests share a creation time).
            models.Index(fields=["created_at", "id"], name="accessrequest_created_id"),
            # The dashboard's throughput and time to decision read decided requests by when they
            # closed; on PostgreSQL the included columns make that an index-only scan.
            models.Index(
                fields=["status", "closed_at"], include=["created_at", "type"], name="accessrequest_status_closed"
            ),
        ]
        constraints = [
            # A request is about an integration, except a policy change, which is about none.
            models.CheckConstraint(
                condition=(
                    models.Q(type=RequestType.POLICY_CHANGE, integration__isnull=True)
                    | (~models.Q(type=RequestType.POLICY_CHANGE) & models.Q(integration__isnull=False))
                ),
                name="accessrequest_integration_unless_change",
            ),
            models.UniqueConstraint(
                fields=["type", "subject_key"],
                condition=models.Q(status__in=OPEN_STATUSES) & ~models.Q(subject_key=""),
                name="accessrequest_one_open_change_per_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_type_display()} — {self.subject_name}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_elevation(self) -> bool:
        return self.type == RequestType.JIT_ELEVATION

    @property
    def is_change(self) -> bool:
        """A request about no integration (a policy change): no scopes, no grants."""
        return self.type in CHANGE_TYPES

    @property
    def may_request_changes(self) -> bool:
        """Whether a reviewer may send it back for changes. Not an elevation (the integration
        asked at run time, and asks again) nor a change request (it names one fixed version:
        a changed version is a new request)."""
        return not self.is_elevation and not self.is_change

    @property
    def subject_name(self) -> str:
        """What the request is about, as pages and emails name it: the integration's name, or a
        change request's subject label. Reads the integration (select it for a list)."""
        integration = self.integration
        return self.subject_label if integration is None else integration.name

    @property
    def accountable_owner(self) -> User:
        """Who answers for the request in the audit trail: the integration's business owner, or
        for a change request the person who asked for it."""
        integration = self.integration
        return self.requester if integration is None else integration.business_owner

    @property
    def summary(self) -> str:
        """What the request asks, in one line: its type, or for a just-in-time elevation the
        scope and the task it is for (an elevation's justification is the task the integration
        stated). Reads the requested scopes (prefetch them for a list)."""
        if not self.is_elevation:
            return str(self.get_type_display())
        codes = ", ".join(scope.code for scope in self.requested_scopes.all())
        return f"{RequestType.JIT_ELEVATION.label}: {codes} for task '{self.justification}'"


# How a grant names the request that created it (``Grant.source_type``; its ``source_id`` is the
# request's id).
GRANT_SOURCE_TYPE = "approvals.accessrequest"


class StepStatus(models.TextChoices):
    WAITING = "waiting", "Waiting for earlier steps"
    ACTIVE = "active", "Waiting for a decision"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


class RequestStep(models.Model):
    """One step of one round of a request, copied from the workflow when the round starts (so a
    later change of the workflow does not change a running request)."""

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="steps")
    round = models.PositiveSmallIntegerField(default=1)
    order = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=120)
    pool_kind = models.CharField(max_length=20, choices=PoolKind.choices)
    pool_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rule = models.CharField(max_length=10, choices=Rule.choices, default=Rule.ANY)
    quorum = models.PositiveSmallIntegerField(default=1)
    sla_hours = models.PositiveIntegerField(default=48)
    sla_minutes = models.PositiveIntegerField(null=True, blank=True)
    escalation_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    escalation_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=20, choices=StepStatus.choices, default=StepStatus.WAITING, db_index=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    remind_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="StepAssignment",
        through_fields=("step", "user"),
        related_name="assigned_steps",
        blank=True,
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["request_id", "round", "order"]
        indexes = [models.Index(fields=["status", "due_at"]), models.Index(fields=["status", "remind_at"])]

    def __str__(self) -> str:
        return f"{self.request_id}/{self.round}.{self.order} {self.name}"

    @property
    def sla(self) -> timedelta:
        return sla_duration(hours=self.sla_hours, minutes=self.sla_minutes)

    @property
    def sla_label(self) -> str:
        return sla_text(hours=self.sla_hours, minutes=self.sla_minutes)

    @property
    def required_approvals(self) -> int:
        if self.rule == Rule.ANY:
            return 1
        if self.rule == Rule.QUORUM:
            return max(1, self.quorum)
        return 0  # ALL: every assigned reviewer


class StepAssignment(models.Model):
    """A person who may decide an active step (names, not just a group). ``is_open`` and
    ``due_at`` are copied from the step, and ``risk_rank`` and ``risk_score`` from the request's
    integration, so the reviewer queue is one indexed range scan in each of its orders and tier
    filters. ``approvals.services.queue_keys`` keeps the copies right."""

    step = models.ForeignKey(RequestStep, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="step_assignments")
    is_open = models.BooleanField(default=True)
    due_at = models.DateTimeField(null=True, blank=True)
    via = models.CharField(max_length=60, blank=True, help_text="How they reached the step (group, owner, escalation).")
    assigned_at = models.DateTimeField(default=timezone.now)
    # Set when an IAM admin moved the assignment to someone else: it closed undecided, and the
    # new reviewer's assignment carries the same due time.
    reassigned_at = models.DateTimeField(null=True, blank=True)
    reassigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_reason = models.CharField(max_length=300, blank=True, help_text="Why it closed undecided (a reassignment).")
    # The rank of the integration's risk tier (``RISK_TIER_ORDER``; a change request's own tier
    # stands in, -1 for none) and its risk score (0 without an integration).
    risk_rank = models.SmallIntegerField(default=-1)
    risk_score = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["step_id", "id"]
        # Held on one assignment (a guardian object permission), never model-wide: the active
        # delegate of the assigned reviewer decides it in their stead.
        permissions = [("decide_stepassignment", "May decide this assignment for its reviewer")]
        # The queue reads "open for this user, oldest due first": a partial index in that order
        # lets the database stop after one page instead of sorting every open item.
        indexes = [
            models.Index(
                fields=["user", "due_at", "id"], condition=models.Q(is_open=True), name="assignment_open_queue"
            ),
            # Sorted by risk (highest tier, then score, then oldest due) and filtered by tier.
            models.Index(
                fields=["user", "-risk_rank", "-risk_score", "due_at", "id"],
                condition=models.Q(is_open=True),
                name="assignment_open_by_risk",
            ),
            models.Index(
                fields=["user", "risk_rank", "due_at", "id"],
                condition=models.Q(is_open=True),
                name="assignment_open_by_tier",
            ),
        ]
        constraints = [models.UniqueConstraint(fields=["step", "user"], name="assignment_once_per_step")]

    def __str__(self) -> str:
        return f"{self.user} on {self.step}"


class DecisionKind(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    REQUEST_CHANGES = "request_changes", "Request changes"


class Decision(models.Model):
    """One reviewer's decision on one step: who, what, when, why, and for an approval which of
    the requested scopes and until when."""

    step = models.ForeignKey(RequestStep, on_delete=models.PROTECT, related_name="decisions")
    request = models.ForeignKey(AccessRequest, on_delete=models.PROTECT, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_decisions")
    # The reviewer a delegate decided for (``reviewer`` is the delegate, who acted): separation
    # of duties counts the decision against both.
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=20, choices=DecisionKind.choices)
    comment = models.TextField(blank=True)
    approved_scopes = models.ManyToManyField(Scope, blank=True, related_name="+")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["step", "reviewer"], name="decision_once_per_reviewer_step"),
            # A delegation cannot be used to decide one step twice for the same person.
            models.UniqueConstraint(
                fields=["step", "on_behalf_of"],
                condition=models.Q(on_behalf_of__isnull=False),
                name="decision_once_per_delegator_step",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} {self.decision} {self.step}"


# The longest a delegation may run: an absence longer than a quarter is a change of duties, for
# an IAM admin to make in the pools.
MAX_DELEGATION_DAYS = 90


class DelegationStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    ACTIVE = "active", "Active"
    ENDED = "ended", "Ended"
    REVOKED = "revoked", "Revoked"


class Delegation(models.Model):
    """A reviewer away for a period (``starts_at`` to ``ends_at``) hands their open approval
    steps and/or review items to a named colleague of the same reviewer pool. While it runs, the
    delegate holds a guardian object permission on each of the delegator's open assignments
    and items (granted at its start and for items assigned during it, withdrawn at its end or
    revocation); the pages and the API read those permissions. ``started_at``/``ended_at``
    record when the permissions were granted and withdrawn, so the sweep runs each once.
    Created, revoked and swept only by ``approvals.services.delegation`` (audited)."""

    delegator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegations_given")
    delegate = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegations_held")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    covers_approvals = models.BooleanField(default=True, help_text="Approval steps assigned to the delegator.")
    covers_reviews = models.BooleanField(default=True, help_text="Recertification items assigned to the delegator.")
    reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True, help_text="When its permissions were granted.")
    ended_at = models.DateTimeField(null=True, blank=True, help_text="When its permissions were withdrawn.")

    class Meta:
        ordering = ["-starts_at", "-id"]
        indexes = [
            models.Index(fields=["delegator", "ends_at"], name="delegation_delegator_ends"),
            models.Index(fields=["delegate", "ends_at"], name="delegation_delegate_ends"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="delegation_ends_after"),
            models.CheckConstraint(
                condition=~models.Q(delegator=models.F("delegate")), name="delegation_not_to_oneself"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.delegator} → {self.delegate} ({self.starts_at:%Y-%m-%d} to {self.ends_at:%Y-%m-%d})"

    def status_at(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return DelegationStatus.REVOKED
        if now < self.starts_at:
            return DelegationStatus.SCHEDULED
        return DelegationStatus.ACTIVE if now < self.ends_at else DelegationStatus.ENDED

    @property
    def status(self) -> str:
        return self.status_at(timezone.now())

    def get_status_display(self) -> str:
        return str(DelegationStatus(self.status).label)

    @property
    def covers_label(self) -> str:
        parts = [name for name, on in (("approvals", self.covers_approvals), ("reviews", self.covers_reviews)) if on]
        return " and ".join(parts)


class StepAssignmentUserObjectPermission(UserObjectPermissionBase):
    """Guardian object permissions on step assignments, with a real foreign key (indexed, joined
    in the queue's query) instead of guardian's generic text id: ``decide_stepassignment`` is
    held by the delegator's active delegate."""

    content_object = models.ForeignKey(StepAssignment, on_delete=models.CASCADE, related_name="user_permissions")

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "step assignment permission of a person"


class ReviewItemUserObjectPermission(UserObjectPermissionBase):
    """Guardian object permissions on recertification review items (the delegate of an item's
    reviewer holds ``campaigns.change_reviewitem`` on it: may decide it). Kept here, beside the
    delegations that grant them, with a real foreign key to the item."""

    content_object = models.ForeignKey(
        "campaigns.ReviewItem", on_delete=models.CASCADE, related_name="user_permissions"
    )

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "review item permission of a person"
