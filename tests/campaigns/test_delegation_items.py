"""Recertification items under delegation: the colleague standing in for an away reviewer sees and
decides their open items (guardian object permissions read by the item gates), never an item
about an integration they own; an IAM admin hands an item to another reviewer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from approvals import services as approval_services
from approvals.campaigns import selectors, services
from approvals.campaigns.models import ItemStatus, ReviewItem
from approvals.models import ReviewItemUserObjectPermission
from governance.exceptions import NotAllowed, ValidationFailed
from governance.models import AuditEvent, OutboundEmail
from governance.roles import Pool, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(make_user: Any, make_integration: Any, make_grant: Any, catalog: Any) -> dict[str, Any]:
    """Rita, an IAM reviewer, is the technical owner (the reviewer, by the definitions below) of
    alice's integration and of raj's; raj is of her pool."""
    rita = make_user("rita", Role.REVIEWER, Pool.IAM_REVIEWERS)
    raj = make_user("raj", Role.REVIEWER, Pool.IAM_REVIEWERS)
    theirs = make_integration(make_user("alice", Role.BUSINESS_USER), technical_owner=rita)
    his = make_integration(raj, technical_owner=rita)
    return {
        "rita": rita,
        "raj": raj,
        "grant": make_grant(theirs, catalog["write"]),
        "his_grant": make_grant(his, catalog["read"]),
    }


def _away(rita: Any, raj: Any) -> Any:
    return approval_services.delegation_create(
        actor=rita,
        delegator=rita,
        delegate=raj,
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(days=5),
        covers_approvals=False,
        covers_reviews=True,
    )


def test_the_stand_in_sees_and_decides_the_away_reviewers_items(
    setup: Any, make_definition: Any, launched: Any
) -> None:
    rita, raj = setup["rita"], setup["raj"]
    campaign = launched(make_definition(reviewer_rule="technical_owner"))
    item = ReviewItem.objects.get(campaign=campaign, grant=setup["grant"])
    assert item.reviewer == rita
    assert not selectors.my_open_items(raj).filter(pk=item.pk).exists()
    _away(rita, raj)
    assert ReviewItemUserObjectPermission.objects.filter(user=raj, content_object=item).exists()
    assert selectors.my_open_items(raj).filter(pk=item.pk).exists()
    assert selectors.campaigns_for(raj).filter(pk=campaign.pk).exists()
    decided = services.review_item_decide(actor=raj, item=item, decision="certify", comment="still needed")
    assert decided.status == ItemStatus.CERTIFIED and decided.decided_by == raj
    event = AuditEvent.objects.get(action="review_item.decided", target_id=str(item.pk))
    assert event.actor_username == "raj" and (event.after or {}).get("reviewer") == rita.pk
    assert AuditEvent.objects.filter(action="delegation.item_covered").exists()


def test_a_stand_in_never_reviews_an_integration_they_own(setup: Any, make_definition: Any, launched: Any) -> None:
    rita, raj = setup["rita"], setup["raj"]
    campaign = launched(make_definition(reviewer_rule="technical_owner"))
    item = ReviewItem.objects.get(campaign=campaign, grant=setup["his_grant"])
    assert item.reviewer == rita
    _away(rita, raj)
    assert not selectors.my_open_items(raj).filter(pk=item.pk).exists(), "never covered"
    with pytest.raises(NotAllowed):
        services.review_item_decide(actor=raj, item=item, decision="certify")


def test_the_stand_in_loses_the_items_when_the_delegation_is_revoked(
    setup: Any, make_definition: Any, launched: Any
) -> None:
    rita, raj = setup["rita"], setup["raj"]
    campaign = launched(make_definition(reviewer_rule="technical_owner"))
    item = ReviewItem.objects.get(campaign=campaign, grant=setup["grant"])
    delegation = _away(rita, raj)
    approval_services.delegation_revoke(actor=rita, delegation=delegation)
    assert not ReviewItemUserObjectPermission.objects.exists()
    with pytest.raises(NotAllowed):
        services.review_item_decide(actor=raj, item=item, decision="certify")


def test_an_iam_admin_hands_an_item_to_another_reviewer(
    setup: Any, make_definition: Any, launched: Any, iam_admin: Any, make_user: Any
) -> None:
    campaign = launched(make_definition(reviewer_rule="technical_owner"))
    item = ReviewItem.objects.get(campaign=campaign, grant=setup["grant"])
    sam = make_user("sam", Role.REVIEWER, Pool.IAM_REVIEWERS)
    with pytest.raises(NotAllowed):
        services.review_item_reassign(actor=setup["raj"], item=item, to_user=sam, reason="r")
    with pytest.raises(ValidationFailed):
        services.review_item_reassign(actor=iam_admin, item=item, to_user=setup["rita"], reason="r")
    moved = services.review_item_reassign(actor=iam_admin, item=item, to_user=sam, reason="Rita left the team")
    assert moved.reviewer == sam and moved.reviewer_group is None
    assert selectors.my_open_items(sam).filter(pk=item.pk).exists()
    assert not selectors.my_open_items(setup["rita"]).filter(pk=item.pk).exists()
    event = AuditEvent.objects.get(action="review_item.reassigned", target_id=str(item.pk))
    assert event.reason == "Rita left the team" and (event.after or {}).get("to") == "sam"
    assert OutboundEmail.objects.filter(recipient=sam, key=f"review-item-{item.pk}-reassigned-{sam.pk}").exists()
