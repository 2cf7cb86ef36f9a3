"""Configuration of approvals by IAM admins: the default lifetime of a grant per risk tier and the
steps of each workflow, plus the seeded defaults. A running request keeps the steps it copied
when its round started, so a change here applies to rounds started afterwards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction

from approvals.models import (
    DEFAULT_EXPIRY_DAYS,
    MAX_EXPIRY_DAYS,
    WORKFLOW_STEP_FIELDS,
    GrantExpiryPolicy,
    PoolKind,
    RequestType,
    Rule,
    Workflow,
    WorkflowStep,
)
from approvals.permissions import can_manage_workflows
from governance.actors import Actor
from governance.audit import audit_record, snapshot
from governance.exceptions import Conflict, NotAllowed, ValidationFailed
from governance.models import User
from governance.roles import Pool, Role
from governance.validators import SINGLE_LINE_MESSAGE, single_line_errors
from inventory.choices import RiskTier

# Hours a default step may wait for its decision before it escalates, by risk tier.
DEFAULT_SLA_HOURS = {RiskTier.LOW: 72, RiskTier.MEDIUM: 48, RiskTier.HIGH: 24, RiskTier.CRITICAL: 24}
# A just-in-time elevation waits on a running integration: its one step is due in minutes.
ELEVATION_SLA_MINUTES = 30
# The longest SLA a step may have in minutes (beyond a day, hours say it better).
MAX_SLA_MINUTES = 24 * 60
# A policy change is requested at this tier (it can change what every integration may do), so
# its one workflow is seeded for it alone.
POLICY_CHANGE_TIER = RiskTier.HIGH


def _require_workflow_admin(actor: Actor | User) -> Actor:
    resolved = Actor.coerce(actor)
    if not can_manage_workflows(resolved.user):
        raise NotAllowed("Only IAM admins can change approval workflows and grant expiry.")
    return resolved


def expiry_policy_set(*, actor: Actor | User, risk_tier: str, days: int) -> GrantExpiryPolicy:
    """Set the default lifetime of grants for integrations of ``risk_tier`` (IAM admins)."""
    resolved = _require_workflow_admin(actor)
    if risk_tier not in RiskTier.values:
        raise ValidationFailed.on("risk_tier", "Unknown risk tier.")
    if days < 1 or days > MAX_EXPIRY_DAYS:
        raise ValidationFailed.on("days", f"Between 1 and {MAX_EXPIRY_DAYS} days.")
    with transaction.atomic():
        policy, _ = GrantExpiryPolicy.objects.select_for_update().get_or_create(
            risk_tier=risk_tier, defaults={"days": DEFAULT_EXPIRY_DAYS[risk_tier]}
        )
        before = policy.days
        policy.days = days
        policy.save(update_fields=["days"])
        audit_record(
            actor=resolved,
            action="grant_expiry_policy.changed",
            target=policy,
            before={"days": before},
            after={"days": days},
        )
    return policy


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
    minutes = values.get("sla_minutes")
    if minutes is not None and not 1 <= int(minutes) <= MAX_SLA_MINUTES:
        raise ValidationFailed.on("sla_minutes", f"Between 1 and {MAX_SLA_MINUTES} minutes, or empty to use the hours.")
    bad = set(values.get("only_for_tiers") or []) - set(RiskTier.values)
    if bad:
        raise ValidationFailed.on("only_for_tiers", f"Unknown risk tier(s): {', '.join(sorted(bad))}.")


def _applicable(values: dict[str, Any], pool_users: Sequence[User]) -> tuple[dict[str, Any], Sequence[User]]:
    """Only what applies to the step's choices is kept: a group for a group pool, named people
    for a pool of named people, a quorum for a quorum rule. A value left from an earlier choice
    (or typed in a field the page hid) is cleared, so the step never holds a pool it does not use."""
    kept = dict(values)
    if kept.get("pool_kind") != PoolKind.GROUP:
        kept["pool_group"] = None
    if kept.get("rule") != Rule.QUORUM:
        kept["quorum"] = 1
    return kept, (pool_users if kept.get("pool_kind") == PoolKind.USERS else ())


def workflow_step_save(
    *,
    actor: Actor | User,
    workflow: Workflow,
    step: WorkflowStep | None,
    values: dict[str, Any],
    pool_users: Sequence[User] = (),
) -> WorkflowStep:
    """Create or change a workflow step (IAM admins). Running requests keep their copied steps.
    Fields that do not apply to the chosen pool and rule are cleared."""
    resolved = _require_workflow_admin(actor)
    values, pool_users = _applicable(values, pool_users)
    _validate_step(values, pool_users)
    with transaction.atomic():
        before = None
        if step is None:
            step = WorkflowStep(workflow=workflow)
        else:
            step = WorkflowStep.objects.select_for_update().get(pk=step.pk, workflow=workflow)
            before = snapshot(step, WORKFLOW_STEP_FIELDS)
        for name in WORKFLOW_STEP_FIELDS:
            if name in values:
                setattr(step, name, values[name])
        step._history_user = resolved.user
        step.save()
        step.pool_users.set(pool_users)
        after = {**snapshot(step, WORKFLOW_STEP_FIELDS), "pool_users": [u.username for u in pool_users]}
        audit_record(
            actor=resolved,
            action="workflow.changed",
            target=workflow,
            before={"step": before} if before else None,
            after={"step": after},
        )
    return step


def workflow_step_delete(*, actor: Actor | User, step: WorkflowStep) -> None:
    """Remove a step from its workflow (IAM admins); a workflow keeps at least one step."""
    resolved = _require_workflow_admin(actor)
    with transaction.atomic():
        workflow = step.workflow
        if workflow.steps.count() <= 1:
            raise Conflict("A workflow needs at least one step.")
        before = snapshot(step, WORKFLOW_STEP_FIELDS)
        step.delete()
        audit_record(actor=resolved, action="workflow.changed", target=workflow, before={"step": before}, after=None)


def _default_steps(request_type: str, tier: RiskTier, pools: dict[str, Group]) -> list[dict[str, Any]]:
    """Low: one IAM reviewer; medium: IAM reviewer then resource owner; high and critical: IAM
    reviewer, resource owner, then security. A just-in-time elevation, whatever the tier: any one
    IAM reviewer within minutes (one scope for one task, for an hour). A policy change: any one
    IAM admin (other than its requester and authors) within a day."""
    if request_type == RequestType.POLICY_CHANGE:
        return [
            {
                "name": "IAM admin approval",
                "pool_kind": PoolKind.GROUP,
                "pool_group": pools[Role.IAM_ADMIN],
                "rule": Rule.ANY,
                "sla_hours": DEFAULT_SLA_HOURS[RiskTier.HIGH],
            }
        ]
    iam_review = {"name": "IAM review", "pool_kind": PoolKind.GROUP, "pool_group": pools[Pool.IAM_REVIEWERS]}
    if request_type == RequestType.JIT_ELEVATION:
        return [{**iam_review, "rule": Rule.ANY, "sla_hours": 1, "sla_minutes": ELEVATION_SLA_MINUTES}]
    rule = Rule.ALL if tier == RiskTier.CRITICAL else Rule.ANY
    steps: list[dict[str, Any]] = [iam_review]
    if tier != RiskTier.LOW:
        steps.append({"name": "Resource owner", "pool_kind": PoolKind.RESOURCE_OWNERS, "pool_group": None})
    if tier in (RiskTier.HIGH, RiskTier.CRITICAL):
        steps.append(
            {
                "name": "Security review",
                "pool_kind": PoolKind.GROUP,
                "pool_group": pools[Pool.SECURITY_REVIEWERS],
                "only_for_tiers": [RiskTier.HIGH, RiskTier.CRITICAL],
            }
        )
    return [{"rule": rule, "sla_hours": DEFAULT_SLA_HOURS[tier], **values} for values in steps]


def default_workflows_ensure() -> int:
    """Seed the default workflow of every type and tier and the default expiry policies
    (idempotent: existing ones are kept). Every reviewer of each step is required for critical
    integrations, any one for the others; a just-in-time elevation is one IAM review due in
    minutes; a policy change (high tier only) is one IAM admin's approval; overdue steps
    escalate to the IAM admins."""
    pools: dict[str, Group] = {
        name: Group.objects.get_or_create(name=name)[0] for name in (Pool.IAM_REVIEWERS, Pool.SECURITY_REVIEWERS)
    }
    admins, _ = Group.objects.get_or_create(name=Role.IAM_ADMIN)
    pools[Role.IAM_ADMIN] = admins
    created = 0
    for request_type in RequestType:
        tiers = [POLICY_CHANGE_TIER] if request_type == RequestType.POLICY_CHANGE else list(RiskTier)
        for tier in tiers:
            workflow, made = Workflow.objects.get_or_create(
                request_type=request_type,
                risk_tier=tier,
                defaults={"name": f"{request_type.label} — {tier.label} risk"},
            )
            if not made:
                continue
            created += 1
            for order, values in enumerate(_default_steps(request_type, tier, pools), start=1):
                WorkflowStep.objects.create(workflow=workflow, order=order, escalation_group=admins, **values)
    for tier_value, days in DEFAULT_EXPIRY_DAYS.items():
        GrantExpiryPolicy.objects.get_or_create(risk_tier=tier_value, defaults={"days": days})
    return created
