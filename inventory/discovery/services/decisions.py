"""Decisions that turn a finding into governed inventory, or set it aside: claim (a person who
uses the app for work, or an IAM admin on someone's behalf), sanction for everyone, assign an
owner to answer for it, dismiss, and a scope review for a drift.

A claim or a sanction registers the app through ``inventory.services`` like any registration
(the input rules, the risk, the audit) with its external app id, and submits it: approvals opens
the request from inventory's signal, in the same transaction. Nothing is granted here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import Conflict, Unprocessable, ValidationFailed
from governance.models import User
from governance.roles import is_iam_admin, is_read_only
from governance.services import email_enqueue
from inventory.choices import Environment, IntegrationKind, IntegrationStatus
from inventory.discovery.choices import ACTIVE_FINDING_STATUSES, ConsentResponse, ConsentType, FindingKind, Source
from inventory.discovery.models import DiscoveredApp, DiscoveredConsent, Finding, FindingStatus
from inventory.discovery.services.common import (
    admin_actor,
    app_of,
    finding_locked,
    finding_move,
    human_of,
    integration_of,
    mapped_scopes,
)
from inventory.models import Integration
from inventory.services import integration_register, integration_submit, integration_update

# What a discovered app most likely is, by where it was found; the claimant corrects it.
_KIND_BY_SOURCE = {Source.SLACK: IntegrationKind.PLUGIN, Source.GITHUB: IntegrationKind.AUTOMATION}
# A registration made from a finding carries this tag, so the inventory can tell them apart.
DISCOVERED_TAG = "discovered"
# The statuses in which a finding still waits for a decision an admin can take.
_UNDECIDED = (FindingStatus.OPEN, FindingStatus.ESCALATED)
_NAME_MAX = Integration._meta.get_field("name").max_length or 150
_VENDOR_MAX = Integration._meta.get_field("vendor").max_length or 120


def _one_line(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


def claim_prefill(finding: Finding, owner: User) -> dict[str, Any]:
    """The registration a claim of ``finding`` starts from, as ``integration_register`` takes it:
    the app's name, its publisher as vendor, a kind by source, a purpose to correct, ``owner`` as
    business and technical owner, the catalog scopes its provider scopes map to, production, and
    the external app id (source, app key) that links it to what the provider shows."""
    app = app_of(finding)
    source = Source(app.source)
    people = app.consents.filter(present=True).exclude(person_key="*").count()
    where = f"{source.label} ({app.tenant})" if app.tenant else str(source.label)
    given = f", given by {people} {'person' if people == 1 else 'people'}" if people else ""
    purpose = (
        f"{app.name} holds OAuth consent at {where}{given}. "
        f"Claimed from discovery by {owner.label}, who uses it for work: say what it does and for whom."
    )
    return {
        "name": _one_line(app.name, _NAME_MAX),
        "vendor": _one_line(app.publisher or app.name, _VENDOR_MAX),
        "kind": _KIND_BY_SOURCE.get(source, IntegrationKind.OTHER),
        "purpose": purpose,
        "environment": Environment.PRODUCTION,
        "business_owner": owner,
        "technical_owner": owner,
        "acts_for_users": app.consents.filter(present=True, consent_type=ConsentType.USER).exists(),
        "requested_scopes": mapped_scopes(app.source, app.scopes),
        "tags": [DISCOVERED_TAG],
        "external_app_ids": [(app.source, app.app_key)],
    }


def finding_may_claim_for_self(user: User, finding: Finding) -> bool:
    """Whether ``user`` may claim ``finding`` for themselves: they consented to the app (or were
    assigned to answer for it) and may change things (an auditor never does). One query at most;
    the pages ask it to offer the claim, the service to allow it."""
    if is_read_only(user):
        return False
    if finding.assigned_owner_id == user.pk:
        return True
    return DiscoveredConsent.objects.filter(app_id=finding.app_id, person=user, present=True).exists()


def _may_claim(actor: Actor, finding: Finding, owner: User) -> None:
    """IAM admins claim on anyone's behalf; a person claims for themselves an app they consented
    to (or that they were assigned to answer for). Nobody else."""
    if actor.is_system or (is_iam_admin(actor.user) and not is_read_only(actor.user)):
        return
    if owner.pk != actor.user.pk:
        raise PermissionDenied("You may claim an app for yourself only.")
    if not finding_may_claim_for_self(actor.user, finding):
        raise PermissionDenied("Only the people who consented to this app, and IAM admins, may claim it.")


def _external_pairs(given: Any, app: DiscoveredApp) -> list[tuple[str, str]]:
    """The external app ids to record: those given (pairs, or ``{"source", "app_key"}`` as the
    API sends them) and always the app's own."""
    pairs: list[tuple[str, str]] = []
    for item in given or []:
        if isinstance(item, Mapping):
            pairs.append((str(item.get("source", "")), str(item.get("app_key", ""))))
        else:
            source, key = item
            pairs.append((str(source), str(key)))
    own = (app.source, app.app_key)
    return pairs if own in pairs else [own, *pairs]


def _register(
    actor: Actor, finding: Finding, owner: User, values: Mapping[str, Any] | None, submit: bool
) -> Integration:
    """Register the finding's app (prefilled, then ``values``) with ``owner`` as its business
    owner and its external app id, then submit it, in the caller's transaction."""
    app = app_of(finding)
    if app.integration_id is not None:
        raise Conflict(f"{app.name} is already registered as {app.integration}.")
    data = {**claim_prefill(finding, owner), **(values or {})}
    data["business_owner"] = owner
    data["external_app_ids"] = _external_pairs(data.get("external_app_ids"), app)
    integration = integration_register(actor=actor, values=data, submit=False)
    if submit:
        integration = integration_submit(
            actor=actor, integration=integration, reason=f"Claimed from discovery finding #{finding.pk}."
        )
    DiscoveredApp.objects.filter(pk=app.pk).update(integration=integration)
    return integration


def _answer(app_id: int | None, person: User, response: str) -> list[str]:
    """Record ``person``'s answer on their unanswered consents to the app; their keys."""
    consents = DiscoveredConsent.objects.filter(
        app_id=app_id, person=person, response__in=(ConsentResponse.NOT_ASKED, ConsentResponse.PENDING)
    )
    keys = list(consents.values_list("person_key", flat=True))
    consents.update(response=response, responded_at=timezone.now())
    return keys


def finding_claim(
    *,
    actor: Actor | User,
    finding: Finding,
    owner: User,
    values: Mapping[str, Any] | None = None,
    submit: bool = True,
) -> Integration:
    """Claim a shadow app for work: register it (``claim_prefill`` then ``values``; ``owner``
    as business owner; its external app id), submit it for approval, and move the finding to
    ``claimed`` with the integration (``discovery.finding_claimed``). The owner's consent is
    answered "claimed". Rules: IAM admins claim on anyone's behalf, a person for themselves an
    app they consented to or were assigned; the finding is an active shadow finding whose app
    is not registered yet; every registration rule holds (a field at fault is named)."""
    resolved = Actor.coerce(actor)
    _may_claim(resolved, finding, owner)
    with transaction.atomic():
        locked = finding_locked(finding, kinds=(FindingKind.SHADOW,), statuses=ACTIVE_FINDING_STATUSES, what="claimed")
        before = locked.status
        integration = _register(resolved, locked, owner, values, submit)
        finding_move(locked, FindingStatus.CLAIMED, integration=integration, resolution=f"Claimed by {owner.label}.")
        answered = _answer(locked.app_id, owner, ConsentResponse.CLAIMED)
        audit_record(
            actor=resolved,
            action="discovery.finding_claimed",
            target=locked,
            owner=owner,
            before={"status": before},
            after={
                "status": locked.status,
                "integration": integration.pk,
                "integration_name": integration.name,
                "owner": owner.username,
                "submitted": integration.status == IntegrationStatus.PENDING,
                "source": locked.source,
                "tenant": locked.tenant,
                "app_key": locked.app_key,
                "consents_answered": answered,
            },
        )
    finding.refresh_from_db()
    return integration


def finding_sanction(
    *, actor: Actor | User, finding: Finding, values: Mapping[str, Any] | None = None, submit: bool = True
) -> Integration:
    """Sanction a shadow app for everyone: register it once, with the acting IAM admin as owner
    (as a claim does: prefilled, external app id, submitted for approval), and move the finding
    to ``sanctioned`` (``discovery.finding_sanctioned``). Rules: IAM admins only; an active
    shadow finding whose app is not registered yet."""
    resolved = admin_actor(actor)
    owner = human_of(resolved)
    with transaction.atomic():
        locked = finding_locked(
            finding, kinds=(FindingKind.SHADOW,), statuses=ACTIVE_FINDING_STATUSES, what="sanctioned"
        )
        before = locked.status
        integration = _register(resolved, locked, owner, values, submit)
        finding_move(
            locked, FindingStatus.SANCTIONED, integration=integration, resolution=f"Sanctioned by {owner.label}."
        )
        audit_record(
            actor=resolved,
            action="discovery.finding_sanctioned",
            target=locked,
            owner=owner,
            before={"status": before},
            after={
                "status": locked.status,
                "integration": integration.pk,
                "integration_name": integration.name,
                "source": locked.source,
                "tenant": locked.tenant,
                "app_key": locked.app_key,
            },
        )
    finding.refresh_from_db()
    return integration


def finding_assign(*, actor: Actor | User, finding: Finding, owner: User) -> Finding:
    """Name the person who answers for a finding (``discovery.finding_assigned``) and tell them
    by email: they may then see it, claim it or ask for its revocation. Rules: IAM admins only;
    an undecided finding; an active person, not already the one assigned."""
    resolved = admin_actor(actor)
    if not owner.is_active or owner.is_service_account:
        raise ValidationFailed.on(
            "owner", f"{owner.username} cannot answer for a finding (inactive or a service account)."
        )
    with transaction.atomic():
        locked = finding_locked(
            finding, kinds=tuple(FindingKind.values), statuses=ACTIVE_FINDING_STATUSES, what="assigned"
        )
        previous = locked.assigned_owner
        if previous is not None and previous.pk == owner.pk:
            raise Unprocessable.on("owner", f"{owner.username} already answers for this finding.")
        finding_move(locked, locked.status, assigned_owner=owner)
        audit_record(
            actor=resolved,
            action="discovery.finding_assigned",
            target=locked,
            owner=owner,
            before={"assigned_owner": previous.username if previous else None},
            after={"assigned_owner": owner.username},
        )
        email_enqueue(
            key=f"discovery-assigned:{locked.pk}:{owner.pk}:{locked.updated_at.isoformat()}",
            recipient=owner,
            subject=f"You are asked to answer for {locked.title}",
            template="discovery_assigned",
            context={
                "finding": locked,
                "app": locked.app,
                "actor": resolved.user,
                "link": f"/discovery/findings/{locked.pk}/",
            },
        )
    finding.refresh_from_db()
    return locked


def finding_dismiss(*, actor: Actor | User, finding: Finding, reason: str) -> Finding:
    """Set a finding aside with a reason (``discovery.finding_dismissed``); it is closed, and
    the next import reopens it only if the app shows something new. Rules: IAM admins only; a
    reason is required; an open or escalated finding."""
    resolved = admin_actor(actor)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed.on("reason", "Say why this finding needs no action.")
    with transaction.atomic():
        locked = finding_locked(finding, kinds=tuple(FindingKind.values), statuses=_UNDECIDED, what="dismissed")
        before = locked.status
        finding_move(locked, FindingStatus.DISMISSED, resolution=reason)
        audit_record(
            actor=resolved,
            action="discovery.finding_dismissed",
            target=locked,
            owner=locked.assigned_owner or human_of(resolved),
            before={"status": before},
            after={
                "status": locked.status,
                "source": locked.source,
                "tenant": locked.tenant,
                "app_key": locked.app_key,
            },
            reason=reason,
        )
    finding.refresh_from_db()
    return locked


def finding_open_review(*, actor: Actor | User, finding: Finding) -> Finding:
    """Open a scope-expansion review for a drift: the catalog scopes its extra provider scopes
    map to are added to the integration's requested scopes (``integration_update``, which asks
    approvals for them; nothing is granted here); the finding moves to ``review_opened``
    (``discovery.review_opened``). Rules: IAM admins only; an open or escalated drift of an
    active integration; at least one extra scope mapped to the catalog and not yet requested."""
    resolved = admin_actor(actor)
    with transaction.atomic():
        locked = finding_locked(finding, kinds=(FindingKind.DRIFT,), statuses=_UNDECIDED, what="reviewed")
        integration = integration_of(locked)
        if integration.status != IntegrationStatus.ACTIVE:
            raise Conflict(
                f"{integration.name} is {integration.get_status_display().lower()}: only an active "
                "integration's scopes are reviewed."
            )
        requested = list(integration.requested_scopes.all())
        held = {scope.pk for scope in requested}
        added = [scope for scope in mapped_scopes(locked.source, locked.extra_scopes) if scope.pk not in held]
        if not added:
            raise Unprocessable.on("extra_scopes", _nothing_to_review(locked))
        integration_update(
            actor=resolved,
            integration=integration,
            values={"requested_scopes": [*requested, *added]},
            reason=f"Scope review of discovery finding #{locked.pk}",
        )
        before = locked.status
        finding_move(locked, FindingStatus.REVIEW_OPENED)
        audit_record(
            actor=resolved,
            action="discovery.review_opened",
            target=locked,
            owner=integration.business_owner,
            before={"status": before},
            after={"status": locked.status, "integration": integration.pk, "scopes": [scope.code for scope in added]},
        )
    finding.refresh_from_db()
    return locked


def _nothing_to_review(finding: Finding) -> str:
    if not mapped_scopes(finding.source, finding.extra_scopes):
        return "None of the extra scopes is mapped to the scope catalog: map them first, or revoke them."
    return "The extra scopes are already requested: their request is decided in approvals."
