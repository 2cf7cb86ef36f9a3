"""Demo data of approvals (order 20, after the inventory): the default workflows, then the
inventory's submitted demo integrations decided through the services — some approved (active with
grants), others left pending in the right reviewers' queues."""

from __future__ import annotations

from approvals import services
from approvals.models import AccessRequest, RequestStatus, StepStatus
from governance.models import User


def seed() -> None:
    services.default_workflows_ensure()
    # Approve the first two open registrations whose current reviewers are demo people; leave
    # the others waiting. Decided through request_decide, so the trail shows who approved.
    open_reqs = list(
        AccessRequest.objects.filter(status=RequestStatus.IN_REVIEW).select_related("integration").order_by("id")
    )
    to_approve = [r for r in open_reqs if r.integration.risk_tier in ("low", "medium")][:2]
    for req in to_approve:
        for _ in range(5):
            req.refresh_from_db()
            if req.status != RequestStatus.IN_REVIEW:
                break
            step = req.steps.filter(round=req.round, status=StepStatus.ACTIVE).first()
            if step is None:
                break
            reviewer = (
                User.objects.filter(step_assignments__step=step, step_assignments__is_open=True)
                .order_by("username")
                .first()
            )
            if reviewer is None or services.step_may_decide(reviewer, req, step):
                break
            services.request_decide(actor=reviewer, request=req, decision="approve", comment="Demo: looks fine.", step_id=step.pk)
