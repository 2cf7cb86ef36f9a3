"""The recommendation shown next to each review item: one readable function of what the page
already loaded (no query of its own) — the integration, the scopes of the item's grants, their
run-time usage and the credential's last rotation. ``advise_items`` loads that for a list of
items in a fixed number of queries; the review page shows its advice and accepting the
recommendations decides with the same advice."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from approvals.campaigns import selectors
from approvals.campaigns.models import ItemDecision, ReviewItem
from inventory.choices import AccessLevel, Autonomy, IntegrationStatus, Sensitivity
from inventory.selectors import USAGE_WINDOW_DAYS, usage_cutoff

STALE_CREDENTIAL = timedelta(days=365)


@dataclass(frozen=True)
class Recommendation:
    decision: str  # an ItemDecision
    reason: str


@dataclass(frozen=True)
class Usage:
    """What the item's grants show of their use in the usage window: ``used`` is True (used),
    False (not used, and old enough that it could have been) or None (too new to tell)."""

    used: bool | None
    sentence: str = ""
    note: str = ""


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _grant_used(grant: Any, cutoff: datetime) -> bool:
    uses = getattr(grant, "uses_last_30_days", 0) or 0
    return uses > 0 or (grant.last_used_at is not None and grant.last_used_at >= cutoff)


def _unused_sentence(grants: Sequence[Any]) -> str:
    """Why the grants count as unused: when each was last used, or since when it never was."""
    window = f"the last {USAGE_WINDOW_DAYS} days"
    if len(grants) == 1:
        grant = grants[0]
        if grant.last_used_at is None:
            return f"Never used since granted on {grant.granted_at:%Y-%m-%d}."
        return f"Not used in {window} (last used {grant.last_used_at:%Y-%m-%d})."
    last = max((grant.last_used_at for grant in grants if grant.last_used_at is not None), default=None)
    since = f"last used {last:%Y-%m-%d}" if last else "never used since granted"
    return f"None of its {len(grants)} grants was used in {window} ({since})."


def usage_of(grants: Sequence[Any], *, now: datetime) -> Usage:
    """The usage finding of an item's grants (read through ``inventory.selectors.with_usage``):
    used when any was used in the window ("Used 412 times in the last 30 days (last used …)",
    naming the grants that were not); unused when none was and each is older than the window
    (a grant of last week had no chance to be used yet)."""
    if not grants:
        return Usage(used=None)
    cutoff = usage_cutoff(now)
    used = [grant for grant in grants if _grant_used(grant, cutoff)]
    if used:
        total = sum(getattr(grant, "uses_last_30_days", 0) or 0 for grant in used)
        last = max((grant.last_used_at for grant in used if grant.last_used_at is not None), default=None)
        when = f" (last used {last:%Y-%m-%d})" if last else ""
        idle = sorted(grant.scope.code for grant in grants if grant not in used and grant.granted_at < cutoff)
        note = f"Not used in the last {USAGE_WINDOW_DAYS} days: {', '.join(idle)}." if idle else ""
        return Usage(used=True, sentence=f"Used {_times(total)} in the last {USAGE_WINDOW_DAYS} days{when}.", note=note)
    if all(grant.granted_at < cutoff for grant in grants):
        return Usage(used=False, sentence=_unused_sentence(grants))
    return Usage(used=None)


def _rule_reasons(integration: Any, scopes: list[Any]) -> list[str]:
    """Reasons to revoke that hold whatever the usage: nobody answers for the access, the
    integration holds none any more, or it is too dangerous to run unattended."""
    owner = integration.business_owner
    if integration.orphaned or not owner.is_active:
        return ["The owner left: the integration is orphaned and nobody answers for this access."]
    if integration.status in (IntegrationStatus.SUSPENDED, IntegrationStatus.RETIRED):
        return [f"The integration is {integration.get_status_display().lower()}."]
    restricted = "restricted" in (integration.data_classifications or [])
    for scope in scopes:
        if (
            scope.access == AccessLevel.ADMIN
            and (restricted or scope.sensitivity == Sensitivity.CRITICAL)
            and integration.autonomy == Autonomy.AUTONOMOUS
        ):
            return [f"{scope.code} is admin-level on restricted data and the integration acts autonomously."]
    return []


def recommend(
    *,
    integration: Any,
    scopes: Iterable[Any],
    last_rotated: datetime | None,
    now: datetime,
    grants: Sequence[Any] = (),
) -> Recommendation:
    """Revoke when a rule or the usage finds a reason (every reason found is given, the usage's
    numbers included: a reviewer revoking something in daily use should know it); certify
    otherwise, saying how much it is used. A sensitive scope whose credential was not rotated in
    a year counts against it only when the usage does not show it in use; when it is, that is a
    note to rotate it."""
    scopes = list(scopes)
    usage = usage_of(grants, now=now)
    reasons = _rule_reasons(integration, scopes)
    sensitive = any(scope.sensitivity in (Sensitivity.HIGH, Sensitivity.CRITICAL) for scope in scopes)
    stale = sensitive and (last_rotated is None or now - last_rotated > STALE_CREDENTIAL)
    notes = [usage.note] if usage.note else []
    if usage.used is False:
        reasons.append(usage.sentence)
    if stale and usage.used is not True:
        reasons.append(
            "Sensitive access with a credential not rotated in over a year (or never): likely unused or neglected."
        )
    elif stale:
        notes.append("Its credential was not rotated in over a year (or never): rotate it.")
    if reasons:
        used = [usage.sentence] if usage.used else []
        return Recommendation(ItemDecision.REVOKE, " ".join([*reasons, *used, *notes]))
    if usage.used:
        return Recommendation(ItemDecision.CERTIFY, " ".join([usage.sentence, *notes]))
    return Recommendation(ItemDecision.CERTIFY, "The owner is active and nothing flags this access.")


@dataclass(frozen=True)
class ItemAdvice:
    """A review item with the grants it covers (usage loaded) and its recommendation."""

    item: ReviewItem
    grants: list[Any]
    rec: Recommendation


def advise_items(items: Sequence[ReviewItem], *, now: datetime) -> list[ItemAdvice]:
    """Each item's grants and recommendation, in ``items``' order, in two queries whatever their
    number (the items come with their integration and its business owner loaded)."""
    rotated = selectors.last_rotations({item.integration_id for item in items})
    shown = selectors.grants_shown({grant_id for item in items for grant_id in item.covered_grant_ids()})
    advice = []
    for item in items:
        covered = [shown[grant_id] for grant_id in item.covered_grant_ids() if grant_id in shown]
        rec = recommend(
            integration=item.integration,
            scopes=[grant.scope for grant in covered],
            last_rotated=rotated.get(item.integration_id),
            now=now,
            grants=covered,
        )
        advice.append(ItemAdvice(item=item, grants=covered, rec=rec))
    return advice
