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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Prefetch

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


def _people() -> Prefetch[Any]:
    return Prefetch("groups", to_attr="policy_groups")


def load_integrations(ids: Iterable[int], now: datetime) -> dict[int, Integration]:
    """The integrations with what their entities need, in a fixed number of queries: owners and
    their groups, the workload binding, and ``policy_scope_codes`` (the usable grants' scopes)."""
    wanted = set(ids)
    found = {
        integration.pk: integration
        for integration in Integration.objects.filter(pk__in=wanted)
        .select_related("business_owner", "technical_owner", "backup_owner", "workload_binding")
        .prefetch_related(
            Prefetch("business_owner__groups", to_attr="policy_groups"),
            Prefetch("technical_owner__groups", to_attr="policy_groups"),
            Prefetch("backup_owner__groups", to_attr="policy_groups"),
        )
        .order_by()
    }
    usable = usable_scope_codes(found, now)
    for pk, integration in found.items():
        integration.policy_scope_codes = usable.get(pk, set())  # type: ignore[attr-defined]  # read by integration_entities
    return found


def load_people(ids: Iterable[int]) -> dict[int, User]:
    return {user.pk: user for user in User.objects.filter(pk__in=set(ids)).prefetch_related(_people()).order_by()}


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


@dataclass(frozen=True)
class Slice:
    """The entities of one request, ready to hash and parse."""

    entities: list[Entity]

    def by_uid(self) -> Mapping[tuple[str, str], Entity]:
        return {(entity["uid"]["type"], entity["uid"]["id"]): entity for entity in self.entities}
