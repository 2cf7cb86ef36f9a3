"""Writes of the inventory. Each function takes ``actor=``, validates, changes the rows and
audits in the same transaction (DESIGN.md invariant 1)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance.actors import Actor
from governance.audit import EventSpec, accountable_human, audit_record, audit_record_many, snapshot
from governance.exceptions import Conflict, IllegalTransition, NotAllowed, Unprocessable, ValidationFailed
from governance.history import history_record_many
from governance.models import User
from governance.services import email_enqueue
from governance.validators import SINGLE_LINE_MESSAGE, has_control_characters, single_line_errors
from inventory import permissions, risk, signals
from inventory.credentials import secret_problem
from inventory.models import (
    RISK_TIER_ORDER,
    AccessLevel,
    Autonomy,
    Credential,
    CredentialType,
    DataClassification,
    Environment,
    Grant,
    GrantStatus,
    Integration,
    IntegrationKind,
    IntegrationStatus,
    OwnerRole,
    OwnershipTransfer,
    ResourceSystem,
    Scope,
    Sensitivity,
    TransferStatus,
)
from inventory.selectors import owned_by

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
    integration.status, integration.status_reason, integration.updated_at = (
        locked.status,
        locked.status_reason,
        locked.updated_at,
    )
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
            for g in Grant.objects.select_for_update().filter(
                integration=integration, status=GrantStatus.ACTIVE, scope__in=scopes
            )
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


def grants_end_many(*, actor: Actor | User, grant_ids: Sequence[int], status: str, reason: str, action: str) -> int:
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
                    EventSpec(
                        action=action,
                        target=g,
                        owner=g.integration.business_owner,
                        before=before,
                        after=_grant_after(g),
                        reason=reason,
                    )
                )
            audit_record_many(actor=resolved, events=events)
            history_record_many(chunk, user=resolved.user, reason=reason)
            ended += len(chunk)
    return ended


# --- Integrations: register, change, submit --------------------------------------------------

# The fields an owner provides (API.md "Integration fields"); the rest is computed or read-only.
INPUT_FIELDS = (
    "name",
    "kind",
    "purpose",
    "vendor",
    "environment",
    "business_owner",
    "technical_owner",
    "backup_owner",
    "data_classifications",
    "acts_for_users",
    "autonomy",
    "requested_scopes",
    "workload_identity",
    "credentials",
    "invokes",
    "ticket_ref",
    "tags",
)
_PLAIN_FIELDS = (
    "name",
    "kind",
    "purpose",
    "vendor",
    "environment",
    "business_owner",
    "technical_owner",
    "backup_owner",
    "data_classifications",
    "acts_for_users",
    "autonomy",
    "workload_identity",
    "ticket_ref",
    "tags",
)
# The owner roles: naming someone else in one may take their consent (``_owner_split``).
OWNER_FIELDS = ("business_owner", "technical_owner", "backup_owner")
# Fields shown on one line (and put in email subjects): no control characters.
SINGLE_LINE_FIELDS = ("name", "vendor", "workload_identity", "ticket_ref", "tags")
TAG_MAX_LENGTH = 50
# Statuses in which the integration runs or is about to: a raised tier there needs a re-review.
LIVE_STATUSES = (IntegrationStatus.ACTIVE, IntegrationStatus.PENDING)


def _errors_add(errors: dict[str, list[str]], field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _validate(values: Mapping[str, Any], *, instance: Integration | None) -> None:
    """Every rule on the input, whoever calls; all problems at once, each naming its field.
    Rules about the data beyond its form (an integration invoking itself, a secret-looking value,
    dates out of order or in the future) go to ``unprocessable``: alone they are a 422 for the
    API (input that matches the schema but cannot be acted on), with the others a 400."""
    errors: dict[str, list[str]] = {}
    unprocessable: dict[str, list[str]] = {}
    merged = {f: getattr(instance, f) for f in _PLAIN_FIELDS} if instance else {}
    merged.update({k: v for k, v in values.items() if k in _PLAIN_FIELDS})
    for field in ("name", "purpose"):
        if field in values or instance is None:
            if not str(values.get(field) or "").strip():
                _errors_add(errors, field, "This field is required.")
    choice_fields = {
        "kind": IntegrationKind.values,
        "environment": Environment.values,
        "autonomy": Autonomy.values,
    }
    for field, allowed in choice_fields.items():
        if field in values and values[field] not in allowed:
            _errors_add(errors, field, f"Choose one of: {', '.join(allowed)}.")
    if instance is None and "kind" not in values:
        _errors_add(errors, "kind", "This field is required.")
    if merged.get("business_owner") is None:
        _errors_add(errors, "business_owner", "Every integration needs a business owner.")
    for field in ("business_owner", "technical_owner", "backup_owner"):
        person = values.get(field)
        if person is not None and (not person.is_active or person.is_service_account):
            _errors_add(errors, field, f"{person.username} cannot own an integration (inactive or a service account).")
    if "data_classifications" in values:
        classes = values["data_classifications"] or []
        bad = [c for c in classes if c not in DataClassification.values]
        if bad or not isinstance(classes, list):
            _errors_add(errors, "data_classifications", f"Unknown classification(s): {', '.join(map(str, bad))}.")
    for scope in values.get("requested_scopes") or []:
        if not scope.is_active:
            _errors_add(errors, "requested_scopes", f"{scope.code} is retired and cannot be requested.")
    for other in values.get("invokes") or []:
        if instance is not None and other.pk == instance.pk:
            _errors_add(unprocessable, "invokes", "An integration cannot invoke itself.")
    if "tags" in values and not all(isinstance(t, str) for t in values["tags"] or []):
        _errors_add(errors, "tags", "Tags are short strings.")
    elif any(len(t) > TAG_MAX_LENGTH for t in values.get("tags") or []):
        _errors_add(errors, "tags", f"A tag is at most {TAG_MAX_LENGTH} characters.")
    # Bounded lists (README "Limits"): what one integration may list.
    for field, limit in (
        ("tags", settings.INTEGRATION_MAX_TAGS),
        ("credentials", settings.INTEGRATION_MAX_CREDENTIALS),
        ("invokes", settings.INTEGRATION_MAX_INVOKES),
    ):
        count = len(values.get(field) or [])
        if count > limit:
            _errors_add(errors, field, f"At most {limit} per integration ({count} given).")
    for field, messages in single_line_errors(values, SINGLE_LINE_FIELDS).items():
        for message in messages:
            _errors_add(errors, field, message)
    # No secret value anywhere (DESIGN.md invariant 3).
    for field in ("name", "vendor", "workload_identity", "ticket_ref"):
        problem = secret_problem(str(values.get(field) or ""))
        if problem:
            _errors_add(unprocessable, field, problem)
    problem = secret_problem(str(values.get("purpose") or ""), check_entropy=False)
    if problem:
        _errors_add(unprocessable, "purpose", problem)
    for tag in values.get("tags") or []:
        problem = secret_problem(str(tag))
        if problem:
            _errors_add(unprocessable, "tags", problem)
    for index, cred in enumerate(values.get("credentials") or []):
        prefix = f"credentials.{index}"
        if cred.get("type") not in CredentialType.values:
            _errors_add(errors, f"{prefix}.type", f"Choose one of: {', '.join(CredentialType.values)}.")
        identifier = str(cred.get("identifier") or "").strip()
        if not identifier:
            _errors_add(errors, f"{prefix}.identifier", "Give the key id, client id, account or fingerprint.")
        elif has_control_characters(identifier):
            _errors_add(errors, f"{prefix}.identifier", SINGLE_LINE_MESSAGE)
        problem = secret_problem(identifier)
        if problem:
            _errors_add(unprocessable, f"{prefix}.identifier", problem)
        created, expires = cred.get("created_at"), cred.get("expires_at")
        if created and expires and expires <= created:
            _errors_add(unprocessable, f"{prefix}.expires_at", "The expiry must be after the creation date.")
        rotated = cred.get("last_rotated_at")
        if rotated and rotated > timezone.now():
            _errors_add(unprocessable, f"{prefix}.last_rotated_at", "The last rotation cannot be in the future.")
    if errors:
        for field, messages in unprocessable.items():
            for message in messages:
                _errors_add(errors, field, message)
        first = next(iter(errors.items()))
        raise ValidationFailed(f"{first[0]}: {first[1][0]}", errors=errors)
    if unprocessable:
        first = next(iter(unprocessable.items()))
        raise Unprocessable(f"{first[0]}: {first[1][0]}", errors=unprocessable)


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
        cred._history_user = user  # type: ignore[attr-defined]
        cred.save()
        keep.add(cred.pk)
    for cred in existing.values():
        if cred.pk not in keep:
            cred._history_user = user  # type: ignore[attr-defined]
            cred.delete()


def integration_snapshot(integration: Integration) -> dict[str, Any]:
    """The integration as the audit trail records it (people by username, scopes by code)."""

    def uname(user: User | None) -> str | None:
        return user.username if user else None

    return {
        "name": integration.name,
        "kind": integration.kind,
        "purpose": integration.purpose,
        "vendor": integration.vendor,
        "environment": integration.environment,
        "business_owner": uname(integration.business_owner),
        "technical_owner": uname(integration.technical_owner),
        "backup_owner": uname(integration.backup_owner),
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


def _diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def search_text_of(integration: Integration) -> str:
    parts = [
        integration.name,
        integration.vendor,
        integration.ticket_ref,
        " ".join(integration.tags or []),
        integration.purpose,
    ]
    return " ".join(p for p in parts if p).lower()


def _apply_risk(*, actor: Actor, integration: Integration, user: User | None, reason: str = "") -> tuple[str, str]:
    """Recompute and store the score; return (old tier, new tier). A raised tier on a live
    integration sends ``integration_risk_raised`` (approvals opens a re-review)."""
    old_tier = integration.risk_tier
    integration.search_text = search_text_of(integration)
    result = risk.assess(risk.input_from(integration))
    integration.risk_score, integration.risk_tier, integration.risk_factors = result.score, result.tier, result.factors
    integration.updated_at = timezone.now()
    integration._history_user = user  # type: ignore[attr-defined]
    integration._change_reason = reason[:100] if reason else None  # type: ignore[attr-defined]
    integration.save()
    if RISK_TIER_ORDER[result.tier] > RISK_TIER_ORDER[old_tier] and integration.status in LIVE_STATUSES:
        audit_record(
            actor=actor,
            action="integration.risk_raised",
            target=integration,
            owner=integration.business_owner,
            before={"risk_tier": old_tier},
            after={"risk_tier": result.tier, "risk_score": result.score},
            reason=reason,
        )
        signals.integration_risk_raised.send(
            sender=Integration,
            integration=integration,
            actor=actor,
            old_tier=old_tier,
            new_tier=result.tier,
            factors=result.factors,
        )
    return old_tier, result.tier


def integrations_risk_refresh(*, actor: Actor | User, integration_ids: Iterable[int], reason: str = "") -> int:
    """Recompute the score of each integration (e.g. those upstream of a change: what calls an
    integration that now reaches more data). Returns how many changed tier."""
    resolved = Actor.coerce(actor)
    changed = 0
    with transaction.atomic():
        for integ in Integration.objects.select_for_update().filter(pk__in=list(integration_ids)).order_by("pk"):
            if integ.status == IntegrationStatus.RETIRED:
                continue
            fresh = risk.assess(risk.input_from(integ))
            if (fresh.score, fresh.tier, fresh.factors) == (integ.risk_score, integ.risk_tier, integ.risk_factors):
                continue  # unchanged: no history row, no event
            old, new = _apply_risk(actor=resolved, integration=integ, user=resolved.user, reason=reason)
            changed += old != new
    return changed


def _refresh_upstream(actor: Actor, integration: Integration) -> None:
    ups = risk.upstream_ids(integration.pk)
    if ups:
        integrations_risk_refresh(actor=actor, integration_ids=ups, reason=f"{integration.name} changed")


def _owner_split(
    actor: Actor, values: Mapping[str, Any], instance: Integration | None
) -> tuple[dict[str, Any], list[tuple[str, User]]]:
    """Split the owner roles in ``values`` into those ``actor`` fills at once and those that take
    the named person's consent (``permissions.may_name_owner_directly``). The latter are left
    out of the returned values — on a new integration the actor holds the business owner role
    until the named person accepts — and come back as ``(role, person)`` to propose."""
    direct = dict(values)
    consent: list[tuple[str, User]] = []
    for role in OWNER_FIELDS:
        person = values.get(role)
        if person is None:
            continue
        if instance is not None and getattr(instance, f"{role}_id") == person.pk:
            continue  # unchanged
        if permissions.may_name_owner_directly(actor, person):
            continue
        consent.append((role, person))
        if instance is not None:
            del direct[role]  # stays as it is until the named person accepts
        elif role == "business_owner":
            holder = actor.user
            if holder is None or not holder.is_active or holder.is_service_account:
                raise NotAllowed(
                    f"Naming {person.username} as business owner takes their consent; register it as your "
                    "own person (or ask an IAM admin) and propose the transfer.",
                    errors={role: [f"{person.username} must accept this role; it cannot be assigned directly."]},
                )
            direct[role] = holder
        else:
            direct[role] = None
    return direct, consent


def _owners_propose(actor: Actor, integration: Integration, consent: Sequence[tuple[str, User]], why: str) -> None:
    """Ask each named person to take their role (an ``OwnershipTransfer`` they accept, with an
    email), in the caller's transaction. Asking again for what already waits is a no-op; a role
    already waiting for someone else's answer is a conflict naming the field."""
    for role, person in consent:
        waiting = (
            OwnershipTransfer.objects.filter(integration=integration, role=role, status=TransferStatus.PROPOSED)
            .select_related("to_user")
            .first()
        )
        if waiting is not None:
            if waiting.to_user_id == person.pk:
                continue
            message = (
                f"The {OwnerRole(role).label.lower()} role already waits for {waiting.to_user.username}'s answer; "
                "it must be accepted or declined first."
            )
            raise Conflict(message, errors={role: [message]})
        ownership_transfer_propose(
            actor=actor,
            integration=integration,
            to_user=person,
            role=role,
            reason=f"Named as {OwnerRole(role).label.lower()} {why}.",
        )


def integration_register(*, actor: Actor | User, values: Mapping[str, Any], submit: bool = False) -> Integration:
    """Register a new integration as a draft (``integration.registered``); with ``submit`` it
    goes straight on to pending (``integration_submit``), in the same transaction: a refused
    submission leaves no draft behind. Rules: see ``_validate``; no grant is ever made here;
    a person named in an owner role who must consent (``_owner_split``) is asked through an
    ownership transfer, and the registering user holds the business owner role until then."""
    resolved = Actor.coerce(actor)
    if not permissions.can_register(resolved):
        raise NotAllowed("You may not register integrations.")
    unknown = set(values) - set(INPUT_FIELDS)
    if unknown:
        raise ValidationFailed.on(sorted(unknown)[0], "Unknown field.")
    _validate(values, instance=None)
    values, consent = _owner_split(resolved, values, None)
    with transaction.atomic():
        integ = Integration(created_by=resolved.user if not resolved.is_system else None)
        for field in _PLAIN_FIELDS:
            if field in values:
                setattr(integ, field, values[field] if values[field] is not None else _blank(field))
        integ.name, integ.purpose = integ.name.strip(), integ.purpose.strip()
        integ.status = IntegrationStatus.DRAFT
        integ._history_user = resolved.user  # type: ignore[attr-defined]
        integ.save()
        # One history row per change: the M2M writes skip theirs; _apply_risk saves once after.
        integ.skip_history_when_saving = True  # type: ignore[attr-defined]
        integ.requested_scopes.set(values.get("requested_scopes") or [])
        integ.invokes.set(values.get("invokes") or [])
        del integ.skip_history_when_saving  # type: ignore[attr-defined]
        _credentials_set(integ, values.get("credentials") or [], resolved.user)
        _apply_risk(actor=resolved, integration=integ, user=resolved.user, reason="registered")
        audit_record(
            actor=resolved,
            action="integration.registered",
            target=integ,
            owner=integ.business_owner,
            after=integration_snapshot(integ),
        )
        _owners_propose(resolved, integ, consent, "when it was registered")
        if submit:
            integ = integration_submit(actor=resolved, integration=integ)
    return integ


def _blank(field: str) -> Any:
    return (
        []
        if field in ("data_classifications", "tags")
        else ("" if field not in ("technical_owner", "backup_owner") else None)
    )


def integration_update(
    *, actor: Actor | User, integration: Integration, values: Mapping[str, Any], reason: str = ""
) -> Integration:
    """Change an integration (``integration.changed``, with only the changed fields). Rules:
    owners and IAM admins only; a retired one is frozen; a pending one keeps its scopes until
    decided; on an active one added scopes are *requested* (``integration_scopes_added``), never
    granted, and removed scopes lose their grants at once. The risk is recomputed, here and
    upstream; a raised tier on a live integration asks for a re-review. Naming someone else in
    an owner role proposes a transfer they accept (``_owner_split``); the role is unchanged
    until then."""
    resolved = Actor.coerce(actor)
    unknown = set(values) - set(INPUT_FIELDS)
    if unknown:
        raise ValidationFailed.on(sorted(unknown)[0], "Unknown field.")
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        if not permissions.can_edit(resolved, locked):
            raise NotAllowed("Only the integration's owners and IAM admins may change it.")
        if locked.status == IntegrationStatus.RETIRED:
            raise Conflict(f"{locked.name} is retired; it cannot be changed.")
        _validate(values, instance=locked)
        values, consent = _owner_split(resolved, values, locked)
        before = integration_snapshot(locked)
        old_scopes = {s.pk: s for s in locked.requested_scopes.all()}
        new_scopes = {s.pk: s for s in values["requested_scopes"]} if "requested_scopes" in values else old_scopes
        added = [s for pk, s in new_scopes.items() if pk not in old_scopes]
        removed = [pk for pk in old_scopes if pk not in new_scopes]
        if (added or removed) and locked.status == IntegrationStatus.PENDING:
            raise Unprocessable.on(
                "requested_scopes",
                "The scopes are being decided; wait for the decision (or ask the reviewers for changes) before changing them.",
            )
        for field in _PLAIN_FIELDS:
            if field in values:
                setattr(locked, field, values[field] if values[field] is not None else _blank(field))
        locked.skip_history_when_saving = True  # type: ignore[attr-defined]
        if "requested_scopes" in values:
            locked.requested_scopes.set(list(new_scopes.values()))
        if "invokes" in values:
            locked.invokes.set(values["invokes"])
        del locked.skip_history_when_saving  # type: ignore[attr-defined]
        if "credentials" in values:
            _credentials_set(locked, values["credentials"], resolved.user)
        _apply_risk(actor=resolved, integration=locked, user=resolved.user, reason=reason or "changed")
        b, a = _diff(before, integration_snapshot(locked))
        if b or a:
            audit_record(
                actor=resolved,
                action="integration.changed",
                target=locked,
                owner=locked.business_owner,
                before=b,
                after=a,
                reason=reason,
            )
        if removed:
            ended = list(
                Grant.objects.filter(integration=locked, scope_id__in=removed, status=GrantStatus.ACTIVE).values_list(
                    "pk", flat=True
                )
            )
            grants_end_many(
                actor=resolved,
                grant_ids=ended,
                status=GrantStatus.REVOKED,
                reason="The owners no longer request this scope.",
                action="grant.revoked",
            )
        if added and locked.status == IntegrationStatus.ACTIVE:
            signals.integration_scopes_added.send(
                sender=Integration, integration=locked, actor=resolved, added_scopes=added
            )
        _refresh_upstream(resolved, locked)
        _owners_propose(resolved, locked, consent, "in a change of the integration")
    integration.refresh_from_db()
    return locked


def integration_submit(*, actor: Actor | User, integration: Integration, reason: str = "") -> Integration:
    """Owners submit a draft (or resubmit a rejected one): draft/rejected -> pending, audited as
    ``integration.submitted``; approvals opens the request from ``integration_submitted``.
    Rules: at least one requested scope; no grant until the request is approved."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        if not permissions.can_edit(resolved, locked):
            raise NotAllowed("Only the integration's owners and IAM admins may submit it.")
        if locked.status not in (IntegrationStatus.DRAFT, IntegrationStatus.REJECTED):
            raise IllegalTransition(
                f"{locked.name} is {locked.get_status_display().lower()}; only a draft or a rejected integration can be submitted."
            )
        scopes = list(locked.requested_scopes.all())
        if not scopes:
            raise Unprocessable.on("requested_scopes", "Pick at least one scope to request before submitting.")
        updated = integration_transition(
            actor=resolved,
            integration=locked,
            to_status=IntegrationStatus.PENDING,
            reason=reason,
            action="integration.submitted",
        )
        signals.integration_submitted.send(sender=Integration, integration=updated, actor=resolved, scopes=scopes)
    integration.refresh_from_db()
    return integration


def _end_all_grants(actor: Actor, integration: Integration, reason: str) -> int:
    ids = list(Grant.objects.filter(integration=integration, status=GrantStatus.ACTIVE).values_list("pk", flat=True))
    return grants_end_many(
        actor=actor, grant_ids=ids, status=GrantStatus.REVOKED, reason=reason, action="grant.revoked"
    )


def _owners(integration: Integration) -> list[User]:
    people = [integration.business_owner, integration.technical_owner, integration.backup_owner]
    seen: dict[int, User] = {}
    for p in people:
        if p is not None and p.pk not in seen:
            seen[p.pk] = p
    return list(seen.values())


def integration_suspend(*, actor: Actor | User, integration: Integration, reason: str) -> Integration:
    """The kill switch: -> suspended and every active grant revoked in the same transaction (bulk,
    audited), owners told by email, approvals told (``integration_disabled``). Reason required."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed.on("reason", "A reason is required to suspend an integration.")
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        locked = (
            Integration.objects.select_for_update(of=("self",))
            .select_related("business_owner", "technical_owner", "backup_owner")
            .get(pk=integration.pk)
        )
        if not permissions.can_suspend(resolved, locked):
            raise NotAllowed("Only the integration's owners and IAM admins may suspend it.")
        integration_transition(
            actor=resolved,
            integration=locked,
            to_status=IntegrationStatus.SUSPENDED,
            reason=reason,
            action="integration.suspended",
        )
        revoked = _end_all_grants(resolved, locked, f"Suspended: {reason}")
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


def integration_reactivate(*, actor: Actor | User, integration: Integration, reason: str = "") -> Integration:
    """A suspended integration comes back only through a new request: suspended -> pending
    (``integration.reactivation_requested``) and ``integration_submitted`` for its scopes."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        if not permissions.can_edit(resolved, locked):
            raise NotAllowed("Only the integration's owners and IAM admins may ask for reactivation.")
        if locked.status != IntegrationStatus.SUSPENDED:
            raise IllegalTransition(
                f"{locked.name} is {locked.get_status_display().lower()}; only a suspended integration can be reactivated."
            )
        scopes = list(locked.requested_scopes.all())
        if not scopes:
            raise Unprocessable.on(
                "requested_scopes", "Pick at least one scope to request before asking for reactivation."
            )
        integration_transition(
            actor=resolved,
            integration=locked,
            to_status=IntegrationStatus.PENDING,
            reason=reason,
            action="integration.reactivation_requested",
        )
        signals.integration_submitted.send(sender=Integration, integration=locked, actor=resolved, scopes=scopes)
    integration.refresh_from_db()
    return integration


def integration_retire(*, actor: Actor | User, integration: Integration, reason: str) -> Integration:
    """-> retired for good: every active grant revoked, open requests cancelled by approvals
    (``integration_disabled``). Reason required."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed.on("reason", "A reason is required to retire an integration.")
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        if not permissions.can_retire(resolved, locked):
            raise NotAllowed("Only the integration's owners and IAM admins may retire it.")
        integration_transition(
            actor=resolved,
            integration=locked,
            to_status=IntegrationStatus.RETIRED,
            reason=reason,
            action="integration.retired",
        )
        _end_all_grants(resolved, locked, f"Retired: {reason}")
        signals.integration_disabled.send(
            sender=Integration, integration=locked, actor=resolved, status=IntegrationStatus.RETIRED, reason=reason
        )
    integration.refresh_from_db()
    return integration


# --- Ownership: transfers and orphans --------------------------------------------------------


def ownership_transfer_propose(
    *, actor: Actor | User, integration: Integration, to_user: User, role: str = OwnerRole.BUSINESS, reason: str = ""
) -> OwnershipTransfer:
    """Propose handing one owner role to ``to_user``; nothing changes until they accept.
    Rules: owners or IAM admins propose; the new owner is an active person, not already in that
    role; one open proposal per role."""
    resolved = Actor.coerce(actor)
    if role not in OwnerRole.values:
        raise ValidationFailed.on("role", f"Choose one of: {', '.join(OwnerRole.values)}.")
    if not to_user.is_active or to_user.is_service_account:
        raise ValidationFailed.on(
            "to_user", f"{to_user.username} cannot own an integration (inactive or a service account)."
        )
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        if not permissions.can_propose_transfer(resolved, locked):
            raise NotAllowed("Only the integration's owners and IAM admins may propose a transfer.")
        if locked.status == IntegrationStatus.RETIRED:
            raise Conflict(f"{locked.name} is retired.")
        current = getattr(locked, f"{role}_id")
        if current == to_user.pk:
            raise Unprocessable.on("to_user", f"{to_user.username} already is the {OwnerRole(role).label.lower()}.")
        try:
            with transaction.atomic():
                transfer = OwnershipTransfer.objects.create(
                    integration=locked,
                    role=role,
                    from_user_id=current,
                    to_user=to_user,
                    proposed_by=resolved.user,
                    reason=reason.strip(),
                )
        except IntegrityError:
            raise Conflict("A transfer of this role is already waiting for an answer.") from None
        audit_record(
            actor=resolved,
            action="integration.ownership_transfer_proposed",
            target=locked,
            owner=locked.business_owner,
            after={"role": role, "to_user": to_user.username, "transfer": transfer.pk},
            reason=reason,
        )
        email_enqueue(
            key=f"ownership-transfer:{transfer.pk}",
            recipient=to_user,
            subject=f"You are asked to own {locked.name}",
            template="ownership_transfer_proposed",
            context={"integration": locked, "transfer": transfer, "actor": resolved.user},
        )
    return transfer


def _transfer_decide(
    *, actor: Actor | User, transfer: OwnershipTransfer, accept: bool, reason: str = ""
) -> OwnershipTransfer:
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        locked = OwnershipTransfer.objects.select_for_update().select_related("to_user").get(pk=transfer.pk)
        if locked.to_user_id != resolved.user.pk:
            raise NotAllowed("Only the proposed new owner may answer this transfer.")
        if locked.status != TransferStatus.PROPOSED:
            raise Conflict(f"This transfer was already {locked.get_status_display().lower()}.")
        integ = Integration.objects.select_for_update().get(pk=locked.integration_id)
        locked.status = TransferStatus.ACCEPTED if accept else TransferStatus.DECLINED
        locked.decided_at = timezone.now()
        locked._history_user = resolved.user  # type: ignore[attr-defined]
        locked.save(update_fields=["status", "decided_at"])
        if accept:
            if integ.status == IntegrationStatus.RETIRED:
                raise Conflict(f"{integ.name} is retired.")
            before = getattr(integ, locked.role)
            setattr(integ, locked.role, locked.to_user)
            # The orphan flag clears once every owner is an active person again.
            integ.orphaned = any(
                p is not None and not p.is_active
                for p in (integ.business_owner, integ.technical_owner, integ.backup_owner)
            )
            integ.updated_at = timezone.now()
            integ._history_user = resolved.user  # type: ignore[attr-defined]
            integ._change_reason = "ownership transferred"  # type: ignore[attr-defined]
            integ.save(update_fields=[locked.role, "orphaned", "updated_at"])
            audit_record(
                actor=resolved,
                action="integration.ownership_transferred",
                target=integ,
                owner=integ.business_owner,
                before={locked.role: before.username if before else None},
                after={locked.role: locked.to_user.username, "orphaned": integ.orphaned},
                reason=reason,
            )
        else:
            audit_record(
                actor=resolved,
                action="integration.ownership_transfer_declined",
                target=integ,
                owner=integ.business_owner,
                after={"role": locked.role, "to_user": locked.to_user.username, "transfer": locked.pk},
                reason=reason,
            )
    transfer.refresh_from_db()
    return transfer


def ownership_transfer_accept(
    *, actor: Actor | User, transfer: OwnershipTransfer, reason: str = ""
) -> OwnershipTransfer:
    """The proposed owner accepts: the role changes hands (``integration.ownership_transferred``)."""
    return _transfer_decide(actor=actor, transfer=transfer, accept=True, reason=reason)


def ownership_transfer_decline(
    *, actor: Actor | User, transfer: OwnershipTransfer, reason: str = ""
) -> OwnershipTransfer:
    """The proposed owner declines (``integration.ownership_transfer_declined``)."""
    return _transfer_decide(actor=actor, transfer=transfer, accept=False, reason=reason)


def integrations_orphan_for_user(*, actor: Actor | User, user: User) -> int:
    """``user`` left: every integration they own (any owner role, not retired) is flagged
    orphaned for the IAM work list, in bulk, audited (``integration.orphaned``); approvals cancels
    what waits on them (``integration_disabled``). Returns how many were flagged."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        qs = Integration.objects.filter(owned_by(user)).exclude(status=IntegrationStatus.RETIRED).filter(orphaned=False)
        targets = list(qs.select_for_update().select_related("business_owner"))
        if not targets:
            return 0
        Integration.objects.filter(pk__in=[t.pk for t in targets]).update(orphaned=True, updated_at=timezone.now())
        for t in targets:
            t.orphaned = True
        history_record_many(targets, user=resolved.user, reason=f"owner {user.username} deactivated")
        reason = f"Owner {user.username} was deactivated."
        audit_record_many(
            actor=resolved,
            events=[
                EventSpec(
                    action="integration.orphaned",
                    target=t,
                    # The leaver answers for nothing any more: their manager, else whoever
                    # deactivated them.
                    owner=(
                        t.business_owner
                        if t.business_owner_id != user.pk
                        else user.manager or accountable_human(resolved)
                    ),
                    before={"orphaned": False},
                    after={"orphaned": True, "left": user.username},
                    reason=reason,
                )
                for t in targets
            ],
        )
        for t in targets:
            signals.integration_disabled.send(
                sender=Integration, integration=t, actor=resolved, status="orphaned", reason=reason
            )
    return len(targets)


# --- The scope catalog (IAM admins) ----------------------------------------------------------

SYSTEM_FIELDS = ("code", "name", "description")
SCOPE_FIELDS = ("name", "description", "sensitivity", "access", "is_active")


def _catalog_guard(actor: Actor) -> None:
    if not permissions.can_manage_catalog(actor):
        raise NotAllowed("Only IAM admins keep the scope catalog.")


def resource_system_save(
    *,
    actor: Actor | User,
    values: Mapping[str, Any],
    system: ResourceSystem | None = None,
    owners: Iterable[User] | None = None,
) -> ResourceSystem:
    """Create or change a resource system (``resource_system.created`` / ``.changed``). Its code
    is fixed once scopes use it (it is part of their codes)."""
    resolved = Actor.coerce(actor)
    _catalog_guard(resolved)
    bad_lines = single_line_errors(values, ("code", "name"))
    if bad_lines:
        raise ValidationFailed(SINGLE_LINE_MESSAGE, errors=bad_lines)
    with transaction.atomic():
        if system is None:
            code = str(values.get("code") or "").strip()
            if not code or ResourceSystem.objects.filter(code=code).exists():
                raise ValidationFailed.on("code", "Give a short unique code (letters, digits, dashes).")
            if not str(values.get("name") or "").strip():
                raise ValidationFailed.on("name", "This field is required.")
            target = ResourceSystem(code=code)
            before = None
        else:
            target = ResourceSystem.objects.select_for_update().get(pk=system.pk)
            before = snapshot(target, SYSTEM_FIELDS)
            if "code" in values and values["code"] != target.code and target.scopes.exists():
                raise ValidationFailed.on("code", "The code is part of its scopes' codes and cannot change.")
        for f in SYSTEM_FIELDS:
            if f in values:
                setattr(target, f, values[f])
        target._history_user = resolved.user  # type: ignore[attr-defined]
        target.save()
        if owners is not None:
            target.owners.set(list(owners))
        after = {**snapshot(target, SYSTEM_FIELDS), "owners": sorted(u.username for u in target.owners.all())}
        audit_record(
            actor=resolved,
            action="resource_system.created" if before is None else "resource_system.changed",
            target=target,
            before=before,
            after=after,
        )
    return target


def scope_save(
    *, actor: Actor | User, values: Mapping[str, Any], system: ResourceSystem | None = None, scope: Scope | None = None
) -> Scope:
    """Create a scope in ``system`` or change one (``scope.created`` / ``scope.changed``); its
    code ``system:name`` is derived and fixed (grants and requests refer to it)."""
    resolved = Actor.coerce(actor)
    _catalog_guard(resolved)
    errors: dict[str, list[str]] = {}
    if "sensitivity" in values and values["sensitivity"] not in Sensitivity.values:
        _errors_add(errors, "sensitivity", f"Choose one of: {', '.join(Sensitivity.values)}.")
    if "access" in values and values["access"] not in AccessLevel.values:
        _errors_add(errors, "access", f"Choose one of: {', '.join(AccessLevel.values)}.")
    if scope is None and not str(values.get("name") or "").strip():
        _errors_add(errors, "name", "This field is required.")
    for field, messages in single_line_errors(values, ("name",)).items():
        errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    with transaction.atomic():
        if scope is None:
            assert system is not None
            name = str(values["name"]).strip()
            if Scope.objects.filter(system=system, name=name).exists():
                raise ValidationFailed.on("name", f"{system.code}:{name} already exists.")
            target = Scope(system=system, name=name, code=f"{system.code}:{name}")
            before = None
        else:
            target = Scope.objects.select_for_update().select_related("system").get(pk=scope.pk)
            before = snapshot(target, SCOPE_FIELDS)
            if "name" in values and values["name"] != target.name:
                raise ValidationFailed.on(
                    "name", "A scope's name is part of its code and cannot change; retire it and add a new one."
                )
        for f in SCOPE_FIELDS:
            if f in values and f != "name":
                setattr(target, f, values[f])
        target._history_user = resolved.user  # type: ignore[attr-defined]
        target.save()
        audit_record(
            actor=resolved,
            action="scope.created" if before is None else "scope.changed",
            target=target,
            before=before,
            after={"code": target.code, **snapshot(target, SCOPE_FIELDS)},
        )
    return target
