"""Reminders, escalation and the deadline: on time, once, only to those with something to do,
every effect audited with the system as actor and the campaign owner as accountable."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from approvals.campaigns import selectors, services, tasks
from approvals.campaigns.models import CampaignStatus, ItemStatus, ReviewItem
from governance.models import AuditEvent, OutboundEmail
from governance.roles import Role
from inventory.models import GrantStatus


@pytest.fixture
def two_reviewers(make_user: Any, make_integration: Any, make_grant: Any, catalog: Any) -> dict[str, Any]:
    boss = make_user("boss", Role.BUSINESS_USER)
    alice = make_user("alice", Role.BUSINESS_USER, manager=boss)
    bob = make_user("bob", Role.BUSINESS_USER, manager=boss)
    tech = make_user("tech", Role.BUSINESS_USER)
    grants = {}
    for owner in (alice, bob):
        integration = make_integration(owner, technical_owner=tech)
        grants[owner.username] = [make_grant(integration, catalog["read"]), make_grant(integration, catalog["write"])]
    return {"boss": boss, "alice": alice, "bob": bob, "grants": grants}


def _sweep() -> dict[str, int]:
    return tasks.campaigns_sweep()


def _keys(prefix: str) -> list[str]:
    return sorted(OutboundEmail.objects.filter(key__contains=prefix).values_list("key", flat=True))


def test_reminders_go_only_to_reviewers_with_undecided_items_once_per_point(
    two_reviewers: Any, make_definition: Any, launched: Any
) -> None:
    campaign = launched(make_definition(duration_days=14, reminder_days=[7, 1]))
    for item in ReviewItem.objects.filter(campaign=campaign, reviewer=two_reviewers["bob"]):
        services.review_item_decide(actor=two_reviewers["bob"], item=item, decision="certify")
    start = campaign.deadline - timedelta(days=14)
    with time_machine.travel(start + timedelta(days=6), tick=False):
        assert _sweep()["reminded"] == 0  # before the first point
    with time_machine.travel(start + timedelta(days=7, hours=1), tick=False):
        assert _sweep()["reminded"] == 1
        assert _sweep()["reminded"] == 0  # once per point
    assert _keys("-reminder-7d-") == [f"campaign-{campaign.pk}-reminder-7d-{two_reviewers['alice'].pk}"]
    email = OutboundEmail.objects.get(key__contains="-reminder-7d-")
    assert email.to_address == "alice@example.com" and "2 item" in email.subject
    with time_machine.travel(campaign.deadline - timedelta(hours=20), tick=False):
        assert _sweep()["reminded"] == 1
    assert len(_keys("-reminder-1d-")) == 1
    assert not any(k.endswith(f"-{two_reviewers['bob'].pk}") for k in _keys("-reminder-"))  # bob had nothing left


def test_nobody_is_reminded_about_an_empty_review(two_reviewers: Any, make_definition: Any, launched: Any) -> None:
    campaign = launched(make_definition(duration_days=14, reminder_days=[7]))
    for item in ReviewItem.objects.filter(campaign=campaign):
        assert item.reviewer is not None
        services.review_item_decide(actor=item.reviewer, item=item, decision="certify")
    with time_machine.travel(campaign.deadline - timedelta(days=3), tick=False):
        assert _sweep()["reminded"] == 0
    assert _keys("-reminder-") == []


def test_escalation_goes_to_the_managers_of_late_reviewers_once(
    two_reviewers: Any, make_definition: Any, launched: Any
) -> None:
    campaign = launched(make_definition(duration_days=14, escalate_days_before=2))
    with time_machine.travel(campaign.deadline - timedelta(days=3), tick=False):
        assert _sweep()["escalated"] == 0
    with time_machine.travel(campaign.deadline - timedelta(days=2), tick=False):
        assert _sweep()["escalated"] == 2
        assert _sweep()["escalated"] == 0
    boss = two_reviewers["boss"]
    escalations = OutboundEmail.objects.filter(key__contains="-escalation-")
    assert escalations.count() == 2 and set(escalations.values_list("recipient", flat=True)) == {boss.pk}
    events = AuditEvent.objects.filter(action="campaign.reviewer_escalated")
    assert events.count() == 2
    assert {e.actor_kind for e in events} == {"system"} and {e.owner_id for e in events} == {campaign.owner_id}


def test_default_revoke_at_the_deadline_is_audited_as_the_system_for_the_owner(
    two_reviewers: Any, make_definition: Any, launched: Any
) -> None:
    campaign = launched(make_definition(duration_days=14, default_action="revoke"))
    kept = ReviewItem.objects.filter(campaign=campaign, reviewer=two_reviewers["alice"]).first()
    assert kept is not None
    services.review_item_decide(actor=two_reviewers["alice"], item=kept, decision="certify")
    with time_machine.travel(campaign.deadline - timedelta(hours=1), tick=False):
        assert _sweep()["closed"] == 0
        assert selectors.default_action_preview(campaign).sentence == "These 3 grant(s) will be revoked."
    with time_machine.travel(campaign.deadline + timedelta(minutes=5), tick=False):
        assert _sweep()["closed"] == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CLOSED
    defaulted = ReviewItem.objects.filter(campaign=campaign, by_default=True)
    assert defaulted.count() == 3 and set(defaulted.values_list("status", flat=True)) == {ItemStatus.REVOKED}
    for item in defaulted:
        assert item.grant is not None and item.grant.status == GrantStatus.REVOKED
        event = AuditEvent.objects.get(action="review_item.defaulted", target_id=str(item.pk))
        assert event.actor_kind == "system" and event.owner_id == campaign.owner_id
        grant_event = AuditEvent.objects.get(action="grant.revoked", target_id=str(item.grant_id))
        assert grant_event.actor_kind == "system"
    kept.refresh_from_db()
    assert kept.grant is not None and kept.grant.status == GrantStatus.ACTIVE
    closed = AuditEvent.objects.get(action="campaign.closed", target_id=str(campaign.pk))
    assert closed.actor_kind == "system" and closed.owner_id == campaign.owner_id
    assert closed.after is not None and closed.after["defaulted"] == 3
    with time_machine.travel(campaign.deadline + timedelta(hours=1), tick=False):
        assert _sweep()["closed"] == 0  # nothing twice


def test_default_keep_and_flag(two_reviewers: Any, make_definition: Any, launched: Any) -> None:
    campaign = launched(make_definition(default_action="keep_flag"))
    with time_machine.travel(campaign.deadline + timedelta(minutes=1), tick=False):
        _sweep()
    items = ReviewItem.objects.filter(campaign=campaign)
    assert set(items.values_list("status", flat=True)) == {ItemStatus.KEPT_FLAGGED}
    assert all(i.flagged and i.grant is not None and i.grant.status == GrantStatus.ACTIVE for i in items)


def test_default_escalate_reassigns_then_revokes_after_the_grace(
    two_reviewers: Any, make_definition: Any, launched: Any
) -> None:
    campaign = launched(make_definition(default_action="escalate", escalation_grace_days=3))
    deadline = campaign.deadline
    with time_machine.travel(deadline + timedelta(minutes=1), tick=False):
        assert _sweep()["closed"] == 0
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE and campaign.deadline == deadline + timedelta(days=3)
    items = ReviewItem.objects.filter(campaign=campaign)
    assert set(items.values_list("reviewer__username", flat=True)) == {"boss"}
    assert AuditEvent.objects.filter(action="review_item.escalated").count() == 4
    assert OutboundEmail.objects.filter(
        key=f"campaign-{campaign.pk}-escalated-assigned-{two_reviewers['boss'].pk}"
    ).exists()
    with time_machine.travel(campaign.deadline + timedelta(minutes=1), tick=False):
        assert _sweep()["closed"] == 1
    assert set(items.values_list("status", flat=True)) == {ItemStatus.REVOKED}


def test_campaign_page_previews_the_default_action(
    two_reviewers: Any, make_definition: Any, launched: Any, web_as: Any, iam_admin: Any
) -> None:
    campaign = launched(make_definition())
    page = web_as(iam_admin).get(f"/campaigns/{campaign.pk}/")
    assert b"These 4 grant(s) will be revoked." in page.content


def test_report_shows_completion_chart_and_overdue_reviewers(
    two_reviewers: Any, make_definition: Any, launched: Any, web_as: Any, iam_admin: Any
) -> None:
    campaign = launched(make_definition())
    for item in ReviewItem.objects.filter(campaign=campaign, reviewer=two_reviewers["bob"]):
        services.review_item_decide(actor=two_reviewers["bob"], item=item, decision="revoke", comment="unused")
    with time_machine.travel(campaign.deadline + timedelta(minutes=1), tick=False):
        _sweep()
        page = web_as(iam_admin).get(f"/campaigns/{campaign.pk}/report/")
        csv_response = web_as(iam_admin).get(f"/campaigns/{campaign.pk}/report.csv")
    body = page.content.decode()
    assert (
        page.status_code == 200 and "<svg" in body and "Items decided per day" in body and 'class="chart-bar"' in body
    )
    assert 'id="overdue"' in body and "alice" in body.split('id="overdue"')[1]
    lines = b"".join(csv_response.streaming_content).decode().strip().splitlines()
    assert lines[0].startswith("campaign,item_id") and len(lines) == 5
    assert sum("True" in line.split(",")[15] for line in lines[1:]) == 2  # by_default column


def test_sweep_resumes_a_launch_whose_worker_died(two_reviewers: Any, make_definition: Any, iam_admin: Any) -> None:
    campaign = services.campaign_create(actor=iam_admin, definition=make_definition())
    services.campaign_launch_request(actor=iam_admin, campaign=campaign)
    with time_machine.travel(timezone.now() + timedelta(minutes=30), tick=False):
        assert _sweep()["resumed"] == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE and campaign.items_total == 4
