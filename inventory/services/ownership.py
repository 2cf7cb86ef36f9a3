"""Who owns an integration. Ownership is accountability, so it takes the owner-to-be's consent:
an owner role changes hands through a transfer the named person accepts. An owner who leaves
leaves their integrations orphaned for IAM to find a new owner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from governance.actors import Actor
from governance.audit import EventSpec, accountable_human, audit_record, audit_record_many
from governance.exceptions import Conflict, NotAllowed, Unprocessable, ValidationFailed
from governance.history import history_record_many
from governance.models import User
from governance.services import email_enqueue
from inventory import permissions, signals
from inventory.choices import IntegrationStatus, OwnerRole, TransferStatus
from inventory.models import Integration, OwnershipTransfer
from inventory.selectors import owned_by
from inventory.services.lifecycle import integration_locked_for
from inventory.services.validation import OWNER_FIELDS


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
        locked = integration_locked_for(
            resolved,
            integration,
            permissions.can_propose_transfer,
            "Only the integration's owners and IAM admins may propose a transfer.",
        )
        if locked.status == IntegrationStatus.RETIRED:
            raise Conflict(f"{locked.name} is retired.")
        current = getattr(locked, f"{role}_id")
        if current == to_user.pk:
            raise Unprocessable.on("to_user", f"{to_user.username} already is the {OwnerRole(role).label.lower()}.")
        try:
            # A savepoint: the unique constraint on open proposals answers a race as a Conflict.
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


def ownership_transfer_accept(
    *, actor: Actor | User, transfer: OwnershipTransfer, reason: str = ""
) -> OwnershipTransfer:
    """The proposed owner accepts: the role changes hands (``integration.ownership_transferred``).
    Rules: only the proposed owner answers, once; a retired integration changes no owner."""
    return _transfer_decide(actor=actor, transfer=transfer, accept=True, reason=reason)


def ownership_transfer_decline(
    *, actor: Actor | User, transfer: OwnershipTransfer, reason: str = ""
) -> OwnershipTransfer:
    """The proposed owner declines (``integration.ownership_transfer_declined``). Rules: only the
    proposed owner answers, once."""
    return _transfer_decide(actor=actor, transfer=transfer, accept=False, reason=reason)


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
        locked._history_user = resolved.user
        locked.save(update_fields=["status", "decided_at"])
        if accept:
            _role_hand_over(resolved, locked, integ, reason)
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


def _role_hand_over(actor: Actor, transfer: OwnershipTransfer, integration: Integration, reason: str) -> None:
    """The accepted transfer's role goes to its new owner (both rows locked by the caller)."""
    if integration.status == IntegrationStatus.RETIRED:
        raise Conflict(f"{integration.name} is retired.")
    before = getattr(integration, transfer.role)
    setattr(integration, transfer.role, transfer.to_user)
    # The orphan flag clears once every owner is an active person again.
    integration.orphaned = any(
        person is not None and not person.is_active
        for person in (integration.business_owner, integration.technical_owner, integration.backup_owner)
    )
    integration.updated_at = timezone.now()
    integration._history_user = actor.user
    integration._change_reason = "ownership transferred"
    integration.save(update_fields=[transfer.role, "orphaned", "updated_at"])
    audit_record(
        actor=actor,
        action="integration.ownership_transferred",
        target=integration,
        owner=integration.business_owner,
        before={transfer.role: before.username if before else None},
        after={transfer.role: transfer.to_user.username, "orphaned": integration.orphaned},
        reason=reason,
    )


def owner_roles_split(
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
        elif role == OwnerRole.BUSINESS:
            direct[role] = _interim_business_owner(actor, person)
        else:
            direct[role] = None
    return direct, consent


def _interim_business_owner(actor: Actor, named: User) -> User:
    """Who holds a new integration's business owner role until ``named`` accepts: the actor,
    if they are an active person."""
    holder = actor.user
    if holder is None or not holder.is_active or holder.is_service_account:
        raise NotAllowed(
            f"Naming {named.username} as business owner takes their consent; register it as your "
            "own person (or ask an IAM admin) and propose the transfer.",
            errors={"business_owner": [f"{named.username} must accept this role; it cannot be assigned directly."]},
        )
    return holder


def owner_roles_propose(actor: Actor, integration: Integration, consent: Sequence[tuple[str, User]], why: str) -> None:
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


def integrations_orphan_for_user(*, actor: Actor | User, user: User) -> int:
    """``user`` left: every integration they own (any owner role, not retired) is flagged
    orphaned for the IAM work list, in bulk, audited (``integration.orphaned``); approvals cancels
    what waits on them (``integration_disabled``). The caller is the deactivation of ``user``,
    which checked who may deactivate. Returns how many were flagged."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        owned = Integration.objects.filter(owned_by(user)).exclude(status=IntegrationStatus.RETIRED)
        targets = list(owned.filter(orphaned=False).select_for_update().select_related("business_owner"))
        if not targets:
            return 0
        Integration.objects.filter(pk__in=[integ.pk for integ in targets]).update(
            orphaned=True, updated_at=timezone.now()
        )
        for integ in targets:
            integ.orphaned = True
        history_record_many(targets, user=resolved.user, reason=f"owner {user.username} deactivated")
        reason = f"Owner {user.username} was deactivated."
        audit_record_many(
            actor=resolved,
            events=[
                EventSpec(
                    action="integration.orphaned",
                    target=integ,
                    owner=_accountable_after_leaving(integ, user, resolved),
                    before={"orphaned": False},
                    after={"orphaned": True, "left": user.username},
                    reason=reason,
                )
                for integ in targets
            ],
        )
        for integ in targets:
            signals.integration_disabled.send(
                sender=Integration, integration=integ, actor=resolved, status="orphaned", reason=reason
            )
    return len(targets)


def _accountable_after_leaving(integration: Integration, leaver: User, actor: Actor) -> User | None:
    """The leaver answers for nothing any more: the business owner if someone else, else the
    leaver's manager, else whoever deactivated them."""
    if integration.business_owner_id != leaver.pk:
        return integration.business_owner
    return leaver.manager or accountable_human(actor)
