"""The ``review_item.assigned`` deliveries a launch writes: on PostgreSQL one ``INSERT ... SELECT``
writes exactly the rows the streamed path (``emit_many``) writes, item by item and subscription
by subscription; a small launch's deliveries are queued for sending at once, as before."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from approvals.campaigns.models import Campaign, CampaignDefinition, ReviewItem
from approvals.campaigns.services import launch
from governance.models import User
from governance.webhooks.models import WebhookDelivery, WebhookSubscription
from inventory.models import Grant, Integration, Scope

COMPARED = (
    "subscription_id",
    "event_type",
    "audit_event_id",
    "target_type",
    "target_id",
    "details",
    "status",
    "attempts",
    "claimed_at",
    "delivered_at",
    "last_status_code",
    "last_error",
)


def deliveries() -> list[tuple[Any, ...]]:
    return list(WebhookDelivery.objects.order_by("pk").values_list(*COMPARED))


@pytest.fixture
def subscriptions(iam_admin: User) -> list[WebhookSubscription]:
    return [
        WebhookSubscription.objects.create(
            name=name, target_url=f"https://hooks.example.com/{name}", event_types=patterns, secret_encrypted="x"
        )
        for name, patterns in (("items", ["review_item.*"]), ("other", ["grant.revoked"]), ("all", ["*"]))
    ]


@pytest.fixture
def campaign_with_items(
    catalog: dict[str, Scope],
    make_user: Callable[..., User],
    make_integration: Callable[..., Integration],
    make_grant: Callable[..., Grant],
    make_definition: Callable[..., CampaignDefinition],
    launched: Callable[..., Campaign],
) -> Campaign:
    owners = [make_user(f"launch_owner{index}") for index in range(3)]
    for index in range(7):
        integration = make_integration(owners[index % len(owners)])
        for scope in catalog.values():
            make_grant(integration, scope)
    campaign = launched(make_definition(resource_systems=[catalog["read"].system]))
    # One item assigned to a group, to carry its name in the details.
    group = Group.objects.create(name="Launch reviewers")
    ReviewItem.objects.filter(pk=ReviewItem.objects.filter(campaign=campaign).order_by("pk")[1].pk).update(
        reviewer=None, reviewer_group=group
    )
    return campaign


def test_the_items_deliveries_are_the_rows_the_streamed_path_writes(
    campaign_with_items: Campaign, subscriptions: list[WebhookSubscription]
) -> None:
    campaign = campaign_with_items
    WebhookDelivery.objects.all().delete()
    campaign.items_total = ReviewItem.objects.filter(campaign=campaign).count()
    written = launch._emit_assigned(campaign)
    assert written == campaign.items_total * 2  # "items" and "all" ask for it, "other" does not
    set_based = deliveries()
    rows = list(WebhookDelivery.objects.values_list("event_id", "occurred_at", "next_attempt_at", "give_up_at"))
    assert len({event_id for event_id, *_ in rows}) == written
    assert all(isinstance(event_id, uuid.UUID) and event_id.version == 4 for event_id, *_ in rows)
    assert all(give_up - due == timedelta(hours=settings.WEBHOOK_RETRY_HOURS) for _id, _at, due, give_up in rows)

    WebhookDelivery.objects.all().delete()
    assert launch._emit_assigned_streamed(campaign) == written
    assert set_based == deliveries()
    reviewers = [row[5]["reviewer"] for row in set_based]
    groups = [row[5]["reviewer_group"] for row in set_based]
    assert groups.count("Launch reviewers") == 2 and reviewers.count(None) == 2


def test_a_small_launch_queues_its_deliveries_at_once(
    campaign_with_items: Campaign,
    subscriptions: list[WebhookSubscription],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    campaign = campaign_with_items
    WebhookDelivery.objects.all().delete()
    campaign.items_total = ReviewItem.objects.filter(campaign=campaign).count()
    sent: list[int] = []
    monkeypatch.setattr("governance.webhooks.events._queue_sends", sent.extend)
    with django_capture_on_commit_callbacks(execute=True):
        written = launch._emit_assigned(campaign)
    assert 0 < written <= launch.SEND_AT_ONCE
    assert sorted(sent) == sorted(WebhookDelivery.objects.values_list("pk", flat=True))
