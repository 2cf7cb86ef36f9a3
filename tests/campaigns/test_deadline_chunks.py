"""Grants ended in slices of any size (the deadline ends its chunk's grants in one slice) write
what the per-row path wrote: the same grants, history rows and audit events, the events of each
slice in the grants' usual order (newest granted first, then by id). On PostgreSQL one UPDATE
locks, ends and returns the grants; elsewhere a locking read comes first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from approvals.campaigns import services
from approvals.campaigns.models import Campaign, ItemStatus, ReviewItem
from governance.actors import Actor
from governance.audit import EventSpec, audit_record_many, verify_chain
from governance.models import AuditEvent, User
from governance.roles import Role
from inventory.models import Grant, GrantStatus, Scope
from inventory.services import grant_revoke, grants_end_many
from tests.campaigns.deadline_setbased_reference import reference_grants_end_many

HistoricalGrant = Grant.history.model

_EVENT_FIELDS = ("action", "target_type", "target_id", "target_repr", "owner_id", "before", "after", "reason")


@pytest.fixture
def grants(
    make_user: Any, make_integration: Any, make_grant: Any, catalog: dict[str, Scope], iam_admin: User
) -> list[Grant]:
    """Nine grants of three owners, granted at times out of id order (two at the same time), some
    with an expiry; one already revoked."""
    now = timezone.now()
    made = []
    for index in range(3):
        integration = make_integration(make_user(f"owner{index}", Role.BUSINESS_USER))
        for offset, scope in enumerate(catalog.values()):
            expiry = {"expires_at": now + timedelta(days=9 + offset)} if (index + offset) % 2 else {}
            granted = now - timedelta(days=(offset * 5 + index * 2) % 4)
            made.append(make_grant(integration, scope, granted_at=granted, **expiry))
    grant_revoke(actor=iam_admin, grant=made[4], reason="Ended before")
    return made


def _written(audit_after: int, history_after: int) -> dict[str, Any]:
    """The grants, the history rows and the events written after the given ids (without times,
    hashes and ids allocated)."""
    history = HistoricalGrant.objects.filter(history_id__gt=history_after).order_by("history_id")
    return {
        "grants": [{**row, "ended_at": row["ended_at"] is not None} for row in Grant.objects.order_by("pk").values()],
        "history": [
            {key: value for key, value in row.items() if key not in ("history_id", "history_date", "ended_at")}
            for row in history.values()
        ],
        "events": list(AuditEvent.objects.filter(id__gt=audit_after).order_by("id").values_list(*_EVENT_FIELDS)),
    }


def _marks() -> tuple[int, int]:
    return (
        AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0,
        HistoricalGrant.objects.aggregate(last=Max("history_id"))["last"] or 0,
    )


@pytest.mark.parametrize("left_to_caller", [False, True], ids=["audited here", "events left to the caller"])
def test_ending_grants_writes_what_the_per_row_path_wrote(
    grants: list[Grant], iam_admin: User, left_to_caller: bool
) -> None:
    """Either way the same grants, history rows and events, in the same order. With ``events``
    nothing is audited by the service: the caller appends the events in its transaction."""
    ids = sorted(grant.pk for grant in grants)
    marks = _marks()
    with transaction.atomic():
        reference_grants_end_many(
            actor=iam_admin, grant_ids=ids, status=GrantStatus.REVOKED, reason="Gone", action="grant.revoked"
        )
        expected = _written(*marks)
        transaction.set_rollback(True)

    events: list[EventSpec] | None = [] if left_to_caller else None
    with transaction.atomic():
        ended = grants_end_many(
            actor=iam_admin,
            grant_ids=ids,
            status=GrantStatus.REVOKED,
            reason="Gone",
            action="grant.revoked",
            events=events,
        )
        if events is not None:
            assert not AuditEvent.objects.filter(id__gt=marks[0]).exists()
            assert len(events) == ended
            audit_record_many(actor=iam_admin, events=events)

    assert ended == len(grants) - 1
    actual = _written(*marks)
    for part in expected:
        assert actual[part] == expected[part], part
    assert verify_chain()[1] is None


def test_grants_ended_in_slices_are_audited_slice_by_slice_newest_first(grants: list[Grant], iam_admin: User) -> None:
    ids = sorted(grant.pk for grant in grants)
    marks = _marks()

    ended = grants_end_many(
        actor=Actor.coerce(iam_admin),
        grant_ids=ids,
        status=GrantStatus.EXPIRED,
        reason="Expired",
        action="grant.expired",
        chunk=4,
    )

    active = {grant.pk for grant in grants} - {grants[4].pk}
    assert ended == len(active)
    expected_order = []
    for start in range(0, len(ids), 4):
        in_slice = Grant.objects.filter(pk__in=[pk for pk in ids[start : start + 4] if pk in active])
        expected_order += [str(pk) for pk in in_slice.order_by("-granted_at", "id").values_list("pk", flat=True)]
    written = _written(*marks)
    assert [event[2] for event in written["events"]] == expected_order
    assert [str(row["id"]) for row in written["history"]] == expected_order
    assert {event[0] for event in written["events"]} == {"grant.expired"}
    assert all(row["status"] == GrantStatus.EXPIRED for row in written["history"])
    assert set(Grant.objects.filter(pk__in=active).values_list("status", flat=True)) == {GrantStatus.EXPIRED}
    assert Grant.objects.get(pk=grants[4].pk).status == GrantStatus.REVOKED  # already ended: left as it was
    assert verify_chain()[1] is None


def test_a_deadline_in_small_chunks_audits_each_chunk_then_its_grants(
    grants: list[Grant], make_definition: Callable[..., Any], launched: Callable[..., Campaign]
) -> None:
    campaign = launched(make_definition(default_action="revoke", apply_mode="immediate"))
    items = list(ReviewItem.objects.filter(campaign=campaign).order_by("pk"))
    marks = _marks()

    services.campaign_close(campaign=campaign, size=3)

    events = _written(*marks)["events"]
    item_events = [event for event in events if event[0] == "review_item.defaulted"]
    grant_events = [event for event in events if event[0] == "grant.revoked"]
    assert sorted(int(event[2]) for event in item_events) == [item.pk for item in items]
    active = sorted(grant.pk for grant in grants if grant.pk != grants[4].pk)
    assert sorted(int(event[2]) for event in grant_events) == active  # each once
    # Chunk by chunk: three items (by integration, then id), then the grants they cover.
    position = 0
    for start in range(0, len(items), 3):
        chunk = sorted(items[start : start + 3], key=lambda item: (item.integration_id, item.pk))
        assert [int(event[2]) for event in events[position : position + len(chunk)]] == [item.pk for item in chunk]
        position += len(chunk)
        covered = {pk for item in chunk for pk in item.covered_grant_ids()} & set(active)
        ordered = Grant.objects.filter(pk__in=covered).order_by("-granted_at", "id").values_list("pk", flat=True)
        assert [int(event[2]) for event in events[position : position + len(covered)]] == list(ordered)
        position += len(covered)
    assert events[position][0] == "campaign.closed"
    assert set(ReviewItem.objects.filter(campaign=campaign).values_list("status", flat=True)) == {ItemStatus.REVOKED}
    assert HistoricalGrant.objects.filter(history_id__gt=marks[1]).count() == len(active)
    assert verify_chain()[1] is None
