"""Grants: an integration holding a scope. They are made by the last approval step, extended
when approved again, and end as revoked or expired — one at a time by a person, or in bulk by
the kill switch, the expiry sweep and campaign revocations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from governance.actors import Actor
from governance.audit import EventSpec, audit_record, audit_record_many
from governance.exceptions import Conflict, NotAllowed, ValidationFailed
from governance.history import history_record_many
from governance.models import User
from inventory import permissions
from inventory.choices import GrantStatus
from inventory.models import Grant, Integration, Scope

# Grants ended per bulk statement (and per audit batch), unless the caller says otherwise.
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


def grants_end_many(
    *,
    actor: Actor | User,
    grant_ids: Sequence[int],
    status: str,
    reason: str,
    action: str,
    owners: dict[int, User] | None = None,
    chunk: int = END_CHUNK,
    events: list[EventSpec] | None = None,
) -> int:
    """End many active grants as ``status`` (revoked or expired) in one transaction with
    set-based writes, each audited as ``action``; grants already ended are skipped. The callers
    (the kill switch, retirement, the expiry sweep, campaign revocations) have checked who may.
    ``owners`` (business owners by id) is a cache a caller ending grants in many calls may
    share. ``chunk`` grants (by id) are ended per statement and audit batch, their events in the
    grants' usual order within it. A caller that writes its own events in the same
    transaction passes ``events``: the grants' events are added to that list, in the same order,
    for the caller to append with its own before it commits (the transaction must be the
    caller's). Returns how many were ended."""
    if status not in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
        raise ValidationFailed.on("status", "Grants end as revoked or expired.")
    resolved = Actor.coerce(actor)
    if events is not None and not connection.in_atomic_block:
        raise RuntimeError("Events left to the caller must be written in the caller's transaction.")
    owners = {} if owners is None else owners
    ended = 0
    # The caller's list takes the events once the grants' writes have all succeeded.
    left: list[EventSpec] | None = None if events is None else []
    with transaction.atomic():
        end = _GrantEnd(status=status, reason=reason, action=action, now=timezone.now())
        for start in range(0, len(grant_ids), chunk):
            ended += _end_chunk(resolved, grant_ids[start : start + chunk], end, owners, left)
    if events is not None and left:
        events += left
    return ended


@dataclass(frozen=True)
class _GrantEnd:
    """How a batch of grants ends: the status, the reason, the audit action and the time."""

    status: str
    reason: str
    action: str
    now: datetime


# What the audit trail and the history need of a grant about to end, read without model instances.
_END_COLUMNS = (
    "pk",
    "integration_id",
    "source_type",
    "source_id",
    "expires_at",
    "scope__code",
    "integration__name",
    "integration__business_owner_id",
)


def _ids_as_array() -> bool:
    """Whether a list of ids is sent as one array parameter (PostgreSQL): a statement with a
    thousand placeholders costs the driver more to prepare than the database to run."""
    return connection.vendor == "postgresql"


def pk_in(ids: Sequence[int]) -> Q:
    """``pk IN ids``: one array parameter on PostgreSQL, the ids one by one elsewhere. Matched
    on the primary key's index alone, whatever the planner's statistics say of other columns."""
    if _ids_as_array():
        return Q(pk__in=RawSQL("SELECT unnest(%s::bigint[])", (list(ids),)))
    return Q(pk__in=ids)


def _ids_sql(ids: Sequence[int]) -> tuple[str, list[Any]]:
    """``pk_in`` for raw SQL: the condition after the id column, and its parameters."""
    if _ids_as_array():
        return "= ANY(%s::bigint[])", [list(ids)]
    return f"IN ({', '.join(['%s'] * len(ids))})", list(ids)


def _end_chunk(
    actor: Actor, ids: Sequence[int], end: _GrantEnd, owners: dict[int, User], events: list[EventSpec] | None
) -> int:
    """The active grants of ``ids``, locked, ended with one UPDATE; their history rows written
    with one INSERT … SELECT and their audit events with one ``audit_record_many`` (or added to
    ``events``), in the grants' usual order (newest granted first). Returns how many ended."""
    rows = _ended_rows_postgresql(actor, ids, end) if _ids_as_array() else _ended_rows(actor, ids, end)
    if not rows:
        return 0
    missing = {row[7] for row in rows} - owners.keys()
    if missing:
        owners.update(User.objects.in_bulk(list(missing)))
    specs = [_end_event(row, end, owners) for row in rows]
    if events is None:
        audit_record_many(actor=actor, events=specs)
    else:
        events += specs
    _history_insert([row[0] for row in rows], user=actor.user, reason=end.reason)
    return len(rows)


def _ended_rows(actor: Actor, ids: Sequence[int], end: _GrantEnd) -> list[tuple[Any, ...]]:
    """End the active grants of ``ids``: locked and read as ``_END_COLUMNS`` in the grants'
    usual order, then ended with one UPDATE."""
    rows = list(
        Grant.objects.select_for_update(of=("self",))
        .filter(pk_in(ids), status=GrantStatus.ACTIVE)
        .order_by("-granted_at", "id")
        .values_list(*_END_COLUMNS)
    )
    if rows:
        Grant.objects.filter(pk_in([row[0] for row in rows]), status=GrantStatus.ACTIVE).update(
            status=end.status, ended_at=end.now, ended_by=actor.user, end_reason=end.reason
        )
    return rows


def _ended_rows_postgresql(actor: Actor, ids: Sequence[int], end: _GrantEnd) -> list[tuple[Any, ...]]:
    """``_ended_rows`` in one statement: the active grants of ``ids`` locked in the grants' usual
    order (newest granted first, then id: every caller locks grants in the same order, so two
    writers ending overlapping grants cannot deadlock), then ended by an UPDATE that returns their
    ``_END_COLUMNS`` (columns it does not change) in that order."""
    quote = connection.ops.quote_name
    grant, scope, integration = (model._meta.db_table for model in (Grant, Scope, Integration))
    sql = (
        f"WITH locked AS (SELECT id FROM {quote(grant)} WHERE id = ANY(%s::bigint[]) AND status = %s "
        "ORDER BY granted_at DESC, id FOR UPDATE), "
        f"ended AS (UPDATE {quote(grant)} AS g SET status = %s, ended_at = %s, ended_by_id = %s, end_reason = %s "
        f"FROM locked, {quote(scope)} AS s, {quote(integration)} AS i "
        "WHERE g.id = locked.id AND s.id = g.scope_id AND i.id = g.integration_id "
        "RETURNING g.id, g.integration_id, g.source_type, g.source_id, g.expires_at, s.code, i.name, "
        "i.business_owner_id, g.granted_at) "
        "SELECT id, integration_id, source_type, source_id, expires_at, code, name, business_owner_id "
        "FROM ended ORDER BY granted_at DESC, id"
    )
    user_id = actor.user.pk if actor.user is not None else None
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(ids), GrantStatus.ACTIVE, end.status, end.now, user_id, end.reason])
        return [tuple(row) for row in cursor.fetchall()]


def _end_event(row: tuple[Any, ...], end: _GrantEnd, owners: dict[int, User]) -> EventSpec:
    """The audit event of one grant ending, from its ``_END_COLUMNS`` row: the same as
    ``_grant_after`` gives for the grant before and after (its target named as ``Grant.__str__``
    names it)."""
    pk, integration_id, source_type, source_id, expires_at, scope_code, integration_name, owner_id = row
    before = {
        "integration": integration_id,
        "scope": scope_code,
        "status": GrantStatus.ACTIVE,
        "source": f"{source_type}:{source_id}",
        "expires_at": expires_at.isoformat() if expires_at else None,
    }
    return EventSpec(
        action=end.action,
        target_type=_GRANT_LABEL,
        target_id=str(pk),
        target_repr=f"{integration_name} → {scope_code}",
        owner=owners[owner_id],
        before=before,
        after={**before, "status": end.status},
        reason=end.reason,
    )


_GRANT_LABEL = f"{Grant._meta.app_label}.{Grant._meta.model_name}"


def _history_insert(grant_ids: list[int], *, user: User, reason: str) -> None:
    """One historical row per grant of ``grant_ids`` as it now stands (after its UPDATE), written
    by one INSERT … SELECT with the fields django-simple-history writes on a save: every tracked
    field, ``history_date``, ``history_user``, ``history_change_reason`` (cut to 100 characters,
    NULL when empty) and ``history_type`` "~"; in the grants' usual order, newest granted first."""
    history_model = Grant.history.model
    quote = connection.ops.quote_name
    tracked = [field.column for field in history_model._meta.concrete_fields if not field.name.startswith("history_")]
    stamped = {
        "history_date": connection.ops.adapt_datetimefield_value(timezone.now()),
        "history_user": user.pk,
        "history_change_reason": reason[:100] if reason else None,
        "history_type": "~",
    }
    stamp_columns = [history_model._meta.get_field(name).column for name in stamped]
    ids_match, ids_params = _ids_sql(grant_ids)
    sql = (
        f"INSERT INTO {quote(history_model._meta.db_table)} "
        f"({', '.join(quote(column) for column in [*tracked, *stamp_columns])}) "
        f"SELECT {', '.join(quote(column) for column in tracked)}, {', '.join(['%s'] * len(stamped))} "
        f"FROM {quote(Grant._meta.db_table)} WHERE {quote('id')} {ids_match} "
        f"ORDER BY {quote('granted_at')} DESC, {quote('id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*stamped.values(), *ids_params])


def grants_revoke_all(*, actor: Actor, integration: Integration, reason: str) -> int:
    """Revoke every active grant of ``integration`` (suspension, retirement). Returns how many."""
    ids = list(Grant.objects.filter(integration=integration, status=GrantStatus.ACTIVE).values_list("pk", flat=True))
    return grants_end_many(
        actor=actor, grant_ids=ids, status=GrantStatus.REVOKED, reason=reason, action="grant.revoked"
    )
