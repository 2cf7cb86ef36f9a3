"""How the audit trail, histories and grants name and link access requests and workflows
(governance.targets)."""

from __future__ import annotations

from django.urls import reverse


def register() -> None:
    from approvals import selectors
    from approvals.models import AccessRequest, Delegation, Workflow
    from governance.targets import register_target

    register_target(
        AccessRequest._meta.label_lower,
        visible=lambda user: selectors.access_requests_for(user).select_related("integration"),
        label=lambda obj: f"Access request #{obj.pk} — {obj.subject_name}",
        url=lambda obj: reverse("approvals:request-detail", args=[obj.pk]),
    )
    register_target(
        Delegation._meta.label_lower,
        visible=lambda user: selectors.delegations_for(user),
        label=lambda obj: f"Delegation from {obj.delegator.label} to {obj.delegate.label}",
        url=lambda obj: reverse("approvals:delegations"),
    )
    register_target(
        Workflow._meta.label_lower,
        visible=lambda user: selectors.workflows_for(user).prefetch_related(None),
        url=lambda obj: reverse("approvals:workflow-list"),
    )
