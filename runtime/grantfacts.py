"""Which grants an integration can use right now: active, unexpired, and not under an undecided
review item of a running campaign whose deadline has passed. The token exchange and the policy
decision point read the same facts from here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from approvals.campaigns.models import UNDECIDED, Campaign, CampaignStatus, ReviewItem
from inventory.choices import GrantStatus
from inventory.models import Grant
from runtime.hotcache import TtlCache

CAMPAIGN_CACHE_SECONDS = 30
DEADLINE_COPIES: TtlCache[datetime | None] = TtlCache(CAMPAIGN_CACHE_SECONDS)


def _earliest_running_deadline() -> datetime | None:
    return (
        Campaign.objects.filter(status=CampaignStatus.ACTIVE, deadline__isnull=False)
        .order_by("deadline")
        .values_list("deadline", flat=True)
        .first()
    )


def overdue_grant_ids(integration_ids: Iterable[int], grant_ids: Iterable[int], now: datetime) -> set[int]:
    """Grants under an undecided review item of a running campaign whose deadline has passed.
    While no running campaign is past its deadline (the usual case: the sweep applies the default
    action soon after one passes) there is nothing to look up. The earliest deadline is read from
    a copy at most ``CAMPAIGN_CACHE_SECONDS`` old; a deadline is always compared with the time of
    the request, and a campaign that starts running in the meantime has its deadline ahead."""
    wanted = set(grant_ids)
    if not wanted:
        return set()
    earliest = DEADLINE_COPIES.get("earliest", _earliest_running_deadline)
    if earliest is None or earliest >= now:
        return set()
    items = (
        ReviewItem.objects.filter(
            integration_id__in=set(integration_ids),
            status__in=UNDECIDED,
            campaign__status=CampaignStatus.ACTIVE,
            campaign__deadline__lt=now,
        )
        .values_list("grant_id", "grant_ids")
        .order_by()
    )
    covered = {grant_id for grant_id, _ids in items if grant_id} | {pk for _id, ids in items for pk in ids or []}
    return covered & wanted


def usable_scope_codes(integration_ids: Iterable[int], now: datetime) -> dict[int, set[str]]:
    """Per integration, the codes of the scopes it holds by a usable grant (two queries at most)."""
    ids = set(integration_ids)
    live = list(
        Grant.objects.filter(integration_id__in=ids, status=GrantStatus.ACTIVE)
        .exclude(expires_at__lte=now)
        .values_list("pk", "integration_id", "scope__code")
        .order_by()
    )
    overdue = overdue_grant_ids(ids, [pk for pk, _integration, _code in live], now)
    usable: dict[int, set[str]] = {pk: set() for pk in ids}
    for pk, integration_id, code in live:
        if pk not in overdue:
            usable[integration_id].add(code)
    return usable
