"""Where events come from besides the audit trail, and what an event carries: the object's
current API representation (the same fields GET returns), its ticket_ref, and what happened."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from approvals import services as approval_services
from approvals.campaigns import services as campaign_services
from approvals.campaigns import tasks as campaign_tasks
from approvals.campaigns.models import ReviewItem
from governance.models import OutboundEmail, User
from governance.webhooks import services
from governance.webhooks.models import WebhookDelivery
from inventory.models import Grant, Integration, ResourceSystem, Scope
from inventory.services import grant_revoke

pytestmark = pytest.mark.django_db

TICKET = "CHG0042"


@pytest.fixture
def granted(owner: User) -> Callable[..., list[Grant]]:
    system = ResourceSystem.objects.create(code="crm", name="CRM")
    scopes = [
        Scope.objects.create(system=system, name=n, code=f"crm:{n}", sensitivity="high", access="write")
        for n in ("a", "b", "c")
    ]

    def make(expires_in_days: int = 100) -> list[Grant]:
        integration = Integration.objects.create(
            name="Ticketed bot",
            kind="agent",
            purpose="p",
            business_owner=owner,
            status="active",
            risk_tier="high",
            ticket_ref=TICKET,
        )
        return [
            Grant.objects.create(
                integration=integration,
                scope=s,
                source_type="test",
                source_id="1",
                expires_at=timezone.now() + timedelta(days=expires_in_days),
            )
            for s in scopes
        ]

    return make


def _subscribe(iam_admin: User, *patterns: str) -> None:
    services.subscription_create(
        actor=iam_admin, name="ticketing", target_url="https://ticketing.example.com/hook", event_types=patterns
    )


def _payloads(event_type: str) -> list[dict[str, Any]]:
    return [services.payload(d) for d in WebhookDelivery.objects.filter(event_type=event_type).order_by("pk")]


def test_grant_expiring_is_sent_once_per_grant_and_warning(iam_admin: User, granted: Any) -> None:
    grants = granted(expires_in_days=10)
    _subscribe(iam_admin, "grant.*")
    approval_services.grants_warn_expiring()
    approval_services.grants_warn_expiring()  # the daily job again: nothing new
    events = _payloads("grant.expiring")
    assert sorted(int(e["target"]["id"]) for e in events) == sorted(g.pk for g in grants)
    first = events[0]
    assert first["ticket_ref"] == TICKET and first["data"]["ticket_ref"] == TICKET
    assert first["data"]["scope"].startswith("crm:") and first["data"]["active"] is True  # GET /grants/{id}/ fields
    assert first["details"]["warning_days"] == 14
    # Three days before: the second warning, once.
    approval_services.grants_warn_expiring(now=timezone.now() + timedelta(days=8))
    approval_services.grants_warn_expiring(now=timezone.now() + timedelta(days=8))
    days = sorted(e["details"]["warning_days"] for e in _payloads("grant.expiring"))
    assert days == [3, 3, 3, 14, 14, 14]


def test_grant_expiring_reaches_the_ticketing_side_when_no_owner_has_an_email_address(
    iam_admin: User, owner: User, granted: Any
) -> None:
    User.objects.filter(pk=owner.pk).update(email="")
    grants = granted(expires_in_days=10)
    _subscribe(iam_admin, "grant.*")
    assert approval_services.grants_warn_expiring() == 0  # no email could be sent
    approval_services.grants_warn_expiring()
    assert sorted(int(e["target"]["id"]) for e in _payloads("grant.expiring")) == sorted(g.pk for g in grants)


def test_a_grant_first_seen_two_days_before_expiry_gets_the_closest_warning_only(
    iam_admin: User, owner: User, granted: Any
) -> None:
    grants = granted(expires_in_days=2)
    _subscribe(iam_admin, "grant.*")
    assert approval_services.grants_warn_expiring() == 1  # one email to the one owner
    assert [m.key.split("-")[2] for m in OutboundEmail.objects.filter(recipient=owner)] == ["3d"]
    assert sorted(e["details"]["warning_days"] for e in _payloads("grant.expiring")) == [3] * len(grants)


def test_no_event_rows_without_a_matching_subscription(iam_admin: User, granted: Any) -> None:
    granted(expires_in_days=10)
    _subscribe(iam_admin, "integration.*")
    approval_services.grants_warn_expiring()
    assert not WebhookDelivery.objects.filter(event_type="grant.expiring").exists()


def test_launch_assigns_each_item_once_with_its_representation(iam_admin: User, owner: User, granted: Any) -> None:
    grants = granted()
    _subscribe(iam_admin, "review_item.*", "campaign.*")
    definition = campaign_services.definition_save(
        actor=iam_admin, values={"name": "Quarterly", "owner": iam_admin, "duration_days": 14}
    )
    campaign = campaign_services.campaign_create(actor=iam_admin, definition=definition)
    campaign_services.campaign_launch_request(actor=iam_admin, campaign=campaign)
    campaign_tasks.campaign_launch(campaign.pk)
    campaign_tasks.campaign_launch(campaign.pk)  # a retried task: the launch is finished, nothing again
    items = set(ReviewItem.objects.filter(campaign=campaign).values_list("pk", flat=True))
    assigned = _payloads("review_item.assigned")
    assert len(items) == len(grants) == len(assigned)
    assert {int(e["target"]["id"]) for e in assigned} == items
    event = assigned[0]
    assert event["ticket_ref"] == TICKET
    assert event["data"]["status"] == "open" and event["data"]["reviewer"] == event["details"]["reviewer"]
    assert event["details"]["campaign"] == campaign.pk
    launched = _payloads("campaign.launched")
    assert len(launched) == 1 and launched[0]["data"]["items_total"] == len(grants)


def test_integration_event_carries_the_api_representation(iam_admin: User, owner: User, granted: Any) -> None:
    from inventory.api.serializers import IntegrationSerializer

    grants = granted()
    integration = grants[0].integration
    _subscribe(iam_admin, "grant.revoked")
    grant_revoke(actor=iam_admin, grant=grants[0], reason="No longer needed")
    (event,) = _payloads("grant.revoked")
    assert event["data"]["status"] == "revoked" and event["data"]["ticket_ref"] == TICKET
    assert event["details"]["actor"] == iam_admin.username and event["details"]["reason"] == "No longer needed"
    from governance.webhooks.events import represent

    shown = represent("inventory.integration", str(integration.pk), {})
    assert set(IntegrationSerializer.Meta.fields) <= set(shown)
    assert shown["ticket_ref"] == TICKET and shown["risk_tier"] == integration.risk_tier
