"""Pipeline steps for single sign-on through a generic OpenID Connect provider.

``sync_roles_from_groups`` maps the IdP's group claim to portal roles with
``settings.OIDC_GROUP_ROLE_MAP`` on every login, so a role removed at the IdP is removed here at
the next login. Groups the map does not name are ignored (never created), so an IdP cannot make
up roles. ``refuse_inactive_user`` keeps a portal deactivation in force even while the IdP still
vouches for the person.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from social_core.exceptions import AuthPolicyError

from governance.actors import SYSTEM_USERNAME, Actor
from governance.models import User
from governance.services import user_set_roles

DEACTIVATED_MESSAGE = (
    "This account is deactivated in the portal, so single sign-on cannot sign you in. "
    "Ask the IAM team to restore it if you still need access."
)


UNKNOWN_MESSAGE = (
    "There is no portal account for you yet, and this portal does not create accounts at "
    "single sign-on. Ask the IAM team to create yours."
)


class AccountUnknown(AuthPolicyError):
    """Raised when ``OIDC_CREATE_USERS`` is off and the IdP's user has no portal account."""

    def __str__(self) -> str:
        return UNKNOWN_MESSAGE


FOREIGN_ISSUER_MESSAGE = (
    "Single sign-on answered for another issuer than the one this portal is configured with, so it "
    "cannot sign you in. Ask the IAM team to check the portal's OIDC_ISSUER."
)


class ForeignIssuer(AuthPolicyError):
    """Raised when the ID token's issuer is not the configured ``OIDC_ISSUER``."""

    def __str__(self) -> str:
        return FOREIGN_ISSUER_MESSAGE


class AccountDeactivated(AuthPolicyError):
    """Raised by the pipeline for a deactivated portal account. social-core 7 replaces an
    exception's text with a generic reason looked up by code; the login page must say why."""

    def __str__(self) -> str:
        return DEACTIVATED_MESSAGE


def _claim_groups(backend: Any, response: dict[str, Any]) -> list[str]:
    """Groups from the validated ID token, else from the userinfo response (whose ``sub`` the
    backend has already checked against the ID token)."""
    claim = settings.OIDC_GROUPS_CLAIM
    id_token = getattr(backend, "id_token", None) or {}
    raw = id_token.get(claim) if claim in id_token else response.get(claim)
    if isinstance(raw, str):
        return [g.strip() for g in raw.split(",") if g.strip()]
    if isinstance(raw, list | tuple):
        return [str(g) for g in raw]
    return []


def refuse_foreign_issuer(backend: Any, **_: Any) -> None:
    """The ID token must come from the issuer the portal is configured with. The backend checks
    ``iss`` against the ``issuer`` of the discovery document, and never that document's issuer
    against the configured one, so a provider reached under another name (or a discovery document
    naming someone else) would pass. The configured issuer is kept without its trailing slash (the
    discovery URL is built from it), so one trailing slash on ``iss`` is the only difference
    allowed. First in the pipeline: nothing is read from the response before this check."""
    id_token = getattr(backend, "id_token", None) or {}
    configured = str(settings.SOCIAL_AUTH_OIDC_OIDC_ENDPOINT).rstrip("/")
    issuer = str(id_token.get("iss", ""))
    if not configured or issuer not in (configured, f"{configured}/"):
        raise ForeignIssuer(backend, code="authentication_disallowed", stage="pipeline")


def refuse_inactive_user(backend: Any, user: Any = None, **_: Any) -> None:
    """A deactivated portal account stays refused even when the IdP still vouches for it.
    Placed right after ``social_user`` so nothing about the account is updated first."""
    if user is not None and not user.is_active:
        raise AccountDeactivated(backend, code="authentication_disallowed", stage="pipeline")


def link_existing_account(backend: Any, details: dict[str, Any], user: Any = None, **_: Any) -> dict[str, Any] | None:
    """A person's first SSO login reaches their existing portal account with the same username
    (``OIDC_LINK_BY_USERNAME``), instead of a second account: otherwise a deactivated leaver
    whom the IdP still lists would get a fresh, active account. Service accounts and the system
    account are never reachable through SSO."""
    if user is not None or not settings.OIDC_LINK_BY_USERNAME:
        return None
    username = str(details.get("username") or "").strip()
    if not username:
        return None
    existing = User.objects.filter(username__iexact=username).first()
    if existing is None:
        return None
    if existing.is_service_account or existing.username == SYSTEM_USERNAME:
        raise AccountUnknown(backend, code="authentication_disallowed", stage="pipeline")
    if not existing.is_active:
        raise AccountDeactivated(backend, code="authentication_disallowed", stage="pipeline")
    return {"user": existing}


def refuse_unknown_user(backend: Any, user: Any = None, **_: Any) -> None:
    """With ``OIDC_CREATE_USERS`` off, only people who already have a portal account (linked to
    this IdP by an earlier login) get in; the IAM team creates accounts."""
    if user is None and not settings.OIDC_CREATE_USERS:
        raise AccountUnknown(backend, code="authentication_disallowed", stage="pipeline")


def sync_roles_from_groups(backend: Any, user: Any = None, response: dict[str, Any] | None = None, **_: Any) -> None:
    """Give the user exactly the roles their IdP groups map to (audited as
    ``user.roles_changed`` when anything changes); none mapped -> ``OIDC_DEFAULT_ROLE``."""
    if user is None:
        return
    groups = _claim_groups(backend, response or {})
    mapping = settings.OIDC_GROUP_ROLE_MAP
    roles = {mapping[g] for g in groups if g in mapping}
    if not roles and settings.OIDC_DEFAULT_ROLE:
        roles = {settings.OIDC_DEFAULT_ROLE}
    user_set_roles(
        actor=Actor.coerce(user),
        user=user,
        roles=roles,
        reason=f"single sign-on groups: {', '.join(groups) or 'none'}",
    )
