"""Pages of campaigns: definitions (IAM admins), campaigns with launch progress and the default
action's preview, the reviewer's page (items grouped by integration, decide one or many), and
the report with its chart and CSV export. Views parse input, fetch through the selectors
(unseen -> 404) and call services, which decide who may act."""

from __future__ import annotations

from collections import OrderedDict
from datetime import date, datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals.campaigns import permissions, selectors, services
from approvals.campaigns.forms import DecideForm, DefinitionForm
from approvals.campaigns.models import (
    UNDECIDED,
    Campaign,
    CampaignDefinition,
    CampaignStatus,
    ItemDecision,
    ItemStatus,
    ReviewItem,
)
from approvals.campaigns.recommend import recommend
from governance.csv_export import csv_response
from governance.exceptions import DomainError, NotAllowed, NotFound
from governance.models import User
from governance.urls_safety import safe_next
from governance.web import AuthenticatedHttpRequest, attempt

PAGE_SIZE = 50


def _campaign_or_404(request: AuthenticatedHttpRequest, pk: int) -> Campaign:
    campaign = selectors.campaigns_listed(request.user).filter(pk=pk).first()
    if campaign is None:
        raise Http404
    return campaign


def _definition_or_404(request: AuthenticatedHttpRequest, pk: int) -> CampaignDefinition:
    definition = selectors.definitions_for(request.user).filter(pk=pk).first()
    if definition is None:
        raise Http404
    return definition


# --- Campaigns -----------------------------------------------------------------------------------


@login_required
@require_GET
def campaign_list(request: AuthenticatedHttpRequest) -> HttpResponse:
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
            "sees_definitions": selectors.sees_every_campaign(request.user),
        },
    )


def _progress(campaign: Campaign) -> dict[str, Any]:
    total = campaign.total_expected
    done = campaign.processed
    finished = campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.LAUNCHING)
    return {
        "status": campaign.status,
        "status_display": campaign.get_status_display(),
        "processed": done,
        "total_expected": total,
        "items_total": campaign.items_total,
        "percent": 100 if finished else (int(done * 100 / total) if total else 0),
        "finished": finished,
    }


@login_required
@require_GET
def campaign_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(request, pk)
    counts = selectors.item_counts(campaign)
    preview = selectors.default_action_preview(campaign) if campaign.status == CampaignStatus.ACTIVE else None
    return render(
        request,
        "campaigns/campaign_detail.html",
        {
            "campaign": campaign,
            "progress": _progress(campaign),
            "counts": [(label, counts.get(value, 0)) for value, label in ItemStatus.choices],
            "preview": preview,
            "can_launch": campaign.status == CampaignStatus.DRAFT and permissions.can_launch(request.user, campaign),
            "sees_report": permissions.can_see_report(request.user, campaign),
            "my_open": selectors.my_open_items(request.user).filter(campaign=campaign).count(),
        },
    )


@login_required
@require_GET
def campaign_progress(request: AuthenticatedHttpRequest, pk: int) -> JsonResponse:
    """Polled by the campaign page while the worker makes the items."""
    return JsonResponse(_progress(_campaign_or_404(request, pk)))


@login_required
@require_POST
def campaign_launch(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(request, pk)
    attempt(
        request,
        lambda: services.campaign_launch_request(actor=request.user, campaign=campaign),
        success="Launch started: the items are being made in the background.",
    )
    return redirect("campaigns:campaign-detail", pk=campaign.pk)


# --- Definitions ---------------------------------------------------------------------------------


@login_required
@require_GET
def definition_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not selectors.sees_every_campaign(request.user):
        raise Http404
    qs = selectors.definitions_for(request.user).select_related("owner").annotate(runs=Count("campaigns"))
    return render(
        request,
        "campaigns/definition_list.html",
        {
            "definitions": list(qs),
            "can_manage": permissions.can_manage_definitions(request.user),
        },
    )


def _save_definition(
    request: AuthenticatedHttpRequest, form: DefinitionForm, definition: CampaignDefinition | None
) -> bool:
    """Save through the service; its refusals of the input become the form's errors."""
    try:
        saved = services.definition_save(actor=request.user, values=form.cleaned_data, definition=definition)
    except (NotAllowed, NotFound):
        raise
    except DomainError as exc:
        form.add_service_errors(exc)
        return False
    messages.success(request, f"Definition “{saved.name}” saved.")
    return True


@login_required
@require_http_methods(["GET", "POST"])
def definition_edit(request: AuthenticatedHttpRequest, pk: int | None = None) -> HttpResponse:
    definition = None
    if pk is not None:
        definition = _definition_or_404(request, pk)
    elif not selectors.sees_every_campaign(request.user):
        raise Http404
    if request.method == "POST":
        form = DefinitionForm(request.POST)
        if form.is_valid() and _save_definition(request, form, definition):
            return redirect("campaigns:definition-list")
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
            "can_manage": permissions.can_manage_definitions(request.user),
        },
    )


def _start_run(actor: User, definition: CampaignDefinition) -> Campaign:
    campaign = services.campaign_create(actor=actor, definition=definition)
    return services.campaign_launch_request(actor=actor, campaign=campaign)


@login_required
@require_POST
def definition_start(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Create a run of the definition and launch it now."""
    definition = _definition_or_404(request, pk)
    campaign = attempt(
        request,
        lambda: _start_run(request.user, definition),
        success="Campaign launched: the items are being made in the background.",
    )
    if campaign is None:
        return redirect("campaigns:definition-list")
    return redirect("campaigns:campaign-detail", pk=campaign.pk)


# --- Reviewing ----------------------------------------------------------------------------------


def review_rows(items: list[ReviewItem]) -> list[dict[str, Any]]:
    """Items grouped by integration, with what each grant allows, who approved it and when, how
    much it was used lately, the credential's last rotation and a recommendation — in a fixed
    number of queries."""
    rotated = selectors.last_rotations({item.integration_id for item in items})
    grants = selectors.grants_shown({grant_id for item in items for grant_id in item.covered_grant_ids()})
    now = timezone.now()
    groups: OrderedDict[int, dict[str, Any]] = OrderedDict()
    for item in items:
        integration = item.integration
        covered = [grants[grant_id] for grant_id in item.covered_grant_ids() if grant_id in grants]
        advice = recommend(
            integration=integration,
            scopes=[grant.scope for grant in covered],
            last_rotated=rotated.get(item.integration_id),
            now=now,
            grants=covered,
        )
        group = groups.setdefault(
            item.integration_id,
            {"integration": integration, "last_rotated": rotated.get(item.integration_id), "items": []},
        )
        group["items"].append({"item": item, "grants": covered, "rec": advice})
    return list(groups.values())


@login_required
@require_GET
def review(request: AuthenticatedHttpRequest) -> HttpResponse:
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
            "read_only": not permissions.can_write(request.user),
            "decisions": ItemDecision.choices,
        },
    )


@login_required
@require_POST
def review_decide(request: AuthenticatedHttpRequest) -> HttpResponse:
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


def chart_svg(series: list[tuple[date, int]], total: int, width: int = 640, height: int = 220) -> dict[str, Any]:
    """Points of an inline SVG line chart (rendered by the template; no script, no CDN)."""
    pad = 36
    if not series:
        return {"points": "", "width": width, "height": height, "pad": pad, "ticks": []}
    span = max(len(series) - 1, 1)
    top = max(total, 1)
    points = []
    for index, (_day, value) in enumerate(series):
        x = pad + (width - 2 * pad) * index / span
        y = height - pad - (height - 2 * pad) * value / top
        points.append(f"{x:.1f},{y:.1f}")
    ticks = [{"y": height - pad - (height - 2 * pad) * share, "label": int(top * share)} for share in (0, 0.5, 1)]
    return {
        "points": " ".join(points),
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


def _reported_campaign_or_404(request: AuthenticatedHttpRequest, pk: int) -> Campaign:
    """A campaign the user sees (404 otherwise) and whose report they may read (403 otherwise)."""
    campaign = _campaign_or_404(request, pk)
    if not permissions.can_see_report(request.user, campaign):
        raise PermissionDenied
    return campaign


@login_required
@require_GET
def campaign_report(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    campaign = _reported_campaign_or_404(request, pk)
    summary = selectors.report_summary(campaign)
    by_status = selectors.item_counts(campaign)
    series = selectors.progress_series(campaign)
    return render(
        request,
        "campaigns/report.html",
        {
            "campaign": campaign,
            **summary,
            "by_status": [(label, by_status.get(value, 0)) for value, label in ItemStatus.choices],
            "chart": chart_svg(series, summary["totals"]["total"]),
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


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _covered_grants(item: dict[str, Any]) -> str:
    """The item's grant, or the grants of a per-integration item, as space-separated ids."""
    if item["grant_id"]:
        return str(item["grant_id"])
    return " ".join(str(grant_id) for grant_id in item["grant_ids"])


def _csv_row(campaign: Campaign, item: dict[str, Any]) -> list[Any]:
    """One item as the cells of ``CSV_HEADER``: nobody shows as an empty cell, times in ISO 8601."""
    return [
        campaign.pk,
        item["pk"],
        item["integration_id"],
        item["integration__name"],
        item["integration__business_owner__username"],
        _covered_grants(item),
        item["grant__scope__code"] or "",
        item["grant__scope__sensitivity"] or "",
        item["reviewer__username"] or "",
        item["reviewer_group__name"] or "",
        item["assigned_reason"],
        item["status"],
        item["decision"],
        item["decided_by__username"] or "",
        _iso(item["decided_at"]),
        item["by_default"],
        item["comment"],
        item["confirmed_by__username"] or "",
        _iso(item["confirmed_at"]),
        _iso(item["applied_at"]),
        item["flagged"],
        _iso(item["escalated_at"]),
    ]


@login_required
@require_GET
def campaign_report_csv(request: AuthenticatedHttpRequest, pk: int) -> StreamingHttpResponse:
    """Every item with its decision, streamed (flat memory whatever the campaign's size); cells
    that a spreadsheet would read as formulas are neutralised."""
    campaign = _reported_campaign_or_404(request, pk)
    rows = (_csv_row(campaign, item) for item in selectors.report_items(campaign))
    return csv_response(f"campaign-{campaign.pk}-report.csv", CSV_HEADER, rows)
