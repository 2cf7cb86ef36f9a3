"""Co-owners and delegates of one integration: people an owner names to act on it beside the
owners (see, edit, renew it) without becoming accountable for it. Each is a guardian object
permission (``inventory.act_on_integration``) on that integration, read by the visibility gate
(``inventory.selectors.integrations_for``) and the permission gate (``inventory.permissions``)
that pages and API share. Only owners and IAM admins name or remove them; every change is
audited in its transaction. Separation of duties counts them with the owners: they never decide
the integration's access requests."""

from __future__ import annotations

from django.contrib.auth.models import Permission
from django.db import transaction
from guardian.shortcuts import remove_perm

from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import Conflict, Unprocessable, ValidationFailed
from governance.models import User
from governance.roles import is_read_only
from inventory import permissions
from inventory.choices import IntegrationStatus
from inventory.models import Integration, IntegrationUserObjectPermission
from inventory.selectors import ACT_ON_INTEGRATION, integration_delegates
from inventory.services.lifecycle import integration_locked_for

_REFUSAL = "Only the integration's owners and IAM admins name or remove its co-owners and delegates."
REASON_MAX = 300


def _checked_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        raise ValidationFailed.on("reason", f"Keep the reason under {REASON_MAX} characters.")
    return reason


def integration_delegate_add(
    *, actor: Actor | User, integration: Integration, person: User, reason: str = ""
) -> Integration:
    """Let ``person`` act on ``integration`` beside its owners. Refused: not an owner or IAM admin
    (403); an inactive, service or read-only account, an owner, or someone already named (422);
    a retired integration (409)."""
    resolved = Actor.coerce(actor)
    reason = _checked_reason(reason)
    if not person.is_active or person.is_service_account or is_read_only(person):
        raise Unprocessable.on("person", f"{person.label} cannot act on an integration (inactive or read-only).")
    with transaction.atomic():
        locked = integration_locked_for(resolved, integration, permissions.can_manage_delegates, _REFUSAL)
        if locked.status == IntegrationStatus.RETIRED:
            raise Conflict(f"{locked.name} is retired.")
        if person.pk in locked.owner_ids():
            raise Unprocessable.on("person", f"{person.label} already owns {locked.name}.")
        if integration_delegates(locked).filter(pk=person.pk).exists():
            raise Unprocessable.on("person", f"{person.label} is already a co-owner of {locked.name}.")
        permission = Permission.objects.get(content_type__app_label="inventory", codename=ACT_ON_INTEGRATION)
        IntegrationUserObjectPermission.objects.create(user=person, permission=permission, content_object=locked)
        audit_record(
            actor=resolved,
            action="integration.delegate_added",
            target=locked,
            owner=locked.business_owner,
            after={"delegate": person.username, "permission": ACT_ON_INTEGRATION},
            reason=reason,
        )
    return locked


def integration_delegate_remove(
    *, actor: Actor | User, integration: Integration, person: User, reason: str = ""
) -> Integration:
    """Take back ``person``'s right to act on ``integration`` (owners and IAM admins; 422 when
    they hold none)."""
    resolved = Actor.coerce(actor)
    reason = _checked_reason(reason)
    with transaction.atomic():
        locked = integration_locked_for(resolved, integration, permissions.can_manage_delegates, _REFUSAL)
        removed = remove_perm(f"inventory.{ACT_ON_INTEGRATION}", person, locked)
        if not removed or not removed[0]:
            raise Unprocessable.on("person", f"{person.label} is no co-owner of {locked.name}.")
        audit_record(
            actor=resolved,
            action="integration.delegate_removed",
            target=locked,
            owner=locked.business_owner,
            before={"delegate": person.username, "permission": ACT_ON_INTEGRATION},
            reason=reason,
        )
    return locked
