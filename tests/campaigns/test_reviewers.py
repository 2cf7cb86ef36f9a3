"""Who reviews: the definition's rule, and the fallback when that person is gone or would review
their own integration alone."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group

from approvals.campaigns import services
from approvals.campaigns.models import ReviewItem
from governance.actors import Actor
from governance.exceptions import NotAllowed
from governance.roles import Pool, Role
from governance.services import user_deactivate


def _only_item(campaign: Any) -> ReviewItem:
    return ReviewItem.objects.get(campaign=campaign)


def test_fallback_reviewer_is_used_when_the_owner_is_gone(
    make_user: Any,
    make_integration: Any,
    make_grant: Any,
    catalog: Any,
    make_definition: Any,
    launched: Any,
    reviewer: Any,
) -> None:
    leaver = make_user("leaver", Role.BUSINESS_USER)
    tech = make_user("tech", Role.BUSINESS_USER)
    make_grant(make_integration(leaver, technical_owner=tech), catalog["write"])
    user_deactivate(actor=Actor.system(on_behalf_of=reviewer), user=leaver, reason="left the company")
    campaign = launched(make_definition(fallback_user=reviewer))
    item = _only_item(campaign)
    assert item.reviewer == reviewer
    assert "left" in item.assigned_reason


def test_fallback_group_when_no_fallback_user(
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
    campaign = launched(make_definition(reviewer_rule="technical_owner", fallback_group=group))
    item = _only_item(campaign)
    assert item.reviewer is None and item.reviewer_group == group
    # Group members get the one email; the item is in their queue.
    assert campaign.items.filter(pk=item.pk).exists()
    from approvals.campaigns.selectors import my_open_items

    assert list(my_open_items(reviewer)) == [item]
    from governance.models import OutboundEmail

    assert list(
        OutboundEmail.objects.filter(key__startswith=f"campaign-{campaign.pk}-assigned-").values_list(
            "recipient__username", flat=True
        )
    ) == [reviewer.username]


def test_the_only_owner_never_reviews_their_own_integration_alone(
    make_user: Any,
    make_integration: Any,
    make_grant: Any,
    catalog: Any,
    make_definition: Any,
    launched: Any,
    reviewer: Any,
) -> None:
    solo = make_user("solo", Role.BUSINESS_USER)
    make_grant(make_integration(solo), catalog["write"])
    campaign = launched(make_definition(fallback_user=reviewer, forbid_self_review=True))
    item = _only_item(campaign)
    assert item.reviewer == reviewer
    assert "only owner" in item.assigned_reason


def test_owner_reviews_when_the_definition_allows_self_review(
    make_user: Any,
    make_integration: Any,
    make_grant: Any,
    catalog: Any,
    make_definition: Any,
    launched: Any,
    reviewer: Any,
) -> None:
    solo = make_user("solo", Role.BUSINESS_USER)
    make_grant(make_integration(solo), catalog["write"])
    campaign = launched(make_definition(fallback_user=reviewer, forbid_self_review=False))
    assert _only_item(campaign).reviewer == solo


def test_an_admin_who_is_the_only_owner_cannot_decide_it_when_self_review_is_forbidden(
    make_integration: Any,
    make_grant: Any,
    catalog: Any,
    make_definition: Any,
    launched: Any,
    iam_admin: Any,
    reviewer: Any,
) -> None:
    make_grant(make_integration(iam_admin), catalog["write"])
    campaign = launched(make_definition(fallback_user=reviewer))
    item = _only_item(campaign)
    with pytest.raises(NotAllowed):
        services.review_item_decide(actor=iam_admin, item=item, decision="certify", comment="mine")


def test_owner_manager_rule(
    make_user: Any, make_integration: Any, make_grant: Any, catalog: Any, make_definition: Any, launched: Any
) -> None:
    boss = make_user("boss", Role.BUSINESS_USER)
    owner = make_user("worker", Role.BUSINESS_USER, manager=boss)
    make_grant(make_integration(owner), catalog["write"])
    campaign = launched(make_definition(reviewer_rule="owner_manager"))
    assert _only_item(campaign).reviewer == boss


def test_resource_system_owner_rule(
    make_user: Any, make_integration: Any, make_grant: Any, catalog: Any, make_definition: Any, launched: Any
) -> None:
    data_owner = make_user("omar", Role.REVIEWER)
    catalog["write"].system.owners.add(data_owner)
    owner = make_user("worker", Role.BUSINESS_USER)
    make_grant(make_integration(owner), catalog["write"])
    campaign = launched(make_definition(reviewer_rule="system_owner"))
    assert _only_item(campaign).reviewer == data_owner


def test_named_group_rule(
    make_user: Any, make_integration: Any, make_grant: Any, catalog: Any, make_definition: Any, launched: Any
) -> None:
    owner = make_user("worker", Role.BUSINESS_USER)
    make_grant(make_integration(owner), catalog["write"])
    group = Group.objects.get(name=Pool.SECURITY_REVIEWERS)
    campaign = launched(make_definition(reviewer_rule="group", reviewer_group=group))
    assert _only_item(campaign).reviewer_group == group
