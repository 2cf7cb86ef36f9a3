"""Pages of approvals: the reviewer queue (decide inline, bulk approve low risk), requests and
their evidence, one-click renewal, and the workflow configuration for IAM admins. Views parse
input, fetch through the selectors (unseen -> 404) and call services, which decide who may act."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals import permissions, selectors, services
from approvals.filters import RequestEvidenceFilter
from approvals.models import (
    AccessRequest,
    DecisionKind,
    RequestStatus,
    RequestType,
    StepAssignment,
)
from governance.exceptions import Conflict, DomainError, NotAllowed, ValidationFailed
from governance.paging import EstimatedCountPaginator
from governance.roles import sees_everything
from governance.urls_safety import safe_next
from governance.web import AuthenticatedHttpRequest
from inventory.choices import RiskTier
from inventory.selectors import integrations_for, owned_by

PAGE_SIZE = 50
# Each queue item carries its own decision form: 25 per page keeps a page quick to read and to
# render (20,000 waiting items render in well under 200 ms; see benchmarks/queue_page.py).
QUEUE_PAGE_SIZE = 25


def _query_without_page(request: AuthenticatedHttpRequest) -> str:
    """The list's filters, for the pagination links to keep."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


# --- Reviewer queue -----------------------------------------------------------------------------


def decision_choices(req: AccessRequest) -> list[tuple[str, str]]:
    """The decisions a reviewer is offered: an elevation is approved or rejected (the integration
    asked at run time; nobody could make changes), and so is a change request (it names one fixed
    version); any other request may also go back for changes."""
    if not req.may_request_changes:
        return [(value, label) for value, label in DecisionKind.choices if value != DecisionKind.REQUEST_CHANGES]
    return list(DecisionKind.choices)


def _queue_rows(items: list[StepAssignment]) -> list[dict[str, Any]]:
    """What each queue item shows, with what its integration already holds (for the expansion
    diff): one query for the page. A change request has no integration, scopes or bulk approval."""
    held = selectors.held_scope_codes(
        assignment.step.request.integration_id
        for assignment in items
        if assignment.step.request.integration_id is not None
    )
    now = timezone.now()
    rows = []
    for assignment in items:
        req = assignment.step.request
        holds = held.get(req.integration_id, set()) if req.integration_id is not None else set()
        rows.append(
            {
                "assignment": assignment,
                "step": assignment.step,
                "req": req,
                "integration": req.integration,
                "scopes": [{"scope": scope, "held": scope.code in holds} for scope in req.requested_scopes.all()],
                "held": sorted(holds),
                "overdue": assignment.due_at is not None and assignment.due_at < now,
                "bulk_ok": req.integration is not None and req.integration.risk_tier == RiskTier.LOW,
                "decisions": decision_choices(req),
            }
        )
    return rows


# The queue shows cards (everything at once) or a table (one row per item, details on demand);
# the choice is kept in the query string and remembered in the session for the next visit.
QUEUE_VIEWS = ("cards", "table")
QUEUE_VIEW_SESSION_KEY = "approvals.queue_view"
# The table's sortable columns: (column, key of the first click, key of the second). Risk sorts
# highest first on the first click; the others start ascending. Keys are selectors.QUEUE_SORTS.
_QUEUE_SORT_COLUMNS = (
    ("name", "name", "-name"),
    ("risk", "risk", "-risk"),
    ("requested", "requested", "-requested"),
    ("due", "due", "-due"),
)
_DESCENDING_SORTS = {"-name", "risk", "-requested", "-due"}
QUEUE_SORT_CHOICES = (
    ("due", "Due date, soonest first"),
    ("-due", "Due date, latest first"),
    ("risk", "Risk, highest first"),
    ("-risk", "Risk, lowest first"),
    ("requested", "Requested, oldest first"),
    ("-requested", "Requested, newest first"),
    ("name", "Name, A to Z"),
    ("-name", "Name, Z to A"),
)


def _queue_view(request: AuthenticatedHttpRequest) -> str:
    """Cards or table: the query string's choice (remembered), else the remembered one."""
    chosen = request.GET.get("view", "")
    if chosen in QUEUE_VIEWS:
        if request.session.get(QUEUE_VIEW_SESSION_KEY) != chosen:
            request.session[QUEUE_VIEW_SESSION_KEY] = chosen
        return chosen
    remembered = request.session.get(QUEUE_VIEW_SESSION_KEY)
    return remembered if remembered in QUEUE_VIEWS else QUEUE_VIEWS[0]


def _queue_link(request: AuthenticatedHttpRequest, **changes: str) -> str:
    """The queue with the current filters, back on page one, and ``changes`` applied."""
    query = request.GET.copy()
    query.pop("page", None)
    for key, value in changes.items():
        query[key] = value
    return f"?{query.urlencode()}"


def _queue_sorting(request: AuthenticatedHttpRequest, sort: str) -> dict[str, dict[str, str]]:
    """Per sortable column: the link a click on its header follows, and its ``aria-sort``."""
    sorting = {}
    for column, first, second in _QUEUE_SORT_COLUMNS:
        active = sort in (first, second)
        sorting[column] = {
            "href": _queue_link(request, sort=second if sort == first else first, view="table"),
            "aria_sort": ("descending" if sort in _DESCENDING_SORTS else "ascending") if active else "none",
        }
    return sorting


def _queue_page(request: AuthenticatedHttpRequest, *, type: str, tier: str, overdue: bool, sort: str) -> Page:
    """The requested page of the queue, counted up to a bound and estimated beyond it ("about
    50,000": see governance.paging). A sort on the request's or integration's columns pages the
    narrow ordered ids, then reads only that page's items (see selectors.QUEUE_JOINED_SORTS)."""
    if sort not in selectors.QUEUE_JOINED_SORTS:
        listed = selectors.queue_listed(request.user, type=type, tier=tier, overdue=overdue, sort=sort)
        return EstimatedCountPaginator(listed, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    ordered = selectors.queue_ordered_ids(request.user, type=type, tier=tier, overdue=overdue, sort=sort)
    page = EstimatedCountPaginator(ordered, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = selectors.queue_items(list(page.object_list))
    return page


@login_required
@require_GET
def queue(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Everything waiting for my decision (my groups are resolved into names when a step starts),
    oldest SLA first unless sorted otherwise, with what is needed to decide without opening
    another page — as cards or as a table with details on demand."""
    if not (sees_everything(request.user) or permissions.sees_queue(request.user)):
        raise Http404
    rtype = request.GET.get("type", "") if request.GET.get("type") in RequestType.values else ""
    tier = request.GET.get("tier", "") if request.GET.get("tier") in RiskTier.values else ""
    overdue = request.GET.get("overdue") == "1"
    sort = request.GET.get("sort", "")
    sort = sort if sort in selectors.QUEUE_SORTS else selectors.QUEUE_DEFAULT_SORT
    view = _queue_view(request)
    page = _queue_page(request, type=rtype, tier=tier, overdue=overdue, sort=sort)
    rows = _queue_rows(list(page.object_list))
    can_decide = permissions.can_decide_any(request.user)
    return render(
        request,
        "approvals/queue.html",
        {
            "page": page,
            "rows": rows,
            "types": RequestType.choices,
            "tiers": RiskTier.choices,
            "type": rtype,
            "tier": tier,
            "overdue": overdue,
            "sort": sort,
            "sort_choices": QUEUE_SORT_CHOICES,
            "sorting": _queue_sorting(request, sort),
            "view": view,
            "view_links": {name: _queue_link(request, view=name) for name in QUEUE_VIEWS},
            "query": _query_without_page(request),
            "can_decide": can_decide,
            "any_bulk": can_decide and any(row["bulk_ok"] for row in rows),
        },
    )


def _bulk_summary(approved: list[str], refused: list[str], waiting: int) -> tuple[str, str]:
    """What a bulk approval tells the reviewer: who was approved with the new queue count, and
    each refusal with its reason (either part empty when there is nothing to say)."""
    done = ""
    if approved:
        items = "item" if len(approved) == 1 else "items"
        done = f"Approved {len(approved)} low-risk {items}: {', '.join(approved)}. {waiting} waiting."
    not_done = ""
    if refused:
        not_done = f"Not approved ({len(refused)}): {'; '.join(refused)}"
    return done, not_done


@login_required
@require_POST
def bulk_approve(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Approve several queue items at once — only low-risk ones; each is its own decision (and
    transaction), so one conflict or refusal does not undo the others. Nothing ticked is an
    error the reviewer is told about, never a quiet no-op."""
    back = safe_next(request, reverse("approvals:queue"))
    ids = [int(value) for value in request.POST.getlist("steps") if value.isdigit()][:PAGE_SIZE]
    if not ids:
        messages.error(request, "Nothing was approved: tick at least one low-risk item to approve in bulk.")
        return redirect(back)
    approved, refused = [], []
    for step in selectors.steps_for(request.user).filter(pk__in=ids).order_by("pk"):
        name = step.request.subject_name
        integration = step.request.integration
        if integration is None or integration.risk_tier != RiskTier.LOW:
            refused.append(f"{name}: only low-risk items can be approved in bulk.")
            continue
        try:
            services.request_decide(
                actor=request.user,
                request=step.request,
                decision=DecisionKind.APPROVE,
                comment=request.POST.get("comment", "Bulk approval (low risk)."),
                step_id=step.pk,
            )
            approved.append(name)
        except DomainError as exc:
            refused.append(f"{name}: {exc.detail}")
    if not approved and not refused:
        messages.error(request, "Nothing was approved: none of the ticked items waits for you any more.")
        return redirect(back)
    done, not_done = _bulk_summary(approved, refused, selectors.queue_open_count(request.user))
    if done:
        messages.success(request, done)
    if not_done:
        messages.error(request, not_done)
    return redirect(back)


# --- Requests -----------------------------------------------------------------------------------


@login_required
@require_GET
def request_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    status = request.GET.get("status", "") if request.GET.get("status") in RequestStatus.values else ""
    qs = selectors.access_requests_listed(request.user).order_by("-created_at", "-id")
    if status:
        qs = qs.filter(status=status)
    if request.GET.get("mine") == "1" or not sees_everything(request.user):
        qs = qs.filter(Q(requester=request.user) | owned_by(request.user, "integration__"))
    # A control's evidence link names the requests behind its figure (?closed_since=, ?overdue=...).
    evidence = RequestEvidenceFilter(request.GET, queryset=qs)
    qs = evidence.qs if evidence.is_valid() else qs.none()
    # Counted up to a bound, estimated beyond it ("about 70,000"): see governance.paging.
    page = EstimatedCountPaginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "approvals/request_list.html",
        {
            "page": page,
            "statuses": RequestStatus.choices,
            "status": status,
            "evidence": evidence.describe(),
            "evidence_errors": evidence.errors,
            "query": _query_without_page(request),
        },
    )


# The request page, deciding a step, withdrawing and resubmitting: ``approvals.views_requests``.


@login_required
@require_http_methods(["GET", "POST"])
def renew(request: AuthenticatedHttpRequest, integration_id: int) -> HttpResponse:
    """The renewal link of the expiry emails: one button asks to renew every active grant. Only
    the integration's owners are offered it; the service refuses anyone else."""
    integration = get_object_or_404(integrations_for(request.user), pk=integration_id)
    error = ""
    if request.method == "POST":
        try:
            req = services.renewal_request_open(
                actor=request.user, integration=integration, justification=request.POST.get("justification", "")
            )
        except (Conflict, ValidationFailed) as exc:
            error = exc.detail
        else:
            messages.success(request, "Renewal requested: the reviewers have it in their queue.")
            return redirect("approvals:request-detail", pk=req.pk)
    elif not permissions.can_open_renewal(request.user, integration):
        raise NotAllowed("Only the integration's owners can ask to renew its access.")
    grants = list(selectors.grants_to_renew(integration))
    return render(request, "approvals/renew.html", {"integration": integration, "grants": grants, "error": error})
