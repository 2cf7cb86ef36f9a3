"""The approvals app's controls (``governance.controls.registry``), registered from its
``AppConfig.ready``: multi-step approval sized to risk, separation of duties, approval SLAs and
recertification.

Each ``evidence()`` runs a fixed number of queries however many requests, steps, decisions or
review items there are: aggregates over the window, correlated subqueries, never a query per row.
The query expressions are shared with the request list's filters (``approvals.filters``), so the
list a figure links to holds exactly the records the figure counts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Concat, Replace
from django.utils import timezone

from approvals.campaigns.models import Campaign, CampaignStatus, ItemStatus, ReviewItem
from approvals.models import (
    OWN_WORKFLOW_TYPES,
    AccessRequest,
    Decision,
    RequestStatus,
    RequestStep,
    StepStatus,
    Workflow,
)
from governance.controls.kernel_controls import hours_since, list_link, share, when, window_start
from governance.controls.registry import LOWER, Control, Figure, Threshold, register_control
from inventory.choices import GrantStatus, RiskTier
from inventory.models import Grant, Integration

# Approvals are judged over the last quarter, the period auditors usually ask about.
WINDOW_DAYS = 90

# --- Multi-step approval sized to risk -----------------------------------------------------------

RISK_SIZED = "risk-sized-approval"
# The approving steps a request about an integration must pass, by the integration's risk tier:
# the seeded workflows' (IAM review; + resource owner from medium; + security from high).
REQUIRED_APPROVING_STEPS: dict[str, int] = {RiskTier.LOW: 1, RiskTier.MEDIUM: 2, RiskTier.HIGH: 3, RiskTier.CRITICAL: 3}
# A just-in-time elevation (one scope, one task, an hour) and a policy change (two IAM admins:
# one asks, another approves) run one step whatever the tier.
ONE_STEP_TYPES = OWN_WORKFLOW_TYPES
REQUIREMENT_SENTENCE = (
    "low 1, medium 2, high and critical 3; a just-in-time elevation or a policy change 1 whatever the tier"
)


def required_steps() -> Case:
    """The approving steps a request's type and risk tier require, as an SQL expression."""
    return Case(
        When(type__in=list(ONE_STEP_TYPES), then=Value(1)),
        *(When(risk_tier=tier, then=Value(count)) for tier, count in REQUIRED_APPROVING_STEPS.items()),
        default=Value(max(REQUIRED_APPROVING_STEPS.values())),
        output_field=IntegerField(),
    )


def with_approving_steps(requests: QuerySet[AccessRequest]) -> QuerySet[AccessRequest]:
    """``requests`` with ``approving_steps`` (steps of the final round approved, by a reviewer or
    an escalation target) and ``required_steps`` (what its type and tier require)."""
    approved = (
        RequestStep.objects.filter(request=OuterRef("pk"), round=OuterRef("round"), status=StepStatus.APPROVED)
        .order_by()
        .values("request")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return requests.annotate(
        approving_steps=Coalesce(Subquery(approved, output_field=IntegerField()), Value(0)),
        required_steps=required_steps(),
    )


def approved_since(since: datetime) -> QuerySet[AccessRequest]:
    return AccessRequest.objects.filter(status=RequestStatus.APPROVED, closed_at__gte=since)


def _risk_sized_share(since: datetime) -> Figure:
    counts = with_approving_steps(approved_since(since)).aggregate(
        total=Count("pk"), sized=Count("pk", filter=Q(approving_steps__gte=F("required_steps")))
    )
    total, sized = counts["total"], counts["sized"]
    if total:
        detail = (
            f"{sized} of {total} requests approved in the last {WINDOW_DAYS} days passed the approving steps "
            f"their type and risk tier require ({REQUIREMENT_SENTENCE})"
            + (f"; {total - sized} passed fewer." if total > sized else ".")
        )
    else:
        detail = f"No request was approved in the last {WINDOW_DAYS} days."
    return Figure(
        key=f"{RISK_SIZED}.sized",
        label=f"Approved requests with the steps their risk requires ({WINDOW_DAYS} days)",
        value=share(sized, total),
        threshold=Threshold(met=100, partly=95),
        detail=detail,
        records_url=list_link("approvals:request-list", status=RequestStatus.APPROVED, closed_since=since),
        records=lambda: _approved_rows(since),
    )


APPROVED_FIELDS = (
    "pk",
    "type",
    "integration_id",
    "integration__name",
    "subject_label",
    "risk_tier",
    "round",
    "requester__username",
    "created_at",
    "closed_at",
    "approving_steps",
    "required_steps",
)


def _approved_rows(since: datetime) -> Iterator[Mapping[str, Any]]:
    rows = with_approving_steps(approved_since(since)).order_by("closed_at", "pk")
    for row in rows.values(*APPROVED_FIELDS).iterator():
        yield {
            "request_id": row["pk"],
            "type": row["type"],
            "integration_id": row["integration_id"],
            "about": row["integration__name"] or row["subject_label"],
            "risk_tier": row["risk_tier"],
            "round": row["round"],
            "requester": row["requester__username"],
            "opened_at": row["created_at"],
            "approved_at": row["closed_at"],
            "approving_steps": row["approving_steps"],
            "required_steps": row["required_steps"],
            "meets_requirement": row["approving_steps"] >= row["required_steps"],
        }


def workflow_rows() -> list[dict[str, Any]]:
    """Each configured workflow with the steps that run for its own tier (a step limited to other
    tiers is skipped) against what its type and tier require: one query."""
    rows = Workflow.objects.order_by("request_type", "risk_tier", "pk").values_list(
        "pk", "name", "request_type", "risk_tier", "steps__pk", "steps__only_for_tiers"
    )
    found: dict[int, dict[str, Any]] = {}
    for pk, name, request_type, tier, step_id, only_for in rows:
        row = found.setdefault(
            pk,
            {
                "workflow_id": pk,
                "name": name,
                "request_type": request_type,
                "risk_tier": tier,
                "steps_running": 0,
                "required_steps": 1 if request_type in ONE_STEP_TYPES else REQUIRED_APPROVING_STEPS.get(tier, 3),
            },
        )
        if step_id is not None and (not only_for or tier in only_for):
            row["steps_running"] += 1
    for row in found.values():
        row["meets_requirement"] = row["steps_running"] >= row["required_steps"]
    return list(found.values())


def _workflows_short() -> Figure:
    rows = workflow_rows()
    short = [row for row in rows if not row["meets_requirement"]]
    if rows:
        named = "; ".join(f"{row['name']} ({row['steps_running']} of {row['required_steps']})" for row in short)
        detail = f"{len(short)} of {len(rows)} workflows run fewer steps than their type and risk tier require" + (
            f": {named}." if short else f" ({REQUIREMENT_SENTENCE})."
        )
    else:
        detail = "No workflow is configured yet (the defaults are seeded with the first request)."
    return Figure(
        key=f"{RISK_SIZED}.workflows_short",
        label="Workflows with fewer steps than their risk requires",
        value=len(short) if rows else None,
        threshold=Threshold(met=0),
        unit="count",
        better=LOWER,
        detail=detail,
        records_url=list_link("approvals:workflow-list"),
        records=workflow_rows,
    )


def risk_sized_evidence() -> list[Figure]:
    """Two queries: the approved requests of the window with their approving steps, and the
    workflows with their steps."""
    return [_risk_sized_share(window_start(WINDOW_DAYS)), _workflows_short()]


# --- Separation of duties ------------------------------------------------------------------------

SEPARATION = "separation-of-duties"
# The people a decision is checked against, and how the evidence names each conflict.
CONFLICTS = {
    "is_requester": "decided their own request",
    "is_owner": "owned the integration",
    "is_excluded": "was excluded by the request (a policy version's author)",
    "decided_other_step": "had decided another step of the same round",
}
DECIDERS = ("reviewer_id", "on_behalf_of_id")


OWNER_FIELDS = ("business_owner_id", "technical_owner_id", "backup_owner_id")


def _is_deciding(owner_fields: tuple[str, ...], *, outer: bool) -> Q:
    """One of ``owner_fields`` names the decision's reviewer or the reviewer a delegate decided
    for (columns of the decision itself, or of the outer query's decision)."""
    people = [OuterRef(person) if outer else F(person) for person in DECIDERS]
    return Q(*[Q(**{field: person}) for field in owner_fields for person in people], _connector=Q.OR)


def _history_then(depth: int = 1) -> QuerySet[Any]:
    """The integration's history rows up to the decision's time, newest first (``depth``: how
    many queries out the decision is)."""

    def outer(name: str) -> Any:
        ref: Any = name
        for _ in range(depth):
            ref = OuterRef(ref)
        return ref

    return Integration.history.filter(
        id=outer("request__integration_id"), history_date__lte=outer("created_at")
    ).order_by("-history_date", "-history_id")


def _owner_then() -> Q:
    """The decider was an owner of the integration when the decision was made: in its newest
    history row of that moment, or — for an integration loaded without history — now."""
    newest = _history_then(depth=2).values("history_id")[:1]
    then = Integration.history.filter(history_id=Subquery(newest)).filter(_is_deciding(OWNER_FIELDS, outer=True))
    owners_now = tuple(f"request__integration__{field}" for field in OWNER_FIELDS)
    return Q(Exists(then)) | (~Q(Exists(_history_then())) & _is_deciding(owners_now, outer=False))


def _excluded_match(person: str) -> Q:
    """``person`` is in the request's excluded reviewer ids: the JSON list's text with brackets and
    spaces dropped and commas around it (``,3,7,``) holds ``,<id>,`` — the same on SQLite and
    PostgreSQL, which print a list of numbers alike."""
    return Q(excluded_text__contains=Concat(Value(","), Cast(person, CharField()), Value(",")))


def _other_steps_of(person: str) -> QuerySet[Decision]:
    """Earlier decisions of other steps of the same round of the outer decision's request by
    ``person`` of the outer decision (as reviewer, or as the reviewer a delegate decided for):
    the later of two decisions by one person is the one separation of duties refuses."""
    earlier = Q(created_at__lt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), pk__lt=OuterRef("pk"))
    return (
        Decision.objects.filter(earlier, request_id=OuterRef("request_id"), step__round=OuterRef("round"))
        .exclude(step_id=OuterRef("step_id"))
        .filter(Q(reviewer_id=OuterRef(person)) | Q(on_behalf_of_id=OuterRef(person)))
    )


def _conflict_checks() -> dict[str, Q]:
    """The conditions of ``CONFLICTS``, on a decision carrying the aliases of ``decisions_checked``."""
    return {
        "is_requester": _is_deciding(("request__requester_id",), outer=False),
        "is_owner": _owner_then(),
        "is_excluded": _excluded_match("reviewer_id")
        | (Q(on_behalf_of_id__isnull=False) & _excluded_match("on_behalf_of_id")),
        "decided_other_step": Q(Exists(_other_steps_of("reviewer_id"))) | Q(Exists(_other_steps_of("on_behalf_of_id"))),
    }


def decisions_checked(since: datetime, *, with_reasons: bool = False) -> QuerySet[Decision]:
    """Decisions made since ``since`` with ``conflict``: the reviewer, or the reviewer a delegate
    decided for, was someone separation of duties keeps out — the requester, an owner of the
    integration at the time, a person the request excluded, or the decider of an earlier step of
    the round. ``with_reasons`` adds one boolean per conflict (``CONFLICTS``), for the records;
    the count reads ``conflict`` alone, so that each check runs once per decision."""
    text = Cast("request__excluded_reviewer_ids", CharField())
    stripped = Replace(Replace(Replace(text, Value("["), Value("")), Value("]"), Value("")), Value(" "), Value(""))
    qs = Decision.objects.filter(created_at__gte=since).alias(
        round=F("step__round"),
        excluded_text=Concat(Value(","), stripped, Value(","), output_field=CharField()),
    )
    checks = _conflict_checks()
    if with_reasons:
        qs = qs.annotate(
            **{name: ExpressionWrapper(check, output_field=BooleanField()) for name, check in checks.items()}
        )
    return qs.annotate(conflict=ExpressionWrapper(Q(*checks.values(), _connector=Q.OR), output_field=BooleanField()))


def _separation(since: datetime) -> Figure:
    counts = decisions_checked(since).aggregate(total=Count("pk"), conflicts=Count("pk", filter=Q(conflict=True)))
    total, conflicts = counts["total"], counts["conflicts"]
    if total:
        detail = (
            f"{conflicts} of {total} reviewer decisions in the last {WINDOW_DAYS} days were made by the requester, "
            "an owner of the integration at the time, a person the request excluded, or the decider of another "
            "step of the same round (a delegate's decision counts for them and for whom they stood in)."
        )
    else:
        detail = f"No reviewer decision in the last {WINDOW_DAYS} days."
    return Figure(
        key=f"{SEPARATION}.conflicts",
        label=f"Decisions breaking separation of duties ({WINDOW_DAYS} days)",
        value=conflicts if total else None,
        threshold=Threshold(met=0),
        unit="count",
        better=LOWER,
        detail=detail,
        records_url=list_link("approvals:request-list", sod_conflict_since=since),
        records=lambda: _conflict_rows(since),
    )


CONFLICT_FIELDS = (
    "pk",
    "request_id",
    "request__type",
    "step__name",
    "step__round",
    "decision",
    "created_at",
    "reviewer__username",
    "on_behalf_of__username",
    "request__requester__username",
    *CONFLICTS,
)


def _conflict_rows(since: datetime) -> Iterator[Mapping[str, Any]]:
    rows = decisions_checked(since, with_reasons=True).filter(Q(conflict=True)).order_by("created_at", "pk")
    for row in rows.values(*CONFLICT_FIELDS).iterator():
        yield {
            "decision_id": row["pk"],
            "request_id": row["request_id"],
            "request_type": row["request__type"],
            "step": row["step__name"],
            "round": row["step__round"],
            "decision": row["decision"],
            "decided_at": row["created_at"],
            "reviewer": row["reviewer__username"],
            "on_behalf_of": row["on_behalf_of__username"] or "",
            "requester": row["request__requester__username"],
            "conflict": "; ".join(sentence for name, sentence in CONFLICTS.items() if row[name]),
        }


def separation_evidence() -> list[Figure]:
    """One query: every decision of the window checked in the database."""
    return [_separation(window_start(WINDOW_DAYS))]


# --- Approval SLAs -------------------------------------------------------------------------------

APPROVAL_SLA = "approval-sla"
# A step a reviewer completed: approved, rejected or sent back for changes (not skipped, not
# cancelled with its request).
DECIDED_STEP_STATUSES = (StepStatus.APPROVED, StepStatus.REJECTED, StepStatus.CHANGES_REQUESTED)


def steps_decided_since(since: datetime) -> QuerySet[RequestStep]:
    return RequestStep.objects.filter(
        status__in=DECIDED_STEP_STATUSES, decided_at__gte=since, due_at__isnull=False
    ).annotate(within_sla=ExpressionWrapper(Q(decided_at__lte=F("due_at")), output_field=BooleanField()))


def steps_overdue() -> QuerySet[RequestStep]:
    """Steps waiting for a decision past their due time, now."""
    return RequestStep.objects.filter(status=StepStatus.ACTIVE, due_at__lt=timezone.now())


STEP_FIELDS = (
    "pk",
    "request_id",
    "request__type",
    "request__risk_tier",
    "round",
    "order",
    "name",
    "sla_hours",
    "sla_minutes",
    "activated_at",
    "due_at",
)


def _step_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "step_id": row["pk"],
        "request_id": row["request_id"],
        "request_type": row["request__type"],
        "risk_tier": row["request__risk_tier"],
        "round": row["round"],
        "order": row["order"],
        "step": row["name"],
        "sla": f"{row['sla_minutes']} minutes" if row["sla_minutes"] else f"{row['sla_hours']} hours",
        "activated_at": row["activated_at"],
        "due_at": row["due_at"],
    }


def _decided_rows(since: datetime) -> Iterator[Mapping[str, Any]]:
    rows = steps_decided_since(since).order_by("decided_at", "pk")
    for row in rows.values(*STEP_FIELDS, "status", "decided_at", "decided_by__username", "within_sla").iterator():
        yield {
            **_step_row(row),
            "status": row["status"],
            "decided_at": row["decided_at"],
            "decided_by": row["decided_by__username"] or "",
            "within_sla": bool(row["within_sla"]),
        }


def _overdue_rows() -> Iterator[Mapping[str, Any]]:
    for row in steps_overdue().order_by("due_at", "pk").values(*STEP_FIELDS, "escalated_at").iterator():
        yield {
            **_step_row(row),
            "escalated_at": row["escalated_at"],
            "hours_overdue": hours_since(row["due_at"]),
        }


def sla_evidence() -> list[Figure]:
    """Two queries: the steps decided in the window, and the steps overdue now."""
    since = window_start(WINDOW_DAYS)
    counts = steps_decided_since(since).aggregate(total=Count("pk"), within=Count("pk", filter=Q(within_sla=True)))
    overdue = steps_overdue().aggregate(n=Count("pk"), oldest=Min("due_at"))
    total, within = counts["total"], counts["within"]
    decided_detail = (
        f"{within} of {total} approval steps decided in the last {WINDOW_DAYS} days were decided by their due "
        "time (each step's SLA from when it became current; an escalation does not extend it)."
        if total
        else f"No approval step was decided in the last {WINDOW_DAYS} days."
    )
    overdue_detail = (
        f"{overdue['n']} steps wait past their due time now; the oldest was due {when(overdue['oldest'])}."
        if overdue["n"]
        else "No step waits past its due time now."
    )
    return [
        Figure(
            key=f"{APPROVAL_SLA}.within_sla",
            label=f"Approval steps decided within their SLA ({WINDOW_DAYS} days)",
            value=share(within, total),
            threshold=Threshold(met=90, partly=75),
            detail=decided_detail,
            records_url=list_link("approvals:request-list", step_decided_since=since),
            records=lambda: _decided_rows(since),
        ),
        Figure(
            key=f"{APPROVAL_SLA}.overdue",
            label="Approval steps overdue now",
            value=overdue["n"],
            threshold=Threshold(met=0, partly=10),
            unit="count",
            better=LOWER,
            detail=overdue_detail,
            records_url=list_link("approvals:request-list", overdue="true"),
            records=_overdue_rows,
        ),
    ]


# --- Recertification -----------------------------------------------------------------------------

RECERTIFICATION = "recertification"
# A campaign a quarter: the days since the last launch may reach a quarter and a few days.
RECERTIFICATION_DAYS = Threshold(met=100, partly=190)


def _last_closed() -> Campaign | None:
    """The campaign closed last, with its items counted by outcome: one query."""
    decided = ~Q(items__status__in=(ItemStatus.OPEN, ItemStatus.AWAITING_CONFIRMATION))
    revoked = Q(items__status=ItemStatus.REVOKED)
    return (
        Campaign.objects.filter(status=CampaignStatus.CLOSED)
        .annotate(
            item_count=Count("items"),
            by_people=Count("items", filter=decided & Q(items__by_default=False)),
            by_default=Count("items", filter=decided & Q(items__by_default=True)),
            revoked=Count("items", filter=revoked),
            revocations_applied=Count("items", filter=revoked & Q(items__applied_at__isnull=False)),
        )
        .order_by("-closed_at", "-pk")
        .first()
    )


def _completion_figures(last: Campaign | None) -> list[Figure]:
    if last is None:
        none = "No recertification campaign has closed yet."
        completion = revocations = None
        completion_detail = revocations_detail = none
        url = list_link("campaigns:campaign-list")
    else:
        counts = last.__dict__
        completion = share(counts["by_people"], counts["item_count"])
        revocations = share(counts["revocations_applied"], counts["revoked"])
        completion_detail = (
            f"“{last.name}”, closed {when(last.closed_at)}: reviewers decided {counts['by_people']} of "
            f"{counts['item_count']} items; the default action ({last.get_default_action_display().lower()}) "
            f"decided {counts['by_default']}."
        )
        revocations_detail = (
            f"“{last.name}” revoked {counts['revoked']} items ({counts['revoked'] - counts['revocations_applied']} "
            f"not applied yet); {counts['revocations_applied']} took effect on the grants."
            if counts["revoked"]
            else f"“{last.name}” revoked nothing: every item was kept."
        )
        url = list_link("campaigns:campaign-report", last.pk)
    campaign_id = last.pk if last is not None else None
    return [
        Figure(
            key=f"{RECERTIFICATION}.completion",
            label="Review items decided by reviewers in the last closed campaign",
            value=completion,
            threshold=Threshold(met=95, partly=80),
            detail=completion_detail,
            records_url=url,
            records=lambda: _items(campaign_id),
        ),
        Figure(
            key=f"{RECERTIFICATION}.revocations_applied",
            label="Revocations of the last closed campaign that took effect",
            value=revocations,
            threshold=Threshold(met=100, partly=95),
            detail=revocations_detail,
            records_url=url,
            records=lambda: _items(campaign_id, revoked=True),
        ),
    ]


def _items(campaign_id: int | None, *, revoked: bool = False) -> Iterator[Mapping[str, Any]]:
    if campaign_id is None:
        return
    items = ReviewItem.objects.filter(campaign_id=campaign_id)
    if revoked:
        items = items.filter(status=ItemStatus.REVOKED)
    yield from (
        items.order_by("pk")
        .values(
            "id",
            "integration_id",
            "integration__name",
            "grant_id",
            "reviewer__username",
            "status",
            "decision",
            "decided_by__username",
            "decided_at",
            "by_default",
            "applied_at",
        )
        .iterator()
    )


def _launch_age() -> Figure:
    """Days since the last launch; before any, how long the oldest active grant has stood
    unreviewed (the gap a first campaign closes). Two queries."""
    last_launch = Campaign.objects.aggregate(at=Max("launched_at"))["at"]
    if last_launch is not None:
        value: float | None = (timezone.now() - last_launch).days
        detail = f"The last recertification campaign was launched {when(last_launch)}."
    else:
        oldest = Grant.objects.filter(status=GrantStatus.ACTIVE).aggregate(at=Min("granted_at"))["at"]
        value = (timezone.now() - oldest).days if oldest is not None else None
        detail = (
            f"No recertification campaign has ever been launched; the oldest active grant, from {when(oldest)}, "
            "has never been reviewed."
            if oldest is not None
            else "No campaign has been launched and no grant is active: there is nothing to recertify yet."
        )
    return Figure(
        key=f"{RECERTIFICATION}.days_since_launch",
        label="Days since the last recertification campaign was launched",
        value=value,
        threshold=RECERTIFICATION_DAYS,
        unit="days",
        better=LOWER,
        detail=detail,
        records_url=list_link("campaigns:campaign-list"),
        records=_campaigns,
    )


def _campaigns() -> Iterator[Mapping[str, Any]]:
    yield from (
        Campaign.objects.exclude(launched_at=None)
        .order_by("-launched_at", "-pk")
        .values("id", "name", "status", "owner__username", "launched_at", "deadline", "closed_at", "items_total")
        .iterator()
    )


def recertification_evidence() -> list[Figure]:
    """Two or three queries: the last closed campaign with its items counted, the last launch
    (and, before any launch, the oldest active grant)."""
    return [*_completion_figures(_last_closed()), _launch_age()]


def register() -> None:
    """Register the approvals controls."""
    for control in (
        Control(
            id=RISK_SIZED,
            title="Multi-step approval sized to risk",
            description=(
                "Every access request runs the workflow configured for its type and the integration's risk "
                "tier: one IAM review for low risk, then the owners of the requested systems from medium, then "
                "security from high (every reviewer of each step for critical). Steps are copied when a round "
                "starts, each assigned by name, and the request is approved only after its last step; grants "
                "are created in the same transaction."
            ),
            app="approvals",
            evidence=risk_sized_evidence,
            order=30,
        ),
        Control(
            id=SEPARATION,
            title="Separation of duties",
            description=(
                "The requester, the integration's owners, co-owners and delegates, the people a request excludes "
                "(a policy version's authors) and whoever decided another step of the round are never assigned a "
                "step and are refused by the decision service whoever calls it; a delegate's decision counts "
                "against them and the reviewer they stand in for. Runtime policy versions need two IAM admins."
            ),
            app="approvals",
            evidence=separation_evidence,
            order=40,
        ),
        Control(
            id=APPROVAL_SLA,
            title="Approval SLAs and escalation",
            description=(
                "Each step has an SLA (hours, or minutes for a just-in-time elevation): reviewers are reminded "
                "half-way, and a step past its due time escalates to its escalation person or group (the IAM "
                "admins by default), audited."
            ),
            app="approvals",
            evidence=sla_evidence,
            order=45,
        ),
        Control(
            id=RECERTIFICATION,
            title="Recertification of standing access",
            description=(
                "Recertification campaigns, launched on a schedule from definitions kept by IAM admins, turn "
                "the selected grants into review items assigned to the accountable people; what nobody decides "
                "by the deadline gets the default action (revoke, keep and flag, or escalate), and revocations "
                "end the grants, audited."
            ),
            app="approvals",
            evidence=recertification_evidence,
            order=60,
        ),
    ):
        register_control(control)
