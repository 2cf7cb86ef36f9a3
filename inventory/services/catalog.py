"""The scope catalog that IAM admins keep: resource systems and the scopes integrations request
from them. A scope's code (``system:name``) is fixed once made, since grants and requests refer
to it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from governance.actors import Actor
from governance.audit import audit_record, snapshot
from governance.exceptions import NotAllowed, ValidationFailed
from governance.models import User
from governance.validators import SINGLE_LINE_MESSAGE, single_line_errors
from inventory import permissions
from inventory.choices import AccessLevel, Environment, Sensitivity
from inventory.models import ResourceSystem, Scope

SYSTEM_FIELDS = ("code", "name", "description", "audience", "token_algorithm", "environment")
SCOPE_FIELDS = ("name", "description", "sensitivity", "access", "is_active", "jit_eligible")
# How the portal may sign access tokens for a system's resource servers.
TOKEN_ALGORITHMS = ("ES256", "RS256")
# What an empty audience stands for (``ResourceSystem.token_audience``).
_DEFAULT_AUDIENCE_PREFIX = "urn:ai-governance:system:"


def _catalog_keeper(actor: Actor | User) -> Actor:
    resolved = Actor.coerce(actor)
    if not permissions.can_manage_catalog(resolved):
        raise NotAllowed("Only IAM admins keep the scope catalog.")
    return resolved


def resource_system_save(
    *,
    actor: Actor | User,
    values: Mapping[str, Any],
    system: ResourceSystem | None = None,
    owners: Iterable[User] | None = None,
) -> ResourceSystem:
    """Create or change a resource system (``resource_system.created`` / ``.changed``). Rules:
    IAM admins only; a unique code and a name; the code is fixed once scopes use it (it is part
    of their codes)."""
    resolved = _catalog_keeper(actor)
    bad_lines = single_line_errors(values, ("code", "name", "audience"))
    if bad_lines:
        raise ValidationFailed(SINGLE_LINE_MESSAGE, errors=bad_lines)
    values = {**values, **({"audience": str(values["audience"] or "").strip()} if "audience" in values else {})}
    _token_settings_check(values, system)
    with transaction.atomic():
        if system is None:
            target, before = _system_new(values), None
        else:
            target = ResourceSystem.objects.select_for_update().get(pk=system.pk)
            before = snapshot(target, SYSTEM_FIELDS)
            if "code" in values and values["code"] != target.code and target.scopes.exists():
                raise ValidationFailed.on("code", "The code is part of its scopes' codes and cannot change.")
        for field in SYSTEM_FIELDS:
            if field in values:
                setattr(target, field, values[field])
        target._history_user = resolved.user
        target.save()
        if owners is not None:
            target.owners.set(list(owners))
        after = {**snapshot(target, SYSTEM_FIELDS), "owners": sorted(u.username for u in target.owners.all())}
        audit_record(
            actor=resolved,
            action="resource_system.created" if before is None else "resource_system.changed",
            target=target,
            before=before,
            after=after,
        )
    return target


def _token_settings_check(values: Mapping[str, Any], system: ResourceSystem | None) -> None:
    """A system's audience names it in tokens: one system per audience (another system's own
    audience, or the default one derived from its code); the algorithm is one the portal signs."""
    if "token_algorithm" in values and values["token_algorithm"] not in TOKEN_ALGORITHMS:
        raise ValidationFailed.on("token_algorithm", f"Choose one of: {', '.join(TOKEN_ALGORITHMS)}.")
    if "environment" in values and values["environment"] not in Environment.values:
        raise ValidationFailed.on("environment", f"Choose one of: {', '.join(Environment.values)}.")
    audience = values.get("audience", system.audience if system else "") or ""
    if len(audience) > 300:
        raise ValidationFailed.on("audience", "At most 300 characters.")
    if audience and audience == settings.RUNTIME_TOKEN_AUDIENCE:
        # Workload tokens name the portal's token endpoint: a system named so would take them.
        raise ValidationFailed.on("audience", "This is the portal's own token endpoint; name the system's API.")
    code = str(values.get("code") or (system.code if system else "")).strip()
    if not audience and not code:
        return
    # An empty audience stands for the default one derived from the code.
    audience = audience or f"{_DEFAULT_AUDIENCE_PREFIX}{code}"
    same = Q(audience=audience)
    if audience.startswith(_DEFAULT_AUDIENCE_PREFIX):
        same |= Q(audience="", code=audience.removeprefix(_DEFAULT_AUDIENCE_PREFIX))
    others = ResourceSystem.objects.filter(same)
    other = (others.exclude(pk=system.pk) if system else others).first()
    if other is not None:
        raise ValidationFailed.on("audience", f"{other.name} already uses this audience.")


def _system_new(values: Mapping[str, Any]) -> ResourceSystem:
    code = str(values.get("code") or "").strip()
    if not code or ResourceSystem.objects.filter(code=code).exists():
        raise ValidationFailed.on("code", "Give a short unique code (letters, digits, dashes).")
    if not str(values.get("name") or "").strip():
        raise ValidationFailed.on("name", "This field is required.")
    return ResourceSystem(code=code)


def scope_save(
    *, actor: Actor | User, values: Mapping[str, Any], system: ResourceSystem | None = None, scope: Scope | None = None
) -> Scope:
    """Create a scope in ``system`` or change one (``scope.created`` / ``scope.changed``). Rules:
    IAM admins only; its code ``system:name`` is derived, unique and fixed (grants and requests
    refer to it), so the name cannot change."""
    resolved = _catalog_keeper(actor)
    _scope_values_check(values, new=scope is None)
    with transaction.atomic():
        if scope is None:
            assert system is not None, "a new scope is made in a resource system"
            name = str(values["name"]).strip()
            if Scope.objects.filter(system=system, name=name).exists():
                raise ValidationFailed.on("name", f"{system.code}:{name} already exists.")
            target = Scope(system=system, name=name, code=f"{system.code}:{name}")
            before = None
        else:
            target = Scope.objects.select_for_update().select_related("system").get(pk=scope.pk)
            before = snapshot(target, SCOPE_FIELDS)
            if "name" in values and values["name"] != target.name:
                raise ValidationFailed.on(
                    "name", "A scope's name is part of its code and cannot change; retire it and add a new one."
                )
        for field in SCOPE_FIELDS:
            if field in values and field != "name":
                setattr(target, field, values[field])
        target._history_user = resolved.user
        target.save()
        audit_record(
            actor=resolved,
            action="scope.created" if before is None else "scope.changed",
            target=target,
            before=before,
            after={"code": target.code, **snapshot(target, SCOPE_FIELDS)},
        )
    return target


def _scope_values_check(values: Mapping[str, Any], *, new: bool) -> None:
    errors: dict[str, list[str]] = {}
    if "sensitivity" in values and values["sensitivity"] not in Sensitivity.values:
        errors.setdefault("sensitivity", []).append(f"Choose one of: {', '.join(Sensitivity.values)}.")
    if "access" in values and values["access"] not in AccessLevel.values:
        errors.setdefault("access", []).append(f"Choose one of: {', '.join(AccessLevel.values)}.")
    if new and not str(values.get("name") or "").strip():
        errors.setdefault("name", []).append("This field is required.")
    for field, messages in single_line_errors(values, ("name",)).items():
        errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
