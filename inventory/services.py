"""Writes of the inventory. Each function takes ``actor=``, validates, changes the rows and
audits in the same transaction (DESIGN.md invariant 1)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from governance.actors import Actor
from governance.audit import EventSpec, audit_record, audit_record_many
from governance.exceptions import Conflict, IllegalTransition, ValidationFailed
from governance.history import history_record_many
from governance.models import User
from inventory.models import Grant, GrantStatus, Integration, IntegrationStatus, Scope

S = IntegrationStatus
# Allowed moves of Integration.status. Approvals drive pending -> active / rejected / draft;
# owners drive draft -> pending; IAM drives suspension and retirement.
INTEGRATION_TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.PENDING, S.RETIRED}),
    S.PENDING: frozenset({S.ACTIVE, S.REJECTED, S.DRAFT, S.SUSPENDED, S.RETIRED}),
    S.REJECTED: frozenset({S.PENDING, S.DRAFT, S.RETIRED}),
    S.ACTIVE: frozenset({S.SUSPENDED, S.RETIRED}),
    S.SUSPENDED: frozenset({S.PENDING, S.RETIRED}),
    S.RETIRED: frozenset(),
}


def integration_transition(
    *, actor: Actor | User, integration: Integration, to_status: str, reason: str = "", action: str | None = None
) -> Integration:
    """Move ``integration`` to ``to_status`` if the table allows it from its *current* status
    (re-read under lock: a stale caller gets a Conflict, never a quiet success), and audit it as
    ``action`` (default ``integration.<to_status>``)."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        if to_status not in INTEGRATION_TRANSITIONS[locked.status]:
            raise IllegalTransition(
                f"{locked.name} is {locked.get_status_display().lower()}; it cannot become {S(to_status).label.lower()}."
            )
        before = locked.status
        locked.status = to_status
        locked.status_reason = reason
        locked.updated_at = timezone.now()
        locked._history_user = resolved.user  # type: ignore[attr-defined]
        locked._change_reason = reason[:100] if reason else None  # type: ignore[attr-defined]
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
    integration.status, integration.status_reason, integration.updated_at = locked.status, locked.status_reason, locked.updated_at
    return locked


def _grant_after(grant: Grant) -> dict[str, object]:
    return {
        "integration": grant.integration_id,
        "scope": grant.scope.code,
        "status": grant.status,
        "source": f"{grant.source_type}:{grant.source_id}",
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
    }


def grant_create_many(
    *,
    actor: Actor | User,
    integration: Integration,
    scopes: Sequence[Scope],
    source_type: str,
    source_id: str,
    approvers: Iterable[User],
    expires_at: datetime | None,
) -> list[Grant]:
    """Grant ``scopes`` to ``integration``; the caller (the last approval step) is in a
    transaction. An already active grant of a scope is extended, not duplicated."""
    approver_list = list(approvers)
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise ValidationFailed.on("expires_at", "The expiry must be in the future.")
    with transaction.atomic():
        existing = {
            g.scope_id: g
            for g in Grant.objects.select_for_update().filter(integration=integration, status=GrantStatus.ACTIVE, scope__in=scopes)
        }
        grants: list[Grant] = []
        events: list[EventSpec] = []
        for scope in scopes:
            grant = existing.get(scope.pk)
            before = None
            if grant is not None:
                before = _grant_after(grant)
                grant.expires_at = expires_at
                grant.source_type, grant.source_id = source_type, source_id
                grant.save(update_fields=["expires_at", "source_type", "source_id"])
                action = "grant.extended"
            else:
                grant = Grant.objects.create(
                    integration=integration,
                    scope=scope,
                    source_type=source_type,
                    source_id=source_id,
                    granted_at=now,
                    expires_at=expires_at,
                )
                action = "grant.created"
            grant.approvers.add(*approver_list)
            grants.append(grant)
            events.append(
                EventSpec(action=action, target=grant, owner=integration.business_owner, before=before, after=_grant_after(grant))
            )
        audit_record_many(actor=actor, events=events)
    return grants


def grant_revoke(*, actor: Actor | User, grant: Grant, reason: str) -> Grant:
    """Revoke one active grant at once. A reason is required; a grant that is no longer active
    is a conflict, never a quiet success."""
    if not reason or not reason.strip():
        raise ValidationFailed.on("reason", "A reason is required to revoke a grant.")
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        now = timezone.now()
        updated = Grant.objects.filter(pk=grant.pk, status=GrantStatus.ACTIVE).update(
            status=GrantStatus.REVOKED, ended_at=now, ended_by=resolved.user, end_reason=reason.strip()
        )
        if updated != 1:
            current = Grant.objects.filter(pk=grant.pk).values_list("status", flat=True).first()
            raise Conflict(f"This grant is not active any more (it is {current}).")
        grant.refresh_from_db()
        history_record_many([grant], user=resolved.user, reason=reason.strip())
        audit_record(
            actor=resolved,
            action="grant.revoked",
            target=grant,
            owner=grant.integration.business_owner,
            before={"status": GrantStatus.ACTIVE},
            after=_grant_after(grant),
            reason=reason.strip(),
        )
    return grant


def grants_end_many(
    *, actor: Actor | User, grant_ids: Sequence[int], status: str, reason: str, action: str
) -> int:
    """End many active grants in one transaction with bulk writes (kill switch, expiry sweep,
    campaign revocations). Grants already ended are skipped. Returns how many were ended."""
    if status not in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
        raise ValidationFailed.on("status", "Grants end as revoked or expired.")
    resolved = Actor.coerce(actor)
    ended = 0
    with transaction.atomic():
        now = timezone.now()
        for start in range(0, len(grant_ids), 1000):
            chunk = list(
                Grant.objects.select_for_update()
                .filter(pk__in=grant_ids[start : start + 1000], status=GrantStatus.ACTIVE)
                .select_related("integration__business_owner", "scope")
            )
            if not chunk:
                continue
            Grant.objects.filter(pk__in=[g.pk for g in chunk], status=GrantStatus.ACTIVE).update(
                status=status, ended_at=now, ended_by=resolved.user, end_reason=reason
            )
            events = []
            for g in chunk:
                before = _grant_after(g)
                g.status, g.ended_at, g.ended_by, g.end_reason = status, now, resolved.user, reason
                events.append(
                    EventSpec(action=action, target=g, owner=g.integration.business_owner, before=before, after=_grant_after(g), reason=reason)
                )
            audit_record_many(actor=resolved, events=events)
            history_record_many(chunk, user=resolved.user, reason=reason)
            ended += len(chunk)
    return ended
