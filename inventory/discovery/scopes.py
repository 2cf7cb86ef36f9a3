"""The scopes a provider shows, read against the portal's scope catalog.

IAM admins map a provider's scope name (``https://www.googleapis.com/auth/drive.readonly``,
``Mail.ReadWrite``, ``channels:history``, ``contents:write``) to a catalog scope; a mapped scope
takes its sensitivity and access from the catalog, an unmapped one is shown raw with both
*estimated* from the words in its name. The estimate errs on the side of caution: a name that
says nothing about reading only is taken as able to change things, the way the providers' own
unqualified scopes (Google's ``drive``, ``calendar``) grant full access.

Saving or deleting a mapping changes how the source's apps score, so both rescore the source's
apps and open findings in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import Conflict, ValidationFailed
from governance.models import User
from governance.roles import is_iam_admin
from governance.validators import SINGLE_LINE_MESSAGE, has_control_characters
from inventory.choices import AccessLevel, Sensitivity
from inventory.discovery.choices import Source
from inventory.discovery.models import DiscoveredApp, ScopeMapping
from inventory.models import Scope

PROVIDER_SCOPE_MAX_LENGTH = ScopeMapping._meta.get_field("provider_scope").max_length or 300

_GOOGLE_PREFIX = "https://www.googleapis.com/auth/"
_WORD = re.compile(r"[a-z0-9]+")

# Scopes that only identify the person signing in (their name, email, a stable id).
IDENTITY_ONLY = frozenset(
    {
        "openid",
        "profile",
        "email",
        "offline_access",
        "user.read",
        "userinfo.email",
        "userinfo.profile",
        "identify",
        "users:read",
        "users:read.email",
        "users.profile:read",
        "team:read",
        "metadata:read",
        "okta.users.read.self",
    }
)
# Words that make a scope administrative whatever data it names.
_ADMIN_WORDS = frozenset({"admin", "accessasuser", "fullcontrol", "rolemanagement", "approleassignment"})
# Words that say the scope changes things.
_WRITE_WORDS = frozenset(
    {
        "write",
        "readwrite",
        "send",
        "modify",
        "compose",
        "insert",
        "delete",
        "create",
        "edit",
        "update",
        "manage",
        "upload",
        "remove",
        "invite",
    }
)
# Words that say the scope only reads.
_READ_WORDS = frozenset({"readonly", "read", "history", "list", "view", "metadata", "basic"})
# Data whose change reshapes who can do what: writing it is administering the tenant.
_IDENTITY_DATA = frozenset({"directory", "user", "users", "group", "groups", "application", "applications", "domain"})
# Data that is a person's or the organisation's own content.
_SENSITIVE_DATA = frozenset(
    {
        "mail",
        "gmail",
        "files",
        "drive",
        "sites",
        "documents",
        "docs",
        "notes",
        "chat",
        "channels",
        "groups",
        "im",
        "mpim",
        "messages",
        "history",
        "contacts",
        "directory",
        "contents",
        "repo",
        "code",
        "secrets",
        "workflows",
        "calendars",
    }
)
# Scopes that are the whole of something: Google's full mailbox and full cloud access.
_WHOLE = {
    "https://mail.google.com/": (AccessLevel.WRITE, Sensitivity.CRITICAL),
    _GOOGLE_PREFIX + "cloud-platform": (AccessLevel.ADMIN, Sensitivity.CRITICAL),
}
# GitHub permissions whose write level administers the organisation or its repositories.
_GITHUB_ADMIN_PERMISSIONS = frozenset(
    {"administration", "organization_administration", "members", "secrets", "organization_secrets"}
)


def _identity_only(provider_scope: str) -> bool:
    return provider_scope.strip().lower().removeprefix(_GOOGLE_PREFIX) in IDENTITY_ONLY


def _words(provider_scope: str) -> set[str]:
    name = provider_scope.lower()
    return set(_WORD.findall(name.removeprefix(_GOOGLE_PREFIX)))


def _github_access(provider_scope: str) -> str | None:
    """GitHub names a permission and its level (``contents:write``)."""
    permission, _, level = provider_scope.lower().partition(":")
    if level not in AccessLevel.values:
        return None
    if level == AccessLevel.WRITE and permission in _GITHUB_ADMIN_PERMISSIONS:
        return AccessLevel.ADMIN
    return level


def estimate_access(source: str, provider_scope: str) -> str:
    """The access an unmapped scope probably gives (``inventory.choices.AccessLevel``)."""
    name = provider_scope.strip()
    if _identity_only(name):
        return AccessLevel.READ
    if name in _WHOLE:
        return _WHOLE[name][0]
    if source == Source.GITHUB and (level := _github_access(name)) is not None:
        return level
    words = _words(name)
    reads_only = bool(words & _READ_WORDS) and not words & _WRITE_WORDS
    if words & _ADMIN_WORDS and not reads_only:
        return AccessLevel.ADMIN
    if words & _WRITE_WORDS:
        return AccessLevel.ADMIN if words & _IDENTITY_DATA else AccessLevel.WRITE
    if reads_only:
        return AccessLevel.READ
    # Google's unqualified scopes (``drive``, ``calendar``) grant full access to their data.
    return AccessLevel.WRITE if source == Source.GOOGLE else AccessLevel.READ


def estimate_sensitivity(source: str, provider_scope: str) -> str:
    """How sensitive an unmapped scope probably is (a ``governance.choices.Level`` value):
    identity-only scopes are low, administrative ones critical, a person's or the organisation's
    content (mail, files, messages, code, the directory) high, anything else medium."""
    name = provider_scope.strip()
    if _identity_only(name):
        return Sensitivity.LOW
    if name in _WHOLE:
        return _WHOLE[name][1]
    access = estimate_access(source, name)
    if access == AccessLevel.ADMIN:
        return Sensitivity.CRITICAL
    words = _words(name)
    if source == Source.GITHUB and ":" in name:
        words = _words(name.partition(":")[0].replace("_", " "))
    if words & _SENSITIVE_DATA:
        return Sensitivity.HIGH
    return Sensitivity.MEDIUM


def mapping_for(source: str, names: Iterable[str]) -> dict[str, Scope | None]:
    """Each of ``names`` with the catalog scope IAM mapped it to, or None (one query)."""
    wanted = sorted(set(names))
    found: dict[str, Scope | None] = dict.fromkeys(wanted)
    if not wanted:
        return found
    rows = ScopeMapping.objects.filter(source=source, provider_scope__in=wanted).select_related("scope__system")
    for row in rows:
        found[row.provider_scope] = row.scope
    return found


def sensitive_marks(app: DiscoveredApp) -> frozenset[str]:
    """The scopes the provider itself flags as sensitive (Slack's ``is_sensitive``)."""
    marked = (app.details or {}).get("sensitive_scopes") or {}
    if isinstance(marked, dict):
        return frozenset(str(name) for name, flag in marked.items() if flag)
    if isinstance(marked, list):
        return frozenset(str(name) for name in marked)
    return frozenset()


def estimated_scope(source: str, provider_scope: str, *, flagged: bool = False) -> Scope:
    """An unsaved catalog-shaped ``Scope`` carrying the estimate for ``provider_scope`` (what the
    risk rules read: ``code``, ``sensitivity``, ``access``). A scope the provider flags as
    sensitive is at least high."""
    sensitivity = estimate_sensitivity(source, provider_scope)
    if flagged and sensitivity in (Sensitivity.LOW, Sensitivity.MEDIUM):
        sensitivity = Sensitivity.HIGH
    return Scope(
        name=provider_scope[:120],
        code=provider_scope,
        sensitivity=sensitivity,
        access=estimate_access(source, provider_scope),
    )


def scope_rows(app: DiscoveredApp, mapped: dict[str, Scope | None] | None = None) -> list[dict[str, Any]]:
    """What the provider shows for ``app``, one row per scope as it names it:
    ``provider_scope``, ``scope`` (the mapped catalog scope or None), ``sensitivity``, ``access``
    and ``estimated`` (True where no mapping exists and the two are guessed from the name).
    ``mapped`` may be passed from ``mapping_for`` to save its query."""
    names = list(app.scopes or [])
    mapping = mapped if mapped is not None else mapping_for(app.source, names)
    flagged = sensitive_marks(app)
    rows: list[dict[str, Any]] = []
    for name in names:
        scope = mapping.get(name)
        if scope is not None:
            rows.append(
                {
                    "provider_scope": name,
                    "scope": scope,
                    "sensitivity": scope.sensitivity,
                    "access": scope.access,
                    "estimated": False,
                }
            )
            continue
        guess = estimated_scope(app.source, name, flagged=name in flagged)
        rows.append(
            {
                "provider_scope": name,
                "scope": None,
                "sensitivity": guess.sensitivity,
                "access": guess.access,
                "estimated": True,
            }
        )
    return rows


def _mapping_keeper(actor: Actor | User) -> Actor:
    resolved = Actor.coerce(actor)
    human = resolved.on_behalf_of if resolved.is_system else resolved.user
    if human is None or not is_iam_admin(human):
        raise PermissionDenied("Only IAM admins keep the scope mappings.")
    return resolved


def _clean_input(source: str, provider_scope: str) -> str:
    if source not in Source.values:
        raise ValidationFailed.on("source", f"Choose one of: {', '.join(Source.values)}.")
    name = str(provider_scope or "").strip()
    if not name:
        raise ValidationFailed.on("provider_scope", "Give the scope as the provider names it.")
    if len(name) > PROVIDER_SCOPE_MAX_LENGTH:
        raise ValidationFailed.on("provider_scope", f"At most {PROVIDER_SCOPE_MAX_LENGTH} characters.")
    if has_control_characters(name):
        raise ValidationFailed.on("provider_scope", SINGLE_LINE_MESSAGE)
    return name


def _mapping_state(mapping: ScopeMapping) -> dict[str, Any]:
    return {"source": mapping.source, "provider_scope": mapping.provider_scope, "scope": mapping.scope.code}


def scope_mapping_save(*, actor: Actor | User, source: str, provider_scope: str, scope: Scope) -> ScopeMapping:
    """Map ``provider_scope`` of ``source`` to the catalog ``scope``, or change where it points
    (``discovery.scope_mapping_saved``). Rules: IAM admins only; a known source; the scope as the
    provider names it, on one line; an active catalog scope. Saving what is already saved writes
    nothing. The source's apps and open findings are rescored in the same transaction."""
    from inventory.discovery import findings

    resolved = _mapping_keeper(actor)
    name = _clean_input(source, provider_scope)
    if not isinstance(scope, Scope) or scope.pk is None:
        raise ValidationFailed.on("scope", "Choose a scope from the catalog.")
    with transaction.atomic():
        target = Scope.objects.filter(pk=scope.pk, is_active=True).select_related("system").first()
        if target is None:
            raise ValidationFailed.on("scope", "This scope is retired or gone; choose an active one.")
        mapping = ScopeMapping.objects.select_for_update().filter(source=source, provider_scope=name).first()
        if mapping is not None and mapping.scope_id == target.pk:
            return mapping
        before = _mapping_state(mapping) if mapping is not None else None
        if mapping is None:
            mapping = ScopeMapping(source=source, provider_scope=name)
        mapping.scope = target
        mapping.updated_by = resolved.on_behalf_of if resolved.is_system else resolved.user
        mapping.updated_at = timezone.now()
        try:
            with transaction.atomic():
                mapping.save()
        except IntegrityError as exc:
            raise Conflict("Someone mapped this scope at the same time; reload and try again.") from exc
        audit_record(
            actor=resolved,
            action="discovery.scope_mapping_saved",
            target=mapping,
            before=before,
            after=_mapping_state(mapping),
        )
        findings.rescore(source)
    return mapping


def scope_mapping_delete(*, actor: Actor | User, mapping: ScopeMapping) -> None:
    """Remove a mapping (``discovery.scope_mapping_deleted``): the provider's scope is shown raw
    again, with its estimate. IAM admins only; the source's apps and open findings are rescored
    in the same transaction."""
    from inventory.discovery import findings

    resolved = _mapping_keeper(actor)
    with transaction.atomic():
        current = ScopeMapping.objects.select_for_update().select_related("scope").filter(pk=mapping.pk).first()
        if current is None:
            raise Conflict("This mapping was already removed.")
        before = _mapping_state(current)
        target_id, target_repr = str(current.pk), str(current)
        current.delete()
        audit_record(
            actor=resolved,
            action="discovery.scope_mapping_deleted",
            target_type="discovery.scopemapping",
            target_id=target_id,
            target_repr=target_repr,
            before=before,
        )
        findings.rescore(current.source)
