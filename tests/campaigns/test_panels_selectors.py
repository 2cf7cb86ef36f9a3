"""Who sees which review items (the selectors every page reads them through) and the campaigns'
home-page panels: the items waiting for a reviewer are read through the reviewer's indexes, the
panels and the nav's count take a fixed number of queries whatever the campaigns' size."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.test import RequestFactory

from approvals.campaigns import panels, selectors
from approvals.campaigns.models import Campaign, CampaignStatus, ItemStatus, ReviewItem
from governance.roles import Pool, Role


def _request(user: Any) -> Any:
    request = RequestFactory().get("/")
    request.user = user
    return request


def _campaign_of_owners(make_user: Any, make_integration: Any, make_grant: Any, catalog: Any) -> dict[str, Any]:
    alice = make_user("alice", Role.BUSINESS_USER)
    bob = make_user("bob", Role.BUSINESS_USER)
    # A technical owner beside each: a sole owner never reviews their own integration alone.
    tech = make_user("tech", Role.BUSINESS_USER)
    for scope in ("read", "write"):
        make_grant(make_integration(alice, technical_owner=tech), catalog[scope])
    make_grant(make_integration(bob, technical_owner=tech), catalog["read"])
    return {"alice": alice, "bob": bob}


def test_open_items_are_the_users_own_undecided_items_of_running_campaigns(
    make_user: Any, make_integration: Any, make_grant: Any, catalog: Any, make_definition: Any, launched: Any
) -> None:
    people = _campaign_of_owners(make_user, make_integration, make_grant, catalog)
    alice, bob = people["alice"], people["bob"]
    campaign = launched(make_definition())
    first, second = ReviewItem.objects.filter(campaign=campaign, reviewer=alice).order_by("pk")
    ReviewItem.objects.filter(pk=first.pk).update(status=ItemStatus.CERTIFIED)

    assert list(selectors.my_open_items(alice)) == [second]
    assert set(selectors.review_items_for(alice)) == {first, second}
    assert list(selectors.campaigns_for(alice)) == [campaign]
    assert [item.reviewer for item in selectors.my_open_items(bob)] == [bob]
    stranger = make_user("carol", Role.BUSINESS_USER)
    assert not selectors.review_items_for(stranger).exists()
    assert not selectors.campaigns_for(stranger).exists()

    # Closed: nothing waits any more, what was reviewed is still theirs to read.
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.CLOSED)
    assert not selectors.my_open_items(alice).exists()
    assert set(selectors.review_items_for(alice)) == {first, second}


def test_group_items_and_confirmations_wait_for_the_groups_members(
    make_user: Any,
    make_integration: Any,
    make_grant: Any,
    catalog: Any,
    make_definition: Any,
    launched: Any,
    reviewer: Any,
) -> None:
    owner = make_user("solo", Role.BUSINESS_USER)
    make_grant(make_integration(owner, technical_owner=None), catalog["write"])
    group = Group.objects.get(name=Pool.IAM_REVIEWERS)
    campaign = launched(
        make_definition(reviewer_rule="technical_owner", fallback_group=group, second_stage_group=group)
    )
    item = ReviewItem.objects.get(campaign=campaign)
    assert item.reviewer_group == group
    assert list(selectors.my_open_items(reviewer)) == [item]
    assert list(selectors.review_items_for(reviewer)) == [item]

    # Kept, waiting for the group's confirmation: still the member's to decide.
    ReviewItem.objects.filter(pk=item.pk).update(status=ItemStatus.AWAITING_CONFIRMATION, reviewer_group=None)
    assert list(selectors.my_open_items(reviewer)) == [item]
    assert list(selectors.campaigns_for(reviewer)) == [campaign]
    outsider = make_user("outsider", Role.REVIEWER)
    assert not selectors.my_open_items(outsider).exists()


def test_my_items_panel_and_the_nav_count_share_one_query(
    make_user: Any,
    make_integration: Any,
    make_grant: Any,
    catalog: Any,
    make_definition: Any,
    launched: Any,
    django_assert_num_queries: Any,
) -> None:
    people = _campaign_of_owners(make_user, make_integration, make_grant, catalog)
    alice = people["alice"]
    launched(make_definition())
    launched(make_definition(risk_tiers=["high"]))
    request = _request(alice)
    selectors.my_open_items(alice)  # the user's roles, read once per request
    with django_assert_num_queries(1):
        data = panels.my_items(request)
    assert data is not None
    assert [row["n"] for row in data["rows"]] == [2, 2]
    with django_assert_num_queries(0):
        assert panels._my_open_count(request) == 4
    # Elsewhere (no panel drawn) the nav counts in one query.
    with django_assert_num_queries(1):
        assert panels._my_open_count(_request(alice)) == 4


def test_running_campaigns_panel_counts_undecided_items_in_one_query(
    make_user: Any,
    make_integration: Any,
    make_grant: Any,
    catalog: Any,
    make_definition: Any,
    launched: Any,
    iam_admin: Any,
    django_assert_num_queries: Any,
) -> None:
    people = _campaign_of_owners(make_user, make_integration, make_grant, catalog)
    first = launched(make_definition())
    second = launched(make_definition(risk_tiers=["high"]))
    decided = ReviewItem.objects.filter(campaign=second, reviewer=people["alice"]).order_by("pk").first()
    assert decided is not None
    ReviewItem.objects.filter(pk=decided.pk).update(status=ItemStatus.REVOKED)
    with django_assert_num_queries(1):
        data = panels.running(_request(iam_admin))
    assert data is not None
    assert {campaign.pk: campaign.open_items for campaign in data["campaigns"]} == {first.pk: 3, second.pk: 2}
