"""An integration's status: the table of allowed moves, the one helper that makes a move under
lock and audits it, and the moves its owners and IAM make — submit, suspend (the kill switch),
ask for reactivation, retire."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import IllegalTransition, NotAllowed, Unprocessable, ValidationFailed
from governance.models import User
from governance.services import email_enqueue
from inventory import permissions, signals
from inventory.choices import SUBMITTABLE_STATUSES, IntegrationStatus
from inventory.models import Integration
from inventory.services.grants import grants_revoke_all

# Allowed moves of Integration.status. Approvals drive pending -> active / rejected / draft;
# owners drive draft -> pending; owners and IAM drive suspension and retirement.
INTEGRATION_TRANSITIONS: dict[str, frozenset[str]] = {
    IntegrationStatus.DRAFT: frozenset({IntegrationStatus.PENDING, IntegrationStatus.RETIRED}),
    IntegrationStatus.PENDING: frozenset(
        {
            IntegrationStatus.ACTIVE,
            IntegrationStatus.REJECTED,
            IntegrationStatus.DRAFT,
            IntegrationStatus.SUSPENDED,
            IntegrationStatus.RETIRED,
        }
    ),
    IntegrationStatus.REJECTED: frozenset(
        {IntegrationStatus.PENDING, IntegrationStatus.DRAFT, IntegrationStatus.RETIRED}
    ),
    IntegrationStatus.ACTIVE: frozenset({IntegrationStatus.SUSPENDED, IntegrationStatus.RETIRED}),
    IntegrationStatus.SUSPENDED: frozenset({IntegrationStatus.PENDING, IntegrationStatus.RETIRED}),
    IntegrationStatus.RETIRED: frozenset(),
}


def integration_transition(
    *, actor: Actor | User, integration: Integration, to_status: str, reason: str = "", action: str | None = None
) -> Integration:
    """Move ``integration`` to ``to_status`` if the table allows it from its *current* status
    (re-read under lock: a stale caller gets a Conflict, never a quiet success), and audit it as
    ``action`` (default ``integration.<to_status>``). The services that drive a move (this
    module's, and approvals' decisions) check who may make it."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        if to_status not in INTEGRATION_TRANSITIONS[locked.status]:
            target = IntegrationStatus(to_status).label.lower()
            raise IllegalTransition(
                f"{locked.name} is {locked.get_status_display().lower()}; it cannot become {target}."
            )
        before = locked.status
        locked.status = to_status
        locked.status_reason = reason
        locked.updated_at = timezone.now()
        locked._history_user = resolved.user
        locked._change_reason = reason[:100] if reason else None
        locked.save(update_fields=["status", "status_reason", "updated_at"])
        audit_record(
            actor=resolved,
            action=action or f"integration.{to_status}",
            target=locked,
            owner=locked.business_owner,
            before={"status": before},
            after={"status": to_status},
            reason=reason,
        )
    integration.status, integration.status_reason, integration.updated_at = (
        locked.status,
        locked.status_reason,
        locked.updated_at,
    )
    return locked


def integration_locked_for(
    actor: Actor,
    integration: Integration,
    allowed: Callable[[Actor, Integration], bool],
    refusal: str,
    *,
    related: tuple[str, ...] = (),
) -> Integration:
    """``integration`` re-read under lock (with its ``related`` rows joined), once ``allowed``
    says ``actor`` may act on it; ``NotAllowed(refusal)`` otherwise."""
    rows = Integration.objects.select_for_update()
    if related:
        # Lock the integration's row only: the joined rows are read, not locked.
        rows = Integration.objects.select_for_update(of=("self",)).select_related(*related)
    locked = rows.get(pk=integration.pk)
    if not allowed(actor, locked):
        raise NotAllowed(refusal)
    return locked


@dataclass(frozen=True)
class _ApprovalRequest:
    """A move to pending that asks approvals to decide the requested scopes: what it is audited
    as, where it may start, and what a refusal says."""

    action: str
    from_statuses: tuple[str, ...]
    not_allowed: str
    wrong_status: str
    no_scopes: str


_SUBMISSION = _ApprovalRequest(
    action="integration.submitted",
    from_statuses=SUBMITTABLE_STATUSES,
    not_allowed="Only the integration's owners and IAM admins may submit it.",
    wrong_status="only a draft or a rejected integration can be submitted.",
    no_scopes="Pick at least one scope to request before submitting.",
)
_REACTIVATION = _ApprovalRequest(
    action="integration.reactivation_requested",
    from_statuses=(IntegrationStatus.SUSPENDED,),
    not_allowed="Only the integration's owners and IAM admins may ask for reactivation.",
    wrong_status="only a suspended integration can be reactivated.",
    no_scopes="Pick at least one scope to request before asking for reactivation.",
)


def integration_submit(*, actor: Actor | User, integration: Integration, reason: str = "") -> Integration:
    """Owners submit a draft (or resubmit a rejected one): draft/rejected -> pending, audited as
    ``integration.submitted``; approvals opens the request from ``integration_submitted``.
    Rules: owners and IAM admins only; at least one requested scope; no grant until the request
    is approved."""
    return _approval_request(actor, integration, _SUBMISSION, reason)


def integration_reactivate(*, actor: Actor | User, integration: Integration, reason: str = "") -> Integration:
    """A suspended integration comes back only through a new request: suspended -> pending
    (``integration.reactivation_requested``) and ``integration_submitted`` for its scopes.
    Rules: owners and IAM admins only; at least one requested scope."""
    return _approval_request(actor, integration, _REACTIVATION, reason)


def _approval_request(
    actor: Actor | User, integration: Integration, request: _ApprovalRequest, reason: str
) -> Integration:
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        locked = integration_locked_for(resolved, integration, permissions.can_edit, request.not_allowed)
        if locked.status not in request.from_statuses:
            raise IllegalTransition(f"{locked.name} is {locked.get_status_display().lower()}; {request.wrong_status}")
        scopes = list(locked.requested_scopes.all())
        if not scopes:
            raise Unprocessable.on("requested_scopes", request.no_scopes)
        updated = integration_transition(
            actor=resolved,
            integration=locked,
            to_status=IntegrationStatus.PENDING,
            reason=reason,
            action=request.action,
        )
        signals.integration_submitted.send(sender=Integration, integration=updated, actor=resolved, scopes=scopes)
    integration.refresh_from_db()
    return integration


def _owners(integration: Integration) -> list[User]:
    """The integration's owners, each once."""
    people = [integration.business_owner, integration.technical_owner, integration.backup_owner]
    seen: dict[int, User] = {}
    for person in people:
        if person is not None and person.pk not in seen:
            seen[person.pk] = person
    return list(seen.values())


def _reason_required(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed.on("reason", f"A reason is required to {what} an integration.")
    return reason


def _out_of_service(actor: Actor, locked: Integration, status: str, reason: str, grants_reason: str) -> int:
    """Move the locked integration to ``status`` (audited as ``integration.<status>``) and revoke
    every active grant it holds, in the caller's transaction. Returns how many were revoked."""
    integration_transition(actor=actor, integration=locked, to_status=status, reason=reason)
    return grants_revoke_all(actor=actor, integration=locked, reason=grants_reason)


def integration_suspend(*, actor: Actor | User, integration: Integration, reason: str) -> Integration:
    """The kill switch: -> suspended and every active grant revoked in the same transaction (bulk,
    audited), owners told by email, approvals told (``integration_disabled``). Rules: owners and
    IAM admins only; a reason is required."""
    reason = _reason_required(reason, "suspend")
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        locked = integration_locked_for(
            resolved,
            integration,
            permissions.can_suspend,
            "Only the integration's owners and IAM admins may suspend it.",
            related=("business_owner", "technical_owner", "backup_owner"),
        )
        revoked = _out_of_service(resolved, locked, IntegrationStatus.SUSPENDED, reason, f"Suspended: {reason}")
        for person in _owners(locked):
            email_enqueue(
                key=f"integration-suspended:{locked.pk}:{locked.updated_at.isoformat()}:{person.pk}",
                recipient=person,
                subject=f"{locked.name} was suspended",
                template="integration_suspended",
                context={"integration": locked, "reason": reason, "actor": resolved.user, "revoked": revoked},
            )
        signals.integration_disabled.send(
            sender=Integration, integration=locked, actor=resolved, status=IntegrationStatus.SUSPENDED, reason=reason
        )
    integration.refresh_from_db()
    return integration


def integration_retire(*, actor: Actor | User, integration: Integration, reason: str) -> Integration:
    """-> retired for good: every active grant revoked, open requests cancelled by approvals
    (``integration_disabled``). Rules: owners and IAM admins only; a reason is required."""
    reason = _reason_required(reason, "retire")
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        locked = integration_locked_for(
            resolved, integration, permissions.can_retire, "Only the integration's owners and IAM admins may retire it."
        )
        _out_of_service(resolved, locked, IntegrationStatus.RETIRED, reason, f"Retired: {reason}")
        signals.integration_disabled.send(
            sender=Integration, integration=locked, actor=resolved, status=IntegrationStatus.RETIRED, reason=reason
        )
    integration.refresh_from_db()
    return integration
