"""Pages of campaigns: definitions (IAM admins), campaigns with launch progress and the default
action's preview, the reviewer's page (items grouped by integration, decide one or many), and
the report with its chart and CSV export. Views parse input, fetch through the selectors
(unseen -> 404) and call services."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q
from django.db.models.functions import TruncDate
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals.campaigns import permissions, selectors, services
from approvals.campaigns.forms import DecideForm, DefinitionForm
from approvals.campaigns.models import UNDECIDED, Campaign, CampaignStatus, ItemStatus, ReviewItem
from approvals.campaigns.recommend import recommend
from governance.csv_export import CsvRowWriter
from governance.exceptions import DomainError
from governance.roles import Role, has_role
from governance.urls_safety import safe_next
from inventory.models import Credential, Grant

PAGE_SIZE = 50


def _campaign_or_404(request: HttpRequest, pk: int) -> Campaign:
    campaign = selectors.campaigns_listed(request.user).filter(pk=pk).first()
    if campaign is None:
        raise Http404
    return campaign


def _sees_report(user: Any, campaign: Campaign) -> bool:
    return has_role(user, Role.IAM_ADMIN, Role.AUDITOR) or campaign.owner_id == user.pk


# --- Campaigns -----------------------------------------------------------------------------------


@login_required
@require_GET
def campaign_list(request: HttpRequest) -> HttpResponse:
    qs = (
        selectors.campaigns_listed(request.user)
        .annotate(open_items=Count("items", filter=Q(items__status__in=UNDECIDED)), all_items=Count("items"))
        .order_by("-created_at", "-id")
    )
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/campaign_list.html",
        {
            "page": page,
            "campaigns": list(page.object_list),
            "my_open": selectors.my_open_items(request.user).count(),
            "can_manage": permissions.can_manage_definitions(request.user),
            "sees_definitions": has_role(request.user, Role.IAM_ADMIN, Role.AUDITOR),
        },
    )


def _progress(campaign: Campaign) -> dict[str, Any]:
    total = campaign.total_expected
    done = campaign.processed
    return {
        "status": campaign.status,
        "status_display": campaign.get_status_display(),
        "processed": done,
        "total_expected": total,
        "items_total": campaign.items_total,
        "percent": 100
        if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.LAUNCHING)
        else (int(done * 100 / total) if total else 0),
        "finished": campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.LAUNCHING),
    }


@login_required
@require_GET
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(request, pk)
    counts = dict(ReviewItem.objects.filter(campaign=campaign).order_by().values_list("status").annotate(n=Count("pk")))
    preview = services.default_action_preview(campaign) if campaign.status == CampaignStatus.ACTIVE else None
    return render(
        request,
        "campaigns/campaign_detail.html",
        {
            "campaign": campaign,
            "progress": _progress(campaign),
            "counts": [(label, counts.get(value, 0)) for value, label in ItemStatus.choices],
            "preview": preview,
            "can_launch": campaign.status == CampaignStatus.DRAFT and permissions.can_launch(request.user, campaign),
            "sees_report": _sees_report(request.user, campaign),
            "my_open": selectors.my_open_items(request.user).filter(campaign=campaign).count(),
        },
    )


@login_required
@require_GET
def campaign_progress(request: HttpRequest, pk: int) -> JsonResponse:
    """Polled by the campaign page while the worker makes the items."""
    return JsonResponse(_progress(_campaign_or_404(request, pk)))


@login_required
@require_POST
def campaign_launch(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(request, pk)
    if not permissions.can_launch(request.user, campaign):
        raise PermissionDenied
    try:
        services.campaign_launch_request(actor=request.user, campaign=campaign)
        messages.success(request, "Launch started: the items are being made in the background.")
    except DomainError as exc:
        messages.error(request, exc.detail)
    return redirect("campaigns:campaign-detail", pk=campaign.pk)


# --- Definitions ---------------------------------------------------------------------------------


@login_required
@require_GET
def definition_list(request: HttpRequest) -> HttpResponse:
    qs = selectors.definitions_for(request.user).select_related("owner").annotate(runs=Count("campaigns"))
    if not has_role(request.user, Role.IAM_ADMIN, Role.AUDITOR):
        raise Http404
    return render(
        request,
        "campaigns/definition_list.html",
        {
            "definitions": list(qs),
            "can_manage": permissions.can_manage_definitions(request.user),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def definition_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    definition = None
    if pk is not None:
        definition = selectors.definitions_for(request.user).filter(pk=pk).first()
        if definition is None:
            raise Http404
    elif not has_role(request.user, Role.IAM_ADMIN, Role.AUDITOR):
        raise Http404
    can_manage = permissions.can_manage_definitions(request.user)
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied
        form = DefinitionForm(request.POST)
        if form.is_valid():
            try:
                saved = services.definition_save(actor=request.user, values=form.cleaned_data, definition=definition)
                messages.success(request, f"Definition “{saved.name}” saved.")
                return redirect("campaigns:definition-list")
            except DomainError as exc:
                for field, errs in (exc.errors or {"__all__": [exc.detail]}).items():
                    for err in errs:
                        form.add_error(field if field in form.fields else None, err)
        form.mark_invalid()
    else:
        form = DefinitionForm(
            initial=DefinitionForm.initial_from(definition) if definition else {"owner": request.user}
        )
    return render(
        request,
        "campaigns/definition_form.html",
        {
            "form": form,
            "definition": definition,
            "can_manage": can_manage,
        },
    )


@login_required
@require_POST
def definition_start(request: HttpRequest, pk: int) -> HttpResponse:
    """Create a run of the definition and launch it now."""
    definition = selectors.definitions_for(request.user).filter(pk=pk).first()
    if definition is None:
        raise Http404
    if not permissions.can_manage_definitions(request.user):
        raise PermissionDenied
    try:
        campaign = services.campaign_create(actor=request.user, definition=definition)
        services.campaign_launch_request(actor=request.user, campaign=campaign)
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("campaigns:definition-list")
    messages.success(request, "Campaign launched: the items are being made in the background.")
    return redirect("campaigns:campaign-detail", pk=campaign.pk)


# --- Reviewing ----------------------------------------------------------------------------------


def review_rows(items: list[ReviewItem]) -> list[dict[str, Any]]:
    """Items grouped by integration, with what each grant allows, who approved it and when, the
    credential's last rotation and a recommendation — in a fixed number of queries."""
    integration_ids = {i.integration_id for i in items}
    rotated = dict(
        Credential.objects.filter(integration_id__in=integration_ids)
        .order_by()
        .values("integration_id")
        .annotate(last=Max("last_rotated_at"))
        .values_list("integration_id", "last")
    )
    extra_ids = {gid for i in items if not i.grant_id for gid in i.grant_ids}
    grants = {
        g.pk: g
        for g in Grant.objects.filter(pk__in={i.grant_id for i in items if i.grant_id} | extra_ids)
        .select_related("scope__system")
        .prefetch_related("approvers")
    }
    now = timezone.now()
    groups: OrderedDict[int, dict[str, Any]] = OrderedDict()
    for item in items:
        integration = item.integration
        covered = [grants[g] for g in item.covered_grant_ids() if g in grants]
        rec = recommend(
            integration=integration,
            scopes=[g.scope for g in covered],
            last_rotated=rotated.get(item.integration_id),
            now=now,
        )
        group = groups.setdefault(
            item.integration_id,
            {
                "integration": integration,
                "last_rotated": rotated.get(item.integration_id),
                "items": [],
            },
        )
        group["items"].append({"item": item, "grants": covered, "rec": rec})
    return list(groups.values())


@login_required
@require_GET
def review(request: HttpRequest) -> HttpResponse:
    """My undecided items (or, with ?state=decided, the ones I decided), grouped by integration."""
    state = request.GET.get("state", "open")
    if state == "decided":
        qs = selectors.review_items_for(request.user).filter(decided_by=request.user)
    else:
        qs = selectors.my_open_items(request.user)
    campaign_id = request.GET.get("campaign", "")
    if campaign_id.isdigit():
        qs = qs.filter(campaign_id=int(campaign_id))
    qs = qs.select_related("campaign", "integration__business_owner", "reviewer", "reviewer_group").order_by(
        "campaign__deadline", "integration__name", "integration_id", "pk"
    )
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    items = list(page.object_list)
    return render(
        request,
        "campaigns/review.html",
        {
            "page": page,
            "groups": review_rows(items),
            "state": state,
            "campaign_id": campaign_id,
            "read_only": not permissions._writer(request.user),
            "decisions": [("certify", "Certify (keep)"), ("revoke", "Revoke")],
        },
    )


@login_required
@require_POST
def review_decide(request: HttpRequest) -> HttpResponse:
    """Decide one item or every ticked item with one comment."""
    form = DecideForm(request.POST)
    back = safe_next(request, reverse("campaigns:review"))
    if not form.is_valid():
        messages.error(request, "Tick at least one item and choose a decision.")
        return redirect(back)
    wanted = form.cleaned_data["items"]
    items = list(selectors.review_items_for(request.user).filter(pk__in=wanted))
    if len(items) != len(set(wanted)):
        raise Http404
    result = services.review_items_decide_many(
        actor=request.user, items=items, decision=form.cleaned_data["decision"], comment=form.cleaned_data["comment"]
    )
    if result.decided:
        messages.success(request, f"{len(result.decided)} item(s) decided.")
    for item_id, problem in result.failed.items():
        messages.error(request, f"Item #{item_id}: {problem}")
    return redirect(back)


# --- Report ---------------------------------------------------------------------------------------


def progress_series(campaign: Campaign) -> list[tuple[date, int]]:
    """Cumulative decided items per day from the launch to today (or the close)."""
    if campaign.launched_at is None:
        return []
    per_day = dict(
        ReviewItem.objects.filter(campaign=campaign, decided_at__isnull=False)
        .order_by()
        .annotate(day=TruncDate("decided_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    start = campaign.launched_at.date()
    end = (campaign.closed_at or timezone.now()).date()
    if campaign.deadline:
        end = min(end, max(campaign.deadline.date(), start))
    series: list[tuple[date, int]] = []
    total = sum(n for d, n in per_day.items() if d is not None and d < start)
    day = start
    while day <= end and len(series) < 400:
        total += per_day.get(day, 0)
        series.append((day, total))
        day += timedelta(days=1)
    return series


def chart_svg(series: list[tuple[date, int]], total: int, width: int = 640, height: int = 220) -> dict[str, Any]:
    """Points of an inline SVG line chart (rendered by the template; no script, no CDN)."""
    pad = 36
    if not series:
        return {"points": "", "width": width, "height": height, "pad": pad, "ticks": []}
    span = max(len(series) - 1, 1)
    top = max(total, 1)
    pts = []
    for index, (_day, value) in enumerate(series):
        x = pad + (width - 2 * pad) * index / span
        y = height - pad - (height - 2 * pad) * value / top
        pts.append(f"{x:.1f},{y:.1f}")
    ticks = [{"y": height - pad - (height - 2 * pad) * frac, "label": int(top * frac)} for frac in (0, 0.5, 1)]
    return {
        "points": " ".join(pts),
        "width": width,
        "height": height,
        "pad": pad,
        "ticks": ticks,
        "first": series[0][0],
        "last": series[-1][0],
        "last_value": series[-1][1],
        "x_end": width - pad,
        "y_base": height - pad,
    }


@login_required
@require_GET
def campaign_report(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(request, pk)
    if not _sees_report(request.user, campaign):
        raise PermissionDenied
    items = ReviewItem.objects.filter(campaign=campaign).order_by()
    decided_q = ~Q(status__in=UNDECIDED)
    by_reviewer = list(
        items.values("reviewer__username", "reviewer_group__name")
        .annotate(
            total=Count("pk"),
            decided=Count("pk", filter=decided_q),
            revoked=Count("pk", filter=Q(status=ItemStatus.REVOKED)),
            defaulted=Count("pk", filter=Q(by_default=True)),
        )
        .order_by("reviewer__username", "reviewer_group__name")
    )
    by_owner = list(
        items.values("integration__business_owner__username")
        .annotate(
            total=Count("pk"),
            decided=Count("pk", filter=decided_q),
            revoked=Count("pk", filter=Q(status=ItemStatus.REVOKED)),
        )
        .order_by("integration__business_owner__username")
    )
    by_status = dict(items.values_list("status").annotate(n=Count("pk")))
    totals = items.aggregate(
        total=Count("pk"),
        by_default=Count("pk", filter=Q(by_default=True)),
        applied=Count("pk", filter=Q(applied_at__isnull=False)),
        flagged=Count("pk", filter=Q(flagged=True)),
    )
    # Overdue: a reviewer who let an item reach the default action, or still has undecided
    # items once the deadline has passed.
    past = campaign.deadline is not None and timezone.now() >= campaign.deadline
    overdue = [r for r in by_reviewer if r["defaulted"] or (past and r["decided"] < r["total"])]
    for rows in (by_reviewer, by_owner):
        for r in rows:
            r["percent"] = int(r["decided"] * 100 / r["total"]) if r["total"] else 0
    series = progress_series(campaign)
    return render(
        request,
        "campaigns/report.html",
        {
            "campaign": campaign,
            "by_reviewer": by_reviewer,
            "by_owner": by_owner,
            "by_status": [(label, by_status.get(value, 0)) for value, label in ItemStatus.choices],
            "totals": totals,
            "overdue": overdue,
            "chart": chart_svg(series, totals["total"]),
            "series": series,
        },
    )


CSV_HEADER = [
    "campaign",
    "item_id",
    "integration_id",
    "integration",
    "business_owner",
    "grant_ids",
    "scope",
    "sensitivity",
    "reviewer",
    "reviewer_group",
    "assigned_reason",
    "status",
    "decision",
    "decided_by",
    "decided_at",
    "by_default",
    "comment",
    "confirmed_by",
    "confirmed_at",
    "revocation_applied_at",
    "flagged",
    "escalated_at",
]


def _csv_rows(campaign: Campaign) -> Iterator[str]:
    writer = CsvRowWriter()  # neutralises formula cells (CSV injection)
    yield writer.writerow(CSV_HEADER)
    rows = (
        ReviewItem.objects.filter(campaign=campaign)
        .order_by("pk")
        .values_list(
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
        .iterator(chunk_size=2000)
    )
    for (
        pk,
        iid,
        iname,
        bo,
        gid,
        gids,
        scope,
        sens,
        rev,
        rgroup,
        reason,
        status,
        decision,
        by,
        at,
        by_default,
        comment,
        cby,
        cat,
        applied,
        flagged,
        esc,
    ) in rows:
        grants = str(gid) if gid else " ".join(str(g) for g in gids)
        yield writer.writerow(
            [
                campaign.pk,
                pk,
                iid,
                iname,
                bo,
                grants,
                scope or "",
                sens or "",
                rev or "",
                rgroup or "",
                reason,
                status,
                decision,
                by or "",
                at.isoformat() if at else "",
                by_default,
                comment,
                cby or "",
                cat.isoformat() if cat else "",
                applied.isoformat() if applied else "",
                flagged,
                esc.isoformat() if esc else "",
            ]
        )


@login_required
@require_GET
def campaign_report_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """Every item with its decision, streamed (flat memory whatever the campaign's size)."""
    campaign = _campaign_or_404(request, pk)
    if not _sees_report(request.user, campaign):
        raise PermissionDenied
    response = StreamingHttpResponse(_csv_rows(campaign), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-report.csv"'
    return response
