"""The entity data a decision is made with, read from the inventory at request time.

A decision's entities are a small slice, not the whole inventory: the integration asking (with
its owners and the scopes it holds by a usable grant), the scope asked for (in its resource
system), the person acted for if any, and those people's groups. Reading the slice fresh for
every request is what makes a suspension, a revoked grant or a deactivated owner count at the
very next request in every process; only the parsing of a slice already seen is cached
(``runtime.policy.pdp``), keyed by the slice's own content.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from governance.models import User
from inventory.choices import IdentityStatus
from inventory.models import Integration, Scope
from runtime.grantfacts import usable_scope_codes

Entity = dict[str, Any]


def uid(kind: str, key: object) -> dict[str, str]:
    return {"type": kind, "id": str(key)}


def uid_text(kind: str, key: object) -> str:
    """How a decision names an entity in the log: ``Integration::"42"``."""
    return f'{kind}::"{key}"'


def _attach_groups(users: Iterable[User]) -> None:
    """Set ``policy_groups`` on each user: every user's groups in one query."""
    by_id: dict[int, list[User]] = {}
    for user in users:
        by_id.setdefault(user.pk, []).append(user)
        user.policy_groups = []  # type: ignore[attr-defined]  # read by person_entities
    if not by_id:
        return
    memberships = User.groups.through.objects.filter(user_id__in=by_id).select_related("group").order_by()
    for membership in memberships:
        for user in by_id[membership.user_id]:
            user.policy_groups.append(membership.group)  # type: ignore[attr-defined]


def load_integrations(
    ids: Iterable[int], now: datetime, *, usable: Mapping[int, set[str]] | None = None
) -> dict[int, Integration]:
    """The integrations with what their entities need, in three queries: the rows with their
    owners and workload binding, the owners' groups, and ``policy_scope_codes`` (the scopes held
    by a usable grant) unless the caller already knows them (``usable``)."""
    wanted = set(ids)
    found = {
        integration.pk: integration
        for integration in Integration.objects.filter(pk__in=wanted)
        .select_related("business_owner", "technical_owner", "backup_owner", "workload_binding")
        .order_by()
    }
    prepare(found.values(), usable if usable is not None else usable_scope_codes(found, now))
    return found


def prepare(integrations: Iterable[Integration], usable: Mapping[int, set[str]], people: Iterable[User] = ()) -> None:
    """Make integrations already loaded with their owners (and workload binding) ready for
    ``integration_entities``, and ``people`` (a person acted for) for ``person_entities``: their
    groups (one query for all of them) and the integrations' usable scopes."""
    ready = list(integrations)
    owners = [
        owner
        for integration in ready
        for owner in (integration.business_owner, integration.technical_owner, integration.backup_owner)
        if owner is not None
    ]
    _attach_groups([*owners, *people])
    for integration in ready:
        integration.policy_scope_codes = set(usable.get(integration.pk, set()))  # type: ignore[attr-defined]  # read by integration_entities


def load_people(ids: Iterable[int]) -> dict[int, User]:
    """People (for ``delegated_user``) with their groups, in two queries."""
    people = {user.pk: user for user in User.objects.filter(pk__in=set(ids)).order_by()}
    _attach_groups(people.values())
    return people


def load_scopes(codes: Iterable[str]) -> dict[str, Scope]:
    return {
        scope.code: scope for scope in Scope.objects.filter(code__in=set(codes)).select_related("system").order_by()
    }


def _groups_of(user: User) -> list[Any]:
    groups = getattr(user, "policy_groups", None)
    return list(groups) if groups is not None else list(user.groups.all())


def person_entities(user: User) -> list[Entity]:
    """A person and the groups they are in (the portal's roles are groups)."""
    groups = sorted(_groups_of(user), key=lambda group: group.name)
    person = {
        "uid": uid("Person", user.pk),
        "attrs": {
            "username": user.username,
            "roles": [group.name for group in groups],
            "active": bool(user.is_active),
        },
        "parents": [uid("Group", group.name) for group in groups],
    }
    return [
        person,
        *({"uid": uid("Group", group.name), "attrs": {"name": group.name}, "parents": []} for group in groups),
    ]


def _identity(integration: Integration) -> tuple[str, bool]:
    binding = getattr(integration, "workload_binding", None)
    if binding is not None:
        return (IdentityStatus.PROVEN, True) if binding.is_proven else (IdentityStatus.BOUND, False)
    return (IdentityStatus.DECLARED if integration.workload_identity else IdentityStatus.NONE), False


def integration_entities(integration: Integration) -> list[Entity]:
    """The integration and its owners (loaded with ``load_integrations``)."""
    owners = [
        owner
        for owner in (integration.business_owner, integration.technical_owner, integration.backup_owner)
        if owner is not None
    ]
    identity, verified = _identity(integration)
    codes: set[str] = getattr(integration, "policy_scope_codes", set())
    entity = {
        "uid": uid("Integration", integration.pk),
        "attrs": {
            "name": integration.name,
            "kind": integration.kind,
            "status": integration.status,
            "risk_tier": integration.risk_tier,
            "autonomy": integration.autonomy,
            "environment": integration.environment,
            "data_classifications": sorted(str(value) for value in integration.data_classifications or []),
            "acts_for_users": bool(integration.acts_for_users),
            "vendor": integration.vendor,
            "workload_identity": str(identity),
            "workload_identity_verified": verified,
            "orphaned": bool(integration.orphaned),
            "business_owner": {"__entity": uid("Person", integration.business_owner_id)},
            "owners": [{"__entity": uid("Person", owner.pk)} for owner in sorted(set(owners), key=lambda o: o.pk)],
            "grants": [{"__entity": uid("Scope", code)} for code in sorted(codes)],
        },
        "parents": [],
    }
    people = [entity for owner in sorted(set(owners), key=lambda o: o.pk) for entity in person_entities(owner)]
    return [entity, *people]


def scope_entities(scope: Scope) -> list[Entity]:
    """The scope and its resource system (loaded with ``select_related("system")``)."""
    system = scope.system
    return [
        {
            "uid": uid("Scope", scope.code),
            "attrs": {
                "code": scope.code,
                "sensitivity": scope.sensitivity,
                "access": scope.access,
                "environment": system.environment,
                "jit_eligible": bool(scope.jit_eligible),
                "active": bool(scope.is_active),
            },
            "parents": [uid("ResourceSystem", system.code)],
        },
        {
            "uid": uid("ResourceSystem", system.code),
            "attrs": {"code": system.code, "name": system.name, "environment": system.environment},
            "parents": [],
        },
    ]


def merged(*parts: Iterable[Entity]) -> list[Entity]:
    """One entity list from several slices, each entity once (the first copy wins: every copy of
    an entity in one request is read from the same rows)."""
    seen: dict[tuple[str, str], Entity] = {}
    for part in parts:
        for entity in part:
            key = (entity["uid"]["type"], entity["uid"]["id"])
            seen.setdefault(key, entity)
    return [seen[key] for key in sorted(seen)]
