"""Pipeline steps for single sign-on through a generic OpenID Connect provider.

``sync_roles_from_groups`` maps the IdP's group claim to portal roles with
``settings.OIDC_GROUP_ROLE_MAP`` on every login, so a role removed at the IdP is removed here at
the next login. Groups the map does not name are ignored (never created), so an IdP cannot make
up roles.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from social_core.exceptions import AuthForbidden

from governance.actors import Actor
from governance.services import user_set_roles


def _claim_groups(response: dict[str, Any], details: dict[str, Any]) -> list[str]:
    raw = response.get(settings.OIDC_GROUPS_CLAIM)
    if raw is None:
        raw = details.get(settings.OIDC_GROUPS_CLAIM)
    if isinstance(raw, str):
        return [g.strip() for g in raw.split(",") if g.strip()]
    if isinstance(raw, (list, tuple)):
        return [str(g) for g in raw]
    return []


def refuse_inactive_user(backend: Any, user: Any = None, **_: Any) -> None:
    """A deactivated portal account stays refused even when the IdP still vouches for it."""
    if user is not None and not user.is_active:
        raise AuthForbidden(backend, "This account is deactivated in the portal. Ask the IAM team to restore it.")


def sync_roles_from_groups(
    backend: Any, user: Any = None, response: dict[str, Any] | None = None, details: dict[str, Any] | None = None, **_: Any
) -> None:
    if user is None:
        return
    groups = _claim_groups(response or {}, details or {})
    mapping = settings.OIDC_GROUP_ROLE_MAP
    roles = {mapping[g] for g in groups if g in mapping}
    if not roles and settings.OIDC_DEFAULT_ROLE:
        roles = {settings.OIDC_DEFAULT_ROLE}
    user_set_roles(actor=Actor.coerce(user), user=user, roles=roles, reason=f"single sign-on groups: {', '.join(groups) or 'none'}")
