"""On PostgreSQL the deadline's chunks are written by several connections side by side: each
chunk's items and grants while the chunk before it appends its events. The result is what one
chunk after the other writes: every item defaulted once, every grant ended once, the events chunk
by chunk in order, the chain intact and a webhook delivery per event. A chunk that fails leaves
the chunks before it committed and those after it rolled back; the next close finishes the work.
Real concurrent transactions, one thread and one connection each."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from approvals.campaigns import services
from approvals.campaigns.models import Campaign, CampaignStatus, ItemStatus, ReviewItem
from approvals.campaigns.services import deadline
from governance import audit
from governance.audit import verify_chain
from governance.models import AuditEvent, User
from governance.roles import Role
from governance.webhooks.models import WebhookDelivery, WebhookSubscription
from inventory.models import Grant, GrantStatus, Scope

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs concurrent connections and advisory locks: runs in CI's PostgreSQL pass",
    ),
]

HistoricalGrant = Grant.history.model


@pytest.fixture(autouse=True)
def _no_delivery_from_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    # The outbox's on_commit hooks would enqueue through django-q's broker from the threads.
    monkeypatch.setattr("governance.services.outbox._schedule_delivery", lambda email_id: None)
    monkeypatch.setattr("governance.webhooks.events._queue_sends", lambda delivery_ids: None)


@pytest.fixture
def grants(
    make_user: Any, make_integration: Any, make_grant: Any, catalog: dict[str, Scope], iam_admin: User
) -> list[Grant]:
    """Fifteen grants of five owners, granted at times out of id order, some with an expiry."""
    now = timezone.now()
    made = []
    for index in range(5):
        integration = make_integration(make_user(f"owner{index}", Role.BUSINESS_USER))
        for offset, scope in enumerate(catalog.values()):
            expiry = {"expires_at": now + timedelta(days=9 + offset)} if (index + offset) % 2 else {}
            granted = now - timedelta(days=(offset * 5 + index * 2) % 4)
            made.append(make_grant(integration, scope, granted_at=granted, **expiry))
    return made


def _events_after(mark: int) -> list[tuple[str, int]]:
    return [
        (action, int(target_id))
        for action, target_id in AuditEvent.objects.filter(id__gt=mark)
        .order_by("id")
        .values_list("action", "target_id")
    ]


def _assert_chunk_by_chunk(events: list[tuple[str, int]], items: list[ReviewItem], size: int) -> int:
    """The events of ``items`` defaulted ``size`` at a time: each chunk's items (by integration,
    then id), then the grants they cover (newest granted first); returns where they end."""
    position = 0
    for start in range(0, len(items), size):
        chunk = sorted(items[start : start + size], key=lambda item: (item.integration_id, item.pk))
        assert events[position : position + len(chunk)] == [("review_item.defaulted", item.pk) for item in chunk]
        position += len(chunk)
        covered = {pk for item in chunk for pk in item.covered_grant_ids()}
        ordered = Grant.objects.filter(pk__in=covered).order_by("-granted_at", "id").values_list("pk", flat=True)
        assert events[position : position + len(covered)] == [("grant.revoked", pk) for pk in ordered]
        position += len(covered)
    return position


def test_chunks_written_side_by_side_give_what_one_after_the_other_gives(
    grants: list[Grant], make_definition: Callable[..., Any], launched: Callable[..., Campaign]
) -> None:
    WebhookSubscription.objects.create(
        name="Everything", target_url="https://hooks.example.com/all", event_types=["*"], secret_encrypted="x"
    )
    campaign = launched(make_definition(default_action="revoke", apply_mode="immediate"))
    items = list(ReviewItem.objects.filter(campaign=campaign).order_by("pk"))
    mark = AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0

    services.campaign_close(campaign=campaign, size=2, workers=3)

    events = _events_after(mark)
    end = _assert_chunk_by_chunk(events, items, 2)
    assert events[end:] == [("campaign.closed", campaign.pk)]
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CLOSED
    assert set(ReviewItem.objects.filter(campaign=campaign).values_list("status", flat=True)) == {ItemStatus.REVOKED}
    assert set(Grant.objects.values_list("status", flat=True)) == {GrantStatus.REVOKED}
    assert HistoricalGrant.objects.filter(history_type="~").count() == len(grants)
    written = AuditEvent.objects.filter(id__gt=mark)
    assert WebhookDelivery.objects.filter(audit_event__in=written).count() == written.count()
    assert verify_chain()[1] is None


@pytest.mark.parametrize("where", ["writing its items", "appending its events"])
def test_a_failed_chunk_keeps_the_chunks_before_it_and_the_next_close_finishes(
    grants: list[Grant],
    make_definition: Callable[..., Any],
    launched: Callable[..., Campaign],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """The third chunk (of two items) fails while it writes its items, or while it appends its
    events (a listener fails with the chain locked)."""
    campaign = launched(make_definition(default_action="revoke", apply_mode="immediate"))
    items = list(ReviewItem.objects.filter(campaign=campaign).order_by("pk"))
    mark = AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0
    writes = deadline._default_writes
    failing = items[4].pk

    def fail_on_the_third_chunk(default: Any, rows: list[tuple[Any, ...]], size: int) -> Any:
        if any(row[0] == failing for row in rows):
            raise RuntimeError("the database went away")
        return writes(default, rows, size)

    def listener(events: Sequence[AuditEvent]) -> None:
        if any(event.target_id == str(failing) and event.action == "review_item.defaulted" for event in events):
            raise RuntimeError("the listener went away")

    if where == "writing its items":
        monkeypatch.setattr(deadline, "_default_writes", fail_on_the_third_chunk)
    else:
        audit.register_listener(listener)
    try:
        with pytest.raises(RuntimeError, match="went away"):
            services.campaign_close(campaign=campaign, size=2, workers=2)
    finally:
        monkeypatch.setattr(deadline, "_default_writes", writes)
        if listener in audit._LISTENERS:
            audit._LISTENERS.remove(listener)

    decided = set(ReviewItem.objects.filter(campaign=campaign, by_default=True).values_list("pk", flat=True))
    assert decided == {item.pk for item in items[:4]}
    assert _assert_chunk_by_chunk(_events_after(mark), items[:4], 2) == len(_events_after(mark))
    assert verify_chain()[1] is None

    services.campaign_close(campaign=campaign, size=2, workers=2)

    events = _events_after(mark)
    counts = Counter(events)
    assert all(count == 1 for count in counts.values())
    assert {pk for action, pk in events if action == "review_item.defaulted"} == {item.pk for item in items}
    assert {pk for action, pk in events if action == "grant.revoked"} == {grant.pk for grant in grants}
    assert set(ReviewItem.objects.filter(campaign=campaign).values_list("status", flat=True)) == {ItemStatus.REVOKED}
    assert verify_chain()[1] is None


def test_items_covering_the_same_grant_end_it_once(
    grants: list[Grant], make_definition: Callable[..., Any], launched: Callable[..., Campaign]
) -> None:
    """Items of a campaign by integration, two of them made to cover one grant: whichever chunk
    ends it first, it is ended and audited once, and no chunk waits on another for ever."""
    campaign = launched(make_definition(default_action="revoke", apply_mode="immediate", granularity="integration"))
    items = list(ReviewItem.objects.filter(campaign=campaign).order_by("pk"))
    shared = items[0].covered_grant_ids()[0]
    items[1].grant_ids = [*items[1].covered_grant_ids(), shared]
    items[1].save(update_fields=["grant_ids"])
    mark = AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0
    done = threading.Event()

    def close() -> None:
        try:
            services.campaign_close(campaign=campaign, size=1, workers=2)
        finally:
            connection.close()
            done.set()

    threading.Thread(target=close, daemon=True).start()
    assert done.wait(30), "the chunks waited on each other"

    events = _events_after(mark)
    revoked = [pk for action, pk in events if action == "grant.revoked"]
    assert sorted(revoked) == sorted(grant.pk for grant in grants)
    assert set(ReviewItem.objects.filter(campaign=campaign).values_list("status", flat=True)) == {ItemStatus.REVOKED}
    assert verify_chain()[1] is None
