"""The approvals' dashboard panels (``governance.dashboard``), registered from ``ApprovalsConfig.ready``:
approvals throughput and time to decision, and the progress of the running recertification
campaigns. The dashboard shows organisation-wide figures to IAM admins, reviewers and auditors;
each ``build`` runs a fixed number of queries (aggregates on indexed columns) however many
requests, steps and review items there are."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Min,
    Q,
    QuerySet,
    Window,
)
from django.db.models.functions import CumeDist, TruncWeek
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from approvals.campaigns.models import UNDECIDED, Campaign, CampaignStatus, ItemStatus, ReviewItem
from approvals.models import AccessRequest, RequestStatus, RequestStep, RequestType, StepStatus
from governance import dashboard
from governance.charts import bar_list, column_chart, format_value

# How many weeks the throughput chart shows, and over how many days the time to decision is measured.
WEEKS = 12
DECISION_WINDOW_DAYS = 90
# A request is decided when it was approved or rejected (withdrawn and cancelled ones were not).
DECIDED = (RequestStatus.APPROVED, RequestStatus.REJECTED)
# Just-in-time elevations are decided within minutes under their own SLA, and an integration may
# ask for many a day: mixed with the rest, they would make the median say nothing about them.
SEPARATE_TYPES = (RequestType.JIT_ELEVATION,)
RUNNING_CAMPAIGNS = (CampaignStatus.LAUNCHING, CampaignStatus.ACTIVE)
CAMPAIGN_ROWS = 10


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 of ``moment``'s week, in the current time zone."""
    local = timezone.localtime(moment)
    monday = local - timedelta(days=local.weekday())
    return monday.replace(hour=0, minute=0, second=0, microsecond=0)


def decided_since(moment: datetime) -> QuerySet[AccessRequest]:
    """Requests (just-in-time elevations apart) approved or rejected from ``moment`` on."""
    return AccessRequest.objects.filter(status__in=DECIDED, closed_at__gte=moment).exclude(type__in=SEPARATE_TYPES)


def decided_per_week(now: datetime) -> list[dict[str, Any]]:
    """The last ``WEEKS`` weeks, oldest first (this week last, so far): requests approved and
    rejected each week, by the day they were decided. One query."""
    first = week_start(now) - timedelta(weeks=WEEKS - 1)
    counts: dict[tuple[Any, str], int] = {}
    for row in (
        decided_since(first)
        .annotate(week=TruncWeek("closed_at"))
        .order_by()
        .values("week", "status")
        .annotate(n=Count("*"))
    ):
        counts[(timezone.localtime(row["week"]).date(), row["status"])] = row["n"]
    weeks = []
    for index in range(WEEKS):
        start = (first + timedelta(weeks=index)).date()
        weeks.append(
            {
                "start": start,
                "approved": counts.get((start, RequestStatus.APPROVED), 0),
                "rejected": counts.get((start, RequestStatus.REJECTED), 0),
            }
        )
    return weeks


class PercentileDisc(Aggregate):
    """PostgreSQL's ``percentile_disc(fraction) WITHIN GROUP (ORDER BY expression)``: the first
    value whose cumulative share of the ordered rows reaches ``fraction`` (the nearest rank).
    Several of them over the same expression share one sort."""

    function = "percentile_disc"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f"A percentile is a fraction above 0 and at most 1, not {fraction!r}.")
        # A float written into the SQL, never a value from outside.
        super().__init__(expression, fraction=repr(float(fraction)), output_field=DurationField(), **extra)


def percentiles(
    queryset: QuerySet[Any], duration: ExpressionWrapper, points: Sequence[float]
) -> tuple[int, list[timedelta | None]]:
    """How many rows ``queryset`` holds and, for each of ``points`` (0 < p ≤ 1), the smallest
    ``duration`` at or above that share of the rows (the nearest-rank percentile): the median is
    ``0.5``; None where there are no rows. One query on either database, with the same answer:
    PostgreSQL's own ``percentile_disc``, or elsewhere a window over the durations (each row's
    cumulative share) and, per percentile, the least duration whose share reaches it."""
    if connection.vendor == "postgresql":
        aggregates: dict[str, Any] = {
            f"p{index}": PercentileDisc(duration, point) for index, point in enumerate(points)
        }
        values = queryset.aggregate(rows=Count("*"), **aggregates)
    else:
        values = percentiles_by_window(queryset, duration, points)
    return values["rows"], [values[f"p{index}"] for index in range(len(points))]


def percentiles_by_window(
    queryset: QuerySet[Any], duration: ExpressionWrapper, points: Sequence[float]
) -> dict[str, Any]:
    """``percentiles`` with a window function, which SQLite and PostgreSQL both have: ``rows``
    and ``p0``, ``p1``... in one query."""
    ranked = queryset.annotate(duration=duration).annotate(share=Window(CumeDist(), order_by=F("duration").asc()))
    aggregates: dict[str, Any] = {"rows": Count("*")}
    for index, point in enumerate(points):
        aggregates[f"p{index}"] = Min("duration", filter=Q(share__gte=point))
    return ranked.aggregate(**aggregates)


def decision_time() -> ExpressionWrapper:
    """A request's time to decision: from its submission to its approval or rejection (the
    requester's time on changes asked for included: it is what the requester waited)."""
    return ExpressionWrapper(F("closed_at") - F("created_at"), output_field=DurationField())


def duration_text(value: timedelta | None) -> str:
    """A duration as people read it: minutes under two hours, hours under two days, else days."""
    if value is None:
        return "–"
    minutes = value.total_seconds() / 60
    if minutes < 120:
        return format_value(minutes, "min")
    if minutes < 48 * 60:
        return format_value(minutes / 60, "h")
    return format_value(minutes / (24 * 60), "days")


def throughput(request: HttpRequest) -> dict[str, Any] | None:
    """Requests decided per week (approved and rejected, stacked), the median and 90th
    percentile time to decision over the last ``DECISION_WINDOW_DAYS`` days and the approval
    steps past their SLA now. Three queries."""
    now = timezone.now()
    weeks = decided_per_week(now)
    window = decided_since(now - timedelta(days=DECISION_WINDOW_DAYS))
    decided, (median, p90) = percentiles(window, decision_time(), (0.5, 0.9))
    overdue = RequestStep.objects.filter(status=StepStatus.ACTIVE, due_at__lt=now).count()
    labels = [f"{week['start']:%d %b}" for week in weeks]
    approved = sum(week["approved"] for week in weeks)
    rejected = sum(week["rejected"] for week in weeks)
    chart = column_chart(
        labels,
        [("Approved", [week["approved"] for week in weeks]), ("Rejected", [week["rejected"] for week in weeks])],
        title="Requests decided per week",
        stacked=True,
        category_label="Week starting",
        key="approvals-decided-per-week",
        summary=f"{format_value(approved + rejected)} requests decided in the last {WEEKS} weeks: "
        f"{format_value(approved)} approved, {format_value(rejected)} rejected; "
        f"this week so far {format_value(weeks[-1]['approved'] + weeks[-1]['rejected'])}.",
    )
    request_list = reverse("approvals:request-list")
    return {
        "chart": chart,
        "weeks": WEEKS,
        "window_days": DECISION_WINDOW_DAYS,
        "decided": decided,
        "median": median,
        "median_text": duration_text(median),
        "p90": p90,
        "p90_text": duration_text(p90),
        "overdue": overdue,
        "approved_url": f"{request_list}?status={RequestStatus.APPROVED}",
        "rejected_url": f"{request_list}?status={RequestStatus.REJECTED}",
        "in_review_url": f"{request_list}?status={RequestStatus.IN_REVIEW}",
        "overdue_url": f"{reverse('approvals:queue')}?overdue=1",
    }


def running_campaigns() -> tuple[list[dict[str, Any]], bool]:
    """Campaigns launching or running, nearest deadline first (none last): each one's ``pk``,
    ``name``, ``status``, ``deadline``, its items (``total``), those decided (``decided``) and
    those revoked (``revoked``); and whether there are more than ``CAMPAIGN_ROWS``. Two queries:
    the campaigns, then their items counted by status from the (campaign, status) index alone."""
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in Campaign.objects.filter(status__in=RUNNING_CAMPAIGNS)
        .values("pk", "name", "status", "deadline")
        .order_by(F("deadline").asc(nulls_last=True), "pk")[: CAMPAIGN_ROWS + 1]
    ]
    shown = rows[:CAMPAIGN_ROWS]
    counts: dict[int, dict[str, int]] = {row["pk"]: {} for row in shown}
    if shown:
        for campaign_id, status, number in (
            ReviewItem.objects.filter(campaign_id__in=list(counts))
            .order_by()
            .values_list("campaign_id", "status")
            .annotate(n=Count("*"))
        ):
            counts[campaign_id][status] = number
    for row in shown:
        by_status = counts[row["pk"]]
        row["total"] = sum(by_status.values())
        row["decided"] = row["total"] - sum(by_status.get(status, 0) for status in UNDECIDED)
        row["revoked"] = by_status.get(ItemStatus.REVOKED, 0)
    return shown, len(rows) > CAMPAIGN_ROWS


def campaign_progress(request: HttpRequest) -> dict[str, Any] | None:
    """The running recertification campaigns: items decided of all, revocations and deadline,
    each linked to its page. Two queries."""
    now = timezone.now()
    rows, more = running_campaigns()
    for row in rows:
        row["share"] = 100.0 * row["decided"] / row["total"] if row["total"] else 0.0
        row["share_text"] = format_value(row["share"], "%")
        row["url"] = reverse("campaigns:campaign-detail", args=[row["pk"]])
        row["launching"] = row["status"] == CampaignStatus.LAUNCHING
        row["overdue"] = row["deadline"] is not None and row["deadline"] < now
    chart = bar_list(
        [(str(row["name"]), float(row["share"])) for row in rows],
        title="Share of review items decided",
        unit="%",
        category_label="Campaign",
        value_label="Decided",
        links=[str(row["url"]) for row in rows],
        key="campaign-progress",
    )
    return {
        "rows": rows,
        "more": more,
        "chart": chart if rows else None,
        "list_url": reverse("campaigns:campaign-list"),
    }


def register() -> None:
    """Register them."""
    dashboard.register_panel(
        dashboard.DashboardPanel(
            key="approvals-throughput",
            title="Approvals throughput and time to decision",
            template="dashboard/panels/approvals_throughput.html",
            build=throughput,
            order=40,
            home=True,
        )
    )
    dashboard.register_panel(
        dashboard.DashboardPanel(
            key="campaign-progress",
            title="Recertification campaigns in progress",
            template="dashboard/panels/campaign_progress.html",
            build=campaign_progress,
            order=50,
        )
    )
