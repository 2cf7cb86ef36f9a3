"""The recommendation shown next to each review item: one readable function of what the page
already loaded (no query of its own)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from approvals.campaigns.models import ItemDecision
from inventory.choices import AccessLevel, Autonomy, IntegrationStatus, Sensitivity

STALE_CREDENTIAL = timedelta(days=365)


@dataclass(frozen=True)
class Recommendation:
    decision: str  # an ItemDecision
    reason: str


def recommend(
    *, integration: Any, scopes: Iterable[Any], last_rotated: datetime | None, now: datetime
) -> Recommendation:
    """Revoke when the rules below find a reason, in this order; certify otherwise."""
    scopes = list(scopes)
    owner = integration.business_owner
    if integration.orphaned or not owner.is_active:
        return Recommendation(
            ItemDecision.REVOKE, "The owner left: the integration is orphaned and nobody answers for this access."
        )
    if integration.status in (IntegrationStatus.SUSPENDED, IntegrationStatus.RETIRED):
        return Recommendation(ItemDecision.REVOKE, f"The integration is {integration.get_status_display().lower()}.")
    restricted = "restricted" in (integration.data_classifications or [])
    for scope in scopes:
        if (
            scope.access == AccessLevel.ADMIN
            and (restricted or scope.sensitivity == Sensitivity.CRITICAL)
            and integration.autonomy == Autonomy.AUTONOMOUS
        ):
            return Recommendation(
                ItemDecision.REVOKE,
                f"{scope.code} is admin-level on restricted data and the integration acts autonomously.",
            )
    sensitive = any(s.sensitivity in (Sensitivity.HIGH, Sensitivity.CRITICAL) for s in scopes)
    if sensitive and (last_rotated is None or now - last_rotated > STALE_CREDENTIAL):
        return Recommendation(
            ItemDecision.REVOKE,
            "Sensitive access with a credential not rotated in over a year (or never): likely unused or neglected.",
        )
    return Recommendation(ItemDecision.CERTIFY, "The owner is active and nothing flags this access.")
