"""The emails a campaign sends its reviewers: who has items to review, and one email per person
per occasion (assignment, each reminder point, escalation), never sent twice (unique keys)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.urls import reverse

from approvals.campaigns.models import Campaign, ItemStatus, ReviewItem
from governance.models import OutboundEmail, User
from governance.services import EmailSpec, email_enqueue_many
from inventory.models import Integration

# An email lists at most this many integrations, then says how many more there are.
EMAIL_LIST_LIMIT = 25


@dataclass
class ReviewLoad:
    """What one reviewer (or group) has to review: the first ``EMAIL_LIST_LIMIT`` lines
    (integration name, number of items) in name order, how many lines there are in all and how
    many items. Only the lines an email shows are kept: the size does not grow with the campaign."""

    lines: list[tuple[str, int]] = field(default_factory=list)
    line_count: int = 0
    total: int = 0

    def extend(self, other: ReviewLoad) -> None:
        """``other``'s lines after these, as if both lists were whole."""
        self.lines = (self.lines + other.lines)[:EMAIL_LIST_LIMIT]
        self.line_count += other.line_count
        self.total += other.total


Assignee = tuple[int | None, int | None]
Recipients = Mapping[int, ReviewLoad]


def _loads_sql(undecided_only: bool) -> str:
    """Per assignment (reviewer, group): its lines, ranked by name, each with the assignment's
    line count and item total; only the ranks an email shows. Items are counted per integration
    first, so the names are joined to one row per integration, not per item."""
    quote = connection.ops.quote_name
    status = " AND status = %s" if undecided_only else ""
    return (
        "SELECT reviewer_id, reviewer_group_id, name, n, line_count, total FROM ("
        " SELECT per_name.*, ROW_NUMBER() OVER (PARTITION BY reviewer_id, reviewer_group_id ORDER BY name) AS position,"
        " COUNT(*) OVER assignment AS line_count, SUM(n) OVER assignment AS total FROM ("
        " SELECT counted.reviewer_id, counted.reviewer_group_id, integration.name, SUM(counted.n) AS n FROM ("
        " SELECT reviewer_id, reviewer_group_id, integration_id, COUNT(*) AS n"
        f" FROM {quote(ReviewItem._meta.db_table)} WHERE campaign_id = %s{status}"
        " GROUP BY reviewer_id, reviewer_group_id, integration_id) counted"
        f" JOIN {quote(Integration._meta.db_table)} integration ON integration.id = counted.integration_id"
        " GROUP BY counted.reviewer_id, counted.reviewer_group_id, integration.name) per_name"
        " WINDOW assignment AS (PARTITION BY reviewer_id, reviewer_group_id)"
        f") ranked WHERE position <= {EMAIL_LIST_LIMIT} ORDER BY reviewer_id, reviewer_group_id, position"
    )


def review_loads(campaign: Campaign, *, undecided_only: bool) -> dict[Assignee, ReviewLoad]:
    """(reviewer id, reviewer group id) -> that assignment's ``ReviewLoad`` in ``campaign``, for
    every assignment holding items (undecided ones only if asked), in reviewer and group order.
    The database counts and ranks: at most ``EMAIL_LIST_LIMIT`` rows per assignment come back."""
    params: list[Any] = [campaign.pk, ItemStatus.OPEN] if undecided_only else [campaign.pk]
    loads: dict[Assignee, ReviewLoad] = {}
    with connection.cursor() as cursor:
        cursor.execute(_loads_sql(undecided_only), params)
        for reviewer_id, group_id, name, count, line_count, total in cursor.fetchall():
            load = loads.setdefault((reviewer_id, group_id), ReviewLoad(line_count=line_count, total=int(total)))
            load.lines.append((name, int(count)))
    return loads


def recipients_for(loads: Mapping[Assignee, ReviewLoad]) -> dict[int, ReviewLoad]:
    """user id -> what they must review: their own assignments, then those of each group they
    are an active member of (group assignments expanded to the group's active members)."""
    by_user: dict[int, ReviewLoad] = defaultdict(ReviewLoad)
    by_group: dict[int, ReviewLoad] = defaultdict(ReviewLoad)
    for (reviewer_id, group_id), load in loads.items():
        if reviewer_id:
            by_user[reviewer_id].extend(load)
        elif group_id:
            by_group[group_id].extend(load)
    if by_group:
        members = User.objects.filter(groups__in=list(by_group), is_active=True).values_list("pk", "groups")
        for user_id, member_group_id in members:
            if member_group_id in by_group:
                by_user[user_id].extend(by_group[member_group_id])
    return dict(by_user)


def recipients_with_items(campaign: Campaign, *, undecided_only: bool) -> dict[int, ReviewLoad]:
    """user id -> what they must review in ``campaign`` (see ``recipients_for``)."""
    return recipients_for(review_loads(campaign, undecided_only=undecided_only))


def campaign_links(campaign: Campaign) -> dict[str, str]:
    return {
        "review_path": reverse("campaigns:review") + f"?campaign={campaign.pk}",
        "campaign_path": reverse("campaigns:campaign-detail", args=[campaign.pk]),
    }


def email_reviewers(
    campaign: Campaign,
    recipients: Recipients,
    *,
    key_part: str,
    subject: str,
    template: str,
    extra: Mapping[str, Any] | None = None,
) -> int:
    """One email per recipient; returns how many were newly queued (unique keys: never twice)."""
    if not recipients:
        return 0
    keys = {user_id: f"campaign-{campaign.pk}-{key_part}-{user_id}" for user_id in recipients}
    already = set(OutboundEmail.objects.filter(key__in=list(keys.values())).values_list("key", flat=True))
    users = User.objects.in_bulk([user_id for user_id, key in keys.items() if key not in already])
    links = campaign_links(campaign)

    def specs() -> Iterator[EmailSpec]:
        for user_id, user in users.items():
            load = recipients[user_id]
            context = {
                "campaign": campaign,
                "lines": load.lines,
                "more": max(load.line_count - EMAIL_LIST_LIMIT, 0),
                "total": load.total,
                **links,
                **(extra or {}),
            }
            yield EmailSpec(
                key=keys[user_id],
                recipient=user,
                subject=subject.format(total=load.total, name=campaign.name),
                template=template,
                context=context,
            )

    return len(email_enqueue_many(specs()))
