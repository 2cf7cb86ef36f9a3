"""Just-in-time elevations: an active integration asks, at run time, for one scope marked "JIT
eligible" that it does not hold, for one stated task. The token endpoint opens the request as
the system acting for the integration's business owner, who is its requester (the integration
asks on the owner's behalf, and the owner answers for it). It runs through the elevation's own
short workflow like any request — reviewer queue, email link, SLA, escalation — and its approval
creates a grant that ends by itself after ``settings.RUNTIME_JIT_GRANT_MINUTES`` (see the
decisions). An elevation never changes the integration's requested scopes or its status."""

from __future__ import annotations

from django.db import transaction

from approvals.models import AccessRequest, RequestStatus, RequestType
from approvals.services.requests import audit_after, check_integration_usable
from approvals.services.routing import start_round
from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import Conflict, ValidationFailed
from governance.validators import SINGLE_LINE_MESSAGE, has_control_characters
from inventory.choices import GrantStatus, IntegrationStatus
from inventory.models import Grant, Integration, Scope

TASK_MAX_LENGTH = 200


def _checked_task(task: str) -> str:
    """The stated purpose: required, one line, at most ``TASK_MAX_LENGTH`` characters."""
    task = (task or "").strip()
    if not task:
        raise ValidationFailed.on("task", "Say which task the elevation is for.")
    if len(task) > TASK_MAX_LENGTH:
        raise ValidationFailed.on("task", f"At most {TASK_MAX_LENGTH} characters.")
    if has_control_characters(task):
        raise ValidationFailed.on("task", SINGLE_LINE_MESSAGE)
    return task


def _checked_scope(scope: Scope) -> None:
    if not scope.is_active:
        raise ValidationFailed.on("scope", f"{scope.code} is retired: it cannot be asked for.")
    if not scope.jit_eligible:
        raise ValidationFailed.on("scope", f"{scope.code} is not eligible for just-in-time elevation.")


def _lock_asking_integration(integration: Integration) -> Integration:
    """Lock the integration (as every request service does, before any request) and check that
    it may ask: active, with an owner who is still here."""
    locked = Integration.objects.select_for_update().select_related("business_owner").get(pk=integration.pk)
    check_integration_usable(locked)
    if locked.status != IntegrationStatus.ACTIVE:
        raise Conflict(
            f"{locked.name} is {locked.get_status_display().lower()}: only an active integration can ask for elevation."
        )
    if not locked.business_owner.is_active:
        raise Conflict(f"The business owner of {locked.name} is deactivated: nobody answers for an elevation.")
    return locked


def _open_elevation(locked: Integration, scope: Scope) -> AccessRequest | None:
    """The elevation of ``locked`` to ``scope`` still in review, if any (the oldest)."""
    return (
        AccessRequest.objects.filter(
            integration=locked, type=RequestType.JIT_ELEVATION, status=RequestStatus.IN_REVIEW, requested_scopes=scope
        )
        .order_by("created_at", "pk")
        .first()
    )


def elevation_open(*, integration: Integration, scope: Scope, task: str) -> AccessRequest:
    """Open the just-in-time elevation of ``integration`` to ``scope`` for ``task`` and start its
    workflow (its reviewers are emailed the link to the request page); audited as
    ``access_request.created`` with the task, the business owner accountable.

    Idempotent: while an elevation of the same integration and scope is in review it is returned
    as it stands (with the task it was opened for), never a second one — an integration retrying
    its exchange must not flood the reviewers' queue. The check runs under the integration's lock,
    so two exchanges at the same moment open one request.

    Refused: a task empty, longer than 200 characters or not on one line, a scope retired or not
    JIT eligible (400); an integration not active, orphaned, or whose business owner is
    deactivated, or that already holds the scope (409)."""
    task = _checked_task(task)
    _checked_scope(scope)
    with transaction.atomic():
        locked = _lock_asking_integration(integration)
        existing = _open_elevation(locked, scope)
        if existing is not None:
            return existing
        if Grant.objects.filter(integration=locked, scope=scope, status=GrantStatus.ACTIVE).exists():
            raise Conflict(f"{locked.name} already holds {scope.code}: there is nothing to elevate.")
        owner = locked.business_owner
        actor = Actor.system(on_behalf_of=owner)
        req = AccessRequest.objects.create(
            type=RequestType.JIT_ELEVATION,
            integration=locked,
            requester=owner,
            ticket_ref=locked.ticket_ref,
            justification=task,
            risk_tier=locked.risk_tier,
        )
        req.requested_scopes.set([scope])
        audit_record(
            actor=actor,
            action="access_request.created",
            target=req,
            owner=owner,
            after={**audit_after(req), "scopes": [scope.code], "requester": owner.username, "task": task},
            reason=task,
        )
        start_round(req, actor=actor)
    return req
