"""A campaign whose items are all decided says so ("All decided; closes on …") and its owner or
an IAM admin may close it before the deadline: the same close as the deadline's, audited with
the person, idempotent, refused while an item is undecided, confirmed on a page first."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine

from approvals.campaigns import services, tasks
from approvals.campaigns.models import Campaign, CampaignStatus, ItemStatus, ReviewItem
from governance.exceptions import Conflict, NotAllowed
from governance.models import AuditEvent
from governance.roles import Role
from inventory.models import Grant, GrantStatus


@pytest.fixture
def alice(make_user: Any, make_integration: Any, make_grant: Any, catalog: Any) -> Any:
    alice = make_user("alice", Role.BUSINESS_USER)
    bot = make_integration(alice, technical_owner=make_user("tech", Role.BUSINESS_USER))
    make_grant(bot, catalog["read"])
    make_grant(bot, catalog["write"])
    return alice


def _decide_all(campaign: Campaign, alice: Any) -> None:
    """Keep the low-sensitivity grant, revoke the other (held for the close)."""
    for item in ReviewItem.objects.filter(campaign=campaign).select_related("grant__scope"):
        assert item.grant is not None
        keep = item.grant.scope.sensitivity == "low"
        services.review_item_decide(
            actor=alice, item=item, decision="certify" if keep else "revoke", comment="" if keep else "unused"
        )


def _outcome(campaign: Campaign) -> dict[str, Any]:
    campaign.refresh_from_db()
    closed = AuditEvent.objects.get(action="campaign.closed", target_id=str(campaign.pk))
    assert isinstance(closed.after, dict)
    after = {key: value for key, value in closed.after.items() if key != "closed_early"}
    grants = Grant.objects.filter(review_items__campaign=campaign).order_by("scope__code")
    return {
        "status": campaign.status,
        "items": sorted(
            (status, applied is not None)
            for status, applied in ReviewItem.objects.filter(campaign=campaign).values_list("status", "applied_at")
        ),
        "grants": list(grants.values_list("scope__code", "status")),
        "audit_after": after,
    }


def test_closing_early_ends_the_campaign_as_its_deadline_would(
    alice: Any, make_definition: Any, launched: Any, iam_admin: Any
) -> None:
    early = launched(make_definition(name="early", apply_mode="at_close"))
    _decide_all(early, alice)
    services.campaign_close_early(actor=iam_admin, campaign=early)
    early_outcome = _outcome(early)
    # The same decisions on a second run, closed by the sweep at its deadline.
    Grant.objects.update(status=GrantStatus.ACTIVE)
    scheduled = launched(make_definition(name="scheduled", apply_mode="at_close"))
    _decide_all(scheduled, alice)
    with time_machine.travel(scheduled.deadline + timedelta(minutes=1), tick=False):
        tasks.campaigns_sweep()
    assert early_outcome == _outcome(scheduled)
    assert early_outcome["status"] == CampaignStatus.CLOSED
    assert early_outcome["grants"] == [("crm:read", GrantStatus.ACTIVE), ("crm:write", GrantStatus.REVOKED)]
    by_person = AuditEvent.objects.get(action="campaign.closed", target_id=str(early.pk))
    assert by_person.actor_username == "admin" and (by_person.after or {})["closed_early"] is True
    by_sweep = AuditEvent.objects.get(action="campaign.closed", target_id=str(scheduled.pk))
    assert "closed_early" not in (by_sweep.after or {})


def test_closing_early_twice_closes_once(alice: Any, make_definition: Any, launched: Any, iam_admin: Any) -> None:
    campaign = launched(make_definition())
    _decide_all(campaign, alice)
    first = services.campaign_close_early(actor=iam_admin, campaign=campaign)
    closed_at = first.closed_at
    again = services.campaign_close_early(actor=iam_admin, campaign=campaign)
    assert again.status == CampaignStatus.CLOSED and again.closed_at == closed_at
    assert AuditEvent.objects.filter(action="campaign.closed", target_id=str(campaign.pk)).count() == 1


def test_closing_early_is_refused_while_an_item_is_undecided(
    alice: Any, make_definition: Any, launched: Any, iam_admin: Any
) -> None:
    campaign = launched(make_definition())
    item = ReviewItem.objects.filter(campaign=campaign).first()
    assert item is not None
    services.review_item_decide(actor=alice, item=item, decision="certify")
    with pytest.raises(Conflict, match="1 item"):
        services.campaign_close_early(actor=iam_admin, campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE
    assert ReviewItem.objects.filter(campaign=campaign, status=ItemStatus.OPEN).count() == 1


def test_only_the_owner_or_an_iam_admin_closes_early(
    alice: Any, make_definition: Any, launched: Any, make_user: Any
) -> None:
    boss = make_user("boss", Role.BUSINESS_USER)
    campaign = launched(make_definition(owner=boss))
    _decide_all(campaign, alice)
    with pytest.raises(NotAllowed):
        services.campaign_close_early(actor=alice, campaign=campaign)
    assert services.campaign_close_early(actor=boss, campaign=campaign).status == CampaignStatus.CLOSED


def test_the_campaign_page_says_all_decided_and_offers_to_close_after_confirmation(
    alice: Any, make_definition: Any, launched: Any, iam_admin: Any, web_as: Any
) -> None:
    campaign = launched(make_definition())
    client = web_as(iam_admin)
    assert "Close the campaign now" not in client.get(f"/campaigns/{campaign.pk}/").content.decode()
    _decide_all(campaign, alice)
    closes = f"All decided; closes on {campaign.deadline:%Y-%m-%d}"
    page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert closes in page and "Close the campaign now" in page
    assert closes in client.get("/campaigns/").content.decode()
    assert closes in client.get(f"/campaigns/{campaign.pk}/report/").content.decode()
    confirm = client.get(f"/campaigns/{campaign.pk}/close/")
    assert confirm.status_code == 200 and "This cannot be undone." in confirm.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE  # asking is not closing
    assert client.post(f"/campaigns/{campaign.pk}/close/").status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CLOSED
    assert client.post(f"/campaigns/{campaign.pk}/close/").status_code == 302  # a second click changes nothing
    assert AuditEvent.objects.filter(action="campaign.closed", target_id=str(campaign.pk)).count() == 1


def test_close_and_cancel_pages_refuse_reviewers_and_hide_from_outsiders(
    alice: Any, make_definition: Any, launched: Any, outsider: Any, web_as: Any, iam_admin: Any
) -> None:
    definition = make_definition()
    campaign = launched(definition)
    draft = services.campaign_create(actor=iam_admin, definition=definition)
    _decide_all(campaign, alice)
    for url in (f"/campaigns/{campaign.pk}/close/", f"/campaigns/{draft.pk}/cancel/"):
        assert web_as(outsider).get(url).status_code == 404
        assert web_as(outsider).post(url).status_code == 404
    # alice reviews the running campaign: she sees it but may not close it.
    assert web_as(alice).get(f"/campaigns/{campaign.pk}/close/").status_code == 403
    assert web_as(alice).post(f"/campaigns/{campaign.pk}/close/").status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE


def test_a_draft_is_cancelled_only_after_its_confirmation_page(
    make_definition: Any, iam_admin: Any, web_as: Any
) -> None:
    draft = services.campaign_create(actor=iam_admin, definition=make_definition())
    client = web_as(iam_admin)
    assert "Cancel this campaign" in client.get(f"/campaigns/{draft.pk}/").content.decode()
    assert "Cancel the campaign" in client.get(f"/campaigns/{draft.pk}/cancel/").content.decode()
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.DRAFT
    assert client.post(f"/campaigns/{draft.pk}/cancel/", {"reason": "wrong scope"}).status_code == 302
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.CANCELLED
    assert AuditEvent.objects.get(action="campaign.cancelled", target_id=str(draft.pk)).reason == "wrong scope"
