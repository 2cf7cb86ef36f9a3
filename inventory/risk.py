"""The explainable risk score of an integration: one rule set a reviewer can read top to bottom.

Each rule that applies adds a *factor*: ``{"code", "points", "reason"}``, where ``reason`` is a
sentence a person can check against the integration's record. The score is the sum of the
points; the tier follows from the score:

| tier     | score      | meaning                                                           |
|----------|------------|-------------------------------------------------------------------|
| low      | 0 – 19     | reads low-sensitivity data, a human decides, strong identity        |
| medium   | 20 – 39    | one serious factor, or a few small ones                            |
| high     | 40 – 59    | several serious factors together                                   |
| critical | 60 and up  | broad, autonomous, sensitive access with weak credentials         |

The rules (points):
- ``delegated_user_context`` (15): it acts with the signed-in user's own rights.
- ``autonomous`` (20): it acts without a person approving each action.
- ``admin_scopes`` (25) or else ``write_scopes`` (15): it asks for or holds scopes that change things.
- ``restricted_data`` (25) or else ``confidential_data`` (15): the data it touches, from its
  declared classifications and the sensitivity of its scopes (critical ≈ restricted, high ≈ confidential).
- ``third_party_vendor`` (10): a vendor outside the organisation runs it.
- ``shared_secrets_only`` (10): no workload identity, so it proves who it is with shared secrets.
- ``credential_never_expires`` (10) and ``credential_not_rotated`` (10, more than 90 days).
- ``chain_reaches_sensitive_data`` (20): an integration it invokes — directly or further down the
  chain — asks for or holds a high or critical scope, or handles confidential/restricted data.
  The walk follows ``invokes`` level by level with a visited set, so cycles terminate.

Everything here is a read: ``assess`` returns the result and the services store it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypedDict

from django.db.models import Q
from django.utils import timezone

from inventory.choices import (
    AccessLevel,
    Autonomy,
    CredentialType,
    DataClassification,
    GrantStatus,
    RiskTier,
    Sensitivity,
)
from inventory.models import Credential, Integration, Scope

# Lower bound of each tier, highest first.
TIER_THRESHOLDS: list[tuple[int, str]] = [
    (60, RiskTier.CRITICAL),
    (40, RiskTier.HIGH),
    (20, RiskTier.MEDIUM),
    (0, RiskTier.LOW),
]
ROTATION_MAX_AGE = timedelta(days=90)
SENSITIVE_SCOPES = (Sensitivity.HIGH, Sensitivity.CRITICAL)
SENSITIVE_DATA = (DataClassification.CONFIDENTIAL, DataClassification.RESTRICTED)
# Credentials that are a copyable shared secret, as opposed to a certificate or a workload token.
SHARED_SECRET_TYPES = (
    CredentialType.API_KEY,
    CredentialType.OAUTH_CLIENT,
    CredentialType.SERVICE_ACCOUNT,
    CredentialType.OAUTH_GRANT,
)


@dataclass(frozen=True)
class CredentialFacts:
    type: str
    identifier: str
    created_at: datetime | None
    expires_at: datetime | None
    last_rotated_at: datetime | None


@dataclass
class RiskInput:
    """What the rules look at (``input_from`` builds it from a saved integration)."""

    name: str
    acts_for_users: bool
    autonomy: str
    vendor: str
    workload_identity: str
    data_classifications: list[str]
    scopes: list[Scope]
    credentials: list[CredentialFacts]
    invokes_ids: list[int]
    pk: int | None = None


@dataclass
class ChainReach:
    """What the integrations downstream of one integration reach (the walk's result)."""

    integrations: list[Integration] = field(default_factory=list)
    sensitive_scopes: list[Scope] = field(default_factory=list)
    sensitive_data: list[str] = field(default_factory=list)


class RiskFactor(TypedDict):
    """One rule that applies: a sentence a person can check against the integration's record."""

    code: str
    points: int
    reason: str


@dataclass(frozen=True)
class Assessment:
    score: int
    tier: str
    factors: list[RiskFactor]


def tier_for(score: int) -> str:
    for floor, tier in TIER_THRESHOLDS:
        if score >= floor:
            return tier
    return RiskTier.LOW


def _factor(code: str, points: int, reason: str) -> RiskFactor:
    return {"code": code, "points": points, "reason": reason}


def downstream_ids(start_ids: Iterable[int], *, exclude: int | None = None) -> list[int]:
    """Every integration reachable through ``invokes`` from ``start_ids`` (those included), one
    query per level of the chain; the visited set makes cycles terminate."""
    edges = Integration.invokes.through.objects
    visited: set[int] = set()
    frontier = {i for i in start_ids if i != exclude}
    order: list[int] = []
    while frontier:
        visited |= frontier
        order.extend(sorted(frontier))
        nxt = set(edges.filter(from_integration_id__in=frontier).values_list("to_integration_id", flat=True))
        frontier = nxt - visited - ({exclude} if exclude is not None else set())
    return order


def upstream_ids(start_id: int) -> list[int]:
    """Every integration that reaches ``start_id`` through ``invokes`` (what calls it, and what
    calls those), itself excluded; cycles terminate."""
    edges = Integration.invokes.through.objects
    visited: set[int] = {start_id}
    frontier = {start_id}
    order: list[int] = []
    while frontier:
        nxt = set(edges.filter(to_integration_id__in=frontier).values_list("from_integration_id", flat=True)) - visited
        visited |= nxt
        order.extend(sorted(nxt))
        frontier = nxt
    return order


def chain_reach(start_ids: Iterable[int], *, exclude: int | None = None) -> ChainReach:
    """The whole downstream chain and the sensitive scopes (requested *or* granted) and data
    classifications it reaches."""
    ids = downstream_ids(start_ids, exclude=exclude)
    if not ids:
        return ChainReach()
    integrations = list(Integration.objects.filter(pk__in=ids).only("id", "name", "data_classifications", "status"))
    scopes = list(
        Scope.objects.filter(sensitivity__in=SENSITIVE_SCOPES)
        .filter(Q(requested_by__in=ids) | Q(grants__integration__in=ids, grants__status=GrantStatus.ACTIVE))
        .select_related("system")
        .distinct()
        .order_by("code")
    )
    data = sorted({c for i in integrations for c in (i.data_classifications or []) if c in SENSITIVE_DATA})
    return ChainReach(integrations=integrations, sensitive_scopes=scopes, sensitive_data=data)


def input_from(integration: Integration) -> RiskInput:
    """The rule input of a saved integration (its requested scopes, credentials and invokes)."""
    return RiskInput(
        pk=integration.pk,
        name=integration.name,
        acts_for_users=integration.acts_for_users,
        autonomy=integration.autonomy,
        vendor=integration.vendor,
        workload_identity=integration.workload_identity,
        data_classifications=list(integration.data_classifications or []),
        scopes=list(integration.requested_scopes.all()),
        credentials=[
            CredentialFacts(c.type, c.identifier, c.created_at, c.expires_at, c.last_rotated_at)
            for c in integration.credentials.all()
        ],
        invokes_ids=list(integration.invokes.values_list("pk", flat=True)),
    )


def assess(data: RiskInput, *, now: datetime | None = None) -> Assessment:
    """Apply every rule to ``data``; return the score, tier and the factors that applied."""
    now = now or timezone.now()
    factors = [factor for rule in RULES if (factor := rule(data, now)) is not None]
    score = sum(factor["points"] for factor in factors)
    return Assessment(score=score, tier=tier_for(score), factors=factors)


def _delegated_user_context(data: RiskInput, now: datetime) -> RiskFactor | None:
    if not data.acts_for_users:
        return None
    return _factor(
        "delegated_user_context", 15, "It acts with delegated user context: it can do whatever the signed-in user can."
    )


def _autonomous(data: RiskInput, now: datetime) -> RiskFactor | None:
    if data.autonomy != Autonomy.AUTONOMOUS:
        return None
    return _factor("autonomous", 20, "It acts autonomously: no person approves each action before it happens.")


def _scope_access(data: RiskInput, now: datetime) -> RiskFactor | None:
    admin = sorted(s.code for s in data.scopes if s.access == AccessLevel.ADMIN)
    if admin:
        return _factor("admin_scopes", 25, f"It asks for administrative scopes: {', '.join(admin)}.")
    write = sorted(s.code for s in data.scopes if s.access == AccessLevel.WRITE)
    if write:
        return _factor("write_scopes", 15, f"It asks for scopes that change data: {', '.join(write)}.")
    return None


def _data_sensitivity(data: RiskInput, now: datetime) -> RiskFactor | None:
    """Restricted data (declared, or behind a critical scope), else confidential data (declared,
    or behind a high-sensitivity scope)."""
    classes = set(data.data_classifications)
    for code, points, level, scope_level, scope_words in (
        ("restricted_data", 25, DataClassification.RESTRICTED, Sensitivity.CRITICAL, "critical scopes"),
        ("confidential_data", 15, DataClassification.CONFIDENTIAL, Sensitivity.HIGH, "high-sensitivity scopes"),
    ):
        scopes = sorted(s.code for s in data.scopes if s.sensitivity == scope_level)
        if level in classes or scopes:
            why = f"{level.value} data" if level in classes else f"{scope_words} ({', '.join(scopes)})"
            return _factor(code, points, f"It touches {level.value} data: {why}.")
    return None


def _third_party_vendor(data: RiskInput, now: datetime) -> RiskFactor | None:
    vendor = data.vendor.strip()
    if not vendor:
        return None
    return _factor(
        "third_party_vendor", 10, f"A third-party vendor ({vendor}) runs it, outside the organisation's control."
    )


def _shared_secrets_only(data: RiskInput, now: datetime) -> RiskFactor | None:
    if data.workload_identity.strip():
        return None
    shared = [c for c in data.credentials if c.type in SHARED_SECRET_TYPES]
    if not shared and data.credentials:
        return None
    return _factor(
        "shared_secrets_only",
        10,
        "It has no workload identity: it proves who it is only with shared secrets that can be copied.",
    )


def _credential_never_expires(data: RiskInput, now: datetime) -> RiskFactor | None:
    never = [c.identifier for c in data.credentials if c.expires_at is None]
    if not never:
        return None
    return _factor("credential_never_expires", 10, f"Credentials that never expire: {', '.join(never)}.")


def _credential_not_rotated(data: RiskInput, now: datetime) -> RiskFactor | None:
    stale = [
        c.identifier
        for c in data.credentials
        if (since := c.last_rotated_at or c.created_at) is not None and now - since > ROTATION_MAX_AGE
    ]
    if not stale:
        return None
    return _factor(
        "credential_not_rotated", 10, f"Credentials not rotated in {ROTATION_MAX_AGE.days} days: {', '.join(stale)}."
    )


def _chain_reaches_sensitive_data(data: RiskInput, now: datetime) -> RiskFactor | None:
    if not data.invokes_ids:
        return None
    reach = chain_reach(data.invokes_ids, exclude=data.pk)
    if not (reach.sensitive_scopes or reach.sensitive_data):
        return None
    what = [s.code for s in reach.sensitive_scopes[:5]] + [f"{c} data" for c in reach.sensitive_data]
    names = ", ".join(i.name for i in reach.integrations[:5])
    return _factor(
        "chain_reaches_sensitive_data",
        20,
        f"It invokes integrations ({names}) whose chain reaches sensitive data: {', '.join(what)}.",
    )


# Every rule, in the order its factor is listed.
RULES: tuple[Callable[[RiskInput, datetime], RiskFactor | None], ...] = (
    _delegated_user_context,
    _autonomous,
    _scope_access,
    _data_sensitivity,
    _third_party_vendor,
    _shared_secrets_only,
    _credential_never_expires,
    _credential_not_rotated,
    _chain_reaches_sensitive_data,
)


def rotation_status(cred: Credential) -> str:
    """``expired``, ``never_expires``, ``rotation_due`` or ``ok`` — shown next to each credential."""
    now = timezone.now()
    if cred.expires_at and cred.expires_at <= now:
        return "expired"
    last = cred.last_rotated_at or cred.created_at
    if last and now - last > ROTATION_MAX_AGE:
        return "rotation_due"
    if cred.expires_at is None:
        return "never_expires"
    return "ok"
