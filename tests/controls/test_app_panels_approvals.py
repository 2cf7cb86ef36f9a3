"""The approvals' dashboard panels: requests decided per week, the median and 90th percentile
time to decision (nearest rank, the same on SQLite and PostgreSQL), overdue steps, and the
running campaigns' progress — each in a fixed number of queries."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone

from approvals import dashboard_panels
from approvals.campaigns import services as campaign_services
from approvals.campaigns import tasks as campaign_tasks
from approvals.campaigns.models import Campaign, ReviewItem
from approvals.models import AccessRequest, RequestStatus, RequestStep, StepStatus
from approvals.services import default_workflows_ensure, request_decide
from governance import dashboard
from governance.actors import Actor
from governance.models import User
from inventory.models import Grant, Integration, IntegrationStatus, ResourceSystem, Scope
from inventory.signals import integration_submitted

pytestmark = pytest.mark.django_db

# A Wednesday noon: the week started on Monday the 2nd.
NOW = datetime(2025, 7, 9, 12, 0, tzinfo=timezone.get_fixed_timezone(0))


@pytest.fixture
def integration(owner: User) -> Integration:
    return Integration.objects.create(
        name="Sales copilot", kind="agent", purpose="Drafts replies", business_owner=owner, status="active"
    )


@pytest.fixture
def decided(integration: Integration, owner: User) -> Callable[..., AccessRequest]:
    """A request submitted at ``created`` and closed (approved by default) ``after`` later."""

    def make(
        created: datetime, after: timedelta, status: str = RequestStatus.APPROVED, kind: str = "registration"
    ) -> AccessRequest:
        return AccessRequest.objects.create(
            type=kind,
            integration=integration,
            requester=owner,
            risk_tier="low",
            status=status,
            created_at=created,
            closed_at=created + after,
        )

    return make


def build(panel_key: str, user: User) -> dict[str, Any]:
    request = RequestFactory().get("/dashboard/")
    request.user = user
    (panel,) = [panel for panel in dashboard.panels() if panel.key == panel_key]
    context = panel.build(request)
    assert context is not None
    return context


def nearest_rank(values: list[int], point: float) -> int:
    ordered = sorted(values)
    return ordered[math.ceil(point * len(ordered)) - 1]


# --- Percentiles --------------------------------------------------------------------------------


def test_median_and_90th_percentile_are_nearest_rank_values(decided, django_assert_num_queries):
    for hours in (7, 3, 10, 1, 5, 9, 2, 8, 4, 6):
        decided(NOW - timedelta(days=20), timedelta(hours=hours))
    with django_assert_num_queries(1):
        rows, (median, p90) = dashboard_panels.percentiles(
            AccessRequest.objects.all(), dashboard_panels.decision_time(), (0.5, 0.9)
        )
    assert rows == 10
    assert median == timedelta(hours=5), "the 5th of 10 in order"
    assert p90 == timedelta(hours=9), "the 9th of 10 in order"


def test_percentiles_with_ties_and_a_single_row(decided):
    for hours in (1, 1, 1, 1, 5):
        decided(NOW - timedelta(days=3), timedelta(hours=hours))
    rows, (median, p90) = dashboard_panels.percentiles(
        AccessRequest.objects.all(), dashboard_panels.decision_time(), (0.5, 0.9)
    )
    assert (rows, median, p90) == (5, timedelta(hours=1), timedelta(hours=5))
    first = AccessRequest.objects.order_by("pk")[0]
    AccessRequest.objects.exclude(pk=first.pk).delete()
    rows, (median, p90) = dashboard_panels.percentiles(
        AccessRequest.objects.all(), dashboard_panels.decision_time(), (0.5, 0.9)
    )
    assert (rows, median, p90) == (1, timedelta(hours=1), timedelta(hours=1))


def test_percentiles_of_nothing_are_none(db):
    rows, values = dashboard_panels.percentiles(
        AccessRequest.objects.all(), dashboard_panels.decision_time(), (0.5, 0.9)
    )
    assert (rows, values) == (0, [None, None])


def test_percentiles_match_a_reference_on_random_durations(decided):
    chance = random.Random(15)
    minutes = [chance.choice([chance.randint(1, 5000), 30, 30, 90]) for _ in range(53)]
    for value in minutes:
        decided(NOW - timedelta(days=chance.randint(1, 60)), timedelta(minutes=value))
    points = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)
    rows, values = dashboard_panels.percentiles(AccessRequest.objects.all(), dashboard_panels.decision_time(), points)
    assert rows == 53
    assert values == [timedelta(minutes=nearest_rank(minutes, point)) for point in points]


@pytest.mark.postgres
def test_postgresql_percentile_disc_and_the_window_agree(decided):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's own percentile function")
    chance = random.Random(7)
    seconds = [chance.randint(60, 900_000) for _ in range(41)] + [600] * 5
    for value in seconds:
        decided(NOW - timedelta(days=5), timedelta(seconds=value))
    points = (0.5, 0.9, 0.95)
    requests, duration = AccessRequest.objects.all(), dashboard_panels.decision_time()
    rows, values = dashboard_panels.percentiles(requests, duration, points)
    by_window = dashboard_panels.percentiles_by_window(requests, duration, points)
    assert rows == by_window["rows"] == 46
    assert values == [by_window[f"p{index}"] for index in range(len(points))]
    assert values == [timedelta(seconds=nearest_rank(seconds, point)) for point in points]


def test_a_percentile_is_a_fraction():
    with pytest.raises(ValueError, match="fraction above 0 and at most 1"):
        dashboard_panels.PercentileDisc(dashboard_panels.decision_time(), 50)


# --- The throughput panel -----------------------------------------------------------------------


def test_throughput_counts_decided_requests_per_week_and_times_the_last_90_days(
    decided, integration, owner, iam_admin, django_assert_num_queries
):
    decided(NOW - timedelta(days=1), timedelta(hours=2))  # this week (Tuesday 12:00 -> 14:00)
    decided(NOW - timedelta(days=3, hours=1), timedelta(hours=4), RequestStatus.REJECTED)  # last Sunday: last week
    decided(NOW - timedelta(days=10), timedelta(hours=30))  # last week
    decided(NOW - timedelta(days=60), timedelta(hours=50))  # 9 weeks ago
    decided(NOW - timedelta(days=100), timedelta(hours=1))  # outside the 12 weeks and the 90 days
    decided(NOW - timedelta(days=2), timedelta(hours=1), RequestStatus.WITHDRAWN)  # not a decision
    decided(NOW - timedelta(days=1), timedelta(minutes=3), kind="jit_elevation")  # counted apart
    AccessRequest.objects.create(
        type="registration", integration=integration, requester=owner, risk_tier="low", created_at=NOW
    )  # still in review
    with time_machine.travel(NOW, tick=False), django_assert_num_queries(3):
        context = build("approvals-throughput", iam_admin)
    table = {row["label"]: row["cells"] for row in context["chart"]["table"]["rows"]}
    assert len(table) == 12
    assert table["07 Jul"] == ["1", "0", "1"], "this week: one approved"
    assert table["30 Jun"] == ["1", "1", "2"], "last week: one approved, one rejected"
    assert table["12 May"] == ["1", "0", "1"]
    assert sum(int(cells[-1]) for cells in table.values()) == 4
    assert context["decided"] == 4
    # Decision times over 90 days: 2 h, 4 h, 30 h, 50 h -> median the 2nd (4 h), 90th the 4th (50 h).
    assert context["median"] == timedelta(hours=4)
    assert context["p90"] == timedelta(hours=50)
    assert (context["median_text"], context["p90_text"]) == ("4 h", "2.1 days")
    assert context["overdue"] == 0


def test_decision_time_runs_from_submission_to_the_last_approval(owner, reviewer, iam_admin):
    default_workflows_ensure()
    system = ResourceSystem.objects.create(code="crm", name="CRM")
    scope = Scope.objects.create(system=system, name="read", code="crm:read", sensitivity="low")
    integration = Integration.objects.create(
        name="Notes bot", kind="chatbot", purpose="Notes", business_owner=owner, status=IntegrationStatus.PENDING
    )
    with time_machine.travel(NOW - timedelta(days=2), tick=False):
        integration_submitted.send(
            sender=Integration, integration=integration, actor=Actor.coerce(owner), scopes=[scope]
        )
    request = AccessRequest.objects.get(integration=integration)
    with time_machine.travel(NOW - timedelta(days=2) + timedelta(hours=3), tick=False):
        request_decide(actor=reviewer, request=request, decision="approve")
    with time_machine.travel(NOW, tick=False):
        context = build("approvals-throughput", iam_admin)
    assert context["decided"] == 1
    assert context["median"] == context["p90"] == timedelta(hours=3)


def test_overdue_counts_active_steps_past_their_due_time(decided, integration, owner, iam_admin):
    request = AccessRequest.objects.create(
        type="registration", integration=integration, requester=owner, risk_tier="low", created_at=NOW
    )
    for order, (status, due) in enumerate(
        [
            (StepStatus.ACTIVE, NOW - timedelta(hours=1)),  # overdue
            (StepStatus.ACTIVE, NOW - timedelta(days=3)),  # overdue
            (StepStatus.ACTIVE, NOW + timedelta(hours=1)),  # due later
            (StepStatus.APPROVED, NOW - timedelta(days=2)),  # decided
            (StepStatus.WAITING, None),  # not started
        ],
        start=1,
    ):
        RequestStep.objects.create(
            request=request, order=order, name=f"Step {order}", pool_kind="users", status=status, due_at=due
        )
    with time_machine.travel(NOW, tick=False):
        context = build("approvals-throughput", iam_admin)
    assert context["overdue"] == 2
    assert context["decided"] == 0 and context["median"] is None and context["median_text"] == "–"


def test_throughput_queries_do_not_grow_with_the_data(decided, iam_admin, django_assert_num_queries):
    for index in range(60):
        decided(NOW - timedelta(days=index), timedelta(hours=index % 7 + 1), RequestStatus.APPROVED)
    with time_machine.travel(NOW, tick=False), django_assert_num_queries(3):
        context = build("approvals-throughput", iam_admin)
    assert context["decided"] == 60


# --- Campaign progress --------------------------------------------------------------------------


@pytest.fixture
def launched_campaign(iam_admin: User, owner: User, reviewer: User) -> Callable[..., Campaign]:
    """A campaign over ``grants`` active grants of the owner's integrations, launched now."""
    system = ResourceSystem.objects.create(code="crm", name="CRM")
    scope = Scope.objects.create(system=system, name="read", code="crm:read", sensitivity="low")
    counter = {"n": 0}

    def launch(name: str, grants: int, *, duration_days: int = 14) -> Campaign:
        definition = campaign_services.definition_save(
            actor=iam_admin, values={"name": name, "owner": iam_admin, "duration_days": duration_days}
        )
        for _ in range(grants):
            counter["n"] += 1
            bot = Integration.objects.create(
                name=f"Bot {counter['n']}", kind="agent", purpose="demo", business_owner=owner, status="active"
            )
            Grant.objects.create(integration=bot, scope=scope, source_type="test", source_id="1")
        campaign = campaign_services.campaign_create(actor=iam_admin, definition=definition)
        campaign_services.campaign_launch_request(actor=iam_admin, campaign=campaign)
        campaign_tasks.campaign_launch(campaign.pk)
        # The next campaign selects only the grants made for it.
        Grant.objects.filter(review_items__campaign=campaign).update(status="revoked")
        campaign.refresh_from_db()
        return campaign

    return launch


def test_campaign_progress_shows_decided_of_total_and_revocations(
    launched_campaign, owner, iam_admin, django_assert_num_queries
):
    with time_machine.travel(NOW, tick=False):
        first = launched_campaign("Quarterly", 4)
    Grant.objects.update(status="active")
    items = list(ReviewItem.objects.filter(campaign=first).order_by("pk"))
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        campaign_services.review_item_decide(actor=iam_admin, item=items[0], decision="certify")
        campaign_services.review_item_decide(actor=iam_admin, item=items[1], decision="revoke", comment="Not used")
    Grant.objects.filter(review_items__campaign=first).update(status="revoked")
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        second = launched_campaign("Critical monthly", 2, duration_days=3)
    with time_machine.travel(NOW + timedelta(days=2), tick=False), django_assert_num_queries(2):
        context = build("campaign-progress", iam_admin)
    rows = context["rows"]
    assert [row["pk"] for row in rows] == [second.pk, first.pk], "nearest deadline first"
    quarterly = rows[1]
    assert (quarterly["decided"], quarterly["total"], quarterly["revoked"]) == (2, 4, 1)
    assert quarterly["share_text"] == "50%"
    assert quarterly["url"] == f"/campaigns/{first.pk}/"
    assert (rows[0]["total"], rows[0]["share"]) == (2, 0)
    assert context["chart"]["table"]["rows"][1]["link"] == f"/campaigns/{first.pk}/"
    assert not context["more"]


def test_campaign_progress_leaves_out_closed_campaigns_and_keeps_its_queries(
    launched_campaign, iam_admin, django_assert_num_queries
):
    with time_machine.travel(NOW, tick=False):
        campaigns = [launched_campaign(f"Run {index}", 3) for index in range(12)]
    Campaign.objects.filter(pk=campaigns[0].pk).update(status="closed")
    with django_assert_num_queries(2):
        context = build("campaign-progress", iam_admin)
    assert len(context["rows"]) == dashboard_panels.CAMPAIGN_ROWS
    assert context["more"], "eleven running: ten shown, and a link to the list"
    assert campaigns[0].pk not in [row["pk"] for row in context["rows"]]
