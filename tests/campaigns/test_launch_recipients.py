"""The end of a launch counts each reviewer's items in the database and keeps only the lines an
email shows: the recipients, their lines, "and N more" and totals, the campaign's counts and the
emails are those of the per-row grouping it replaces (a copy of which is here), whatever the
number of integrations a reviewer has, for people, groups (expanded to their active members)
and people who are both."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db.models import Count

from approvals.campaigns import services
from approvals.campaigns.models import Campaign, ItemStatus, ReviewItem
from approvals.campaigns.services import launch
from approvals.campaigns.services.notifications import (
    EMAIL_LIST_LIMIT,
    email_reviewers,
    recipients_with_items,
    review_loads,
)
from governance.models import OutboundEmail, User
from governance.roles import Role


def _per_row_recipients(campaign: Campaign, *, undecided_only: bool) -> dict[int, list[tuple[str, int]]]:
    """Every line of every recipient, grouped in Python (as the launch did before)."""
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
    for reviewer_id, group_id, integration_name, count in rows:
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


def _shown(lines: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], int, int]:
    """What an email shows of a whole list: its first lines, how many more, the item total."""
    return lines[:EMAIL_LIST_LIMIT], max(len(lines) - EMAIL_LIST_LIMIT, 0), sum(count for _name, count in lines)


@pytest.fixture
def assigned(
    make_user: Any, make_integration: Any, make_grant: Any, catalog: Any, make_definition: Any, iam_admin: Any
) -> dict[str, Any]:
    """A running campaign whose items go to a person with more integrations than an email lists
    (two of them named alike), to two groups (one member in both, one gone) and to a member who
    also reviews some directly; some items are decided."""
    heavy = make_user("heavy", Role.BUSINESS_USER)
    both = make_user("both", Role.BUSINESS_USER)
    member = make_user("member", Role.BUSINESS_USER)
    gone = make_user("gone", Role.BUSINESS_USER)
    first_group, second_group = Group.objects.create(name="first pool"), Group.objects.create(name="second pool")
    both.groups.add(first_group, second_group)
    member.groups.add(first_group)
    gone.groups.add(first_group)
    User.objects.filter(pk=gone.pk).update(is_active=False)
    campaign = services.campaign_create(actor=iam_admin, definition=make_definition())
    plan: list[tuple[User | None, Group | None, int]] = (
        [(heavy, None, 1 + position % 3) for position in range(EMAIL_LIST_LIMIT + 10)]
        + [(None, first_group, 1 + position % 2) for position in range(EMAIL_LIST_LIMIT + 2)]
        + [(None, second_group, 2) for _ in range(3)]
        + [(both, None, 1) for _ in range(4)]
    )
    scopes = [catalog["read"], catalog["write"], catalog["admin"]]
    for position, (person, group, grants) in enumerate(plan):
        name = "Shared bot" if position in (3, 17) else None
        integration = make_integration(heavy, **({"name": name} if name else {}))
        for scope in scopes[:grants]:
            ReviewItem.objects.create(
                campaign=campaign,
                integration=integration,
                grant=make_grant(integration, scope),
                reviewer=person,
                reviewer_group=group,
                status=ItemStatus.CERTIFIED if position % 7 == 0 else ItemStatus.OPEN,
            )
    return {"campaign": campaign, "heavy": heavy, "both": both}


@pytest.mark.parametrize("undecided_only", [False, True])
def test_the_recipients_are_those_of_the_per_row_grouping(assigned: Any, undecided_only: bool) -> None:
    campaign = assigned["campaign"]
    expected = _per_row_recipients(campaign, undecided_only=undecided_only)
    recipients = recipients_with_items(campaign, undecided_only=undecided_only)
    assert list(recipients) == list(expected)
    for user_id, lines in expected.items():
        load = recipients[user_id]
        assert (load.lines, max(load.line_count - EMAIL_LIST_LIMIT, 0), load.total) == _shown(lines)
    assert _shown(expected[assigned["heavy"].pk])[1] > 0  # the data reaches "and N more"
    assert len(expected[assigned["both"].pk]) > EMAIL_LIST_LIMIT  # own lines, then both groups'


def test_the_counts_are_those_of_the_items(assigned: Any) -> None:
    items = ReviewItem.objects.filter(campaign=assigned["campaign"])
    expected = items.aggregate(
        items=Count("pk"),
        reviewers=Count("reviewer_id", distinct=True),
        groups=Count("reviewer_group_id", distinct=True),
    )
    assert launch._item_counts(review_loads(assigned["campaign"], undecided_only=False)) == expected
    assert expected["groups"] == 2 and expected["reviewers"] == 2


def test_an_email_lists_the_first_integrations_and_says_how_many_more(assigned: Any) -> None:
    campaign = assigned["campaign"]
    email_reviewers(
        campaign,
        recipients_with_items(campaign, undecided_only=False),
        key_part="assigned",
        subject="Recertification: {total} item(s) to review in {name}",
        template="campaign_assigned",
    )
    lines, more, total = _shown(_per_row_recipients(campaign, undecided_only=False)[assigned["heavy"].pk])
    sent = OutboundEmail.objects.get(key=f"campaign-{campaign.pk}-assigned-{assigned['heavy'].pk}")
    assert f"{total} item(s)" in sent.subject
    listed = [line for line in sent.body_text.splitlines() if line.startswith("- ")]
    assert listed[: len(lines)] == [f"- {name}: {count} item{'s' if count != 1 else ''}" for name, count in lines]
    assert more > 1 and listed[len(lines) :] == [f"- and {more} more integrations"]
