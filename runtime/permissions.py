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
