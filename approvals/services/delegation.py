"""Delegations (a reviewer away hands their open approval steps and review items to a colleague
of the same pool for a period) and reassignments (an IAM admin moves one open step assignment to
another eligible reviewer).

A delegation is scheduled, then active from ``starts_at`` to ``ends_at`` unless revoked. While
it runs its delegate holds guardian object permissions on the delegator's open items
(``approvals.services.standins``); the sweep (``delegations_sync``, every five minutes) starts
and ends delegations and covers what reached the delegator since, and the gates also read the
delegation itself, so one that ended stops at once. Rules: the delegate is another active person
of one of the delegator's pools, not away themselves then; at most ``MAX_DELEGATION_DAYS``,
ending after it starts and in the future; one delegation of a person at a time. Every change is
audited in its transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from approvals import permissions, selectors
from approvals.models import MAX_DELEGATION_DAYS, Delegation, StepAssignment, StepStatus
from approvals.services import standins
from approvals.services.requests import lock_integration_by_id
from approvals.services.routing import ESCALATION, assign_people
from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import Conflict, NotAllowed, ValidationFailed
from governance.models import User
from governance.roles import is_iam_admin, is_read_only
from governance.services import email_enqueue

REASON_MAX = 300  # the longest reason a delegation or a reassignment keeps


def _audit_after(delegation: Delegation) -> dict[str, Any]:
    return {
        "delegator": delegation.delegator.username,
        "delegate": delegation.delegate.username,
        "starts_at": delegation.starts_at,
        "ends_at": delegation.ends_at,
        "covers_approvals": delegation.covers_approvals,
        "covers_reviews": delegation.covers_reviews,
    }


def _checked_period(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if ends_at <= starts_at:
        raise ValidationFailed.on("ends_at", "The delegation must end after it starts.")
    if ends_at <= now:
        raise ValidationFailed.on("ends_at", "The delegation must end in the future.")
    if ends_at - starts_at > timedelta(days=MAX_DELEGATION_DAYS):
        raise ValidationFailed.on(
            "ends_at", f"A delegation lasts at most {MAX_DELEGATION_DAYS} days: ask an IAM admin to change the pools."
        )


def _checked_delegate(delegator: User, delegate: User) -> None:
    if delegate.pk == delegator.pk:
        raise ValidationFailed.on("delegate", "Choose someone other than the person who is away.")
    if not delegate.is_active or delegate.is_service_account or is_read_only(delegate):
        raise ValidationFailed.on("delegate", f"{delegate.label} cannot decide reviews (inactive or read-only).")
    if not selectors.delegation_colleagues(delegator).filter(pk=delegate.pk).exists():
        raise ValidationFailed.on(
            "delegate", f"{delegate.label} is not in {delegator.label}'s reviewer pool: choose a colleague of it."
        )


def _overlapping(person: User, starts_at: datetime, ends_at: datetime, *, as_delegator: bool) -> bool:
    field = "delegator" if as_delegator else "delegate"
    return Delegation.objects.filter(
        **{field: person}, revoked_at__isnull=True, starts_at__lt=ends_at, ends_at__gt=starts_at
    ).exists()


def _tell_delegate(delegation: Delegation) -> None:
    email_enqueue(
        key=f"delegation-{delegation.pk}-created",
        recipient=delegation.delegate,
        subject=f"You stand in for {delegation.delegator.label} from {delegation.starts_at:%d %b}",
        template="governance_notice",
        context={
            "message": (
                f"{delegation.delegator.label} is away from {delegation.starts_at:%d %b %Y %H:%M} to "
                f"{delegation.ends_at:%d %b %Y %H:%M} and handed you their {delegation.covers_label}: they "
                "appear in your queue marked “on behalf of” while the delegation runs."
            ),
            "path": reverse("approvals:delegations"),
        },
    )


def delegation_create(
    *,
    actor: Actor | User,
    delegator: User,
    delegate: User,
    starts_at: datetime,
    ends_at: datetime,
    covers_approvals: bool = True,
    covers_reviews: bool = True,
    reason: str = "",
) -> Delegation:
    """Record that ``delegator`` hands their reviews to ``delegate`` for the period (the rules are
    in the module doc); one that starts now covers their open items at once. The delegator sets
    it up, or an IAM admin for them. The delegate is told by email."""
    resolved = Actor.coerce(actor)
    user = resolved.user
    if not permissions.can_delegate(user) or (delegator.pk != user.pk and not is_iam_admin(user)):
        raise NotAllowed("You may delegate only your own reviews; an IAM admin may set one up for someone else.")
    if len(reason.strip()) > REASON_MAX:
        raise ValidationFailed.on("reason", f"Keep the reason under {REASON_MAX} characters.")
    if not (covers_approvals or covers_reviews):
        raise ValidationFailed.on("covers_approvals", "Choose approvals, recertification reviews or both.")
    now = timezone.now()
    _checked_period(starts_at, ends_at, now)
    _checked_delegate(delegator, delegate)
    with transaction.atomic():
        # One person's delegations are made one at a time, so two at once cannot overlap.
        User.objects.select_for_update().filter(pk=delegator.pk).first()
        if _overlapping(delegator, starts_at, ends_at, as_delegator=True):
            raise Conflict(f"{delegator.label} already has a delegation in that period: revoke it or pick other dates.")
        if _overlapping(delegate, starts_at, ends_at, as_delegator=True):
            raise ValidationFailed.on("delegate", f"{delegate.label} is away then too: choose someone else.")
        delegation = Delegation.objects.create(
            delegator=delegator,
            delegate=delegate,
            starts_at=starts_at,
            ends_at=ends_at,
            covers_approvals=covers_approvals,
            covers_reviews=covers_reviews,
            reason=reason.strip(),
            created_by=user,
        )
        audit_record(
            actor=resolved,
            action="delegation.created",
            target=delegation,
            owner=delegator,
            after=_audit_after(delegation),
            reason=delegation.reason,
        )
        _tell_delegate(delegation)
        if starts_at <= now:
            _start(delegation, actor=resolved, now=now)
    return delegation


def _start(delegation: Delegation, *, actor: Actor, now: datetime) -> bool:
    """Grant the stand-in permissions of a delegation that has begun; False when another run
    already did (the one-row update claims it)."""
    if Delegation.objects.filter(pk=delegation.pk, started_at__isnull=True).update(started_at=now) != 1:
        return False
    delegation.started_at = now
    covered = standins.delegation_cover(delegation)
    audit_record(
        actor=actor,
        action="delegation.started",
        target=delegation,
        owner=delegation.delegator,
        after={**_audit_after(delegation), "covered_steps": covered["steps"], "covered_items": covered["items"]},
    )
    return True


def _end(delegation: Delegation, *, actor: Actor, now: datetime, action: str, reason: str = "") -> bool:
    """Withdraw the stand-in permissions of a delegation that ended or was revoked; False when
    another run already did."""
    if Delegation.objects.filter(pk=delegation.pk, ended_at__isnull=True).update(ended_at=now) != 1:
        return False
    delegation.ended_at = now
    removed = standins.delegation_withdraw(delegation) if delegation.started_at is not None else 0
    audit_record(
        actor=actor,
        action=action,
        target=delegation,
        owner=delegation.delegator,
        after={**_audit_after(delegation), "permissions_removed": removed},
        reason=reason,
    )
    return True


def delegation_revoke(*, actor: Actor | User, delegation: Delegation, reason: str = "") -> Delegation:
    """End a scheduled or running delegation now (the delegator or an IAM admin): the delegate's
    stand-in permissions go in this transaction. An ended or revoked one is a conflict."""
    resolved = Actor.coerce(actor)
    if not permissions.can_manage_delegation(resolved.user, delegation):
        raise NotAllowed("Only the person who delegated, or an IAM admin, may revoke this delegation.")
    now = timezone.now()
    with transaction.atomic():
        locked = (
            Delegation.objects.select_for_update(of=("self",))
            .select_related("delegator", "delegate")
            .get(pk=delegation.pk)
        )
        if locked.revoked_at is not None or locked.ends_at <= now:
            raise Conflict(f"This delegation is already {locked.get_status_display().lower()}.")
        locked.revoked_at, locked.revoked_by = now, resolved.user
        locked.save(update_fields=["revoked_at", "revoked_by"])
        _end(locked, actor=resolved, now=now, action="delegation.revoked", reason=reason.strip())
    return locked


def delegations_sync(*, now: datetime | None = None) -> dict[str, int]:
    """The sweep: end delegations past their end (or revoked before their start's grants were
    withdrawn), start those whose start has come, and cover what reached a running delegation's
    delegator since the last pass. Idempotent: each start and end is claimed by a one-row update;
    covering skips what is covered. Each delegation is its own transaction."""
    now = now or timezone.now()
    counts = {"started": 0, "ended": 0, "covered": 0}
    due_to_end = Delegation.objects.filter(ended_at__isnull=True).filter(
        Q(ends_at__lte=now) | Q(revoked_at__isnull=False)
    )
    for delegation in due_to_end.select_related("delegator", "delegate"):
        with transaction.atomic():
            actor = Actor.system(on_behalf_of=delegation.delegator)
            counts["ended"] += _end(delegation, actor=actor, now=now, action="delegation.ended")
    running = selectors.active_delegations(now).filter(ended_at__isnull=True).select_related("delegator", "delegate")
    for delegation in running:
        with transaction.atomic():
            actor = Actor.system(on_behalf_of=delegation.delegator)
            if delegation.started_at is None:
                counts["started"] += _start(delegation, actor=actor, now=now)
            else:
                covered = standins.delegation_cover(delegation)
                counts["covered"] += covered["steps"] + covered["items"]
    return counts


def assignment_reassign(
    *, actor: Actor | User, assignment: StepAssignment, to_user: User, reason: str
) -> StepAssignment:
    """An IAM admin moves an open step assignment to another eligible reviewer: the old one
    closes undecided with the reason, the new reviewer is assigned with the same due time
    (emailed; their own delegate covered if they are away). An escalation stays an escalation.
    Refused: not an IAM admin (403), no reason (400), someone separation of duties keeps out or
    already on the step (400), a step no longer waiting (409)."""
    resolved = Actor.coerce(actor)
    if not permissions.can_reassign(resolved.user):
        raise NotAllowed("Only IAM admins reassign approval steps.")
    reason = (reason or "").strip()
    if not reason or len(reason) > REASON_MAX:
        raise ValidationFailed.on(
            "reason", f"Say why the step is reassigned, in at most {REASON_MAX} characters (the audit keeps it)."
        )
    with transaction.atomic():
        lock_integration_by_id(
            StepAssignment.objects.filter(pk=assignment.pk)
            .values_list("step__request__integration_id", flat=True)
            .first()
        )
        locked = (
            StepAssignment.objects.select_for_update(of=("self",))
            .select_related("user", "step__request__integration", "step__pool_group")
            .get(pk=assignment.pk)
        )
        step = locked.step
        if not locked.is_open or step.status != StepStatus.ACTIVE:
            raise Conflict("This assignment is no longer waiting for a decision: nothing to reassign.")
        _checked_new_reviewer(locked, to_user)
        locked.is_open = False
        locked.reassigned_at, locked.reassigned_to, locked.closed_reason = timezone.now(), to_user, reason
        locked.save(update_fields=["is_open", "reassigned_at", "reassigned_to", "closed_reason"])
        via = ESCALATION if locked.via == ESCALATION else f"reassigned by {resolved.user.label}"[:60]
        assign_people(step, [(to_user, via)])
        new = StepAssignment.objects.get(step=step, user=to_user)
        if new.due_at != locked.due_at:
            new.due_at = locked.due_at
            new.save(update_fields=["due_at"])
        audit_record(
            actor=resolved,
            action="access_request.reassigned",
            target=step.request,
            owner=step.request.accountable_owner,
            before={"reviewer": locked.user.username},
            after={"reviewer": to_user.username, "step": step.name, "round": step.round, "due_at": new.due_at},
            reason=reason,
        )
    return new


def _checked_new_reviewer(assignment: StepAssignment, to_user: User) -> None:
    step = assignment.step
    if not selectors.reassign_candidates(step).filter(pk=to_user.pk).exists():
        raise ValidationFailed.on(
            "to_user",
            f"{to_user.label} cannot take this step: choose an active reviewer of its pool who is not on it "
            "already and is not its requester or an owner of the integration.",
        )
    if selectors.sod_refusal(to_user, step.request, step, stand_in=False) is not None:
        raise ValidationFailed.on(
            "to_user",
            f"Separation of duties keeps {to_user.label} out of this step (they asked for it, act for the "
            "integration or decided another step of this round).",
        )
