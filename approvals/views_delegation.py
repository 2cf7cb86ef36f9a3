"""Pages of delegation: "my delegations" (hand my reviews to a colleague of my pool for an absence,
see who stands in for whom, revoke), and an IAM admin's reassignment of one open approval step.
Views parse input, fetch through the selectors (unseen: 404) and call the services, which decide
who may act."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from approvals import permissions, selectors, services
from approvals.forms_delegation import COLLEAGUE_DATALIST_ID, DelegationForm, ReassignForm
from approvals.models import MAX_DELEGATION_DAYS
from governance.exceptions import Conflict, DomainError, ValidationFailed
from governance.models import User
from governance.roles import is_auditor, is_iam_admin
from governance.web import AuthenticatedHttpRequest, attempt

DELEGATIONS_PAGE_SIZE = 50
# Suggestions the colleague box lists; more people are found by typing their exact username.
COLLEAGUE_SUGGESTIONS = 200


def _delegator_of(request: AuthenticatedHttpRequest, form: DelegationForm) -> User:
    """The person who is away: the signed-in user, or whom an IAM admin named."""
    username = (form.cleaned_data.get("delegator") or "").strip()
    if not username or username == request.user.username:
        return request.user
    person = User.objects.filter(username=username, is_active=True).first()
    if person is None:
        raise ValidationFailed.on("delegator", f"No active person has the username “{username}”.")
    return person


def _create_from(request: AuthenticatedHttpRequest, form: DelegationForm) -> bool:
    """Create the delegation the valid ``form`` describes; a refusal goes on the form."""
    try:
        delegation = services.delegation_create(
            actor=request.user,
            delegator=_delegator_of(request, form),
            delegate=form.cleaned_data["delegate"],
            starts_at=form.cleaned_data["starts_at"],
            ends_at=form.cleaned_data["ends_at"],
            covers_approvals=form.cleaned_data["covers_approvals"],
            covers_reviews=form.cleaned_data["covers_reviews"],
            reason=form.cleaned_data["reason"],
        )
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        form.add_service_errors(exc)
        return False
    messages.success(
        request,
        f"{delegation.delegate.label} stands in for {delegation.delegator.label} "
        f"from {timezone.localtime(delegation.starts_at):%Y-%m-%d %H:%M} "
        f"to {timezone.localtime(delegation.ends_at):%Y-%m-%d %H:%M}.",
    )
    return True


@login_required
@require_http_methods(["GET", "POST"])
def delegations(request: AuthenticatedHttpRequest) -> HttpResponse:
    """My delegations (given and held; IAM admins and auditors see everyone's), and the form to
    hand my reviews to a colleague of my pool for a period."""
    user = request.user
    may_delegate = permissions.can_delegate(user)
    for_others = may_delegate and is_iam_admin(user)
    colleagues = selectors.delegation_colleagues(user)
    if for_others:
        colleagues = selectors.delegation_candidates()
    form = DelegationForm(request.POST or None, colleagues=colleagues, for_others=for_others)
    if request.method == "POST":
        if not may_delegate:
            raise Http404
        if form.is_valid() and _create_from(request, form):
            return redirect("approvals:delegations")
    page = Paginator(selectors.delegations_for(user), DELEGATIONS_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "approvals/delegations.html",
        {
            "page": page,
            "form": form,
            "may_delegate": may_delegate,
            "for_others": for_others,
            "sees_all": is_iam_admin(user) or is_auditor(user),
            "in_a_pool": bool(selectors.delegation_pool_names(user)) or for_others,
            "colleague_options": list(colleagues[:COLLEAGUE_SUGGESTIONS]),
            "colleague_list_id": COLLEAGUE_DATALIST_ID,
            "max_days": MAX_DELEGATION_DAYS,
        },
    )


@login_required
@require_POST
def delegation_revoke(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    delegation = get_object_or_404(selectors.delegations_for(request.user), pk=pk)
    attempt(
        request,
        lambda: services.delegation_revoke(
            actor=request.user, delegation=delegation, reason=request.POST.get("reason", "")
        ),
        success=f"Revoked: {delegation.delegate.label} no longer stands in for {delegation.delegator.label}.",
    )
    return redirect("approvals:delegations")


@login_required
@require_http_methods(["GET", "POST"])
def assignment_reassign(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """An IAM admin hands one open step assignment to another eligible reviewer (same due time,
    a reason for the audit). Anyone else: 404."""
    assignment = get_object_or_404(selectors.reassignable_assignments(request.user), pk=pk)
    step = assignment.step
    form = ReassignForm(request.POST or None, candidates=selectors.reassign_candidates(step))
    if request.method == "POST" and form.is_valid():
        try:
            services.assignment_reassign(
                actor=request.user,
                assignment=assignment,
                to_user=form.cleaned_data["to_user"],
                reason=form.cleaned_data["reason"],
            )
        except (ValidationFailed, Conflict) as exc:
            form.add_service_errors(exc)
        else:
            messages.success(
                request,
                f"Reassigned “{step.name}” of {step.request.subject_name} from {assignment.user.label} "
                f"to {form.cleaned_data['to_user'].label}.",
            )
            return redirect("approvals:request-detail", pk=step.request_id)
    return render(request, "approvals/reassign.html", {"assignment": assignment, "step": step, "form": form})
