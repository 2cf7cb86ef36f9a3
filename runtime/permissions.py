"""Who may take which action on the runtime plane. Services and the authorization-server views
call these so that the rule holds whoever calls them."""

from __future__ import annotations

from typing import Any

from governance.actors import Actor
from governance.roles import Role, has_role, is_iam_admin
from inventory.models import Integration


def _human(actor: Any) -> Any:
    return actor.user if isinstance(actor, Actor) else actor


def _is_system(actor: Any) -> bool:
    return isinstance(actor, Actor) and actor.is_system


def can_manage_signing_keys(actor: Any) -> bool:
    """Rotation and re-encryption of the portal's signing keys: IAM admins and the system."""
    return _is_system(actor) or is_iam_admin(_human(actor))


def can_introspect(user: Any) -> bool:
    """Resource-server accounts ask whether a token is still live; IAM admins may too."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    return has_role(user, Role.RESOURCE_SERVER, Role.IAM_ADMIN)


def can_revoke_token_of(user: Any, integration: Integration | None) -> bool:
    """A person revokes an access token of an integration they own, or any token as IAM admin.
    (The integration itself revokes its own tokens by presenting its workload token.)"""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    if is_iam_admin(user):
        return True
    return integration is not None and user.pk in integration.owner_ids()


def _signed_in(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_active", False))


def can_manage_policies(actor: Any) -> bool:
    """Writing policy versions, running their tests and replays, moving them between draft,
    shadow and retired, and asking for one to be enforced: IAM admins (enforcing itself needs a
    second IAM admin's approval)."""
    return _is_system(actor) or (_signed_in(_human(actor)) and is_iam_admin(_human(actor)))


def can_read_policies(user: Any) -> bool:
    """The policy versions, their tests and replay reports, and the decision log: IAM admins,
    reviewers and auditors."""
    return _signed_in(user) and has_role(user, Role.IAM_ADMIN, Role.REVIEWER, Role.AUDITOR)


def can_ask_decisions(user: Any) -> bool:
    """The decision API: resource-server and gateway accounts, and IAM admins."""
    return _signed_in(user) and has_role(user, Role.RESOURCE_SERVER, Role.IAM_ADMIN)
