"""Pages of the workflow configuration: IAM admins change it, auditors read it. The workflows are
listed by request type, then by risk tier from low to critical; a step is edited in a form that
shows only what applies to its choices, and removed after a confirmation page. Views parse input,
fetch through the selectors (unseen -> 404) and call the services, which decide who may act."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from approvals import permissions, selectors, services
from approvals.forms import ExpiryPolicyForm
from approvals.models import RequestType, Workflow
from approvals.workflow_forms import WorkflowStepForm
from governance.choices import LEVEL_ORDER
from governance.exceptions import ValidationFailed
from governance.forms import people_options
from governance.web import AuthenticatedHttpRequest, attempt

# Request types in the order people meet them (a registration first), not alphabetically.
_TYPE_ORDER = {value: position for position, value in enumerate(RequestType.values)}


def workflows_by_type(workflows: Iterable[Workflow]) -> list[dict[str, Any]]:
    """The workflows under their request type, each type's from low to critical risk."""
    ordered = sorted(
        workflows, key=lambda wf: (_TYPE_ORDER.get(wf.request_type, len(_TYPE_ORDER)), LEVEL_ORDER[wf.risk_tier])
    )
    sections: list[dict[str, Any]] = []
    for workflow in ordered:
        if not sections or sections[-1]["type"] != workflow.request_type:
            sections.append(
                {"type": workflow.request_type, "label": workflow.get_request_type_display(), "workflows": []}
            )
        sections[-1]["workflows"].append(workflow)
    return sections


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
            "sections": workflows_by_type(selectors.workflows_for(request.user)),
            "policies": sorted(selectors.expiry_policies(), key=lambda policy: LEVEL_ORDER[policy.risk_tier]),
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
                pool_users=form.cleaned_data["pool_users"],
            )
        except ValidationFailed as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Step saved in {workflow.name}. Running requests keep their steps.")
            return redirect("approvals:workflow-list")
    named = [*(step.pool_users.all() if step else []), *([step.escalation_user] if step else [])]
    return render(
        request,
        "approvals/step_form.html",
        {"workflow": workflow, "step": step, "form": form, "people_options": people_options(request.user, *named)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def workflow_step_delete(request: AuthenticatedHttpRequest, workflow_id: int, step_id: int) -> HttpResponse:
    """GET: what would be removed, with a button to confirm; POST: remove it (the service refuses
    the last step of a workflow and audits the removal)."""
    step = get_object_or_404(selectors.workflow_steps_for(request.user), pk=step_id, workflow_id=workflow_id)
    if request.method == "POST":
        attempt(
            request,
            lambda: services.workflow_step_delete(actor=request.user, step=step),
            success=f"Step “{step.name}” removed from {step.workflow.name}.",
        )
        return redirect("approvals:workflow-list")
    # The confirmation is shown only to those who may remove; a removal is refused by the service.
    if not permissions.can_manage_workflows(request.user):
        raise Http404
    return render(
        request,
        "approvals/step_delete.html",
        {"step": step, "workflow": step.workflow, "is_last": step.workflow.steps.count() <= 1},
    )
