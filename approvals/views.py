"""Pages of approvals: the reviewer queue (decide inline, bulk approve low risk), requests and
their evidence, one-click renewal, and the workflow configuration for IAM admins. Views parse
input, fetch through the selectors (unseen -> 404) and call services, which decide who may act."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals import permissions, selectors, services
from approvals.forms import DecisionForm, ExpiryPolicyForm, WorkflowStepForm
from approvals.models import (
    AccessRequest,
    DecisionKind,
    RequestStatus,
    RequestStep,
    RequestType,
    StepAssignment,
    StepStatus,
)
from governance.exceptions import Conflict, DomainError, NotAllowed, ValidationFailed
from governance.roles import sees_everything
from governance.urls_safety import safe_next
from governance.web import AuthenticatedHttpRequest, attempt
from inventory.choices import RiskTier
from inventory.selectors import integrations_for, owned_by, scopes_for

PAGE_SIZE = 50
# Each queue item carries its own decision form: 25 per page keeps a page quick to read and to
# render (20,000 waiting items render in well under 200 ms; see benchmarks/queue_page.py).
QUEUE_PAGE_SIZE = 25


def _wants_json(request: AuthenticatedHttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


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


@login_required
@require_GET
def queue(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Everything waiting for my decision (my groups are resolved into names when a step starts),
    oldest SLA first, with what is needed to decide without opening another page."""
    if not (sees_everything(request.user) or permissions.sees_queue(request.user)):
        raise Http404
    rtype = request.GET.get("type", "") if request.GET.get("type") in RequestType.values else ""
    tier = request.GET.get("tier", "") if request.GET.get("tier") in RiskTier.values else ""
    overdue = request.GET.get("overdue") == "1"
    qs = selectors.queue_listed(request.user, type=rtype, tier=tier, overdue=overdue)
    page = Paginator(qs, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "approvals/queue.html",
        {
            "page": page,
            "rows": _queue_rows(list(page.object_list)),
            "types": RequestType.choices,
            "tiers": RiskTier.choices,
            "type": rtype,
            "tier": tier,
            "overdue": overdue,
            "query": _query_without_page(request),
            "can_decide": permissions.can_decide_any(request.user),
        },
    )


def _decide_from_post(request: AuthenticatedHttpRequest, step: RequestStep) -> str:
    req = step.request
    codes = request.POST.getlist("approved_scopes")
    decision = request.POST.get("decision", "")
    scopes = list(scopes_for(request.user).filter(code__in=codes)) if codes else None
    expires = None
    if request.POST.get("expires_at"):
        form = DecisionForm(
            {"decision": decision or "approve", "expires_at": request.POST["expires_at"], "step": step.pk}
        )
        form.is_valid()
        if "expires_at" in form.errors:
            raise ValidationFailed.on("expires_at", "Enter a date and time like 2026-12-31 17:00.")
        expires = form.cleaned_data.get("expires_at")
    services.request_decide(
        actor=request.user,
        request=req,
        decision=decision,
        comment=request.POST.get("comment", ""),
        approved_scopes=scopes,
        expires_at=expires,
        step_id=step.pk,
    )
    if decision == DecisionKind.REQUEST_CHANGES:
        return f"Changes requested: {req.subject_name}."
    return f"{DecisionKind(decision).label}d: {req.subject_name} ({step.name})."


@login_required
@require_POST
def step_decide(request: AuthenticatedHttpRequest, step_id: int) -> HttpResponse:
    """Decide one step from the queue or the request page. With ``Accept: application/json`` (the
    queue's script) it answers JSON so the item leaves the queue without a reload; a plain form
    POST redirects back with a message — a refusal too, as the queue reports each item's."""
    step = get_object_or_404(selectors.steps_for(request.user), pk=step_id)
    back = safe_next(request, reverse("approvals:queue"))
    try:
        message = _decide_from_post(request, step)
    except DomainError as exc:
        if _wants_json(request):
            return JsonResponse(
                {"ok": False, "status": exc.status, "detail": exc.detail, "errors": exc.errors}, status=exc.status
            )
        messages.error(request, exc.detail)
        return redirect(back)
    if _wants_json(request):
        return JsonResponse({"ok": True, "message": message, "queue_count": selectors.queue_open_count(request.user)})
    messages.success(request, message)
    return redirect(back)


@login_required
@require_POST
def bulk_approve(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Approve several queue items at once — only low-risk ones; each is its own decision (and
    transaction), so one conflict or refusal does not undo the others."""
    ids = [int(value) for value in request.POST.getlist("steps") if value.isdigit()][:PAGE_SIZE]
    done, refused = 0, []
    for step in selectors.steps_for(request.user).filter(pk__in=ids):
        integration = step.request.integration
        if integration is None or integration.risk_tier != RiskTier.LOW:
            refused.append(f"{step.request.subject_name}: only low-risk items can be approved in bulk.")
            continue
        try:
            services.request_decide(
                actor=request.user,
                request=step.request,
                decision=DecisionKind.APPROVE,
                comment=request.POST.get("comment", "Bulk approval (low risk)."),
                step_id=step.pk,
            )
            done += 1
        except DomainError as exc:
            refused.append(f"{step.request.subject_name}: {exc.detail}")
    if done:
        messages.success(request, f"Approved {done} low-risk item(s).")
    for msg in refused:
        messages.error(request, msg)
    return redirect("approvals:queue")


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
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "approvals/request_list.html",
        {
            "page": page,
            "statuses": RequestStatus.choices,
            "status": status,
            "query": _query_without_page(request),
        },
    )


@login_required
@require_GET
def request_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Where the request stands: who can decide the current step (names), what each step decided,
    by whom and why — every round, also after its grants expired or were revoked."""
    req = get_object_or_404(selectors.access_request_detail(request.user), pk=pk)
    steps = list(req.steps.all())
    rounds: dict[int, list[RequestStep]] = {}
    for step in steps:
        rounds.setdefault(step.round, []).append(step)
    current = next((step for step in steps if step.round == req.round and step.status == StepStatus.ACTIVE), None)
    can_decide, refusal = False, ""
    if current is not None and req.status == RequestStatus.IN_REVIEW and permissions.can_decide_any(request.user):
        reason = selectors.step_may_decide(request.user, req, current)
        can_decide, refusal = reason is None, reason or ""
    may_withdraw = permissions.can_withdraw(request.user, req)
    return render(
        request,
        "approvals/request_detail.html",
        {
            "req": req,
            "rounds": sorted(rounds.items(), reverse=True),
            "current": current,
            "can_decide": can_decide,
            "refusal": refusal,
            "grants": list(selectors.grants_from_request(req).order_by("scope__code")),
            "decisions": decision_choices(req),
            "can_withdraw": req.is_open and may_withdraw,
            "can_resubmit": req.status == RequestStatus.CHANGES_REQUESTED
            and req.type != RequestType.REGISTRATION
            and may_withdraw,
            "scope_codes": [scope.code for scope in req.requested_scopes.all()],
            "jit_grant_minutes": settings.RUNTIME_JIT_GRANT_MINUTES,
        },
    )


@login_required
@require_POST
def request_withdraw(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    req = get_object_or_404(selectors.access_requests_for(request.user).select_related("integration"), pk=pk)
    attempt(
        request,
        lambda: services.request_withdraw(actor=request.user, request=req, reason=request.POST.get("reason", "")),
        success="The request was withdrawn.",
    )
    return redirect("approvals:request-detail", pk=req.pk)


@login_required
@require_POST
def request_resubmit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    req = get_object_or_404(selectors.access_requests_for(request.user).select_related("integration"), pk=pk)
    attempt(
        request,
        lambda: services.request_resubmit(actor=request.user, request=req, comment=request.POST.get("comment", "")),
        success=lambda resubmitted: f"Resubmitted: round {resubmitted.round} starts with the first step.",
    )
    return redirect("approvals:request-detail", pk=req.pk)


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


# --- Workflows (IAM admins change them, auditors read them) -------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def workflow_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The workflows and expiry policies, with the form that sets a tier's default expiry."""
    if not permissions.can_read_workflows(request.user):
        raise Http404
    form = ExpiryPolicyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.expiry_policy_set(
                actor=request.user, risk_tier=form.cleaned_data["risk_tier"], days=form.cleaned_data["days"]
            )
        except ValidationFailed as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "Default grant expiry saved.")
            return redirect("approvals:workflow-list")
    return render(
        request,
        "approvals/workflow_list.html",
        {
            "workflows": selectors.workflows_for(request.user),
            "policies": selectors.expiry_policies(),
            "form": form,
            "can_edit": permissions.can_manage_workflows(request.user),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def workflow_step_edit(request: AuthenticatedHttpRequest, workflow_id: int, step_id: int | None = None) -> HttpResponse:
    workflow = get_object_or_404(selectors.workflows_for(request.user), pk=workflow_id)
    # The form is shown only to those who may save it; a save is refused by the service.
    if request.method == "GET" and not permissions.can_manage_workflows(request.user):
        raise Http404
    step = (
        get_object_or_404(selectors.workflow_steps_for(request.user), pk=step_id, workflow=workflow)
        if step_id
        else None
    )
    form = WorkflowStepForm(request.POST or None, instance=step)
    if request.method == "POST" and form.is_valid():
        values = {name: value for name, value in form.cleaned_data.items() if name != "pool_users"}
        try:
            services.workflow_step_save(
                actor=request.user,
                workflow=workflow,
                step=step,
                values=values,
                pool_users=list(form.cleaned_data["pool_users"]),
            )
        except ValidationFailed as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Step saved in {workflow.name}. Running requests keep their steps.")
            return redirect("approvals:workflow-list")
    return render(request, "approvals/step_form.html", {"workflow": workflow, "step": step, "form": form})


@login_required
@require_POST
def workflow_step_delete(request: AuthenticatedHttpRequest, workflow_id: int, step_id: int) -> HttpResponse:
    step = get_object_or_404(selectors.workflow_steps_for(request.user), pk=step_id, workflow_id=workflow_id)
    attempt(request, lambda: services.workflow_step_delete(actor=request.user, step=step), success="Step removed.")
    return redirect("approvals:workflow-list")
