"""Pages of one access request: what a reviewer needs to judge it (the integration's facts, each
scope, the risk, the chain, every round), the decision form (the queue posts the same form), and
the requester's side — withdrawing, and after "changes requested" editing and resubmitting. Views
parse input, fetch through the selectors (unseen -> 404) and call services, which decide who may
act."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import get_text_list
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals import permissions, selectors, services
from approvals.forms import RESUBMIT_FIELDS, DecisionForm, ResubmitForm
from approvals.models import AccessRequest, Decision, DecisionKind, RequestStatus, RequestStep, StepStatus
from approvals.services.routing import ESCALATION
from approvals.views import decision_choices
from governance.exceptions import DomainError, NotAllowed, NotFound, ValidationFailed
from governance.urls_safety import safe_next
from governance.web import AuthenticatedHttpRequest, attempt
from inventory import permissions as inventory_permissions
from inventory.selectors import binding_of, delegation_chain, identity_status_of, scopes_for


def _wants_json(request: AuthenticatedHttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


# --- The request page ---------------------------------------------------------------------------


def _waiting_for(step: RequestStep) -> str:
    """The people who may still decide ``step``, joined as a sentence ("A, B and C")."""
    names = [
        f"{assignment.user.label}{' (escalation)' if assignment.via == ESCALATION else ''}"
        for assignment in step.assignments.all()
        if assignment.is_open
    ]
    return str(get_text_list(sorted(names), "and"))


def _my_decision(user: Any, step: RequestStep) -> Decision | None:
    return next((decision for decision in step.decisions.all() if decision.reviewer_id == user.pk), None)


def _changes_asked(steps: list[RequestStep]) -> Decision | None:
    """The latest decision that sent the request back for changes (what the requester must do)."""
    asked = [d for step in steps for d in step.decisions.all() if d.decision == DecisionKind.REQUEST_CHANGES]
    return max(asked, key=lambda decision: (decision.created_at, decision.pk), default=None)


def _integration_facts(user: Any, req: AccessRequest) -> dict[str, Any]:
    """What a reviewer judges an integration request by: each requested scope (and whether the
    integration already holds it), its workload identity status and its delegation chain."""
    integration = req.integration
    if integration is None:
        return {"scope_rows": [], "identity_status": None, "binding": None, "chain": None}
    held = selectors.held_scope_codes([integration.pk]).get(integration.pk, set())
    return {
        "scope_rows": [{"scope": scope, "held": scope.code in held} for scope in req.requested_scopes.all()],
        "identity_status": identity_status_of(integration),
        "binding": binding_of(integration),
        "chain": delegation_chain(user, integration),
    }


def _decision_context(
    user: Any, req: AccessRequest, current: RequestStep | None, form: DecisionForm | None
) -> dict[str, Any]:
    """Whether ``user`` may decide the current step now (and the form), or why not — also when
    their own part of it is done and others still have to decide."""
    context: dict[str, Any] = {"can_decide": False, "refusal": "", "mine": None, "form": None}
    if current is None or req.status != RequestStatus.IN_REVIEW:
        return context
    context["waiting_for"] = _waiting_for(current)
    if permissions.can_reassign(user):
        context["reassignable"] = [assignment for assignment in current.assignments.all() if assignment.is_open]
    context["mine"] = _my_decision(user, current)
    if context["mine"] is not None or not permissions.can_decide_any(user):
        return context
    refusal = selectors.step_may_decide(user, req, current)
    if refusal is not None:
        context["refusal"] = refusal
        return context
    if form is None or form.step.pk != current.pk:
        form = DecisionForm(
            req=req, step=current, decisions=decision_choices(req), scopes=selectors.scopes_in_play(req)
        )
    context |= {"can_decide": True, "form": form}
    return context


def _request_page(
    request: AuthenticatedHttpRequest, req: AccessRequest, *, form: DecisionForm | None = None, status: int = 200
) -> HttpResponse:
    """The request page; ``form`` is a refused decision form to show again, every choice kept."""
    steps = list(req.steps.all())
    rounds: dict[int, list[RequestStep]] = {}
    for step in steps:
        rounds.setdefault(step.round, []).append(step)
    current = next((step for step in steps if step.round == req.round and step.status == StepStatus.ACTIVE), None)
    may_withdraw = permissions.can_withdraw(request.user, req)
    return render(
        request,
        "approvals/request_detail.html",
        {
            "req": req,
            "rounds": sorted(rounds.items(), reverse=True),
            "current": current,
            **_decision_context(request.user, req, current, form),
            **_integration_facts(request.user, req),
            "today": timezone.localdate(),
            "grants": list(selectors.grants_from_request(req).order_by("scope__code")),
            "can_withdraw": req.is_open and may_withdraw,
            "can_resubmit": req.status == RequestStatus.CHANGES_REQUESTED and req.may_request_changes and may_withdraw,
            "changes_asked": _changes_asked(steps) if req.status == RequestStatus.CHANGES_REQUESTED else None,
            "jit_grant_minutes": settings.RUNTIME_JIT_GRANT_MINUTES,
        },
        status=status,
    )


@login_required
@require_GET
def request_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Where the request stands and everything needed to judge it: who can still decide the
    current step (names), what each step decided, by whom and why — every round, also after its
    grants expired or were revoked. The approval emails link here."""
    return _request_page(request, get_object_or_404(selectors.access_request_page(request.user), pk=pk))


# --- Deciding -----------------------------------------------------------------------------------


def _decision_form(step: RequestStep, data: Any) -> DecisionForm:
    req = step.request
    scopes = None if req.is_change else selectors.scopes_in_play(req)
    return DecisionForm(data, req=req, step=step, decisions=decision_choices(req), scopes=scopes)


def _decide(request: AuthenticatedHttpRequest, step: RequestStep, form: DecisionForm) -> str:
    """Record the valid ``form``'s decision through the service; returns what to tell the reviewer."""
    req = step.request
    decision = form.cleaned_data["decision"]
    codes = form.approved_codes() if decision == DecisionKind.APPROVE else None
    services.request_decide(
        actor=request.user,
        request=req,
        decision=decision,
        comment=form.cleaned_data.get("comment", ""),
        approved_scopes=list(scopes_for(request.user).filter(code__in=codes)) if codes is not None else None,
        expires_at=form.cleaned_data.get("expires_at") if decision == DecisionKind.APPROVE else None,
        step_id=step.pk,
    )
    if decision == DecisionKind.REQUEST_CHANGES:
        return f"Changes requested: {req.subject_name}."
    return f"{DecisionKind(decision).label}d: {req.subject_name} ({step.name})."


def _form_refused(request: AuthenticatedHttpRequest, step: RequestStep, form: DecisionForm) -> HttpResponse:
    """A decision refused for its input: the queue's script gets the first message as JSON; a
    plain form POST gets the request page again with the form as it was sent and its errors."""
    if _wants_json(request):
        errors = {name: [str(message) for message in found] for name, found in form.errors.items()}
        return JsonResponse({"ok": False, "status": 400, "detail": form.first_error(), "errors": errors}, status=400)
    req = get_object_or_404(selectors.access_request_page(request.user), pk=step.request_id)
    return _request_page(request, req, form=form, status=400)


@login_required
@require_POST
def step_decide(request: AuthenticatedHttpRequest, step_id: int) -> HttpResponse:
    """Decide one step from the queue or the request page. With ``Accept: application/json`` (the
    queue's script) it answers JSON so the item leaves the queue without a reload. A plain form
    POST redirects back with a message; refused input shows the request page again (400) with
    every choice kept, and a refusal of the state (decided meanwhile, not allowed) redirects back
    with its reason."""
    step = get_object_or_404(selectors.steps_for(request.user), pk=step_id)
    back = safe_back(request)
    form = _decision_form(step, request.POST)
    if not form.is_valid():
        return _form_refused(request, step, form)
    try:
        message = _decide(request, step, form)
    except ValidationFailed as exc:
        form.add_service_errors(exc)
        return _form_refused(request, step, form)
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


def safe_back(request: AuthenticatedHttpRequest) -> str:
    """Where a decision returns: the page it was made on (``next``, on this site), else the queue."""
    return safe_next(request, reverse("approvals:queue"))


# --- The requester's side -----------------------------------------------------------------------


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


def _resubmit_form(request: AuthenticatedHttpRequest, req: AccessRequest, data: Any) -> ResubmitForm:
    """The resubmission form: the integration's facts for someone who may change them (the
    inventory's rule), and the scopes the request asks for, filled in as they stand."""
    integration = req.integration
    assert integration is not None  # a request that may come back for changes has an integration
    initial = {name: getattr(integration, name) for name in RESUBMIT_FIELDS}
    initial["requested_scopes"] = [scope.pk for scope in req.requested_scopes.all()]
    return ResubmitForm(
        data,
        initial=initial,
        scopes=scopes_for(request.user),
        editable=inventory_permissions.can_edit(request.user, integration),
    )


def _resubmit_saved(request: AuthenticatedHttpRequest, req: AccessRequest, form: ResubmitForm) -> AccessRequest | None:
    """Resubmit valid input through the service; None (errors put on the form) when refused."""
    if not form.is_valid():
        return None
    try:
        return services.request_resubmit_edited(
            actor=request.user,
            request=req,
            values=form.integration_values(),
            scopes=list(form.cleaned_data["requested_scopes"]),
            comment=form.cleaned_data["comment"],
        )
    except NotFound:
        raise
    except ValidationFailed as exc:
        form.add_service_errors(exc)
        form.forget_refused_secrets()
    except DomainError as exc:
        form.add_error(None, exc.detail)
    return None


@login_required
@require_http_methods(["GET", "POST"])
def request_resubmit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """After "changes requested": the reviewer's comment above the integration's form and the
    scopes asked for; sending it changes the integration and starts the next round of review in
    one transaction. A refused form comes back with everything typed."""
    req = get_object_or_404(selectors.access_request_page(request.user), pk=pk)
    if not permissions.can_withdraw(request.user, req):
        raise NotAllowed("Only the requester or the integration's owners can resubmit this request.")
    if req.status != RequestStatus.CHANGES_REQUESTED or not req.may_request_changes:
        messages.info(request, f"This request is {req.get_status_display().lower()}: it does not wait for changes.")
        return redirect("approvals:request-detail", pk=req.pk)
    form = _resubmit_form(request, req, request.POST if request.method == "POST" else None)
    if request.method == "POST":
        resubmitted = _resubmit_saved(request, req, form)
        if resubmitted is not None:
            messages.success(request, f"Resubmitted: round {resubmitted.round} of the review has started.")
            return redirect("approvals:request-detail", pk=req.pk)
    return render(
        request,
        "approvals/resubmit.html",
        {
            "req": req,
            "form": form,
            "changes_asked": _changes_asked(list(req.steps.all())),
            "has_errors": bool(form.errors),
        },
        status=400 if request.method == "POST" else 200,
    )
