"""The emails a campaign sends its reviewers: who has items to review, and one email per person
per occasion (assignment, each reminder point, escalation), never sent twice (unique keys)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from django.db.models import Count
from django.urls import reverse

from approvals.campaigns.models import Campaign, ItemStatus, ReviewItem
from governance.models import OutboundEmail, User
from governance.services.outbox import EmailSpec, email_enqueue_many

# An email lists at most this many integrations, then says how many more there are.
EMAIL_LIST_LIMIT = 25

Recipients = Mapping[int, list[tuple[str, int]]]


def recipients_with_items(campaign: Campaign, *, undecided_only: bool) -> dict[int, list[tuple[str, int]]]:
    """user id -> [(integration name, number of items)] for everyone who must review something
    in ``campaign`` (group assignments expanded to the group's active members)."""
    qs = ReviewItem.objects.filter(campaign=campaign)
    if undecided_only:
        qs = qs.filter(status=ItemStatus.OPEN)
    rows = (
        qs.values_list("reviewer_id", "reviewer_group_id", "integration__name")
        .annotate(n=Count("pk"))
        .order_by("reviewer_id", "reviewer_group_id", "integration__name")
    )
    by_user: dict[int, list[tuple[str, int]]] = defaultdict(list)
    by_group: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for reviewer_id, group_id, integration_name, count in rows.iterator(chunk_size=2000):
        if reviewer_id:
            by_user[reviewer_id].append((integration_name, count))
        elif group_id:
            by_group[group_id].append((integration_name, count))
    if by_group:
        members = User.objects.filter(groups__in=list(by_group), is_active=True).values_list("pk", "groups")
        for user_id, member_group_id in members:
            if member_group_id in by_group:
                by_user[user_id].extend(by_group[member_group_id])
    return by_user


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
            lines = recipients[user_id]
            total = sum(count for _name, count in lines)
            context = {
                "campaign": campaign,
                "lines": lines[:EMAIL_LIST_LIMIT],
                "more": max(len(lines) - EMAIL_LIST_LIMIT, 0),
                "total": total,
                **links,
                **(extra or {}),
            }
            yield EmailSpec(
                key=keys[user_id],
                recipient=user,
                subject=subject.format(total=total, name=campaign.name),
                template=template,
                context=context,
            )

    return len(email_enqueue_many(specs()))
