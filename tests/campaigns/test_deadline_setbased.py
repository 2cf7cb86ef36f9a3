"""The deadline writes each chunk with set-based statements and gives exactly the results of the
per-row path it replaced (kept in ``deadline_setbased_reference``): the same items, grants,
history rows, audit events (in the same order, with the same payloads and owners), webhook
deliveries and emails. Each case runs the reference close inside a savepoint, records what it
wrote, rolls it back and runs the real close on the very same rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models import Max
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.campaigns import services
from approvals.campaigns.models import Campaign, CampaignStatus, ItemStatus, ReviewItem
from governance.audit import verify_chain
from governance.models import AuditEvent, OutboundEmail, User
from governance.roles import Role
from governance.webhooks.models import WebhookDelivery, WebhookSubscription
from inventory.models import Grant, GrantStatus, Scope
from inventory.services import grant_revoke
from tests.campaigns.deadline_setbased_reference import reference_campaign_close

HistoricalGrant = Grant.history.model

# Times differ between two runs: only whether they are set is compared.
_TIMES = ("decided_at", "applied_at", "escalated_at", "ended_at", "closed_at", "confirmed_at")


@pytest.fixture
def world(
    make_user: Any, make_integration: Any, make_grant: Any, catalog: dict[str, Scope], iam_admin: User
) -> dict[str, Any]:
    """Owners with and without managers, one who left (their items go to the fallback group),
    grants granted at different times and some with an expiry, a confirmation group, and a
    webhook subscription to every event."""
    boss = make_user("boss", Role.BUSINESS_USER)
    people = {
        "alice": make_user("alice", Role.BUSINESS_USER, manager=boss),
        "bob": make_user("bob", Role.BUSINESS_USER, manager=boss),
        "carol": make_user("carol", Role.BUSINESS_USER),
        "dave": make_user("dave", Role.BUSINESS_USER),
    }
    tech = make_user("tech", Role.BUSINESS_USER)
    fallback = Group.objects.create(name="Deadline fallback")
    gina = make_user("gina", Role.BUSINESS_USER)
    fallback.user_set.add(gina)
    confirmers = Group.objects.create(name="Deadline confirmers")
    confirmers.user_set.add(make_user("conf", Role.BUSINESS_USER))
    now = timezone.now()
    for index, owner in enumerate(people.values()):
        integration = make_integration(owner, technical_owner=tech, name=f"Bot of {owner.username}")
        for offset, code in enumerate(("read", "write", "admin")):
            expiry = {"expires_at": now + timedelta(days=30 + offset)} if (index + offset) % 2 else {}
            make_grant(integration, catalog[code], granted_at=now - timedelta(days=(offset * 7 + index) % 5), **expiry)
    people["dave"].is_active = False
    people["dave"].save(update_fields=["is_active"])
    WebhookSubscription.objects.create(
        name="Everything", target_url="https://hooks.example.com/all", event_types=["*"], secret_encrypted="x"
    )
    return {**people, "boss": boss, "fallback": fallback, "confirmers": confirmers, "gina": gina, "admin": iam_admin}


def _marks() -> dict[str, int]:
    """The last id of each table a close appends to, before it runs."""
    return {
        "audit": AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0,
        "history": HistoricalGrant.objects.aggregate(last=Max("history_id"))["last"] or 0,
        "delivery": WebhookDelivery.objects.aggregate(last=Max("id"))["last"] or 0,
        "email": OutboundEmail.objects.aggregate(last=Max("id"))["last"] or 0,
    }


def _untimed(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: (value is not None if key in _TIMES else value) for key, value in row.items()}


def _outcome(campaign: Campaign, marks: dict[str, int]) -> dict[str, Any]:
    """Everything a close writes, without ids it allocates, times and hashes."""
    events = list(
        AuditEvent.objects.filter(id__gt=marks["audit"])
        .order_by("id")
        .values_list(
            "id", "action", "target_type", "target_id", "target_repr", "actor_username", "actor_kind",
            "owner_id", "owner_username", "before", "after", "reason",
        )
    )  # fmt: skip
    position = {event[0]: index for index, event in enumerate(events)}
    deliveries = [
        {**row, "audit_event_id": position.get(row["audit_event_id"])}
        for row in WebhookDelivery.objects.filter(id__gt=marks["delivery"])
        .order_by("id")
        .values("subscription_id", "event_type", "audit_event_id", "target_type", "target_id", "details", "status")
    ]
    return {
        "campaign": _untimed(
            Campaign.objects.filter(pk=campaign.pk).values("status", "deadline", "escalated_at", "closed_at")[0]
        ),
        "items": [_untimed(row) for row in ReviewItem.objects.filter(campaign=campaign).order_by("pk").values()],
        "grants": [_untimed(row) for row in Grant.objects.order_by("pk").values()],
        "history": [
            _untimed(row)
            for row in HistoricalGrant.objects.filter(history_id__gt=marks["history"]).order_by("history_id").values()
        ],
        "events": [event[1:] for event in events],
        "deliveries": deliveries,
        "emails": list(
            OutboundEmail.objects.filter(id__gt=marks["email"])
            .order_by("id")
            .values("key", "recipient_id", "to_address", "subject", "body_text", "body_html", "status")
        ),
    }


def _without_history_times(outcome: dict[str, Any]) -> dict[str, Any]:
    history = [
        {key: value for key, value in row.items() if key not in ("history_id", "history_date")}
        for row in outcome["history"]
    ]
    return {**outcome, "history": history}


def _both_closes(campaign: Campaign) -> tuple[dict[str, Any], dict[str, Any]]:
    """The reference close's outcome (rolled back) and the real close's, on the same rows."""
    marks = _marks()
    with transaction.atomic():
        reference_campaign_close(campaign=campaign)
        expected = _without_history_times(_outcome(campaign, marks))
        transaction.set_rollback(True)
    services.campaign_close(campaign=campaign)
    actual = _without_history_times(_outcome(campaign, marks))
    return expected, actual


def _decide(item: ReviewItem, decision: str, world: dict[str, Any]) -> None:
    reviewer = item.reviewer or world["gina"]  # a member of the fallback group
    services.review_item_decide(
        actor=reviewer, item=item, decision=decision, comment="not used" if decision == "revoke" else ""
    )


def _assert_same(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    for part in expected:
        assert actual[part] == expected[part], part
    assert verify_chain()[1] is None


@pytest.mark.parametrize(
    ("default_action", "granularity", "apply_mode"),
    [
        ("revoke", "grant", "at_close"),
        ("revoke", "integration", "immediate"),
        ("keep_flag", "grant", "at_close"),
        ("keep_flag", "integration", "at_close"),
    ],
)
def test_the_default_action_writes_what_the_per_row_path_wrote(
    world: dict[str, Any],
    make_definition: Callable[..., Any],
    launched: Callable[..., Campaign],
    default_action: str,
    granularity: str,
    apply_mode: str,
) -> None:
    campaign = launched(
        make_definition(
            default_action=default_action,
            granularity=granularity,
            apply_mode=apply_mode,
            fallback_group=world["fallback"],
            second_stage="critical_keeps",
            second_stage_group=world["confirmers"],
        )
    )
    items = list(ReviewItem.objects.filter(campaign=campaign).order_by("pk"))
    assert len(items) >= 4 and any(item.reviewer is None for item in items)
    _decide(items[0], "revoke", world)  # held for the close, or applied at once
    _decide(items[1], "certify", world)
    critical = [item for item in items[2:] if item.critical and item.reviewer is not None]
    assert critical
    _decide(critical[0], "certify", world)  # awaiting confirmation: undecided at the deadline
    covered = next(item for item in items[2:] if item.status == ItemStatus.OPEN and item.covered_grant_ids())
    grant_revoke(
        actor=world["admin"], grant=Grant.objects.get(pk=covered.covered_grant_ids()[0]), reason="Ended before"
    )

    expected, actual = _both_closes(campaign)

    _assert_same(expected, actual)
    assert actual["campaign"]["status"] == CampaignStatus.CLOSED
    actions = {event[0] for event in actual["events"]}
    assert "review_item.defaulted" in actions and actual["deliveries"] and actual["history"]
    if default_action == "revoke":
        assert "grant.revoked" in actions


@pytest.mark.parametrize("fallback", ["group", "user"])
def test_the_escalate_default_writes_what_the_per_row_path_wrote(
    world: dict[str, Any], make_definition: Callable[..., Any], launched: Callable[..., Campaign], fallback: str
) -> None:
    extra = {"fallback_group": world["fallback"]} if fallback == "group" else {"fallback_user": world["boss"]}
    campaign = launched(make_definition(default_action="escalate", escalation_grace_days=3, **extra))
    items = list(ReviewItem.objects.filter(campaign=campaign).order_by("pk"))
    assert any(item.reviewer is None for item in items) == (fallback == "group")
    _decide(items[0], "revoke", world)

    expected, actual = _both_closes(campaign)  # the first deadline reassigns and extends

    _assert_same(expected, actual)
    assert {event[0] for event in actual["events"]} >= {"review_item.escalated", "campaign.escalated"}
    assert actual["emails"] and actual["campaign"]["status"] == CampaignStatus.ACTIVE

    expected, actual = _both_closes(campaign)  # the extended deadline revokes what is left

    _assert_same(expected, actual)
    assert actual["campaign"]["status"] == CampaignStatus.CLOSED
    assert {"review_item.defaulted", "grant.revoked"} <= {event[0] for event in actual["events"]}


def test_a_chunk_costs_the_same_queries_whatever_its_size(
    world: dict[str, Any],
    make_definition: Callable[..., Any],
    launched: Callable[..., Campaign],
    make_integration: Any,
    make_grant: Any,
    catalog: dict[str, Scope],
) -> None:
    """One chunk of 12 items and one of 24 (each item a grant to end) take the same statements."""
    counts = []
    for _round in range(2):
        campaign = launched(make_definition(default_action="revoke"))
        with CaptureQueriesContext(connection) as queries:
            services.campaign_close(campaign=campaign)
        counts.append(len(queries.captured_queries))
        assert set(ReviewItem.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"revoked"}
        Grant.objects.update(status=GrantStatus.ACTIVE, ended_at=None, ended_by=None, end_reason="")
        for owner in ("alice", "bob", "carol", "dave"):
            integration = make_integration(world[owner])
            for scope in catalog.values():
                make_grant(integration, scope)
    assert counts[0] == counts[1]
