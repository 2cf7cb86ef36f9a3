"""Who may take which action on the inventory (what they may *see* is ``inventory.selectors``).
Services call these so that the rule holds whoever calls them (page, API, admin, command)."""

from __future__ import annotations

from typing import Any

from governance.actors import Actor
from governance.roles import is_iam_admin, is_read_only
from inventory.models import Integration


def _human(actor: Any) -> Any:
    return actor.user if isinstance(actor, Actor) else actor


def _is_system(actor: Any) -> bool:
    return isinstance(actor, Actor) and actor.is_system


def is_owner(user: Any, integration: Integration) -> bool:
    return bool(getattr(user, "pk", None)) and user.pk in integration.owner_ids()


def can_edit(actor: Any, integration: Integration) -> bool:
    """Owners and IAM admins change an integration; reviewers and auditors only read it."""
    if _is_system(actor):
        return True
    user = _human(actor)
    if is_read_only(user):
        return False
    return is_iam_admin(user) or is_owner(user, integration)


# The kill switch, retirement and transfers: the same people who may edit it.
can_suspend = can_edit
can_retire = can_edit
can_propose_transfer = can_edit


def can_register(actor: Any) -> bool:
    if _is_system(actor):
        return True
    user = _human(actor)
    return bool(getattr(user, "is_authenticated", False)) and not is_read_only(user)


def can_manage_catalog(actor: Any) -> bool:
    """IAM admins keep the scope catalog."""
    return _is_system(actor) or is_iam_admin(_human(actor))
