"""Receivers of the kernel's signals; each only calls an inventory service (which audits in the
sender's transaction)."""

from __future__ import annotations

from typing import Any

from governance.actors import Actor
from governance.models import User
from inventory.services import integrations_orphan_for_user


def on_user_deactivated(sender: Any, *, user: User, actor: Actor, **_: Any) -> None:
    """A leaver's integrations are flagged orphaned for the IAM work list."""
    integrations_orphan_for_user(actor=actor, user=user)
