"""Pages of campaigns: definitions (IAM admins; a sectioned form, the recurrence in words, a
delete confirmed on a page), campaigns with launch progress, the default action's preview and
closing early once everything is decided (confirmed on a page), and the report with its chart
and CSV export. The reviewer's page is in ``views_review``. Views parse input, fetch through the
selectors (unseen -> 404) and call services, which decide who may act."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals.campaigns import permissions, selectors, services
from approvals.campaigns.chart import Chart, build_chart, daily_buckets, hourly_buckets
from approvals.campaigns.cron import cron_explain
from approvals.campaigns.forms import DefinitionForm
from approvals.campaigns.models import (
    UNDECIDED,
    Campaign,
    CampaignDefinition,
    CampaignStatus,
    ItemStatus,
)
from governance.csv_export import csv_response
from governance.exceptions import DomainError, NotAllowed, NotFound
from governance.forms import people_options
from governance.models import User
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


def state_label(campaign: Campaign, undecided: int) -> str:
    """The campaign's state as its people read it: a running campaign with nothing left to
    decide says so, and when it closes."""
    if campaign.status == CampaignStatus.ACTIVE and not undecided:
        closes = f"; closes on {campaign.deadline:%Y-%m-%d}" if campaign.deadline else ""
        return f"All decided{closes}"
    return campaign.get_status_display()


@login_required
@require_GET
def campaign_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    qs = (
        selectors.campaigns_listed(request.user)
        .annotate(open_items=Count("items", filter=Q(items__status__in=UNDECIDED)), all_items=Count("items"))
        .order_by("-created_at", "-id")
    )
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    campaigns = list(page.object_list)
    for campaign in campaigns:
        campaign.state_label = state_label(campaign, campaign.open_items)  # type: ignore[attr-defined]
    return render(
        request,
        "campaigns/campaign_list.html",
        {
            "page": page,
            "campaigns": campaigns,
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
    undecided = sum(counts.get(status, 0) for status in UNDECIDED)
    running = campaign.status == CampaignStatus.ACTIVE
    preview = selectors.default_action_preview(campaign) if running and undecided else None
    may_act = permissions.can_launch(request.user, campaign)
    return render(
        request,
        "campaigns/campaign_detail.html",
        {
            "campaign": campaign,
            "state_label": state_label(campaign, undecided),
            "progress": _progress(campaign),
            "counts": [(label, counts.get(value, 0)) for value, label in ItemStatus.choices],
            "preview": preview,
            "can_launch": campaign.status == CampaignStatus.DRAFT and may_act,
            "can_cancel": campaign.status == CampaignStatus.DRAFT and may_act,
            "can_close": running and not undecided and may_act,
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


def _campaign_allowed_or_404(
    request: AuthenticatedHttpRequest, pk: int, allowed: Callable[[Any, Campaign], bool]
) -> Campaign:
    """A campaign the user sees (404 otherwise) and for which ``allowed`` holds (403 otherwise)."""
    campaign = _campaign_or_404(request, pk)
    if not allowed(request.user, campaign):
        raise PermissionDenied
    return campaign


@login_required
@require_http_methods(["GET", "POST"])
def campaign_close(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Close a running campaign whose items are all decided, before its deadline: a page that
    says what closing does, then the same close as the deadline's."""
    campaign = _campaign_allowed_or_404(request, pk, permissions.can_launch)
    if request.method == "POST":
        attempt(
            request,
            lambda: services.campaign_close_early(actor=request.user, campaign=campaign),
            success="Campaign closed: its report is final.",
        )
        return redirect("campaigns:campaign-detail", pk=campaign.pk)
    counts = selectors.item_counts(campaign)
    return render(
        request,
        "campaigns/campaign_close.html",
        {
            "campaign": campaign,
            "undecided": sum(counts.get(status, 0) for status in UNDECIDED),
            "revoked": counts.get(ItemStatus.REVOKED, 0),
            "held": campaign.items.filter(status=ItemStatus.REVOKED, applied_at__isnull=True).count(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def campaign_cancel(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Cancel a draft that was never launched, after a page that asks to confirm it."""
    campaign = _campaign_allowed_or_404(request, pk, permissions.can_launch)
    if request.method == "POST":
        reason = request.POST.get("reason", "").strip()[:500]
        attempt(
            request,
            lambda: services.campaign_cancel(actor=request.user, campaign=campaign, reason=reason),
            success="Campaign cancelled.",
        )
        return redirect("campaigns:campaign-detail", pk=campaign.pk)
    return render(request, "campaigns/campaign_cancel.html", {"campaign": campaign})


# --- Definitions ---------------------------------------------------------------------------------


@login_required
@require_GET
def definition_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not selectors.sees_every_campaign(request.user):
        raise Http404
    qs = selectors.definitions_for(request.user).select_related("owner").annotate(runs=Count("campaigns"))
    definitions = list(qs)
    for definition in definitions:
        definition.schedule_words = cron_explain(definition.recurrence).description  # type: ignore[attr-defined]
    return render(
        request,
        "campaigns/definition_list.html",
        {
            "definitions": definitions,
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


def _definition_page(
    request: AuthenticatedHttpRequest, form: DefinitionForm, definition: CampaignDefinition | None
) -> HttpResponse:
    initial = form.initial
    named = [initial.get("owner"), initial.get("fallback_user"), *initial.get("business_owners", [])]
    return render(
        request,
        "campaigns/definition_form.html",
        {
            "form": form,
            "definition": definition,
            "can_manage": permissions.can_manage_definitions(request.user),
            "people_options": people_options(request.user, *named),
            "group_options": list(Group.objects.order_by("name").values_list("name", flat=True)),
            "cron": cron_explain(form.recurrence_value()),
        },
    )


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
    return _definition_page(request, form, definition)


@login_required
@require_GET
def definition_cron(request: AuthenticatedHttpRequest) -> JsonResponse:
    """A recurrence in words with its next runs, as the definition form types it."""
    if not selectors.sees_every_campaign(request.user):
        raise Http404
    return JsonResponse(cron_explain(request.GET.get("expr", "")[:100]).as_json())


@login_required
@require_http_methods(["GET", "POST"])
def definition_delete(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Delete a definition that never ran, after a page that asks to confirm it."""
    definition = _definition_or_404(request, pk)
    if not permissions.can_manage_definitions(request.user):
        raise PermissionDenied
    if request.method == "POST":
        deleted = attempt(
            request,
            lambda: services.definition_delete(actor=request.user, definition=definition),
            success=f"Definition “{definition.name}” deleted.",
        )
        if deleted is None:
            return redirect("campaigns:definition-edit", pk=definition.pk)
        return redirect("campaigns:definition-list")
    return render(
        request,
        "campaigns/definition_delete.html",
        {"definition": definition, "runs": selectors.campaigns_for(request.user).filter(definition=definition).count()},
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


# --- Report ---------------------------------------------------------------------------------------


def progress_chart(campaign: Campaign, series: list[tuple[date, int]]) -> Chart | None:
    """Decisions per hour when the campaign so far spans one day, per day otherwise (``series``:
    the cumulative decided items per day); None before the launch."""
    if not series:
        return None
    if len(series) == 1:
        day = series[0][0]
        return build_chart(
            hourly_buckets(day, selectors.decisions_per_hour(campaign, day)),
            title=f"Items decided per hour on {day:%Y-%m-%d}",
            x_title=f"Hour of {day:%d %b %Y} (UTC)",
        )
    return build_chart(
        daily_buckets(series),
        title=f"Items decided per day, {series[0][0]:%Y-%m-%d} to {series[-1][0]:%Y-%m-%d}",
        x_title="Day (UTC)",
    )


@login_required
@require_GET
def campaign_report(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_allowed_or_404(request, pk, permissions.can_see_report)
    summary = selectors.report_summary(campaign)
    by_status = selectors.item_counts(campaign)
    series = selectors.progress_series(campaign)
    undecided = sum(by_status.get(status, 0) for status in UNDECIDED)
    return render(
        request,
        "campaigns/report.html",
        {
            "campaign": campaign,
            **summary,
            "state_label": state_label(campaign, undecided),
            "by_status": [(label, by_status.get(value, 0)) for value, label in ItemStatus.choices],
            "chart": progress_chart(campaign, series),
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
    campaign = _campaign_allowed_or_404(request, pk, permissions.can_see_report)
    rows = (_csv_row(campaign, item) for item in selectors.report_items(campaign))
    return csv_response(f"campaign-{campaign.pk}-report.csv", CSV_HEADER, rows)
