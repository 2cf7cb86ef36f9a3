"""Who decides each step: a round's steps are copied from the workflow when it starts, and each
step that becomes current is assigned, by name, to the eligible people of its pool (a group,
named people, the owners of the requested scopes' systems, or the requester's manager). The
people separation of duties excludes are never assigned, so the queue does not offer what the
decision service refuses; a step nobody may decide escalates at once instead of stalling — and
the escalation skips them too."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.contrib.auth.models import Group
from django.utils import timezone

from approvals import selectors
from approvals.models import (
    OWN_WORKFLOW_TYPES,
    AccessRequest,
    Decision,
    PoolKind,
    RequestStep,
    RequestType,
    Rule,
    StepAssignment,
    StepStatus,
    Workflow,
    WorkflowStep,
)
from approvals.services import standins
from approvals.services.notifications import reviewer_notify
from approvals.services.queue_keys import queue_keys_of
from approvals.services.workflows import default_workflows_ensure
from governance.actors import Actor
from governance.audit import audit_record
from governance.models import User
from governance.roles import Pool, Role
from inventory.selectors import integration_actor_ids

# Who may be asked to decide, and how they came to be asked (shown on the request page).
Candidates = list[tuple[User, str]]
ESCALATION = "escalation"


def excluded_reviewer_ids(req: AccessRequest, *, round_no: int, except_step: RequestStep | None = None) -> set[int]:
    """Who may not decide a step of this round: the integration's owners and co-owners (when
    there is an integration), the requester, the people the request itself excludes (a policy version's
    authors, even when they belong to the reviewer pool), and whoever already decided another
    step of the round."""
    ids = {req.requester_id} | {int(pk) for pk in req.excluded_reviewer_ids or ()}
    if req.integration is not None:
        ids |= integration_actor_ids(req.integration)
    decided = Decision.objects.filter(request=req, step__round=round_no)
    if except_step is not None:
        decided = decided.exclude(step=except_step)
    # A delegate's decision counts against them and against the reviewer they stood in for.
    for reviewer_id, on_behalf_of_id in decided.values_list("reviewer_id", "on_behalf_of_id"):
        ids |= {reviewer_id} | ({on_behalf_of_id} if on_behalf_of_id else set())
    return ids


def _pool_candidates(step: RequestStep, req: AccessRequest, pool_user_ids: Sequence[int]) -> Candidates:
    active = User.objects.filter(is_active=True)
    if step.pool_kind == PoolKind.GROUP and step.pool_group is not None:
        via = f"group {step.pool_group.name}"
        return [(user, via) for user in active.filter(groups=step.pool_group_id)]
    if step.pool_kind == PoolKind.USERS:
        return [(user, "named reviewer") for user in active.filter(pk__in=pool_user_ids)]
    if step.pool_kind == PoolKind.RESOURCE_OWNERS:
        systems = req.requested_scopes.values_list("system_id", flat=True)
        return [(user, "resource owner") for user in active.filter(owned_systems__in=systems).distinct()]
    if step.pool_kind == PoolKind.MANAGER:
        manager = req.requester.manager
        return [(manager, "requester's manager")] if manager is not None and manager.is_active else []
    return []


def _escalation_candidates(step: RequestStep) -> Candidates:
    """The step's escalation person, else its escalation group, else the IAM admins."""
    active = User.objects.filter(is_active=True)
    if step.escalation_user_id:
        return [(user, ESCALATION) for user in active.filter(pk=step.escalation_user_id)]
    group_id = (
        step.escalation_group_id or Group.objects.filter(name=Role.IAM_ADMIN).values_list("id", flat=True).first()
    )
    return [(user, ESCALATION) for user in active.filter(groups=group_id)] if group_id else []


def _assign(step: RequestStep, people: Iterable[tuple[User, str]]) -> list[User]:
    """Add people to an active step and email each of them once."""
    existing = set(step.assignments.values_list("user_id", flat=True))
    risk_rank, risk_score = queue_keys_of(step.request)
    new: list[StepAssignment] = []
    users: list[User] = []
    for user, via in people:
        if user.pk in existing:
            continue
        existing.add(user.pk)
        new.append(
            StepAssignment(
                step=step, user=user, due_at=step.due_at, via=via, risk_rank=risk_rank, risk_score=risk_score
            )
        )
        users.append(user)
    StepAssignment.objects.bulk_create(new)
    # Someone away hands what reaches them now to their delegate at once (not at the next sweep).
    standins.assignments_cover(step.pk, [user.pk for user in users])
    req = step.request
    for user in users:
        reviewer_notify(
            req,
            user,
            key=f"approval-step-{step.pk}-assigned-{user.pk}",
            subject=f"Waiting for your review: {req.get_type_display()} for {req.subject_name}",
            template="approval_step_assigned",
            step=step,
        )
    return users


def assign_people(step: RequestStep, people: Iterable[tuple[User, str]]) -> list[User]:
    """Add people to an active step (each emailed once, their delegates covered): how an IAM
    admin's reassignment brings in the new reviewer. Returns those newly assigned."""
    return _assign(step, people)


def activate_step(step: RequestStep, *, actor: Actor, pool_user_ids: Sequence[int] = ()) -> None:
    """Make ``step`` the current one: compute its due time and assign its eligible reviewers. A
    step whose pool has nobody eligible (all excluded by separation of duties, or empty)
    escalates at once instead of stalling."""
    now = timezone.now()
    step.status = StepStatus.ACTIVE
    step.activated_at = now
    step.due_at = now + step.sla
    step.remind_at = now + step.sla / 2
    step.save(update_fields=["status", "activated_at", "due_at", "remind_at"])
    req = step.request
    excluded = excluded_reviewer_ids(req, round_no=step.round)
    eligible = [(user, via) for user, via in _pool_candidates(step, req, pool_user_ids) if user.pk not in excluded]
    if eligible:
        _assign(step, eligible)
    else:
        escalate_step(
            step,
            actor=actor,
            reason="Nobody in the step's reviewer pool may decide it (separation of duties or an empty pool).",
        )


def escalate_step(step: RequestStep, *, actor: Actor, reason: str) -> list[User]:
    """Assign the step to its escalation target too (audited); the target's approval completes
    the step whatever its rule."""
    req = step.request
    excluded = excluded_reviewer_ids(req, round_no=step.round)
    targets = [(user, via) for user, via in _escalation_candidates(step) if user.pk not in excluded]
    step.escalated_at = timezone.now()
    step.save(update_fields=["escalated_at"])
    added = _assign(step, targets)
    for user in added:
        reviewer_notify(
            req,
            user,
            key=f"approval-escalated-{step.pk}-{user.pk}",
            subject=f"Escalated to you, waiting for your review: {req.get_type_display()} for {req.subject_name}",
            template="approval_escalated",
            step=step,
            reason=reason,
        )
    audit_record(
        actor=actor,
        action="access_request.escalated",
        target=req,
        owner=req.accountable_owner,
        after={"step": step.name, "round": step.round, "escalated_to": sorted(user.username for user, _ in targets)},
        reason=reason,
    )
    return added


def _workflow_of(req: AccessRequest) -> Workflow | None:
    """The workflow for the request's type and tier, seeding the defaults into a database that
    has no workflow at all (the data migrations seed them; a flushed test database has none). A
    just-in-time elevation and a policy change never borrow the registration's workflow (an
    elevation's reviewers decide in minutes, not days; a policy change is the IAM admins'): their
    missing defaults are seeded instead, and None (the fallback step) if still missing."""
    workflow = selectors.workflow_for(req.type, req.risk_tier)
    needs_its_own = req.type in OWN_WORKFLOW_TYPES
    without_its_own = needs_its_own and (workflow is None or workflow.request_type != req.type)
    if without_its_own or (workflow is None and not Workflow.objects.exists()):
        default_workflows_ensure()
        workflow = selectors.workflow_for(req.type, req.risk_tier)
    if needs_its_own and workflow is not None and workflow.request_type != req.type:
        return None
    return workflow


def _copied_step(req: AccessRequest, template: WorkflowStep) -> RequestStep:
    """A request step copied from ``template``; skipped when its tier condition does not hold."""
    skipped = bool(template.only_for_tiers) and req.risk_tier not in template.only_for_tiers
    return RequestStep(
        request=req,
        round=req.round,
        order=template.order,
        name=template.name,
        pool_kind=template.pool_kind,
        pool_group_id=template.pool_group_id,
        rule=template.rule,
        quorum=template.quorum,
        sla_hours=template.sla_hours,
        sla_minutes=template.sla_minutes,
        escalation_group_id=template.escalation_group_id,
        escalation_user_id=template.escalation_user_id,
        status=StepStatus.SKIPPED if skipped else StepStatus.WAITING,
    )


def _fallback_step(req: AccessRequest) -> RequestStep:
    """The one step a request runs when no workflow has any: an IAM review, or for a policy
    change an IAM admin's approval."""
    name, pool = "IAM review", str(Pool.IAM_REVIEWERS)
    if req.type == RequestType.POLICY_CHANGE:
        name, pool = "IAM admin approval", str(Role.IAM_ADMIN)
    return RequestStep(
        request=req,
        round=req.round,
        order=1,
        name=name,
        pool_kind=PoolKind.GROUP,
        pool_group=Group.objects.filter(name=pool).first(),
        rule=Rule.ANY,
        sla_hours=48,
    )


def start_round(req: AccessRequest, *, actor: Actor) -> None:
    """Copy the workflow's steps for this round (skipping those whose tier condition does not
    hold) and activate the first. Without any configured workflow, one IAM review step runs."""
    workflow = _workflow_of(req)
    req.workflow = workflow
    req.save(update_fields=["workflow"])
    templates = list(workflow.steps.prefetch_related("pool_users")) if workflow else []
    steps: list[tuple[RequestStep, list[int]]] = [
        (_copied_step(req, template), [user.pk for user in template.pool_users.all()]) for template in templates
    ]
    if not steps:
        steps.append((_fallback_step(req), []))
    for step, _ in steps:
        step.save()
    first = next(((step, ids) for step, ids in steps if step.status == StepStatus.WAITING), None)
    if first is not None:
        activate_step(first[0], actor=actor, pool_user_ids=first[1])


def pool_user_ids_for(step: RequestStep) -> list[int]:
    """Named reviewers of the workflow step this request step was copied from."""
    req = step.request
    if step.pool_kind != PoolKind.USERS or req.workflow_id is None:
        return []
    template = WorkflowStep.objects.filter(workflow_id=req.workflow_id, order=step.order).first()
    return list(template.pool_users.values_list("pk", flat=True)) if template else []
