"""Reviewers' decisions and what follows from them. A decision is refused unless its reviewer is
assigned to the current step and separation of duties allows them; approving narrows the scopes
still in play and may set an earlier expiry. A step complete by its rule hands over to the next
one; after the last, the request is approved and its grants are created in the same transaction.
A rejection or a request for changes ends the round at once and is applied to the inventory. A
change request (a policy change) grants nothing: its approval or rejection is handed, in the same
transaction, to the handler its app registered (``approvals.extensions``), and it cannot be sent
back for changes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from approvals import selectors
from approvals.models import (
    GRANT_SOURCE_TYPE,
    AccessRequest,
    Decision,
    DecisionKind,
    RequestStatus,
    RequestStep,
    RequestType,
    StepAssignment,
    StepStatus,
)
from approvals.services.notifications import outcome_notify
from approvals.services.requests import (
    apply_change_outcome,
    audit_after,
    check_integration_usable,
    check_transition,
    close_round,
    integration_of,
    lock_integration_of,
)
from approvals.services.routing import ESCALATION, activate_step, pool_user_ids_for
from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import Conflict, NotAllowed, Unprocessable, ValidationFailed
from governance.models import User
from inventory import services as inventory_services
from inventory.choices import GrantStatus, IntegrationStatus
from inventory.models import Grant, Scope


def _checked_comment(decision: str, comment: str) -> str:
    if decision not in DecisionKind.values:
        raise ValidationFailed.on("decision", "Choose approve, reject or request_changes.")
    comment = (comment or "").strip()
    if decision != DecisionKind.APPROVE and not comment:
        raise ValidationFailed.on("comment", "A comment is required to reject or to request changes.")
    return comment


def _lock_request_in_review(request: AccessRequest) -> AccessRequest:
    """Lock the integration (a change request has none), then the request (the second of two
    reviewers deciding at the same moment waits here, then sees the first one's outcome); the
    request must still be in review and its integration able to hold access."""
    integration = lock_integration_of(request)
    req = AccessRequest.objects.select_for_update().get(pk=request.pk)
    if integration is not None:
        req.integration = integration
    if req.status != RequestStatus.IN_REVIEW:
        last = Decision.objects.filter(request=req).select_related("reviewer").order_by("-created_at", "-id").first()
        by = f" (last decided by {last.reviewer.label})" if last and req.status != RequestStatus.WITHDRAWN else ""
        raise Conflict(f"This request is already {req.get_status_display().lower()}{by}: nothing left to decide.")
    if integration is not None:
        check_integration_usable(integration)
    return req


def _lock_step(req: AccessRequest, step_id: int | None) -> RequestStep:
    """Lock the step to decide: ``step_id`` (the step the reviewer was looking at) or the current
    one. A step that is no longer active is a conflict, never a decision on the next step."""
    locking = RequestStep.objects.select_for_update(of=("self",)).select_related("decided_by")
    step: RequestStep | None
    if step_id is not None:
        step = locking.filter(pk=step_id, request=req).first()
        if step is None:
            raise Unprocessable.on("step", "This step does not belong to the request.")
    else:
        found = selectors.current_step(req)
        step = locking.get(pk=found.pk) if found else None
    if step is None or step.status != StepStatus.ACTIVE:
        who = step.decided_by.label if step is not None and step.decided_by else "another reviewer"
        raise Conflict(f"This step was already decided by {who}.")
    return step


def _lock_assignment(req: AccessRequest, step: RequestStep, user: User) -> StepAssignment:
    """Lock the assignment ``user`` decides ``step`` through — their own, or that of the reviewer
    they stand in for — once separation of duties allows them (and that reviewer) to decide it."""
    refusal = selectors.step_may_decide(user, req, step)
    acting = selectors.deciding_assignment(user, step) if refusal is None else None
    if acting is None:
        raise NotAllowed(refusal or "This step is not assigned to you.")
    mine = StepAssignment.objects.select_for_update(of=("self",)).select_related("user").get(pk=acting.pk)
    if Decision.objects.filter(step=step, reviewer=user).exists():
        raise Conflict("You already decided this step.")
    if not mine.is_open:
        # The reviewer decided it themselves while their stand-in was looking at it.
        raise Conflict(f"{mine.user.label} already decided this step.")
    return mine


def _remaining_scopes(req: AccessRequest) -> list[Scope]:
    """Scopes still in play: those requested, narrowed by every approval of this round so far."""
    return selectors.scopes_in_play(req)


def _approved_scopes(req: AccessRequest, wanted: Sequence[Scope] | None) -> list[Scope]:
    """What an approval grants: the scopes still in play, or the subset of them ``wanted``; for a
    change request, nothing."""
    if req.is_change:
        if wanted:
            raise Unprocessable.on("approved_scopes", "A change request grants no scope: approve it without scopes.")
        return []
    remaining = _remaining_scopes(req)
    if wanted is None:
        return remaining
    wanted_ids = {scope.pk for scope in wanted}
    if wanted_ids - {scope.pk for scope in remaining}:
        raise Unprocessable.on("approved_scopes", "Approve only scopes that this request still asks for.")
    approved = [scope for scope in remaining if scope.pk in wanted_ids]
    if not approved:
        raise Unprocessable.on("approved_scopes", "Approve at least one scope, or reject the request.")
    return approved


def _default_expiry(req: AccessRequest) -> datetime:
    """When the grants of an approval made now end unless a reviewer sets an earlier expiry: a
    just-in-time elevation's after ``settings.RUNTIME_JIT_GRANT_MINUTES`` (it is for one task),
    any other request's after the tier's default lifetime."""
    if req.is_elevation:
        return timezone.now() + timedelta(minutes=settings.RUNTIME_JIT_GRANT_MINUTES)
    return timezone.now() + timedelta(days=selectors.default_expiry_days(req.risk_tier))


def _checked_expiry(req: AccessRequest, expires_at: datetime | None) -> datetime | None:
    """An approval may only shorten the default lifetime of the grants."""
    if expires_at is None:
        return None
    if req.is_change:
        raise Unprocessable.on("expires_at", "A change request grants nothing that expires.")
    default_expiry = _default_expiry(req)
    if expires_at <= timezone.now():
        raise Unprocessable.on("expires_at", "The expiry must be in the future.")
    if expires_at > default_expiry:
        what = "an elevation" if req.is_elevation else "this tier"
        raise Unprocessable.on(
            "expires_at",
            f"The expiry can only be earlier than the default for {what} ({default_expiry:%Y-%m-%d %H:%M}).",
        )
    return expires_at


def _record(
    req: AccessRequest,
    step: RequestStep,
    mine: StepAssignment,
    *,
    actor: Actor,
    decision: str,
    comment: str,
    approved: list[Scope],
    expires_at: datetime | None,
) -> Decision:
    """Store the decision, close the reviewer's assignment and audit it (the requester hears the
    outcome once, when the round ends)."""
    # A delegate decides in their own name, for the reviewer whose assignment it is.
    on_behalf_of = mine.user if mine.user_id != actor.user.pk else None
    made = Decision.objects.create(
        step=step,
        request=req,
        reviewer=actor.user,
        on_behalf_of=on_behalf_of,
        decision=decision,
        comment=comment,
        expires_at=expires_at,
    )
    made.approved_scopes.set(approved)
    mine.is_open = False
    mine.save(update_fields=["is_open"])
    audit_record(
        actor=actor,
        action="access_request.step_decided",
        target=req,
        owner=req.accountable_owner,
        after={
            "step": step.name,
            "round": step.round,
            "decision": decision,
            "reviewer": actor.user.username,
            **({"on_behalf_of": on_behalf_of.username} if on_behalf_of is not None else {}),
            "approved_scopes": [scope.code for scope in approved],
            "expires_at": expires_at,
        },
        reason=comment,
    )
    return made


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

    A change request's final approval or rejection runs its registered handler in this
    transaction: a ``DomainError`` it raises undoes the decision and reaches the reviewer.

    Refused: a comment missing on reject/request_changes, changes requested on an elevation or
    a change request (400), separation of duties or not assigned (403), scopes or an expiry on a
    change request (422), a stale state — the step already decided, the request withdrawn or
    closed, the integration suspended/retired or without owner (409)."""
    resolved = Actor.coerce(actor)
    comment = _checked_comment(decision, comment)
    if request.type == RequestType.JIT_ELEVATION and decision == DecisionKind.REQUEST_CHANGES:
        # Nobody could make the changes: the integration asked at run time, and asks again.
        raise ValidationFailed.on("decision", "An elevation is approved or rejected; changes cannot be requested.")
    if request.is_change and decision == DecisionKind.REQUEST_CHANGES:
        # The request names one fixed version: a changed version is a new request.
        raise ValidationFailed.on(
            "decision",
            f"A {request.get_type_display().lower()} is approved or rejected; changes cannot be requested. "
            "Reject it with what must change: a new request follows the changes.",
        )
    with transaction.atomic():
        req = _lock_request_in_review(request)
        step = _lock_step(req, step_id)
        mine = _lock_assignment(req, step, resolved.user)
        approved: list[Scope] = []
        if decision == DecisionKind.APPROVE:
            approved = _approved_scopes(req, approved_scopes)
            expires_at = _checked_expiry(req, expires_at)
        else:
            expires_at = None
        made = _record(
            req,
            step,
            mine,
            actor=resolved,
            decision=decision,
            comment=comment,
            approved=approved,
            expires_at=expires_at,
        )
        _follow_up(req, step, mine, actor=resolved, decision=decision, comment=comment)
    return made


def _follow_up(
    req: AccessRequest, step: RequestStep, mine: StepAssignment, *, actor: Actor, decision: str, comment: str
) -> None:
    """Complete the step when its rule is met and move on; a rejection or a request for changes
    completes it and closes the request at once."""
    if decision != DecisionKind.APPROVE:
        outcome = RequestStatus.REJECTED if decision == DecisionKind.REJECT else RequestStatus.CHANGES_REQUESTED
        _complete_step(step, outcome, actor.user)
        _apply_outcome(req, actor=actor, status=outcome, reason=comment)
        return
    approvals = Decision.objects.filter(step=step, decision=DecisionKind.APPROVE).count()
    # An assignment an IAM admin moved to someone else no longer counts towards "all reviewers".
    needed = step.required_approvals or step.assignments.exclude(via=ESCALATION).filter(reassigned_at=None).count()
    # The escalation target takes the step over: their approval completes it whatever the rule.
    if approvals >= max(1, needed) or mine.via == ESCALATION:
        _complete_step(step, StepStatus.APPROVED, actor.user)
        _advance(req, actor=actor)


def _complete_step(step: RequestStep, status: str, user: User) -> None:
    step.status = status
    step.decided_at = timezone.now()
    step.decided_by = user
    step.save(update_fields=["status", "decided_at", "decided_by"])
    StepAssignment.objects.filter(step=step, is_open=True).update(is_open=False)


def _advance(req: AccessRequest, *, actor: Actor) -> None:
    """Activate the next waiting step of the round; after the last one, approve the request."""
    nxt = RequestStep.objects.filter(request=req, round=req.round, status=StepStatus.WAITING).order_by("order").first()
    if nxt is not None:
        activate_step(nxt, actor=actor, pool_user_ids=pool_user_ids_for(nxt))
        return
    _apply_outcome(req, actor=actor, status=RequestStatus.APPROVED, reason="Every required step approved.")


def _apply_outcome(req: AccessRequest, *, actor: Actor, status: str, reason: str) -> None:
    """Close the request (or, for changes requested, the round) with ``status``, apply the outcome
    to the inventory (or, for a change request, through its handler) in this transaction, audit
    it, and queue the one outcome email to the requester."""
    check_transition(req, status)
    close_round(req, status=StepStatus.CANCELLED)
    before = req.status
    req.status = status
    req.updated_at = timezone.now()
    if status != RequestStatus.CHANGES_REQUESTED:
        req.closed_at = req.updated_at
    req.outcome_reason = reason
    req._history_user = actor.user
    req.save(update_fields=["status", "updated_at", "closed_at", "outcome_reason"])
    after = audit_after(req)
    if not req.is_change:
        after |= _apply_to_inventory(req, actor=actor, status=status, reason=reason)
    audit_record(
        actor=actor,
        action=f"access_request.{status}",
        target=req,
        owner=req.accountable_owner,
        before={"status": before},
        after=after,
        reason=reason,
    )
    if req.is_change:
        # After the request's own event, so the trail reads "approved", then what it changed.
        apply_change_outcome(req, status=status, actor=actor)
    outcome_notify(req, status=status)


def _apply_to_inventory(req: AccessRequest, *, actor: Actor, status: str, reason: str) -> dict[str, Any]:
    """Apply an integration request's outcome to the inventory; returns what its audit event adds."""
    if status == RequestStatus.APPROVED:
        return _grant_approved(req, actor=actor)
    if status == RequestStatus.REJECTED:
        _apply_rejection(req, actor=actor, reason=reason)
    elif status == RequestStatus.CHANGES_REQUESTED:
        # The registration goes back to its owners as a draft.
        _move_pending_registration(
            req, actor=actor, to_status=IntegrationStatus.DRAFT, reason=reason, action="integration.changes_requested"
        )
    return {}


def _grant_approved(req: AccessRequest, *, actor: Actor) -> dict[str, Any]:
    """Activate a registered integration and grant the scopes every approval of the round left in
    play, until the earliest expiry an approver set (or the default: the tier's, or for an
    elevation ``RUNTIME_JIT_GRANT_MINUTES`` from now). Returns what the audit event adds."""
    integration = integration_of(req)
    step_ids = RequestStep.objects.filter(request=req, round=req.round).values_list("pk", flat=True)
    decisions = list(
        Decision.objects.filter(step_id__in=step_ids, decision=DecisionKind.APPROVE).select_related("reviewer")
    )
    scopes = _remaining_scopes(req)
    if req.is_elevation:
        # A scope granted meanwhile (by an expansion) keeps its standing grant: extending it
        # here would cut its lifetime to the elevation's hour.
        held = Grant.objects.filter(integration=integration, status=GrantStatus.ACTIVE, scope__in=scopes)
        held_ids = set(held.values_list("scope_id", flat=True))
        scopes = [scope for scope in scopes if scope.pk not in held_ids]
    expiries = [decision.expires_at for decision in decisions if decision.expires_at is not None]
    expires_at = min([*expiries, _default_expiry(req)])
    if req.type == RequestType.REGISTRATION and integration.status != IntegrationStatus.ACTIVE:
        inventory_services.integration_transition(
            actor=actor,
            integration=integration,
            to_status=IntegrationStatus.ACTIVE,
            reason=f"Access request #{req.pk} approved.",
            action="integration.approved",
        )
    grants = inventory_services.grant_create_many(
        actor=actor,
        integration=integration,
        scopes=scopes,
        source_type=GRANT_SOURCE_TYPE,
        source_id=str(req.pk),
        approvers=[decision.reviewer for decision in decisions],
        expires_at=expires_at,
    )
    return {"granted": [grant.scope.code for grant in grants], "expires_at": expires_at}


def _move_pending_registration(req: AccessRequest, *, actor: Actor, to_status: str, reason: str, action: str) -> bool:
    """Move the integration of a registration request that is still pending approval; False when
    ``req`` is no such request."""
    if req.type != RequestType.REGISTRATION:
        return False
    integration = integration_of(req)
    if integration.status != IntegrationStatus.PENDING:
        return False
    inventory_services.integration_transition(
        actor=actor, integration=integration, to_status=to_status, reason=reason, action=action
    )
    return True


def _apply_rejection(req: AccessRequest, *, actor: Actor, reason: str) -> None:
    """A rejected registration rejects the integration; a failed re-review takes away the access
    it was about."""
    integration = integration_of(req)
    if _move_pending_registration(
        req, actor=actor, to_status=IntegrationStatus.REJECTED, reason=reason, action="integration.rejected"
    ):
        return
    if req.type == RequestType.RE_REVIEW:
        ids = list(
            Grant.objects.filter(
                integration=integration, status=GrantStatus.ACTIVE, scope__in=req.requested_scopes.all()
            ).values_list("pk", flat=True)
        )
        inventory_services.grants_end_many(
            actor=actor, grant_ids=ids, status=GrantStatus.REVOKED, reason=reason, action="grant.revoked"
        )
