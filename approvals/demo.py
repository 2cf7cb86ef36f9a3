"""Demo data of approvals (order 20, after the inventory): the default workflows, then the
inventory's submitted demo integrations decided through the services — low-risk ones and the first
medium one approved (active with grants and expiries), the next medium one moved on to its resource
owner, one high one moved on to security, the rest waiting in the IAM reviewers' queues (rita, raj).
Idempotent: once any decision exists, nothing more is decided."""

from __future__ import annotations

from approvals import selectors, services
from approvals.models import AccessRequest, Decision, RequestStatus, StepStatus
from governance.models import User


def _decide_current(req: AccessRequest, comment: str) -> bool:
    """Approve the current step as its first eligible demo reviewer; False when nobody can."""
    req.refresh_from_db()
    if req.status != RequestStatus.IN_REVIEW:
        return False
    step = req.steps.filter(round=req.round, status=StepStatus.ACTIVE).first()
    if step is None:
        return False
    for reviewer in User.objects.filter(step_assignments__step=step, step_assignments__is_open=True).order_by(
        "username"
    ):
        if selectors.step_may_decide(reviewer, req, step) is None:
            services.request_decide(actor=reviewer, request=req, decision="approve", comment=comment, step_id=step.pk)
            return True
    return False


def seed() -> None:
    services.default_workflows_ensure()
    if Decision.objects.exists():
        return
    open_reqs = list(
        AccessRequest.objects.filter(status=RequestStatus.IN_REVIEW).select_related("integration").order_by("id")
    )
    mediums = 0
    high_done = False
    for req in open_reqs:
        if req.integration is None:
            continue  # a change request (a policy change) is left to its own demo
        tier = req.integration.risk_tier
        if tier == "low" or (tier == "medium" and mediums == 0):
            # Low risk, and the first medium one (so the demo campaign over sensitive access has
            # grants of more than one owner to recertify): every step, until approved.
            mediums += tier == "medium"
            for _ in range(5):
                if not _decide_current(req, f"Demo: {tier} risk, scopes match the stated purpose."):
                    break
        elif tier == "medium" and mediums == 1:
            mediums += 1
            _decide_current(req, "Demo: IAM checks done; over to the data owner.")
        elif tier == "high" and not high_done:
            high_done = _decide_current(req, "Demo: IAM checks done.") and _decide_current(
                req, "Demo: data owner agrees."
            )
