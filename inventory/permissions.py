"""Who may take which action on the inventory (what they may *see* is ``inventory.selectors``).
Services call these so that the rule holds whoever calls them (page, API, admin, command)."""

from __future__ import annotations

from typing import Any

from governance.actors import Actor
from governance.roles import Role, has_role, is_auditor, is_iam_admin, is_read_only, sees_everything
from inventory.models import Grant, Integration, IntegrationUserObjectPermission


def _human(actor: Any) -> Any:
    return actor.user if isinstance(actor, Actor) else actor


def _is_system(actor: Any) -> bool:
    return isinstance(actor, Actor) and actor.is_system


def is_owner(user: Any, integration: Integration) -> bool:
    return bool(getattr(user, "pk", None)) and user.pk in integration.owner_ids()


def is_delegate(user: Any, integration: Integration) -> bool:
    """A co-owner or delegate: ``user`` holds the guardian object permission an owner granted
    on this one integration (read from its rows, so a superuser is no delegate by default)."""
    return (
        bool(getattr(user, "pk", None))
        and IntegrationUserObjectPermission.objects.filter(
            user=user, content_object=integration, permission__codename="act_on_integration"
        ).exists()
    )


def can_edit(actor: Any, integration: Integration) -> bool:
    """Owners, their co-owners and delegates, and IAM admins change an integration (edit,
    renew, suspend, retire, propose a transfer); reviewers and auditors only read it."""
    if _is_system(actor):
        return True
    user = _human(actor)
    if is_read_only(user):
        return False
    return is_iam_admin(user) or is_owner(user, integration) or is_delegate(user, integration)


def can_manage_delegates(actor: Any, integration: Integration) -> bool:
    """Only the owners (and IAM admins) name or remove co-owners and delegates: a delegate
    cannot pass the integration on."""
    if _is_system(actor):
        return True
    user = _human(actor)
    return not is_read_only(user) and (is_iam_admin(user) or is_owner(user, integration))


# The kill switch, retirement and transfers: the same people who may edit it.
can_suspend = can_edit
can_retire = can_edit
can_propose_transfer = can_edit


def can_register(actor: Any) -> bool:
    if _is_system(actor):
        return True
    user = _human(actor)
    return bool(getattr(user, "is_authenticated", False)) and not is_read_only(user)


def may_name_owner_directly(actor: Any, person: Any) -> bool:
    """Whether ``actor`` may put ``person`` in an owner role (business, technical, backup) at
    once, or must propose an ownership transfer that ``person`` accepts.
    Ownership is accountability, so it takes the owner-to-be's consent: anyone may name
    themselves; the system (imports, tasks) names anyone; IAM admins name other people directly
    (audited in the change) — except reviewers and auditors, who are asked like everyone else, so
    that nobody is made accountable for what they may also review or audit without knowing it."""
    if _is_system(actor):
        return True
    user = _human(actor)
    if getattr(person, "pk", None) == getattr(user, "pk", None):
        return True
    if has_role(person, Role.REVIEWER, Role.AUDITOR):
        return False
    return is_iam_admin(user)


def can_revoke_grant(actor: Any, grant: Grant) -> bool:
    """Whoever may change the integration revokes its grants (owners and IAM admins; reviewers
    and auditors do not)."""
    return can_edit(actor, grant.integration)


def sees_orphan_list(user: Any) -> bool:
    """The IAM work list of orphaned integrations: IAM admins act on it, auditors read it."""
    return is_iam_admin(user) or is_auditor(user)


def can_manage_catalog(actor: Any) -> bool:
    """IAM admins keep the scope catalog."""
    return _is_system(actor) or is_iam_admin(_human(actor))


def can_manage_issuers(actor: Any) -> bool:
    """IAM admins (and the system, e.g. the demo seeder) keep the trusted workload issuers."""
    return _is_system(actor) or is_iam_admin(_human(actor))


def sees_issuers(user: Any) -> bool:
    """The trusted issuers are IAM configuration: IAM admins keep them, reviewers and auditors
    read them; anyone else is shown nothing (404)."""
    return sees_everything(user)
