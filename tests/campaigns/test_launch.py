"""Launch: one item per grant (or integration), assigned, one email per reviewer, resumable
without duplicates, one audit event."""

from __future__ import annotations

from typing import Any

import pytest

from approvals.campaigns import services, tasks
from approvals.campaigns.models import Campaign, CampaignStatus, ReviewItem
from approvals.campaigns.services import launch
from governance.exceptions import IllegalTransition
from governance.models import AuditEvent, OutboundEmail
from governance.roles import Role


@pytest.fixture
def estate(make_user: Any, make_integration: Any, make_grant: Any, catalog: Any) -> dict[str, Any]:
    alice = make_user("alice", Role.BUSINESS_USER)
    bob = make_user("bob", Role.BUSINESS_USER)
    tech = make_user("tech", Role.BUSINESS_USER)
    grants = []
    for owner in (alice, bob):
        for _ in range(3):
            integration = make_integration(owner, technical_owner=tech)
            grants += [make_grant(integration, catalog["read"]), make_grant(integration, catalog["write"])]
    return {"alice": alice, "bob": bob, "tech": tech, "grants": grants}


def test_launch_makes_one_item_per_grant_assigned_to_the_business_owner(
    estate: Any, make_definition: Any, launched: Any
) -> None:
    campaign = launched(make_definition())
    assert campaign.status == CampaignStatus.ACTIVE
    items = ReviewItem.objects.filter(campaign=campaign)
    assert items.count() == 12 == campaign.items_total
    assert set(items.values_list("reviewer__username", flat=True)) == {"alice", "bob"}
    assert items.filter(reviewer=estate["alice"]).count() == 6
    assert campaign.processed == campaign.total_expected == 12


def test_each_reviewer_gets_one_email_listing_their_integrations(
    estate: Any, make_definition: Any, launched: Any
) -> None:
    campaign = launched(make_definition())
    emails = OutboundEmail.objects.filter(key__startswith=f"campaign-{campaign.pk}-assigned-")
    assert sorted(emails.values_list("to_address", flat=True)) == ["alice@example.com", "bob@example.com"]
    alice_mail = emails.get(to_address="alice@example.com")
    assert "6 item" in alice_mail.subject
    assert "/campaigns/review/" in alice_mail.body_text and "http" in alice_mail.body_text
    assert "Review now" in alice_mail.body_html


def test_launch_is_one_audit_event_with_counts(
    estate: Any, make_definition: Any, launched: Any, iam_admin: Any
) -> None:
    before = AuditEvent.objects.count()
    campaign = launched(make_definition())
    new = AuditEvent.objects.filter(pk__gt=0).order_by("-id")[: AuditEvent.objects.count() - before]
    actions = [e.action for e in new]
    assert actions.count("campaign.launched") == 1
    assert not any(a.startswith("review_item") for a in actions)
    event = AuditEvent.objects.get(action="campaign.launched", target_id=str(campaign.pk))
    assert event.after is not None and event.after["items"] == 12 and event.after["recipients"] == 2
    assert event.actor_username == iam_admin.username and event.owner_id == campaign.owner_id


def test_rerunning_an_interrupted_launch_makes_no_duplicates_and_no_duplicate_emails(
    estate: Any, make_definition: Any, iam_admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = services.campaign_create(actor=iam_admin, definition=make_definition())
    services.campaign_launch_request(actor=iam_admin, campaign=campaign)
    real_save = launch._save_chunk
    calls = {"n": 0}

    def dying_save(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker killed")
        real_save(*args, **kwargs)

    monkeypatch.setattr(launch, "_save_chunk", dying_save)
    with pytest.raises(RuntimeError):
        services.campaign_launch_run(campaign_id=campaign.pk, chunk_size=5)
    assert ReviewItem.objects.filter(campaign=campaign).count() == 10  # two chunks committed
    monkeypatch.setattr(launch, "_save_chunk", real_save)
    # Replay a committed chunk too: rewind the cursor as if its progress write had been lost.
    Campaign.objects.filter(pk=campaign.pk).update(cursor=0)
    services.campaign_launch_run(campaign_id=campaign.pk, chunk_size=5)
    assert ReviewItem.objects.filter(campaign=campaign).count() == 12
    assert OutboundEmail.objects.filter(key__startswith=f"campaign-{campaign.pk}-assigned-").count() == 2
    # A third run (the task delivered twice) changes nothing.
    assert tasks.campaign_launch(campaign.pk) == 0
    assert ReviewItem.objects.filter(campaign=campaign).count() == 12
    assert OutboundEmail.objects.filter(key__startswith=f"campaign-{campaign.pk}-").count() == 2


def test_one_item_per_integration_covers_all_its_selected_grants(
    estate: Any, make_definition: Any, launched: Any
) -> None:
    campaign = launched(make_definition(granularity="integration"))
    items = list(ReviewItem.objects.filter(campaign=campaign))
    assert len(items) == 6
    assert all(i.grant_id is None and len(i.grant_ids) == 2 for i in items)


def test_selection_by_sensitivity_and_risk_tier(
    estate: Any, make_definition: Any, launched: Any, make_integration: Any, make_grant: Any, catalog: Any
) -> None:
    low = make_integration(estate["alice"], risk_tier="low")
    make_grant(low, catalog["write"])
    campaign = launched(make_definition(risk_tiers=["high", "critical"], sensitivities=["high"]))
    items = ReviewItem.objects.filter(campaign=campaign)
    assert items.count() == 6
    assert not items.filter(integration=low).exists()


def test_selection_skips_integrations_reviewed_recently(
    estate: Any, make_definition: Any, launched: Any, iam_admin: Any
) -> None:
    first = launched(make_definition())
    item = ReviewItem.objects.filter(campaign=first, reviewer=estate["alice"]).first()
    assert item is not None
    services.review_item_decide(actor=estate["alice"], item=item, decision="certify", comment="fine")
    second = launched(make_definition(not_reviewed_days=30))
    assert ReviewItem.objects.filter(campaign=second).count() == 10
    assert not ReviewItem.objects.filter(campaign=second, integration=item.integration).exists()


def test_launch_returns_at_once_and_a_second_launch_is_refused(
    estate: Any, make_definition: Any, iam_admin: Any, api_as: Any
) -> None:
    campaign = services.campaign_create(actor=iam_admin, definition=make_definition())
    response = api_as(iam_admin).post(f"/api/v1/campaigns/{campaign.pk}/launch/")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "launching"
    assert ReviewItem.objects.filter(campaign=campaign).count() == 0  # made by the worker
    again = api_as(iam_admin).post(f"/api/v1/campaigns/{campaign.pk}/launch/")
    assert again.status_code == 409


def test_progress_endpoint_reports_the_launch(estate: Any, make_definition: Any, iam_admin: Any, web_as: Any) -> None:
    campaign = services.campaign_create(actor=iam_admin, definition=make_definition())
    services.campaign_launch_request(actor=iam_admin, campaign=campaign)
    client = web_as(iam_admin)
    page = client.get(f"/campaigns/{campaign.pk}/")
    assert b"Launch in progress" in page.content
    assert client.get(f"/campaigns/{campaign.pk}/progress.json").json()["finished"] is False
    tasks.campaign_launch(campaign.pk)
    data = client.get(f"/campaigns/{campaign.pk}/progress.json").json()
    assert data["finished"] is True and data["items_total"] == 12


def test_claiming_a_draft_for_launch_is_audited_when_it_happens(
    estate: Any, make_definition: Any, iam_admin: Any
) -> None:
    campaign = services.campaign_create(actor=iam_admin, definition=make_definition())
    services.campaign_launch_request(actor=iam_admin, campaign=campaign, enqueue=False)
    event = AuditEvent.objects.get(action="campaign.launch_requested", target_id=str(campaign.pk))
    assert event.before == {"status": "draft"} and event.after is not None and event.after["status"] == "launching"
    assert event.after["deadline"] is not None and event.actor_username == iam_admin.username
    assert event.owner_id == campaign.owner_id
    assert not AuditEvent.objects.filter(action="campaign.launched", target_id=str(campaign.pk)).exists()


def test_a_refused_launch_records_nothing(estate: Any, make_definition: Any, iam_admin: Any, launched: Any) -> None:
    campaign = launched(make_definition())
    with pytest.raises(IllegalTransition):
        services.campaign_launch_request(actor=iam_admin, campaign=campaign)
    assert AuditEvent.objects.filter(action="campaign.launch_requested", target_id=str(campaign.pk)).count() == 1


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (CampaignStatus.DRAFT, CampaignStatus.ACTIVE),
        (CampaignStatus.DRAFT, CampaignStatus.CLOSED),
        (CampaignStatus.LAUNCHING, CampaignStatus.LAUNCHING),
        (CampaignStatus.LAUNCHING, CampaignStatus.CANCELLED),
        (CampaignStatus.ACTIVE, CampaignStatus.LAUNCHING),
        (CampaignStatus.CLOSED, CampaignStatus.ACTIVE),
        (CampaignStatus.CANCELLED, CampaignStatus.LAUNCHING),
    ],
    ids=lambda status: str(status),
)
def test_a_move_the_transition_table_does_not_allow_is_refused_and_changes_nothing(
    estate: Any, make_definition: Any, iam_admin: Any, start: str, to: str
) -> None:
    campaign = services.campaign_create(actor=iam_admin, definition=make_definition())
    Campaign.objects.filter(pk=campaign.pk).update(status=start)
    with pytest.raises(IllegalTransition, match=f"cannot go from {start}"):
        services.campaign_transition(campaign=campaign, to_status=to, refusal="cannot go from {current}")
    assert Campaign.objects.get(pk=campaign.pk).status == start


def test_closing_a_campaign_that_is_not_running_is_refused(estate: Any, make_definition: Any, iam_admin: Any) -> None:
    draft = services.campaign_create(actor=iam_admin, definition=make_definition())
    with pytest.raises(IllegalTransition):
        services.campaign_close(campaign=draft)
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.DRAFT
