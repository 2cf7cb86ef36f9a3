"""Grants: an integration holding a scope. They are made by the last approval step, extended
when approved again, and end as revoked or expired — one at a time by a person, or in bulk by
the kill switch, the expiry sweep and campaign revocations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from governance.actors import Actor
from governance.audit import EventSpec, audit_record, audit_record_many
from governance.exceptions import Conflict, NotAllowed, ValidationFailed
from governance.history import history_record_many
from governance.models import User
from inventory import permissions
from inventory.choices import GrantStatus
from inventory.models import Grant, Integration, Scope

# Grants ended per bulk statement (and per audit batch).
END_CHUNK = 1000


def _grant_after(grant: Grant) -> dict[str, object]:
    """A grant as the audit trail records it."""
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
    """Grant ``scopes`` to ``integration`` (``grant.created``); an already active grant of a
    scope is extended instead (``grant.extended``), never duplicated. The caller is the last
    approval step, which has checked who may approve, inside its transaction."""
    approver_list = list(approvers)
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise ValidationFailed.on("expires_at", "The expiry must be in the future.")
    with transaction.atomic():
        active = {
            grant.scope_id: grant
            for grant in Grant.objects.select_for_update().filter(
                integration=integration, status=GrantStatus.ACTIVE, scope__in=scopes
            )
        }
        grants: list[Grant] = []
        events: list[EventSpec] = []
        for scope in scopes:
            grant = active.get(scope.pk)
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
                EventSpec(
                    action=action,
                    target=grant,
                    owner=integration.business_owner,
                    before=before,
                    after=_grant_after(grant),
                )
            )
        audit_record_many(actor=actor, events=events)
    return grants


def grant_revoke(*, actor: Actor | User, grant: Grant, reason: str) -> Grant:
    """Revoke one active grant at once (``grant.revoked``). Rules: IAM admins and the
    integration's owners only; a reason is required; a grant that is no longer active is a
    conflict, never a quiet success."""
    resolved = Actor.coerce(actor)
    if not permissions.can_revoke_grant(resolved, grant):
        raise NotAllowed("Only IAM admins and the integration's owners can revoke its grants.")
    if not reason or not reason.strip():
        raise ValidationFailed.on("reason", "A reason is required to revoke a grant.")
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


def grants_end_many(*, actor: Actor | User, grant_ids: Sequence[int], status: str, reason: str, action: str) -> int:
    """End many active grants as ``status`` (revoked or expired) in one transaction with bulk
    writes, each audited as ``action``; grants already ended are skipped. The callers (the kill
    switch, retirement, the expiry sweep, campaign revocations) have checked who may.
    Returns how many were ended."""
    if status not in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
        raise ValidationFailed.on("status", "Grants end as revoked or expired.")
    resolved = Actor.coerce(actor)
    ended = 0
    with transaction.atomic():
        now = timezone.now()
        for start in range(0, len(grant_ids), END_CHUNK):
            chunk = list(
                Grant.objects.select_for_update()
                .filter(pk__in=grant_ids[start : start + END_CHUNK], status=GrantStatus.ACTIVE)
                .select_related("integration__business_owner", "scope")
            )
            if chunk:
                _end_chunk(resolved, chunk, status=status, reason=reason, action=action, now=now)
                ended += len(chunk)
    return ended


def _end_chunk(actor: Actor, chunk: list[Grant], *, status: str, reason: str, action: str, now: datetime) -> None:
    """One bulk UPDATE of locked active grants, then their audit events and history rows."""
    Grant.objects.filter(pk__in=[grant.pk for grant in chunk], status=GrantStatus.ACTIVE).update(
        status=status, ended_at=now, ended_by=actor.user, end_reason=reason
    )
    events = []
    for grant in chunk:
        before = _grant_after(grant)
        grant.status, grant.ended_at, grant.ended_by, grant.end_reason = status, now, actor.user, reason
        events.append(
            EventSpec(
                action=action,
                target=grant,
                owner=grant.integration.business_owner,
                before=before,
                after=_grant_after(grant),
                reason=reason,
            )
        )
    audit_record_many(actor=actor, events=events)
    history_record_many(chunk, user=actor.user, reason=reason)


def grants_revoke_all(*, actor: Actor, integration: Integration, reason: str) -> int:
    """Revoke every active grant of ``integration`` (suspension, retirement). Returns how many."""
    ids = list(Grant.objects.filter(integration=integration, status=GrantStatus.ACTIVE).values_list("pk", flat=True))
    return grants_end_many(
        actor=actor, grant_ids=ids, status=GrantStatus.REVOKED, reason=reason, action="grant.revoked"
    )
