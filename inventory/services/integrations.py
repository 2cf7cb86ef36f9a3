"""Registering and changing an integration: what its owners declare (purpose, owners, data,
scopes, credentials, what it calls), validated whoever sends it, scored, audited with the fields
that changed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import Conflict, NotAllowed, Unprocessable
from governance.models import User
from inventory import permissions, signals
from inventory.choices import GrantStatus, IntegrationStatus
from inventory.models import Credential, Grant, Integration, Scope
from inventory.services.external_ids import external_app_ids_normalise, external_ids_write
from inventory.services.grants import grants_end_many
from inventory.services.lifecycle import integration_locked_for, integration_submit
from inventory.services.ownership import owner_roles_propose, owner_roles_split
from inventory.services.scoring import risk_apply, upstream_risk_refresh
from inventory.services.validation import PLAIN_INPUT_FIELDS, integration_input_validate, unknown_fields_refuse

# What an empty value of an optional field is stored as.
_LIST_FIELDS = ("data_classifications", "tags")
_NULLABLE_FIELDS = ("technical_owner", "backup_owner")


def _blank(field: str) -> Any:
    if field in _LIST_FIELDS:
        return []
    return None if field in _NULLABLE_FIELDS else ""


def _plain_fields_set(integration: Integration, values: Mapping[str, Any]) -> None:
    for field in PLAIN_INPUT_FIELDS:
        if field in values:
            setattr(integration, field, values[field] if values[field] is not None else _blank(field))


def _credentials_set(integration: Integration, creds: Sequence[Mapping[str, Any]], user: User | None) -> None:
    """Replace the credential records; one kept by (type, identifier) is updated in place, so
    its history shows the rotation rather than a delete and an insert."""
    existing = {(c.type, c.identifier): c for c in integration.credentials.all()}
    keep: set[int] = set()
    now = timezone.now()
    for data in creds:
        key = (data["type"], str(data["identifier"]).strip())
        cred = existing.get(key) or Credential(integration=integration, type=key[0], identifier=key[1])
        cred.created_at = data.get("created_at") or cred.created_at or now
        cred.expires_at = data.get("expires_at")
        cred.last_rotated_at = data.get("last_rotated_at")
        cred._history_user = user
        cred.save()
        keep.add(cred.pk)
    for cred in existing.values():
        if cred.pk not in keep:
            cred._history_user = user
            cred.delete()


def integration_snapshot(integration: Integration) -> dict[str, Any]:
    """The integration as the audit trail records it (people by username, scopes by code)."""

    def username(user: User | None) -> str | None:
        return user.username if user else None

    return {
        "name": integration.name,
        "kind": integration.kind,
        "purpose": integration.purpose,
        "vendor": integration.vendor,
        "environment": integration.environment,
        "business_owner": username(integration.business_owner),
        "technical_owner": username(integration.technical_owner),
        "backup_owner": username(integration.backup_owner),
        "data_classifications": list(integration.data_classifications or []),
        "acts_for_users": integration.acts_for_users,
        "autonomy": integration.autonomy,
        "requested_scopes": sorted(s.code for s in integration.requested_scopes.all()),
        "workload_identity": integration.workload_identity,
        "credentials": sorted(f"{c.type}:{c.identifier}" for c in integration.credentials.all()),
        "invokes": sorted(i.pk for i in integration.invokes.all()),
        "ticket_ref": integration.ticket_ref,
        "tags": list(integration.tags or []),
        "risk_score": integration.risk_score,
        "risk_tier": integration.risk_tier,
        "status": integration.status,
    }


def _changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose value changed, before and after."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def integration_register(*, actor: Actor | User, values: Mapping[str, Any], submit: bool = False) -> Integration:
    """Register a new integration as a draft (``integration.registered``); with ``submit`` it
    goes straight on to pending (``integration_submit``), in the same transaction: a refused
    submission leaves no draft behind. Rules: who may register (``permissions.can_register``);
    the input rules (``validation``); no grant is ever made here; a person named in an owner
    role who must consent is asked through an ownership transfer, and the registering user holds
    the business owner role until then. Its ``external_app_ids`` (pairs of source and app key)
    are recorded with it (``external_app_ids_set``'s rules and audit)."""
    resolved = Actor.coerce(actor)
    if not permissions.can_register(resolved):
        raise NotAllowed("You may not register integrations.")
    unknown_fields_refuse(values)
    integration_input_validate(values, instance=None)
    external_ids = external_app_ids_normalise(values.get("external_app_ids") or [])
    values, consent = owner_roles_split(resolved, values, None)
    with transaction.atomic():
        integ = Integration(created_by=resolved.user if not resolved.is_system else None)
        _plain_fields_set(integ, values)
        integ.name, integ.purpose = integ.name.strip(), integ.purpose.strip()
        integ.status = IntegrationStatus.DRAFT
        integ._history_user = resolved.user
        integ.save()
        # One history row per change: the related-set writes skip theirs; risk_apply saves once after.
        integ.skip_history_when_saving = True
        integ.requested_scopes.set(values.get("requested_scopes") or [])
        integ.invokes.set(values.get("invokes") or [])
        del integ.skip_history_when_saving
        _credentials_set(integ, values.get("credentials") or [], resolved.user)
        risk_apply(actor=resolved, integration=integ, user=resolved.user, reason="registered")
        audit_record(
            actor=resolved,
            action="integration.registered",
            target=integ,
            owner=integ.business_owner,
            after=integration_snapshot(integ),
        )
        if external_ids:
            external_ids_write(resolved, integ, external_ids)
        owner_roles_propose(resolved, integ, consent, "when it was registered")
        if submit:
            integ = integration_submit(actor=resolved, integration=integ)
    return integ


def integration_update(
    *, actor: Actor | User, integration: Integration, values: Mapping[str, Any], reason: str = ""
) -> Integration:
    """Change an integration (``integration.changed``, with only the changed fields). Rules:
    owners and IAM admins only; a retired one is frozen; a pending one keeps its scopes until
    decided; on an active one added scopes are *requested* (``integration_scopes_added``), never
    granted, and removed scopes lose their grants at once. The risk is recomputed, here and
    upstream; a raised tier on a live integration asks for a re-review. Naming someone else in
    an owner role proposes a transfer they accept; the role is unchanged until then. Given
    ``external_app_ids`` replace the recorded ones (``external_app_ids_set``'s rules and audit)."""
    resolved = Actor.coerce(actor)
    unknown_fields_refuse(values)
    with transaction.atomic():
        locked = integration_locked_for(
            resolved, integration, permissions.can_edit, "Only the integration's owners and IAM admins may change it."
        )
        if locked.status == IntegrationStatus.RETIRED:
            raise Conflict(f"{locked.name} is retired; it cannot be changed.")
        integration_input_validate(values, instance=locked)
        values, consent = owner_roles_split(resolved, values, locked)
        before = integration_snapshot(locked)
        added, removed = _scope_changes(locked, values)
        _changes_write(resolved, locked, values)
        risk_apply(actor=resolved, integration=locked, user=resolved.user, reason=reason or "changed")
        _changes_audit(resolved, locked, before, reason)
        if "external_app_ids" in values:
            external_ids_write(resolved, locked, values["external_app_ids"] or [])
        _scope_changes_follow(resolved, locked, added, removed)
        upstream_risk_refresh(resolved, locked)
        owner_roles_propose(resolved, locked, consent, "in a change of the integration")
    integration.refresh_from_db()
    return locked


def _scope_changes(integration: Integration, values: Mapping[str, Any]) -> tuple[list[Scope], list[int]]:
    """The scopes a change adds and the ids of those it removes. The scopes of a pending
    integration are being decided: they do not change until the decision."""
    if "requested_scopes" not in values:
        return [], []
    old = {scope.pk for scope in integration.requested_scopes.all()}
    new = {scope.pk: scope for scope in values["requested_scopes"]}
    added = [scope for pk, scope in new.items() if pk not in old]
    removed = [pk for pk in old if pk not in new]
    if (added or removed) and integration.status == IntegrationStatus.PENDING:
        raise Unprocessable.on(
            "requested_scopes",
            "The scopes are being decided; wait for the decision (or ask the reviewers for changes) "
            "before changing them.",
        )
    return added, removed


def _changes_write(actor: Actor, integration: Integration, values: Mapping[str, Any]) -> None:
    """Set the changed fields and related rows (saved once, with the risk, by the caller)."""
    _plain_fields_set(integration, values)
    integration.skip_history_when_saving = True
    if "requested_scopes" in values:
        integration.requested_scopes.set(list({scope.pk: scope for scope in values["requested_scopes"]}.values()))
    if "invokes" in values:
        integration.invokes.set(values["invokes"])
    del integration.skip_history_when_saving
    if "credentials" in values:
        _credentials_set(integration, values["credentials"], actor.user)


def _changes_audit(actor: Actor, integration: Integration, before: dict[str, Any], reason: str) -> None:
    changed_before, changed_after = _changed(before, integration_snapshot(integration))
    if changed_before or changed_after:
        audit_record(
            actor=actor,
            action="integration.changed",
            target=integration,
            owner=integration.business_owner,
            before=changed_before,
            after=changed_after,
            reason=reason,
        )


def _scope_changes_follow(actor: Actor, integration: Integration, added: list[Scope], removed: list[int]) -> None:
    """A removed scope loses its grant at once; an added one on an active integration is asked
    for (approvals opens a request), never granted here."""
    if removed:
        ended = list(
            Grant.objects.filter(integration=integration, scope_id__in=removed, status=GrantStatus.ACTIVE).values_list(
                "pk", flat=True
            )
        )
        grants_end_many(
            actor=actor,
            grant_ids=ended,
            status=GrantStatus.REVOKED,
            reason="The owners no longer request this scope.",
            action="grant.revoked",
        )
    if added and integration.status == IntegrationStatus.ACTIVE:
        signals.integration_scopes_added.send(
            sender=Integration, integration=integration, actor=actor, added_scopes=added
        )
