"""Reads of campaigns, always for a user: pages and API fetch through these, so what a user may
see is decided in one place.

Visibility: IAM admins and auditors see every definition, campaign and item; a campaign's owner
sees all of that campaign; a reviewer sees the items assigned to them or to one of their groups
(and the campaigns those items belong to); everyone else sees nothing (404). Further reads of a
campaign already fetched this way — the grants a definition selects, what the default action will
do, the report's figures — live here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, F, Lookup, Max, OuterRef, Q, QuerySet
from django.db.models.functions import ExtractHour, TruncDate
from django.utils import timezone

from approvals.campaigns.models import (
    UNDECIDED,
    Campaign,
    CampaignDefinition,
    CampaignStatus,
    DefaultAction,
    Granularity,
    ItemStatus,
    ReviewItem,
)
from approvals.models import ReviewItemUserObjectPermission
from approvals.selectors import active_delegations
from governance.roles import Role, has_role
from inventory.choices import GrantStatus
from inventory.models import Credential, Grant
from inventory.selectors import with_usage

# The guardian object permission a stand-in holds on each open item of the reviewer who is away
# (a review item has no "decide" permission of its own: deciding is what changing it means).
STAND_IN_PERMISSION = "change_reviewitem"

# How many days a progress chart shows at most.
SERIES_DAYS_LIMIT = 400


def sees_every_campaign(user: Any) -> bool:
    """IAM admins and auditors see every definition, campaign, item and report."""
    return bool(getattr(user, "is_authenticated", False)) and has_role(user, Role.IAM_ADMIN, Role.AUDITOR)


def _authenticated(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False))


class AnyOf(Lookup):
    """``field`` is one of the ids a subquery returns. On PostgreSQL ``field = ANY(ARRAY(subquery))``:
    the subquery runs once first and its ids are an index condition, so that several of these
    OR-ed together become one bitmap scan of the matching items (an ``IN (subquery)`` inside an
    OR is checked row by row: every item of every campaign read). Elsewhere ``IN (subquery)``."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        template = "%s = ANY(ARRAY%s)" if connection.vendor == "postgresql" else "%s IN %s"
        return template % (lhs, rhs), (*lhs_params, *rhs_params)


def any_of(field: str, ids: QuerySet[Any]) -> Q:
    """Items whose ``field`` is one of ``ids`` (a one-column queryset), see ``AnyOf``."""
    return Q(AnyOf(F(field), ids))


def assigned_to(user: Any) -> Q:
    """Items assigned to ``user``: directly, through a group, or waiting for the confirmation
    group they belong to (second stage). Each condition is answered by an index of the items
    (reviewer and status; the group's; campaign and status): the database reads only the user's
    items, not every item of every campaign."""
    groups = user.groups.values("pk")
    confirming = Campaign.objects.filter(definition__second_stage_group__in=groups).values("pk")
    return (
        Q(reviewer=user)
        | any_of("reviewer_group", groups)
        | (Q(status=ItemStatus.AWAITING_CONFIRMATION) & any_of("campaign", confirming))
    )


def _stood_in_indexed(user: Any) -> Q:
    """``stood_in_items(user)`` as conditions on the items' ids and reviewers (see ``AnyOf``)."""
    held = ReviewItemUserObjectPermission.objects.filter(user=user, permission__codename=STAND_IN_PERMISSION).values(
        "content_object_id"
    )
    delegators = active_delegations().filter(delegate=user, covers_reviews=True).values("delegator_id")
    return any_of("pk", held) & any_of("reviewer", delegators)


def stood_in_items(user: Any) -> QuerySet[ReviewItem]:
    """Items ``user`` may decide for their reviewer, who is away: those on which ``user`` holds
    the guardian permission (granted by the delegation), while that delegation runs (read here
    too, so an ended one stops at once)."""
    return ReviewItem.objects.filter(_stood_in_indexed(user))


def definitions_for(user: Any) -> QuerySet[CampaignDefinition]:
    if sees_every_campaign(user):
        return CampaignDefinition.objects.all()
    return CampaignDefinition.objects.none()


def campaigns_for(user: Any) -> QuerySet[Campaign]:
    qs = Campaign.objects.all()
    if not _authenticated(user):
        return qs.none()
    if sees_every_campaign(user):
        return qs
    mine = ReviewItem.objects.filter(assigned_to(user), campaign=OuterRef("pk"))
    return qs.filter(Q(owner=user) | Exists(mine) | any_of("pk", stood_in_items(user).values("campaign_id")))


def campaigns_listed(user: Any) -> QuerySet[Campaign]:
    return campaigns_for(user).select_related("definition", "owner")


def review_items_for(user: Any) -> QuerySet[ReviewItem]:
    qs = ReviewItem.objects.all()
    if not _authenticated(user):
        return qs.none()
    if sees_every_campaign(user):
        return qs
    owned = Campaign.objects.filter(owner=user).values("pk")
    return qs.filter(assigned_to(user) | any_of("campaign", owned) | _stood_in_indexed(user))


def review_items_listed(user: Any) -> QuerySet[ReviewItem]:
    """What a row shows, in a fixed number of queries."""
    return review_items_for(user).select_related(
        "campaign", "integration__business_owner", "grant__scope__system", "reviewer", "reviewer_group", "decided_by"
    )


def my_open_items(user: Any) -> QuerySet[ReviewItem]:
    """Undecided items waiting for ``user``'s decision in running campaigns (the nav count and
    the review page): open items assigned to them or their groups, and keeps awaiting the
    confirmation of a group they belong to (IAM admins when the definition names none)."""
    if not _authenticated(user):
        return ReviewItem.objects.none()
    groups = user.groups.values("pk")
    first = Q(reviewer=user) | any_of("reviewer_group", groups) | _stood_in_indexed(user)
    second = Q(definition__second_stage_group__in=groups)
    if has_role(user, Role.IAM_ADMIN):
        second |= Q(definition__second_stage_group__isnull=True)
    confirming = Campaign.objects.filter(second, status=CampaignStatus.ACTIVE).values("pk")
    confirm = Q(status=ItemStatus.AWAITING_CONFIRMATION) & any_of("campaign", confirming)
    return ReviewItem.objects.filter(
        (Q(status=ItemStatus.OPEN) & first) | confirm, campaign__status=CampaignStatus.ACTIVE
    )


# --- What a definition selects --------------------------------------------------------------------


def selection_for(definition: CampaignDefinition, *, now: datetime | None = None) -> QuerySet[Grant]:
    """The active grants a definition covers (all of them when no criterion is set)."""
    now = now or timezone.now()
    qs = Grant.objects.filter(status=GrantStatus.ACTIVE)
    if definition.risk_tiers:
        qs = qs.filter(integration__risk_tier__in=definition.risk_tiers)
    if definition.kinds:
        qs = qs.filter(integration__kind__in=definition.kinds)
    if definition.vendors:
        qs = qs.filter(integration__vendor__in=definition.vendors)
    if definition.sensitivities:
        qs = qs.filter(scope__sensitivity__in=definition.sensitivities)
    systems = list(definition.resource_systems.values_list("pk", flat=True)) if definition.pk else []
    if systems:
        qs = qs.filter(scope__system_id__in=systems)
    owners = list(definition.business_owners.values_list("pk", flat=True)) if definition.pk else []
    if owners:
        qs = qs.filter(integration__business_owner_id__in=owners)
    if definition.not_reviewed_days:
        since = now - timedelta(days=definition.not_reviewed_days)
        recent = ReviewItem.objects.filter(integration_id=OuterRef("integration_id"), decided_at__gte=since)
        qs = qs.exclude(Exists(recent))
    return qs


# --- A campaign's figures ---------------------------------------------------------------------------


def item_counts(campaign: Campaign) -> dict[str, int]:
    """How many of the campaign's items are in each status (statuses with none are absent)."""
    rows = ReviewItem.objects.filter(campaign=campaign).order_by().values_list("status").annotate(n=Count("pk"))
    return {status: count for status, count in rows}


@dataclass(frozen=True)
class DefaultPreview:
    action: str
    items: int
    grants: int
    sentence: str


def default_action_preview(campaign: Campaign) -> DefaultPreview:
    """Exactly what the default action will do at the deadline to what is undecided now."""
    open_items = ReviewItem.objects.filter(campaign=campaign, status__in=UNDECIDED)
    items = open_items.count()
    if campaign.granularity == Granularity.GRANT:
        grants = items
    else:
        grants = sum(len(ids) for ids in open_items.values_list("grant_ids", flat=True).iterator(chunk_size=2000))
    action = campaign.default_action
    if action == DefaultAction.ESCALATE and campaign.escalated_at is not None:
        action = DefaultAction.REVOKE  # after the grace period, what is still open is revoked
    if action == DefaultAction.REVOKE:
        sentence = f"These {grants} grant(s) will be revoked."
    elif action == DefaultAction.KEEP_FLAG:
        sentence = f"These {grants} grant(s) will be kept and flagged for follow-up."
    else:
        sentence = (
            f"These {items} item(s) ({grants} grant(s)) will be escalated to the reviewers' managers or the fallback, "
            f"with {campaign.definition.escalation_grace_days} more day(s); then what is still open is revoked."
        )
    return DefaultPreview(action=action, items=items, grants=grants, sentence=sentence)


# --- What the review page shows next to each item ------------------------------------------------


def last_rotations(integration_ids: set[int]) -> dict[int, datetime | None]:
    """When each integration's credentials were last rotated (the latest of them)."""
    rows = (
        Credential.objects.filter(integration_id__in=integration_ids)
        .order_by()
        .values("integration_id")
        .annotate(last=Max("last_rotated_at"))
        .values_list("integration_id", "last")
    )
    return {integration_id: last for integration_id, last in rows}


def grants_shown(grant_ids: set[int]) -> dict[int, Grant]:
    """The grants behind review items, with their scope, system, approvers and run-time usage
    (``last_used_at`` and ``uses_last_30_days``, summed in the same query), by id."""
    grants = with_usage(
        Grant.objects.filter(pk__in=grant_ids).select_related("scope__system").prefetch_related("approvers")
    )
    return {grant.pk: grant for grant in grants}


# --- The report --------------------------------------------------------------------------------------


def progress_series(campaign: Campaign) -> list[tuple[date, int]]:
    """Cumulative decided items per day from the launch to today (or the close)."""
    if campaign.launched_at is None:
        return []
    per_day: dict[date, int] = {
        day: count
        for day, count in ReviewItem.objects.filter(campaign=campaign, decided_at__isnull=False)
        .order_by()
        .annotate(day=TruncDate("decided_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    }
    start = campaign.launched_at.date()
    end = (campaign.closed_at or timezone.now()).date()
    if campaign.deadline:
        end = min(end, max(campaign.deadline.date(), start))
    series: list[tuple[date, int]] = []
    total = sum(count for day, count in per_day.items() if day is not None and day < start)
    day = start
    while day <= end and len(series) < SERIES_DAYS_LIMIT:
        total += per_day.get(day, 0)
        series.append((day, total))
        day += timedelta(days=1)
    return series


def decisions_per_hour(campaign: Campaign, day: date) -> dict[int, int]:
    """How many of the campaign's items were decided in each hour (UTC) of ``day``; hours with
    none are absent."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    rows = (
        ReviewItem.objects.filter(campaign=campaign, decided_at__gte=start, decided_at__lt=start + timedelta(days=1))
        .order_by()
        .annotate(hour=ExtractHour("decided_at", tzinfo=UTC))
        .values("hour")
        .annotate(n=Count("pk"))
        .values_list("hour", "n")
    )
    return {hour: count for hour, count in rows}


def _with_percent(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each row with the share of its items decided, in whole percent."""
    return [{**row, "percent": int(row["decided"] * 100 / row["total"]) if row["total"] else 0} for row in rows]


def report_summary(campaign: Campaign) -> dict[str, Any]:
    """The report's figures: completion by reviewer and by business owner, totals, and the
    overdue reviewers — those who let an item reach the default action, or still have undecided
    items once the deadline has passed."""
    items = ReviewItem.objects.filter(campaign=campaign).order_by()
    decided = ~Q(status__in=UNDECIDED)
    revoked = Q(status=ItemStatus.REVOKED)
    by_reviewer = _with_percent(
        items.values("reviewer__username", "reviewer_group__name")
        .annotate(
            total=Count("pk"),
            decided=Count("pk", filter=decided),
            revoked=Count("pk", filter=revoked),
            defaulted=Count("pk", filter=Q(by_default=True)),
        )
        .order_by("reviewer__username", "reviewer_group__name")
    )
    by_owner = _with_percent(
        items.values("integration__business_owner__username")
        .annotate(total=Count("pk"), decided=Count("pk", filter=decided), revoked=Count("pk", filter=revoked))
        .order_by("integration__business_owner__username")
    )
    totals = items.aggregate(
        total=Count("pk"),
        by_default=Count("pk", filter=Q(by_default=True)),
        applied=Count("pk", filter=Q(applied_at__isnull=False)),
        flagged=Count("pk", filter=Q(flagged=True)),
    )
    past = campaign.deadline is not None and timezone.now() >= campaign.deadline
    overdue = [row for row in by_reviewer if row["defaulted"] or (past and row["decided"] < row["total"])]
    return {"by_reviewer": by_reviewer, "by_owner": by_owner, "totals": totals, "overdue": overdue}


# The item values the report's CSV export shows, in its column order.
REPORT_ITEM_FIELDS = (
    "pk",
    "integration_id",
    "integration__name",
    "integration__business_owner__username",
    "grant_id",
    "grant_ids",
    "grant__scope__code",
    "grant__scope__sensitivity",
    "reviewer__username",
    "reviewer_group__name",
    "assigned_reason",
    "status",
    "decision",
    "decided_by__username",
    "decided_at",
    "by_default",
    "comment",
    "confirmed_by__username",
    "confirmed_at",
    "applied_at",
    "flagged",
    "escalated_at",
)


def report_items(campaign: Campaign) -> Iterator[dict[str, Any]]:
    """Every item of the campaign with ``REPORT_ITEM_FIELDS``, streamed in chunks (flat memory
    whatever the campaign's size)."""
    rows: QuerySet[ReviewItem, dict[str, Any]] = (
        ReviewItem.objects.filter(campaign=campaign).order_by("pk").values(*REPORT_ITEM_FIELDS)
    )
    return rows.iterator(chunk_size=2000)
