"""Pages of approvals: the reviewer queue (decide inline, bulk approve low risk), requests and
their evidence, one-click renewal, and the workflow configuration for IAM admins. Views parse
input, fetch through the selectors (unseen -> 404) and call services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals import permissions, selectors, services
from approvals.forms import DecisionForm, ExpiryPolicyForm, WorkflowStepForm
from approvals.models import (
    DecisionKind,
    GrantExpiryPolicy,
    RequestStatus,
    RequestStep,
    RequestType,
    StepStatus,
    Workflow,
    WorkflowStep,
)
from governance.exceptions import DomainError
from governance.roles import is_auditor, sees_everything
from governance.urls_safety import safe_next
from inventory.models import Grant, GrantStatus, RiskTier, Scope

PAGE_SIZE = 50
# Each queue item carries its own decision form: 25 per page keeps a page quick to read and to
# render (20,000 waiting items render in well under 200 ms; see benchmarks/queue_page.py).
QUEUE_PAGE_SIZE = 25


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


# --- Reviewer queue -----------------------------------------------------------------------------


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """Everything waiting for my decision (my groups are resolved into names when a step starts),
    oldest SLA first, with what is needed to decide without opening another page."""
    if not (sees_everything(request.user) or permissions.sees_queue(request.user)):
        raise Http404
    rtype = request.GET.get("type", "") if request.GET.get("type") in RequestType.values else ""
    tier = request.GET.get("tier", "") if request.GET.get("tier") in RiskTier.values else ""
    overdue = request.GET.get("overdue") == "1"
    qs = (
        selectors.queue_for(request.user, type=rtype, tier=tier, overdue=overdue)
        .select_related("step__request__integration", "step__request__requester")
        .prefetch_related(Prefetch("step__request__requested_scopes", queryset=Scope.objects.select_related("system")))
    )
    page = Paginator(qs, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    items = list(page.object_list)
    # What each integration already holds, for the expansion diff: one query for the page.
    held: dict[int, set[str]] = {}
    for integration_id, code in Grant.objects.filter(
        integration_id__in={a.step.request.integration_id for a in items}, status=GrantStatus.ACTIVE
    ).values_list("integration_id", "scope__code"):
        held.setdefault(integration_id, set()).add(code)
    now = timezone.now()
    rows = []
    for a in items:
        req = a.step.request
        holds = held.get(req.integration_id, set())
        rows.append(
            {
                "assignment": a,
                "step": a.step,
                "req": req,
                "integration": req.integration,
                "scopes": [{"scope": s, "held": s.code in holds} for s in req.requested_scopes.all()],
                "held": sorted(holds),
                "overdue": a.due_at is not None and a.due_at < now,
                "bulk_ok": req.integration.risk_tier == RiskTier.LOW,
            }
        )
    query = request.GET.copy()
    query.pop("page", None)
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
            "query": query.urlencode(),
            "decisions": DecisionKind.choices,
            "can_decide": permissions.can_decide_any(request.user),
        },
    )


def _decide_from_post(request: HttpRequest, step: RequestStep) -> str:
    req = step.request
    codes = request.POST.getlist("approved_scopes")
    decision = request.POST.get("decision", "")
    scopes = list(Scope.objects.filter(code__in=codes)) if codes else None
    expires = None
    if request.POST.get("expires_at"):
        form = DecisionForm(
            {"decision": decision or "approve", "expires_at": request.POST["expires_at"], "step": step.pk}
        )
        form.is_valid()
        if "expires_at" in form.errors:
            from governance.exceptions import ValidationFailed

            raise ValidationFailed.on("expires_at", "Enter a date and time like 2026-12-31 17:00.")
        expires = form.cleaned_data.get("expires_at")
    services.request_decide(
        actor=request.user,
        request=req,
        decision=decision,
        comment=request.POST.get("comment", ""),  # type: ignore[arg-type]
        approved_scopes=scopes,
        expires_at=expires,
        step_id=step.pk,
    )
    return (
        f"{DecisionKind(decision).label}d: {req.integration.name} ({step.name})."
        if decision != "request_changes"
        else (f"Changes requested: {req.integration.name}.")
    )


@login_required
@require_POST
def step_decide(request: HttpRequest, step_id: int) -> HttpResponse:
    """Decide one step from the queue or the request page. With ``Accept: application/json`` (the
    queue's script) it answers JSON so the item leaves the queue without a reload; a plain form
    POST redirects back with a message."""
    step = get_object_or_404(
        RequestStep.objects.select_related("request__integration").filter(
            request__in=selectors.access_requests_for(request.user)
        ),
        pk=step_id,
    )
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
        return JsonResponse({"ok": True, "message": message, "queue_count": services.queue_open_count(request.user)})  # type: ignore[arg-type]
    messages.success(request, message)
    return redirect(back)


@login_required
@require_POST
def bulk_approve(request: HttpRequest) -> HttpResponse:
    """Approve several queue items at once — only low-risk ones; each is its own decision (and
    transaction), so one conflict does not undo the others."""
    ids = [int(i) for i in request.POST.getlist("steps") if i.isdigit()][:PAGE_SIZE]
    steps = RequestStep.objects.select_related("request__integration").filter(
        pk__in=ids, request__in=selectors.access_requests_for(request.user)
    )
    done, refused = 0, []
    for step in steps:
        if step.request.integration.risk_tier != RiskTier.LOW:
            refused.append(f"{step.request.integration.name}: only low-risk items can be approved in bulk.")
            continue
        try:
            services.request_decide(
                actor=request.user,
                request=step.request,
                decision=DecisionKind.APPROVE,  # type: ignore[arg-type]
                comment=request.POST.get("comment", "Bulk approval (low risk)."),
                step_id=step.pk,
            )
            done += 1
        except DomainError as exc:
            refused.append(f"{step.request.integration.name}: {exc.detail}")
    if done:
        messages.success(request, f"Approved {done} low-risk item(s).")
    for msg in refused:
        messages.error(request, msg)
    return redirect("approvals:queue")


# --- Requests -----------------------------------------------------------------------------------


@login_required
@require_GET
def request_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "") if request.GET.get("status") in RequestStatus.values else ""
    qs = selectors.access_requests_listed(request.user).order_by("-created_at", "-id")
    if status:
        qs = qs.filter(status=status)
    if request.GET.get("mine") == "1" or not sees_everything(request.user):
        from django.db.models import Q

        qs = qs.filter(
            Q(requester=request.user)
            | Q(integration__business_owner=request.user)
            | Q(integration__technical_owner=request.user)
            | Q(integration__backup_owner=request.user)
        )
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "approvals/request_list.html",
        {
            "page": page,
            "statuses": RequestStatus.choices,
            "status": status,
            "query": query.urlencode(),
        },
    )


@login_required
@require_GET
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Where the request stands: who can decide the current step (names), what each step decided,
    by whom and why — every round, also after its grants expired or were revoked."""
    req = get_object_or_404(selectors.access_request_detail(request.user), pk=pk)
    steps = list(req.steps.all())
    rounds: dict[int, list[RequestStep]] = {}
    for s in steps:
        rounds.setdefault(s.round, []).append(s)
    current = next((s for s in steps if s.round == req.round and s.status == StepStatus.ACTIVE), None)
    can_decide, refusal = False, ""
    if current is not None and req.status == RequestStatus.IN_REVIEW and permissions.can_decide_any(request.user):
        reason = services.step_may_decide(request.user, req, current)  # type: ignore[arg-type]
        can_decide, refusal = reason is None, reason or ""
    grants = list(
        Grant.objects.filter(source_type=services.SOURCE_TYPE, source_id=str(req.pk))
        .select_related("scope")
        .order_by("scope__code")
    )
    return render(
        request,
        "approvals/request_detail.html",
        {
            "req": req,
            "rounds": sorted(rounds.items(), reverse=True),
            "current": current,
            "can_decide": can_decide,
            "refusal": refusal,
            "grants": grants,
            "decisions": DecisionKind.choices,
            "can_withdraw": req.is_open and permissions.can_withdraw(request.user, req),
            "can_resubmit": req.status == RequestStatus.CHANGES_REQUESTED
            and req.type != RequestType.REGISTRATION
            and permissions.can_withdraw(request.user, req),
            "scope_codes": [s.code for s in req.requested_scopes.all()],
        },
    )


@login_required
@require_POST
def request_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    req = get_object_or_404(selectors.access_requests_for(request.user).select_related("integration"), pk=pk)
    try:
        services.request_withdraw(actor=request.user, request=req, reason=request.POST.get("reason", ""))  # type: ignore[arg-type]
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, "The request was withdrawn.")
    return redirect("approvals:request-detail", pk=req.pk)


@login_required
@require_POST
def request_resubmit(request: HttpRequest, pk: int) -> HttpResponse:
    req = get_object_or_404(selectors.access_requests_for(request.user).select_related("integration"), pk=pk)
    try:
        services.request_resubmit(actor=request.user, request=req, comment=request.POST.get("comment", ""))  # type: ignore[arg-type]
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Resubmitted: round {req.round + 1} starts with the first step.")
    return redirect("approvals:request-detail", pk=req.pk)


@login_required
@require_http_methods(["GET", "POST"])
def renew(request: HttpRequest, integration_id: int) -> HttpResponse:
    """The renewal link of the expiry emails: one button asks to renew every active grant."""
    integration = get_object_or_404(selectors.integrations_for(request.user), pk=integration_id)
    if not permissions.can_open_renewal(request.user, integration):
        raise PermissionDenied("Only the integration's owners can ask to renew its access.")
    grants = list(integration.grants.filter(status=GrantStatus.ACTIVE).select_related("scope").order_by("expires_at"))
    error = ""
    if request.method == "POST":
        try:
            req = services.renewal_request_open(
                actor=request.user,
                integration=integration,  # type: ignore[arg-type]
                justification=request.POST.get("justification", ""),
            )
        except DomainError as exc:
            error = exc.detail
        else:
            messages.success(request, "Renewal requested: the reviewers have it in their queue.")
            return redirect("approvals:request-detail", pk=req.pk)
    return render(request, "approvals/renew.html", {"integration": integration, "grants": grants, "error": error})


# --- Workflows (IAM admins) ---------------------------------------------------------------------


def _require_admin(request: HttpRequest) -> None:
    if not permissions.can_manage_workflows(request.user):
        raise Http404


@login_required
@require_http_methods(["GET", "POST"])
def workflow_list(request: HttpRequest) -> HttpResponse:
    """The workflows and expiry policies: IAM admins change them, auditors read them."""
    if not (permissions.can_manage_workflows(request.user) or is_auditor(request.user)):
        raise Http404
    if request.method == "POST":
        _require_admin(request)
    form = ExpiryPolicyForm()
    if request.method == "POST":
        form = ExpiryPolicyForm(request.POST)
        if form.is_valid():
            try:
                services.expiry_policy_set(
                    actor=request.user,
                    risk_tier=form.cleaned_data["risk_tier"],  # type: ignore[arg-type]
                    days=form.cleaned_data["days"],
                )
            except DomainError as exc:
                for field, msgs in exc.errors.items():
                    form.add_error(field if field in form.fields else None, msgs)
            else:
                messages.success(request, "Default grant expiry saved.")
                return redirect("approvals:workflow-list")
    workflows = Workflow.objects.prefetch_related(
        Prefetch("steps", queryset=WorkflowStep.objects.select_related("pool_group").order_by("order"))
    )
    return render(
        request,
        "approvals/workflow_list.html",
        {
            "workflows": workflows,
            "policies": GrantExpiryPolicy.objects.all(),
            "form": form,
            "can_edit": permissions.can_manage_workflows(request.user),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def workflow_step_edit(request: HttpRequest, workflow_id: int, step_id: int | None = None) -> HttpResponse:
    _require_admin(request)
    workflow = get_object_or_404(Workflow, pk=workflow_id)
    step = get_object_or_404(WorkflowStep, pk=step_id, workflow=workflow) if step_id else None
    form = WorkflowStepForm(request.POST or None, instance=step)
    if request.method == "POST" and form.is_valid():
        values = {k: v for k, v in form.cleaned_data.items() if k != "pool_users"}
        try:
            services.workflow_step_save(
                actor=request.user,
                workflow=workflow,
                step=step,
                values=values,  # type: ignore[arg-type]
                pool_users=list(form.cleaned_data["pool_users"]),
            )
        except DomainError as exc:
            for field, msgs in exc.errors.items():
                form.add_error(field if field in form.fields else None, msgs)
            if not exc.errors:
                form.add_error(None, exc.detail)
        else:
            messages.success(request, f"Step saved in {workflow.name}. Running requests keep their steps.")
            return redirect("approvals:workflow-list")
    return render(request, "approvals/step_form.html", {"workflow": workflow, "step": step, "form": form})


@login_required
@require_POST
def workflow_step_delete(request: HttpRequest, workflow_id: int, step_id: int) -> HttpResponse:
    _require_admin(request)
    step = get_object_or_404(WorkflowStep, pk=step_id, workflow_id=workflow_id)
    try:
        services.workflow_step_delete(actor=request.user, step=step)  # type: ignore[arg-type]
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, "Step removed.")
    return redirect("approvals:workflow-list")
