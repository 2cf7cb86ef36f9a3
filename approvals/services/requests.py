"""The life of an access request outside its decisions: opening one (round 1 of its workflow),
resubmitting it after "changes requested" (the next round), restarting it when the integration's
risk tier rises, withdrawing it, and cancelling the open ones of an integration that can no longer
hold access. Earlier rounds stay as evidence. Locks are taken integration first, then request,
then step, as everywhere in approvals (the inventory locks the integration first too); a change
request has no integration, so its locks start at the request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.extensions import change_handler
from approvals.models import (
    CHANGE_TYPES,
    OPEN_STATUSES,
    REQUEST_TRANSITIONS,
    AccessRequest,
    RequestStatus,
    RequestStep,
    RequestType,
    StepAssignment,
    StepStatus,
)
from approvals.permissions import can_withdraw
from approvals.services.routing import start_round
from governance.actors import Actor
from governance.audit import EventSpec, audit_record, audit_record_many
from governance.exceptions import Conflict, IllegalTransition, NotAllowed, ValidationFailed
from governance.models import User
from governance.validators import SINGLE_LINE_MESSAGE, has_control_characters
from inventory.choices import IntegrationStatus
from inventory.models import Integration, Scope

# An integration in these states holds no access, so nothing can be decided for it.
DISABLED_STATUSES = (IntegrationStatus.SUSPENDED, IntegrationStatus.RETIRED)


def audit_after(req: AccessRequest) -> dict[str, Any]:
    """What every audit event of a request records about it afterwards (for a change request,
    also what it is about)."""
    after: dict[str, Any] = {
        "type": req.type,
        "status": req.status,
        "round": req.round,
        "integration": req.integration_id,
        "ticket_ref": req.ticket_ref,
    }
    if req.is_change:
        after |= {"subject": req.subject_label, "payload": req.payload}
    return after


def integration_of(req: AccessRequest) -> Integration:
    """The integration of a request about one (any but a change request); the database refuses
    any other request without one, so its absence here is a broken invariant, never quiet."""
    integration = req.integration
    if integration is None:
        raise IllegalTransition(f"Request #{req.pk} is a {req.get_type_display().lower()}: it is about no integration.")
    return integration


def lock_integration_of(req: AccessRequest) -> Integration | None:
    """Lock the request's integration (always before the request), or None for a change request,
    which has none."""
    if req.integration_id is None:
        return None
    return Integration.objects.select_for_update().get(pk=req.integration_id)


def lock_integration_by_id(integration_id: int | None) -> None:
    """Lock integration ``integration_id`` (nothing for None: a change request), first of the
    rows a request writer locks: a rescore then either commits before an assignment copies the
    integration's tier and score, or waits for it."""
    if integration_id is not None:
        list(Integration.objects.select_for_update().filter(pk=integration_id).values_list("pk", flat=True))


def _lock_request(request: AccessRequest) -> AccessRequest:
    """Lock the request's integration (if any), then the request, with the integration attached.
    Two statements, not one join: PostgreSQL locks no row on the nullable side of an outer join,
    and the integration comes first in the lock order."""
    integration = lock_integration_of(request)
    req = AccessRequest.objects.select_for_update().get(pk=request.pk)
    if integration is not None:
        req.integration = integration
    return req


def apply_change_outcome(req: AccessRequest, *, status: str, actor: Actor) -> None:
    """Hand a change request that reached its final ``status`` (saved already) to the handler
    registered for its type, in the caller's transaction: whatever the handler raises undoes the
    whole decision. Without a handler nothing could apply the outcome, so it is refused."""
    if not req.is_change or status in OPEN_STATUSES:
        return
    handler = change_handler(req.type)
    if handler is None:
        raise Conflict(f"Nothing is set up to apply a {req.get_type_display().lower()}: it cannot be closed now.")
    handler(req, str(status), actor)


def check_transition(req: AccessRequest, to_status: str) -> None:
    if to_status not in REQUEST_TRANSITIONS[req.status]:
        raise IllegalTransition(
            f"Request #{req.pk} is {req.get_status_display().lower()}; it cannot become "
            f"{RequestStatus(to_status).label.lower()}."
        )


def check_integration_usable(integration: Integration) -> None:
    if integration.status in DISABLED_STATUSES:
        raise Conflict(f"{integration.name} is {integration.get_status_display().lower()}: no decision can be applied.")
    if integration.orphaned:
        raise Conflict(f"{integration.name} has no owner any more (an owner left): IAM must assign a new owner first.")


def close_round(req: AccessRequest, *, status: str) -> None:
    """End every open step and assignment of the current round."""
    steps = RequestStep.objects.filter(request=req, round=req.round, status__in=[StepStatus.WAITING, StepStatus.ACTIVE])
    StepAssignment.objects.filter(step__in=steps, is_open=True).update(is_open=False)
    steps.update(status=status)


def _validated_scopes(scopes: Sequence[Scope]) -> list[Scope]:
    scope_list = list(dict.fromkeys(scopes))
    if not scope_list:
        raise ValidationFailed.on("scopes", "A request needs at least one scope.")
    return scope_list


def _lock_integration_for(type: str, integration: Integration) -> Integration:
    """Lock the integration a new request of ``type`` is about and check it may have one: usable,
    active unless it is being registered, and without an open request of the same type."""
    locked = Integration.objects.select_for_update().get(pk=integration.pk)
    check_integration_usable(locked)
    if type != RequestType.REGISTRATION and locked.status != IntegrationStatus.ACTIVE:
        raise Conflict(
            f"{locked.name} is {locked.get_status_display().lower()}: only an active integration can ask for this."
        )
    if AccessRequest.objects.filter(integration=locked, type=type, status__in=OPEN_STATUSES).exists():
        raise Conflict(f"{locked.name} already has an open {RequestType(type).label.lower()} request.")
    return locked


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
    if type in CHANGE_TYPES:
        # About no integration: the database would refuse the row; change_request_open opens it.
        raise ValidationFailed.on(
            "type", "A change request is opened with change_request_open, without an integration."
        )
    if has_control_characters(ticket_ref):
        raise ValidationFailed.on("ticket_ref", SINGLE_LINE_MESSAGE)
    scope_list = _validated_scopes(scopes)
    if any(not scope.is_active for scope in scope_list):
        raise ValidationFailed.on("scopes", "Retired scopes cannot be requested.")
    with transaction.atomic():
        locked = _lock_integration_for(type, integration)
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
            after={**audit_after(req), "scopes": [scope.code for scope in scope_list], "requester": who.username},
        )
        start_round(req, actor=resolved)
    return req


def request_resubmit(
    *, actor: Actor | User, request: AccessRequest, scopes: Sequence[Scope] | None = None, comment: str = ""
) -> AccessRequest:
    """After "changes requested", the requester (or an owner) resubmits: the next round of the
    same request starts from the first step; earlier rounds stay as history."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        integration = lock_integration_of(request)
        req = AccessRequest.objects.select_for_update().get(pk=request.pk)
        if integration is not None:
            req.integration = integration
            check_integration_usable(integration)
        if not resolved.is_system and not can_withdraw(resolved.user, req):
            raise NotAllowed("Only the requester or the integration's owners can resubmit this request.")
        check_transition(req, RequestStatus.IN_REVIEW)
        if scopes is not None:
            if req.is_change:
                raise ValidationFailed.on("scopes", "A change request asks for no scope.")
            req.requested_scopes.set(_validated_scopes(scopes))
        req.status = RequestStatus.IN_REVIEW
        req.round += 1
        if integration is not None:
            req.risk_tier = integration.risk_tier
        req.updated_at = timezone.now()
        req._history_user = resolved.user
        req.save(update_fields=["status", "round", "risk_tier", "updated_at"])
        audit_record(
            actor=resolved,
            action="access_request.resubmitted",
            target=req,
            owner=req.accountable_owner,
            before={"status": RequestStatus.CHANGES_REQUESTED, "round": req.round - 1},
            after={**audit_after(req), "scopes": list(req.requested_scopes.values_list("code", flat=True))},
            reason=comment,
        )
        start_round(req, actor=resolved)
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
        req = _lock_request(request)
        if req.status != RequestStatus.IN_REVIEW:
            raise Conflict(f"Request #{req.pk} is {req.get_status_display().lower()}: nothing to restart.")
        before = {"round": req.round, "risk_tier": req.risk_tier}
        close_round(req, status=StepStatus.CANCELLED)
        req.round += 1
        req.risk_tier = new_tier
        req.updated_at = timezone.now()
        req._history_user = resolved.user
        req.save(update_fields=["round", "risk_tier", "updated_at"])
        audit_record(
            actor=resolved,
            action="access_request.restarted",
            target=req,
            owner=req.accountable_owner,
            before=before,
            after=audit_after(req),
            reason=reason,
        )
        start_round(req, actor=resolved)
    return req


def end_open_request(req: AccessRequest, *, status: str, reason: str, author: User) -> str:
    """Close an open request without a decision (withdrawn or cancelled); returns its old status."""
    before = req.status
    close_round(req, status=StepStatus.CANCELLED)
    req.status = status
    req.closed_at = req.updated_at = timezone.now()
    req.outcome_reason = reason
    req._history_user = author
    req.save(update_fields=["status", "closed_at", "updated_at", "outcome_reason"])
    return before


def request_withdraw(*, actor: Actor | User, request: AccessRequest, reason: str = "") -> AccessRequest:
    """The requester (or an owner of the integration) withdraws an open request; a change
    request's handler hears it in this transaction."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        req = _lock_request(request)
        if not can_withdraw(resolved.user, req):
            raise NotAllowed("Only the requester or the integration's owners can withdraw this request.")
        check_transition(req, RequestStatus.WITHDRAWN)
        before = end_open_request(req, status=RequestStatus.WITHDRAWN, reason=reason, author=resolved.user)
        audit_record(
            actor=resolved,
            action="access_request.withdrawn",
            target=req,
            owner=req.accountable_owner,
            before={"status": before},
            after=audit_after(req),
            reason=reason,
        )
        apply_change_outcome(req, status=RequestStatus.WITHDRAWN, actor=resolved)
    request.refresh_from_db()
    return req


def requests_cancel_for_integration(*, actor: Actor | User, integration: Integration, reason: str) -> int:
    """The integration was suspended, retired or orphaned: its open requests cannot be decided."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        reqs = list(AccessRequest.objects.select_for_update().filter(integration=integration, status__in=OPEN_STATUSES))
        events = []
        for req in reqs:
            before = end_open_request(req, status=RequestStatus.CANCELLED, reason=reason, author=resolved.user)
            events.append(
                EventSpec(
                    action="access_request.cancelled",
                    target=req,
                    owner=integration.business_owner,
                    before={"status": before},
                    after=audit_after(req),
                    reason=reason,
                )
            )
        if events:
            audit_record_many(actor=resolved, events=events)
    return len(reqs)
