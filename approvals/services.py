"""Writes of approvals. Each public function takes ``actor=``, validates, locks, changes the rows
and audits in the same transaction (DESIGN.md invariant 1); emails go to the outbox in that
transaction too, so nothing is sent for a change that rolled back.

Transitions of a request (``REQUEST_TRANSITIONS``):
  request_open                -> in_review (round 1)
  request_decide (last step)  -> approved (grants created in the same transaction)
  request_decide (reject)     -> rejected;  (request_changes) -> changes_requested
  request_resubmit            changes_requested -> in_review (round + 1)
  request_withdraw            in_review | changes_requested -> withdrawn
  requests_cancel_for_integration  open -> cancelled (integration suspended, retired, orphaned)

Separation of duties (enforced here, whoever calls): nobody decides a step of a request for an
integration they own or requested, and nobody decides two steps of the same round. The same
people are never assigned to such a step, so the queue does not offer what the server refuses.
Lock order everywhere: integration, then request, then step (inventory locks the integration
first too, and sends its signals while holding it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from approvals.models import (
    DEFAULT_EXPIRY_DAYS,
    OPEN_STATUSES,
    REQUEST_TRANSITIONS,
    AccessRequest,
    Decision,
    DecisionKind,
    GrantExpiryPolicy,
    PoolKind,
    RequestStatus,
    RequestStep,
    RequestType,
    Rule,
    StepAssignment,
    StepStatus,
    Workflow,
    WorkflowStep,
)
from governance.actors import Actor
from governance.audit import EventSpec, audit_record, audit_record_many, snapshot
from governance.exceptions import Conflict, IllegalTransition, NotAllowed, Unprocessable, ValidationFailed
from governance.models import User
from governance.roles import Pool, Role
from governance.services import email_enqueue
from governance.validators import SINGLE_LINE_MESSAGE, has_control_characters, single_line_errors
from governance.webhooks.events import emit_many as webhook_emit_many
from inventory.models import Grant, GrantStatus, Integration, IntegrationStatus, RiskTier, Scope

SOURCE_TYPE = "approvals.accessrequest"
DISABLED_STATUSES = (IntegrationStatus.SUSPENDED, IntegrationStatus.RETIRED)


# --- Configuration ------------------------------------------------------------------------------


def default_expiry_days(tier: str) -> int:
    days = GrantExpiryPolicy.objects.filter(risk_tier=tier).values_list("days", flat=True).first()
    return days if days is not None else DEFAULT_EXPIRY_DAYS.get(tier, 90)  # type: ignore[call-overload]


def workflow_for(request_type: str, tier: str) -> Workflow | None:
    """The workflow of this type and tier; a type without its own falls back to registration's."""
    found = Workflow.objects.filter(request_type=request_type, risk_tier=tier).first()
    if found is None and request_type != RequestType.REGISTRATION:
        found = Workflow.objects.filter(request_type=RequestType.REGISTRATION, risk_tier=tier).first()
    return found


def expiry_policy_set(*, actor: Actor | User, risk_tier: str, days: int) -> GrantExpiryPolicy:
    if risk_tier not in RiskTier.values:
        raise ValidationFailed.on("risk_tier", "Unknown risk tier.")
    if days < 1 or days > 3650:
        raise ValidationFailed.on("days", "Between 1 and 3650 days.")
    with transaction.atomic():
        policy, _ = GrantExpiryPolicy.objects.select_for_update().get_or_create(
            risk_tier=risk_tier,
            defaults={"days": DEFAULT_EXPIRY_DAYS[risk_tier]},  # type: ignore[index]
        )
        before = policy.days
        policy.days = days
        policy.save(update_fields=["days"])
        audit_record(
            actor=actor,
            action="grant_expiry_policy.changed",
            target=policy,
            before={"days": before},
            after={"days": days},
        )
    return policy


STEP_FIELDS = [
    "order",
    "name",
    "pool_kind",
    "pool_group",
    "rule",
    "quorum",
    "sla_hours",
    "escalation_group",
    "escalation_user",
    "only_for_tiers",
]


def _validate_step(values: dict[str, Any], pool_users: Sequence[User]) -> None:
    bad_lines = single_line_errors(values, ("name",))
    if bad_lines:
        raise ValidationFailed(SINGLE_LINE_MESSAGE, errors=bad_lines)
    if values["pool_kind"] == PoolKind.GROUP and values.get("pool_group") is None:
        raise ValidationFailed.on("pool_group", "Choose the group whose members decide this step.")
    if values["pool_kind"] == PoolKind.USERS and not pool_users:
        raise ValidationFailed.on("pool_users", "Name at least one person.")
    if values["rule"] == Rule.QUORUM and int(values.get("quorum") or 0) < 2:
        raise ValidationFailed.on("quorum", "A quorum needs at least 2 approvals (use 'any one' for 1).")
    if not values.get("sla_hours") or int(values["sla_hours"]) < 1:
        raise ValidationFailed.on("sla_hours", "The SLA is at least one hour.")
    bad = set(values.get("only_for_tiers") or []) - set(RiskTier.values)
    if bad:
        raise ValidationFailed.on("only_for_tiers", f"Unknown risk tier(s): {', '.join(sorted(bad))}.")


def workflow_step_save(
    *,
    actor: Actor | User,
    workflow: Workflow,
    step: WorkflowStep | None,
    values: dict[str, Any],
    pool_users: Sequence[User] = (),
) -> WorkflowStep:
    """Create or change a workflow step (IAM admins). Running requests keep their copied steps."""
    _validate_step(values, pool_users)
    with transaction.atomic():
        before = None
        if step is None:
            step = WorkflowStep(workflow=workflow)
        else:
            step = WorkflowStep.objects.select_for_update().get(pk=step.pk, workflow=workflow)
            before = snapshot(step, STEP_FIELDS)
        for name in STEP_FIELDS:
            if name in values:
                setattr(step, name, values[name])
        step._history_user = Actor.coerce(actor).user  # type: ignore[attr-defined]
        step.save()
        step.pool_users.set(pool_users)
        audit_record(
            actor=actor,
            action="workflow.changed",
            target=workflow,
            before={"step": before} if before else None,
            after={"step": {**snapshot(step, STEP_FIELDS), "pool_users": [u.username for u in pool_users]}},
        )
    return step


def workflow_step_delete(*, actor: Actor | User, step: WorkflowStep) -> None:
    with transaction.atomic():
        workflow = step.workflow
        if workflow.steps.count() <= 1:
            raise Conflict("A workflow needs at least one step.")
        before = snapshot(step, STEP_FIELDS)
        step.delete()
        audit_record(actor=actor, action="workflow.changed", target=workflow, before={"step": before}, after=None)


def default_workflows_ensure() -> int:
    """Seed the default workflows for every type and tier (idempotent; existing ones are kept):
    low = one IAM reviewer; medium = IAM reviewer then resource owner; high and critical = IAM
    reviewer, resource owner, then security — every reviewer of each step required for critical."""
    iam, _ = Group.objects.get_or_create(name=Pool.IAM_REVIEWERS)
    sec, _ = Group.objects.get_or_create(name=Pool.SECURITY_REVIEWERS)
    admins, _ = Group.objects.get_or_create(name=Role.IAM_ADMIN)
    created = 0
    for rtype in RequestType:
        for tier in RiskTier:
            wf, made = Workflow.objects.get_or_create(
                request_type=rtype, risk_tier=tier, defaults={"name": f"{rtype.label} — {tier.label} risk"}
            )
            if not made:
                continue
            created += 1
            rule = Rule.ALL if tier == RiskTier.CRITICAL else Rule.ANY
            sla = {RiskTier.LOW: 72, RiskTier.MEDIUM: 48, RiskTier.HIGH: 24, RiskTier.CRITICAL: 24}[tier]
            steps: list[dict[str, Any]] = [
                {"name": "IAM review", "pool_kind": PoolKind.GROUP, "pool_group": iam},
            ]
            if tier != RiskTier.LOW:
                steps.append({"name": "Resource owner", "pool_kind": PoolKind.RESOURCE_OWNERS, "pool_group": None})
            if tier in (RiskTier.HIGH, RiskTier.CRITICAL):
                steps.append(
                    {
                        "name": "Security review",
                        "pool_kind": PoolKind.GROUP,
                        "pool_group": sec,
                        "only_for_tiers": [RiskTier.HIGH, RiskTier.CRITICAL],
                    }
                )
            for i, s in enumerate(steps, start=1):
                WorkflowStep.objects.create(
                    workflow=wf, order=i, rule=rule, sla_hours=sla, escalation_group=admins, **s
                )
    for tier, days in DEFAULT_EXPIRY_DAYS.items():
        GrantExpiryPolicy.objects.get_or_create(risk_tier=tier, defaults={"days": days})
    return created


# --- Helpers ------------------------------------------------------------------------------------


def _url(name: str, *args: Any) -> str:
    return reverse(name, args=args)


def _audit_after(req: AccessRequest) -> dict[str, Any]:
    return {
        "type": req.type,
        "status": req.status,
        "round": req.round,
        "integration": req.integration_id,
        "ticket_ref": req.ticket_ref,
    }


def _check_transition(req: AccessRequest, to_status: str) -> None:
    if to_status not in REQUEST_TRANSITIONS[req.status]:
        raise IllegalTransition(
            f"Request #{req.pk} is {req.get_status_display().lower()}; it cannot become "
            f"{RequestStatus(to_status).label.lower()}."
        )


def _check_integration_usable(integration: Integration) -> None:
    if integration.status in DISABLED_STATUSES:
        raise Conflict(f"{integration.name} is {integration.get_status_display().lower()}: no decision can be applied.")
    if integration.orphaned:
        raise Conflict(f"{integration.name} has no owner any more (an owner left): IAM must assign a new owner first.")


def excluded_reviewer_ids(req: AccessRequest, *, round_no: int, except_step: RequestStep | None = None) -> set[int]:
    """Who may not decide a step of this round: the integration's owners, the requester, and
    whoever already decided another step of the round."""
    ids = set(req.integration.owner_ids()) | {req.requester_id}
    decided = Decision.objects.filter(request=req, step__round=round_no)
    if except_step is not None:
        decided = decided.exclude(step=except_step)
    ids |= set(decided.values_list("reviewer_id", flat=True))
    return ids


def _pool_candidates(step: RequestStep, req: AccessRequest, pool_user_ids: Sequence[int]) -> list[tuple[User, str]]:
    active = User.objects.filter(is_active=True)
    if step.pool_kind == PoolKind.GROUP and step.pool_group_id:
        return [(u, f"group {step.pool_group.name}") for u in active.filter(groups=step.pool_group_id)]  # type: ignore[union-attr]
    if step.pool_kind == PoolKind.USERS:
        return [(u, "named reviewer") for u in active.filter(pk__in=pool_user_ids)]
    if step.pool_kind == PoolKind.RESOURCE_OWNERS:
        systems = req.requested_scopes.values_list("system_id", flat=True)
        return [(u, "resource owner") for u in active.filter(owned_systems__in=systems).distinct()]
    if step.pool_kind == PoolKind.MANAGER:
        manager = req.requester.manager
        return [(manager, "requester's manager")] if manager is not None and manager.is_active else []
    return []


def _escalation_candidates(step: RequestStep) -> list[tuple[User, str]]:
    active = User.objects.filter(is_active=True)
    if step.escalation_user_id:
        return [(u, "escalation") for u in active.filter(pk=step.escalation_user_id)]
    group_id = (
        step.escalation_group_id or Group.objects.filter(name=Role.IAM_ADMIN).values_list("id", flat=True).first()
    )
    return [(u, "escalation") for u in active.filter(groups=group_id)] if group_id else []


def _assign(step: RequestStep, people: Iterable[tuple[User, str]], *, actor: Actor) -> list[User]:
    """Add people to an active step and email each of them once."""
    existing = set(step.assignments.values_list("user_id", flat=True))
    new: list[StepAssignment] = []
    users: list[User] = []
    for user, via in people:
        if user.pk in existing:
            continue
        existing.add(user.pk)
        new.append(StepAssignment(step=step, user=user, due_at=step.due_at, via=via))
        users.append(user)
    StepAssignment.objects.bulk_create(new)
    req = step.request
    for user in users:
        email_enqueue(
            key=f"approval-step-{step.pk}-assigned-{user.pk}",
            recipient=user,
            subject=f"Your decision is needed: {req.get_type_display()} for {req.integration.name}",
            template="approval_step_assigned",
            context={"req": req, "step": step, "link": _url("approvals:request-detail", req.pk)},
        )
    return users


def _activate(step: RequestStep, *, actor: Actor, pool_user_ids: Sequence[int] = ()) -> None:
    """Make ``step`` the current one: compute its due time and assign its eligible reviewers. A
    step whose pool has nobody eligible (all excluded by separation of duties, or empty)
    escalates at once instead of stalling."""
    now = timezone.now()
    step.status = StepStatus.ACTIVE
    step.activated_at = now
    step.due_at = now + timedelta(hours=step.sla_hours)
    step.remind_at = now + timedelta(hours=step.sla_hours / 2)
    step.save(update_fields=["status", "activated_at", "due_at", "remind_at"])
    req = step.request
    excluded = excluded_reviewer_ids(req, round_no=step.round)
    eligible = [(u, via) for u, via in _pool_candidates(step, req, pool_user_ids) if u.pk not in excluded]
    if eligible:
        _assign(step, eligible, actor=actor)
    else:
        _escalate(
            step,
            actor=actor,
            reason="Nobody in the step's reviewer pool may decide it (separation of duties or an empty pool).",
        )


def _escalate(step: RequestStep, *, actor: Actor, reason: str) -> list[User]:
    req = step.request
    excluded = excluded_reviewer_ids(req, round_no=step.round)
    targets = [(u, via) for u, via in _escalation_candidates(step) if u.pk not in excluded]
    step.escalated_at = timezone.now()
    step.save(update_fields=["escalated_at"])
    added = _assign(step, targets, actor=actor)
    for user in added:
        email_enqueue(
            key=f"approval-escalated-{step.pk}-{user.pk}",
            recipient=user,
            subject=f"Escalated to you: {req.get_type_display()} for {req.integration.name}",
            template="approval_escalated",
            context={"req": req, "step": step, "reason": reason, "link": _url("approvals:request-detail", req.pk)},
        )
    audit_record(
        actor=actor,
        action="access_request.escalated",
        target=req,
        owner=req.integration.business_owner,
        after={"step": step.name, "round": step.round, "escalated_to": sorted(u.username for u, _ in targets)},
        reason=reason,
    )
    return added


def _start_round(req: AccessRequest, *, actor: Actor) -> None:
    """Copy the workflow's steps for this round (skipping those whose tier condition does not
    hold) and activate the first. Without any configured workflow, one IAM review step runs."""
    workflow = workflow_for(req.type, req.risk_tier)
    if workflow is None and not Workflow.objects.exists():
        # The data migration seeds the defaults; a flushed database (transactional tests) has none.
        default_workflows_ensure()
        workflow = workflow_for(req.type, req.risk_tier)
    req.workflow = workflow
    req.save(update_fields=["workflow"])
    templates = list(workflow.steps.prefetch_related("pool_users")) if workflow else []
    steps: list[tuple[RequestStep, list[int]]] = []
    if not templates:
        group = Group.objects.filter(name=Pool.IAM_REVIEWERS).first()
        steps.append(
            (
                RequestStep(
                    request=req,
                    round=req.round,
                    order=1,
                    name="IAM review",
                    pool_kind=PoolKind.GROUP,
                    pool_group=group,
                    rule=Rule.ANY,
                    sla_hours=48,
                ),
                [],
            )
        )
    for t in templates:
        skipped = bool(t.only_for_tiers) and req.risk_tier not in t.only_for_tiers
        steps.append(
            (
                RequestStep(
                    request=req,
                    round=req.round,
                    order=t.order,
                    name=t.name,
                    pool_kind=t.pool_kind,
                    pool_group_id=t.pool_group_id,
                    rule=t.rule,
                    quorum=t.quorum,
                    sla_hours=t.sla_hours,
                    escalation_group_id=t.escalation_group_id,
                    escalation_user_id=t.escalation_user_id,
                    status=StepStatus.SKIPPED if skipped else StepStatus.WAITING,
                ),
                [u.pk for u in t.pool_users.all()],
            )
        )
    for step, _ in steps:
        step.save()
    first = next(((s, ids) for s, ids in steps if s.status == StepStatus.WAITING), None)
    if first is not None:
        _activate(first[0], actor=actor, pool_user_ids=first[1])


def _pool_user_ids_for(step: RequestStep) -> list[int]:
    """Named reviewers of the workflow step this request step was copied from."""
    req = step.request
    if step.pool_kind != PoolKind.USERS or req.workflow_id is None:
        return []
    template = WorkflowStep.objects.filter(workflow_id=req.workflow_id, order=step.order).first()
    return list(template.pool_users.values_list("pk", flat=True)) if template else []


# --- Opening, resubmitting, withdrawing, cancelling ---------------------------------------------------


def request_open(
    *,
    actor: Actor | User,
    integration: Integration,
    type: str,
    scopes: Sequence[Scope],
    requester: User | None = None,
    ticket_ref: str = "",
    justification: str = "",
) -> AccessRequest:
    """Open a request of ``type`` for ``scopes`` of ``integration`` and start round 1 of its
    workflow. One open request of a type per integration: a second one is a conflict."""
    resolved = Actor.coerce(actor)
    who = requester or resolved.on_behalf_of or resolved.user
    if type not in RequestType.values:
        raise ValidationFailed.on("type", "Unknown request type.")
    if has_control_characters(ticket_ref):
        raise ValidationFailed.on("ticket_ref", SINGLE_LINE_MESSAGE)
    scope_list = list(dict.fromkeys(scopes))
    if not scope_list:
        raise ValidationFailed.on("scopes", "A request needs at least one scope.")
    if any(not s.is_active for s in scope_list):
        raise ValidationFailed.on("scopes", "Retired scopes cannot be requested.")
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        _check_integration_usable(locked)
        if type != RequestType.REGISTRATION and locked.status != IntegrationStatus.ACTIVE:
            raise Conflict(
                f"{locked.name} is {locked.get_status_display().lower()}: only an active integration can ask for this."
            )
        if AccessRequest.objects.filter(integration=locked, type=type, status__in=OPEN_STATUSES).exists():
            raise Conflict(f"{locked.name} already has an open {RequestType(type).label.lower()} request.")
        req = AccessRequest.objects.create(
            type=type,
            integration=locked,
            requester=who,
            ticket_ref=ticket_ref or locked.ticket_ref,
            justification=justification,
            risk_tier=locked.risk_tier,
        )
        req.requested_scopes.set(scope_list)
        audit_record(
            actor=resolved,
            action="access_request.created",
            target=req,
            owner=locked.business_owner,
            after={**_audit_after(req), "scopes": [s.code for s in scope_list], "requester": who.username},
        )
        _start_round(req, actor=resolved)
    return req


def request_resubmit(
    *, actor: Actor | User, request: AccessRequest, scopes: Sequence[Scope] | None = None, comment: str = ""
) -> AccessRequest:
    """After "changes requested", the requester (or an owner) resubmits: the next round of the
    same request starts from the first step; earlier rounds stay as history."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=request.integration_id)
        req = AccessRequest.objects.select_for_update().get(pk=request.pk)
        _check_integration_usable(integration)
        if resolved.user.pk not in integration.owner_ids() | {req.requester_id} and not resolved.is_system:
            raise NotAllowed("Only the requester or the integration's owners can resubmit this request.")
        _check_transition(req, RequestStatus.IN_REVIEW)
        if scopes is not None:
            scope_list = list(dict.fromkeys(scopes))
            if not scope_list:
                raise ValidationFailed.on("scopes", "A request needs at least one scope.")
            req.requested_scopes.set(scope_list)
        req.status = RequestStatus.IN_REVIEW
        req.round += 1
        req.risk_tier = integration.risk_tier
        req.updated_at = timezone.now()
        req._history_user = resolved.user  # type: ignore[attr-defined]
        req.save(update_fields=["status", "round", "risk_tier", "updated_at"])
        req.integration = integration
        audit_record(
            actor=resolved,
            action="access_request.resubmitted",
            target=req,
            owner=integration.business_owner,
            before={"status": RequestStatus.CHANGES_REQUESTED, "round": req.round - 1},
            after={**_audit_after(req), "scopes": list(req.requested_scopes.values_list("code", flat=True))},
            reason=comment,
        )
        _start_round(req, actor=resolved)
    request.refresh_from_db()
    return req


def request_restart_for_risk(
    *, actor: Actor | User, request: AccessRequest, new_tier: str, reason: str
) -> AccessRequest:
    """The integration's risk tier rose while its request was in review: the current round is
    cancelled and a new round starts with the workflow of the new tier (earlier decisions stay
    as evidence, but the higher tier's reviewers decide from the first step)."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        req = AccessRequest.objects.select_for_update().select_related("integration").get(pk=request.pk)
        if req.status != RequestStatus.IN_REVIEW:
            raise Conflict(f"Request #{req.pk} is {req.get_status_display().lower()}: nothing to restart.")
        before = {"round": req.round, "risk_tier": req.risk_tier}
        _close_round(req, status=StepStatus.CANCELLED)
        req.round += 1
        req.risk_tier = new_tier
        req.updated_at = timezone.now()
        req._history_user = resolved.user  # type: ignore[attr-defined]
        req.save(update_fields=["round", "risk_tier", "updated_at"])
        audit_record(
            actor=resolved,
            action="access_request.restarted",
            target=req,
            owner=req.integration.business_owner,
            before=before,
            after=_audit_after(req),
            reason=reason,
        )
        _start_round(req, actor=resolved)
    return req


def _close_round(req: AccessRequest, *, status: str) -> None:
    """End every open step and assignment of the current round."""
    steps = RequestStep.objects.filter(request=req, round=req.round, status__in=[StepStatus.WAITING, StepStatus.ACTIVE])
    StepAssignment.objects.filter(step__in=steps, is_open=True).update(is_open=False)
    steps.update(status=status)


def request_withdraw(*, actor: Actor | User, request: AccessRequest, reason: str = "") -> AccessRequest:
    """The requester (or an owner of the integration) withdraws an open request."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        req = AccessRequest.objects.select_for_update().select_related("integration").get(pk=request.pk)
        if resolved.user.pk not in req.integration.owner_ids() | {req.requester_id}:
            raise NotAllowed("Only the requester or the integration's owners can withdraw this request.")
        _check_transition(req, RequestStatus.WITHDRAWN)
        before = req.status
        _close_round(req, status=StepStatus.CANCELLED)
        req.status = RequestStatus.WITHDRAWN
        req.closed_at = req.updated_at = timezone.now()
        req.outcome_reason = reason
        req._history_user = resolved.user  # type: ignore[attr-defined]
        req.save(update_fields=["status", "closed_at", "updated_at", "outcome_reason"])
        audit_record(
            actor=resolved,
            action="access_request.withdrawn",
            target=req,
            owner=req.integration.business_owner,
            before={"status": before},
            after=_audit_after(req),
            reason=reason,
        )
    request.refresh_from_db()
    return req


def requests_cancel_for_integration(*, actor: Actor | User, integration: Integration, reason: str) -> int:
    """The integration was suspended, retired or orphaned: its open requests cannot be decided."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        reqs = list(AccessRequest.objects.select_for_update().filter(integration=integration, status__in=OPEN_STATUSES))
        events = []
        for req in reqs:
            _close_round(req, status=StepStatus.CANCELLED)
            before = req.status
            req.status = RequestStatus.CANCELLED
            req.closed_at = req.updated_at = timezone.now()
            req.outcome_reason = reason
            req._history_user = resolved.user  # type: ignore[attr-defined]
            req.save(update_fields=["status", "closed_at", "updated_at", "outcome_reason"])
            events.append(
                EventSpec(
                    action="access_request.cancelled",
                    target=req,
                    owner=integration.business_owner,
                    before={"status": before},
                    after=_audit_after(req),
                    reason=reason,
                )
            )
        if events:
            audit_record_many(actor=resolved, events=events)
    return len(reqs)


# --- Deciding -----------------------------------------------------------------------------------


def current_step(req: AccessRequest) -> RequestStep | None:
    return RequestStep.objects.filter(request=req, round=req.round, status=StepStatus.ACTIVE).order_by("order").first()


def _remaining_scopes(req: AccessRequest) -> list[Scope]:
    """Scopes still in play: those requested, narrowed by every approval of this round so far."""
    remaining = {s.pk: s for s in req.requested_scopes.all()}
    approvals = Decision.objects.filter(
        request=req, step__round=req.round, decision=DecisionKind.APPROVE
    ).prefetch_related("approved_scopes")
    for d in approvals:
        keep = {s.pk for s in d.approved_scopes.all()}
        remaining = {pk: s for pk, s in remaining.items() if pk in keep}
    return sorted(remaining.values(), key=lambda s: s.code)


def step_may_decide(user: User, req: AccessRequest, step: RequestStep) -> str | None:
    """Why ``user`` may not decide ``step`` (a message), or None when they may. Checked again in
    ``request_decide`` under lock."""
    if user.pk in req.integration.owner_ids():
        return "You own this integration: separation of duties forbids deciding its requests."
    if user.pk == req.requester_id:
        return "You requested this: separation of duties forbids deciding your own request."
    other = (
        Decision.objects.filter(request=req, step__round=step.round, reviewer=user)
        .exclude(step=step)
        .select_related("step")
        .first()
    )
    if other is not None:
        return f"You already decided the step “{other.step.name}” of this request: another person must decide this one."
    if not StepAssignment.objects.filter(step=step, user=user).exists():
        return "This step is not assigned to you."
    return None


def request_decide(
    *,
    actor: Actor | User,
    request: AccessRequest,
    decision: str,
    comment: str = "",
    approved_scopes: Sequence[Scope] | None = None,
    expires_at: datetime | None = None,
    step_id: int | None = None,
) -> Decision:
    """Record ``actor``'s decision on the current step (or on ``step_id``, the step the reviewer
    was looking at: if it is no longer the current one, that is a conflict, not a decision on the
    next step). Approving the last step creates the grants in this transaction; a rejection or
    a request for changes ends the round at once.

    Refused: a comment missing on reject/request_changes (400), separation of duties or not
    assigned (403), a stale state — the step already decided, the request withdrawn or closed, the
    integration suspended/retired or without owner (409)."""
    resolved = Actor.coerce(actor)
    user = resolved.user
    if decision not in DecisionKind.values:
        raise ValidationFailed.on("decision", "Choose approve, reject or request_changes.")
    comment = (comment or "").strip()
    if decision != DecisionKind.APPROVE and not comment:
        raise ValidationFailed.on("comment", "A comment is required to reject or to request changes.")
    with transaction.atomic():
        # Lock order: integration, request, step (see module docstring). The second of two
        # reviewers deciding at the same moment waits here, then sees the first one's outcome.
        integration = Integration.objects.select_for_update().get(pk=request.integration_id)
        req = AccessRequest.objects.select_for_update().get(pk=request.pk)
        req.integration = integration
        if req.status != RequestStatus.IN_REVIEW:
            last = (
                Decision.objects.filter(request=req).select_related("reviewer").order_by("-created_at", "-id").first()
            )
            by = f" (last decided by {last.reviewer.label})" if last and req.status != RequestStatus.WITHDRAWN else ""
            raise Conflict(f"This request is already {req.get_status_display().lower()}{by}: nothing left to decide.")
        _check_integration_usable(integration)
        if step_id is not None:
            step = (
                RequestStep.objects.select_for_update(of=("self",))
                .select_related("decided_by")
                .filter(pk=step_id, request=req)
                .first()
            )
            if step is None:
                raise Unprocessable.on("step", "This step does not belong to the request.")
        else:
            found = current_step(req)
            step = (
                RequestStep.objects.select_for_update(of=("self",)).select_related("decided_by").get(pk=found.pk)
                if found
                else None
            )
        if step is None or step.status != StepStatus.ACTIVE:
            who = step.decided_by.label if step is not None and step.decided_by else "another reviewer"
            raise Conflict(f"This step was already decided by {who}.")
        refusal = step_may_decide(user, req, step)
        if refusal is not None:
            raise NotAllowed(refusal)
        mine = StepAssignment.objects.select_for_update().get(step=step, user=user)
        if Decision.objects.filter(step=step, reviewer=user).exists():
            raise Conflict("You already decided this step.")
        remaining = _remaining_scopes(req)
        default_expiry = timezone.now() + timedelta(days=default_expiry_days(req.risk_tier))
        approved: list[Scope] = []
        if decision == DecisionKind.APPROVE:
            approved = remaining
            if approved_scopes is not None:
                wanted = {s.pk for s in approved_scopes}
                unknown = wanted - {s.pk for s in remaining}
                if unknown:
                    raise Unprocessable.on("approved_scopes", "Approve only scopes that this request still asks for.")
                approved = [s for s in remaining if s.pk in wanted]
                if not approved:
                    raise Unprocessable.on("approved_scopes", "Approve at least one scope, or reject the request.")
            if expires_at is not None:
                if expires_at <= timezone.now():
                    raise Unprocessable.on("expires_at", "The expiry must be in the future.")
                if expires_at > default_expiry:
                    raise Unprocessable.on(
                        "expires_at",
                        f"The expiry can only be earlier than the default for this tier ({default_expiry:%Y-%m-%d}).",
                    )
        else:
            expires_at = None
        made = Decision.objects.create(
            step=step, request=req, reviewer=user, decision=decision, comment=comment, expires_at=expires_at
        )
        made.approved_scopes.set(approved)
        mine.is_open = False
        mine.save(update_fields=["is_open"])
        audit_record(
            actor=resolved,
            action="access_request.step_decided",
            target=req,
            owner=integration.business_owner,
            after={
                "step": step.name,
                "round": step.round,
                "decision": decision,
                "reviewer": user.username,
                "approved_scopes": [s.code for s in approved],
                "expires_at": expires_at,
            },
            reason=comment,
        )
        _notify_requester(req, made)
        if decision == DecisionKind.APPROVE:
            approvals = Decision.objects.filter(step=step, decision=DecisionKind.APPROVE).count()
            needed = step.required_approvals or step.assignments.exclude(via="escalation").count()
            # The escalation target takes the step over: their approval completes it whatever the rule.
            if approvals >= max(1, needed) or mine.via == "escalation":
                _complete_step(step, StepStatus.APPROVED, user)
                _advance(req, actor=resolved)
        else:
            final = RequestStatus.REJECTED if decision == DecisionKind.REJECT else RequestStatus.CHANGES_REQUESTED
            _complete_step(step, final, user)
            _finish(req, actor=resolved, status=final, reason=comment)
    return made


def _complete_step(step: RequestStep, status: str, user: User) -> None:
    step.status = status
    step.decided_at = timezone.now()
    step.decided_by = user
    step.save(update_fields=["status", "decided_at", "decided_by"])
    StepAssignment.objects.filter(step=step, is_open=True).update(is_open=False)


def _notify_requester(req: AccessRequest, decision: Decision) -> None:
    email_enqueue(
        key=f"approval-decision-{decision.pk}",
        recipient=req.requester,
        subject=f"{decision.get_decision_display()}: {decision.step.name} of your request for {req.integration.name}",
        template="approval_decision",
        context={"req": req, "decision": decision, "link": _url("approvals:request-detail", req.pk)},
    )


def _advance(req: AccessRequest, *, actor: Actor) -> None:
    nxt = RequestStep.objects.filter(request=req, round=req.round, status=StepStatus.WAITING).order_by("order").first()
    if nxt is not None:
        _activate(nxt, actor=actor, pool_user_ids=_pool_user_ids_for(nxt))
        return
    _finish(req, actor=actor, status=RequestStatus.APPROVED, reason="Every required step approved.")


def _finish(req: AccessRequest, *, actor: Actor, status: str, reason: str) -> None:
    """Close the request with ``status`` and apply it to the inventory in this transaction."""
    from inventory import services as inventory

    _check_transition(req, status)
    _close_round(req, status=StepStatus.CANCELLED)
    before = req.status
    req.status = status
    req.updated_at = timezone.now()
    if status != RequestStatus.CHANGES_REQUESTED:
        req.closed_at = req.updated_at
    req.outcome_reason = reason
    req._history_user = actor.user  # type: ignore[attr-defined]
    req.save(update_fields=["status", "updated_at", "closed_at", "outcome_reason"])
    integration = req.integration
    after: dict[str, Any] = _audit_after(req)
    if status == RequestStatus.APPROVED:
        step_ids = RequestStep.objects.filter(request=req, round=req.round).values_list("pk", flat=True)
        decisions = list(
            Decision.objects.filter(step_id__in=step_ids, decision=DecisionKind.APPROVE).select_related("reviewer")
        )
        scopes = _remaining_scopes(req)
        expiries = [d.expires_at for d in decisions if d.expires_at is not None]
        expires_at = min([*expiries, timezone.now() + timedelta(days=default_expiry_days(req.risk_tier))])
        if req.type == RequestType.REGISTRATION and integration.status != IntegrationStatus.ACTIVE:
            inventory.integration_transition(
                actor=actor,
                integration=integration,
                to_status=IntegrationStatus.ACTIVE,
                reason=f"Access request #{req.pk} approved.",
                action="integration.approved",
            )
        grants = inventory.grant_create_many(
            actor=actor,
            integration=integration,
            scopes=scopes,
            source_type=SOURCE_TYPE,
            source_id=str(req.pk),
            approvers=[d.reviewer for d in decisions],
            expires_at=expires_at,
        )
        after["granted"] = [g.scope.code for g in grants]
        after["expires_at"] = expires_at
    elif status == RequestStatus.REJECTED:
        if req.type == RequestType.REGISTRATION and integration.status == IntegrationStatus.PENDING:
            inventory.integration_transition(
                actor=actor,
                integration=integration,
                to_status=IntegrationStatus.REJECTED,
                reason=reason,
                action="integration.rejected",
            )
        elif req.type == RequestType.RE_REVIEW:
            # A re-review that fails takes away the access it was about.
            ids = list(
                Grant.objects.filter(
                    integration=integration, status=GrantStatus.ACTIVE, scope__in=req.requested_scopes.all()
                ).values_list("pk", flat=True)
            )
            inventory.grants_end_many(
                actor=actor, grant_ids=ids, status=GrantStatus.REVOKED, reason=reason, action="grant.revoked"
            )
    elif status == RequestStatus.CHANGES_REQUESTED:
        if req.type == RequestType.REGISTRATION and integration.status == IntegrationStatus.PENDING:
            inventory.integration_transition(
                actor=actor,
                integration=integration,
                to_status=IntegrationStatus.DRAFT,
                reason=reason,
                action="integration.changes_requested",
            )
    audit_record(
        actor=actor,
        action=f"access_request.{status}",
        target=req,
        owner=integration.business_owner,
        before={"status": before},
        after=after,
        reason=reason,
    )


# --- SLA: reminders and escalation ------------------------------------------------------------


def steps_remind_due(*, now: datetime | None = None) -> int:
    """Remind the open reviewers of every active step past half its SLA (once per step)."""
    now = now or timezone.now()
    count = 0
    ids = list(
        RequestStep.objects.filter(status=StepStatus.ACTIVE, remind_at__lte=now, reminded_at__isnull=True).values_list(
            "pk", flat=True
        )[:1000]
    )
    for step_id in ids:
        with transaction.atomic():
            # Conditional update: two sweeps running together remind once.
            if (
                RequestStep.objects.filter(pk=step_id, status=StepStatus.ACTIVE, reminded_at__isnull=True).update(
                    reminded_at=now
                )
                != 1
            ):
                continue
            step = RequestStep.objects.select_related("request__integration").get(pk=step_id)
            req = step.request
            for a in step.assignments.filter(is_open=True).select_related("user"):
                email_enqueue(
                    key=f"approval-reminder-{step.pk}-{a.user_id}",
                    recipient=a.user,
                    subject=f"Reminder: your decision is due on {req.integration.name}",
                    template="approval_reminder",
                    context={"req": req, "step": step, "link": _url("approvals:request-detail", req.pk)},
                )
            count += 1
    return count


def steps_escalate_overdue(*, now: datetime | None = None) -> int:
    """Escalate every active step past its SLA to its escalation target (once per step; audited)."""
    now = now or timezone.now()
    count = 0
    ids = list(
        RequestStep.objects.filter(status=StepStatus.ACTIVE, due_at__lte=now, escalated_at__isnull=True).values_list(
            "pk", flat=True
        )[:1000]
    )
    for step_id in ids:
        with transaction.atomic():
            step = (
                RequestStep.objects.select_for_update(of=("self",))
                .filter(pk=step_id, status=StepStatus.ACTIVE, escalated_at__isnull=True)
                .select_related("request__integration__business_owner", "request__requester")
                .first()
            )
            if step is None:
                continue
            owner = step.request.integration.business_owner
            _escalate(
                step, actor=Actor.system(on_behalf_of=owner), reason=f"The step's SLA of {step.sla_hours} hours passed."
            )
            count += 1
    return count


# --- Grants: expiry and renewal ------------------------------------------------------------------


def grants_expire_due(*, now: datetime | None = None) -> int:
    """End every active grant past its expiry (status expired, audited as grant.expired)."""
    from inventory.services import grants_end_many

    now = now or timezone.now()
    ids = list(Grant.objects.filter(status=GrantStatus.ACTIVE, expires_at__lte=now).values_list("pk", flat=True))
    if not ids:
        return 0
    return grants_end_many(
        actor=Actor.system(on_behalf_of=None),
        grant_ids=ids,
        status=GrantStatus.EXPIRED,
        reason="The grant reached its expiry date.",
        action="grant.expired",
    )


WARN_DAYS = (14, 3)
WARN_CHUNK = 500  # integrations whose due grants are read at once


def _expiry_bands(now: datetime) -> list[tuple[int, datetime, datetime]]:
    """``(days, after, until)`` for each warning, closest first: a grant expiring in
    ``(after, until]`` is due the ``days`` warning. The bands do not overlap, so a grant first
    seen two days before its expiry gets the 3-day warning only, not both."""
    bands, after = [], now
    for days in sorted(WARN_DAYS):
        until = now + timedelta(days=days)
        bands.append((days, after, until))
        after = until
    return bands


def grants_warn_expiring(*, now: datetime | None = None) -> int:
    """Warn the owners of each integration whose grants expire within 14 and within 3 days
    (one email per owner listing the grants, with a one-click renewal link) and tell the
    webhook subscribers (``grant.expiring`` per grant). Each grant records the closest warning it
    was given, so a warning is given once — also for owners with no email address, whose
    ticketing side still hears it. Grants are read a slice of integrations at a time, one
    transaction per integration."""
    now = now or timezone.now()
    sent = 0
    for days, after, until in _expiry_bands(now):
        due = (
            Grant.objects.filter(status=GrantStatus.ACTIVE, expires_at__gt=after, expires_at__lte=until)
            .filter(Q(expiry_warned_days__isnull=True) | Q(expiry_warned_days__gt=days))
            .select_related(
                "integration__business_owner", "integration__technical_owner", "integration__backup_owner", "scope"
            )
            .order_by("integration_id", "expires_at", "id")
        )
        # No cursor stays open across the writes (SQLite does not isolate them from it): the ids
        # of the integrations due first, then their grants a slice of integrations at a time.
        integration_ids = sorted(set(due.values_list("integration_id", flat=True)))
        for start in range(0, len(integration_ids), WARN_CHUNK):
            chunk = due.filter(integration_id__in=integration_ids[start : start + WARN_CHUNK])
            for _, group in groupby(chunk, key=lambda g: g.integration_id):
                sent += _warn_integration(list(group), days)
    return sent


def _warn_integration(grants: list[Grant], days: int) -> int:
    integration = grants[0].integration
    with transaction.atomic():
        # The claim: only the grants still due are marked; a second run (or a concurrent one)
        # finds them marked and sends nothing.
        claimed = Grant.objects.filter(pk__in=[g.pk for g in grants]).filter(
            Q(expiry_warned_days__isnull=True) | Q(expiry_warned_days__gt=days)
        )
        claimed_ids = set(claimed.values_list("pk", flat=True))
        if not claimed_ids:
            return 0
        Grant.objects.filter(pk__in=claimed_ids).update(expiry_warned_days=days)
        grants = [g for g in grants if g.pk in claimed_ids]
        first = grants[0].expires_at
        owners = {
            o.pk: o for o in (integration.business_owner, integration.technical_owner, integration.backup_owner) if o
        }
        sent = 0
        for owner in owners.values():
            email = email_enqueue(
                key=f"grant-expiry-{days}d-{integration.pk}-{owner.pk}-{first:%Y%m%d}",
                recipient=owner,
                subject=f"Access of {integration.name} expires in less than {days} days",
                template="grant_expiry_warning",
                context={
                    "integration": integration,
                    "grants": grants,
                    "days": days,
                    "link": _url("approvals:renew", integration.pk),
                },
            )
            sent += 1 if email is not None else 0
        webhook_emit_many(
            event_type="grant.expiring",
            target_type="inventory.grant",
            targets=((str(g.pk), {"expires_at": g.expires_at, "warning_days": days}) for g in grants),
        )
    return sent


def renewal_request_open(*, actor: Actor | User, integration: Integration, justification: str = "") -> AccessRequest:
    """One-click renewal: ask to renew every active grant of ``integration`` (owners only)."""
    user = Actor.coerce(actor).user
    if user.pk not in integration.owner_ids():
        raise NotAllowed("Only the integration's owners can ask to renew its access.")
    scopes = list(Scope.objects.filter(grants__integration=integration, grants__status=GrantStatus.ACTIVE).distinct())
    if not scopes:
        raise Conflict(f"{integration.name} holds no active grant to renew.")
    return request_open(
        actor=actor,
        integration=integration,
        type=RequestType.RENEWAL,
        scopes=scopes,
        justification=justification or "Renewal of expiring access.",
    )


def queue_open_count(user: User) -> int:
    return StepAssignment.objects.filter(user=user, is_open=True).count()
