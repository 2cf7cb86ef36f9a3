"""Stored dashboard figures: the hourly coverage task measures the risk tiers and the owners'
ranking; the panels read them (agreeing with the live figures, in fewer queries), say as of
when, show a change from the next refresh on, and measure live when nothing recent is stored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import RequestFactory
from django.utils import timezone

from governance import dashboard
from governance.controls import figures, tasks
from governance.controls.models import StoredFigure
from governance.models import User
from governance.roles import Role
from inventory import dashboard_panels
from inventory.models import Integration, IntegrationStatus

pytestmark = pytest.mark.django_db

UTC = timezone.get_fixed_timezone(0)
TAKEN = datetime(2025, 7, 9, 14, 0, tzinfo=UTC)
SCORES = {"low": 5, "medium": 30, "high": 60, "critical": 90}


@pytest.fixture
def make_integration(owner: User) -> Callable[..., Integration]:
    counter = {"n": 0}

    def make(
        tier: str = "low", *, owner_user: User | None = None, status: str = IntegrationStatus.ACTIVE
    ) -> Integration:
        counter["n"] += 1
        return Integration.objects.create(
            name=f"Bot {counter['n']}",
            kind="agent",
            purpose="demo",
            business_owner=owner_user or owner,
            status=status,
            risk_tier=tier,
            risk_score=SCORES[tier],
        )

    return make


@pytest.fixture
def estate(make_integration, make_user) -> list[User]:
    """Three owners with active integrations of every tier, and some not active."""
    people = [make_user(f"person{index}", Role.BUSINESS_USER) for index in range(3)]
    for index, tier in enumerate(("low", "medium", "high", "critical", "critical", "high", "low", "medium")):
        make_integration(tier, owner_user=people[index % 3])
    make_integration("critical", owner_user=people[0], status=IntegrationStatus.RETIRED)
    make_integration("high", owner_user=people[1], status=IntegrationStatus.SUSPENDED)
    return people


def build(panel_key: str, user: User) -> dict[str, Any]:
    (panel,) = [item for item in dashboard.panels() if item.key == panel_key]
    request = RequestFactory().get("/dashboard/")
    request.user = user
    context = panel.build(request)
    assert context is not None
    return context


def tiers(context: dict[str, Any]) -> list[tuple[str, int]]:
    return [(tier["value"], tier["count"]) for tier in context["tiers"]]


def owners(context: dict[str, Any]) -> list[tuple[str, int, int, int]]:
    return [(row["owner"].username, row["risk"], row["integrations"], row["high"]) for row in context["rows"]]


def test_the_hourly_task_stores_both_figures_and_the_panels_agree_with_live(
    estate, iam_admin, django_assert_num_queries
):
    live_tiers, live_owners = build("risk-tiers", iam_admin), build("top-owners", iam_admin)
    assert live_tiers["as_of"] == "" and live_owners["as_of"] == ""
    with time_machine.travel(TAKEN, tick=False):
        tasks.coverage_snapshot()
    assert set(StoredFigure.objects.values_list("key", flat=True)) == {
        dashboard_panels.TIERS_FIGURE,
        dashboard_panels.OWNERS_FIGURE,
    }
    with time_machine.travel(TAKEN + timedelta(minutes=30), tick=False):
        with django_assert_num_queries(1):  # the stored figures
            stored_tiers = build("risk-tiers", iam_admin)
        with django_assert_num_queries(2):  # the stored figures, the people
            stored_owners = build("top-owners", iam_admin)
    assert tiers(stored_tiers) == tiers(live_tiers) == [("low", 2), ("medium", 2), ("high", 2), ("critical", 2)]
    assert (stored_tiers["total"], stored_tiers["high"]) == (live_tiers["total"], live_tiers["high"]) == (8, 4)
    assert stored_tiers["chart"] == live_tiers["chart"]
    assert owners(stored_owners) == owners(live_owners)
    assert [row["url"] for row in stored_owners["rows"]] == [row["url"] for row in live_owners["rows"]]
    assert stored_owners["chart"] == live_owners["chart"]
    assert stored_tiers["as_of"] == stored_owners["as_of"] == "14:00"


def test_a_change_shows_from_the_next_refresh_on(estate, make_integration, iam_admin):
    with time_machine.travel(TAKEN, tick=False):
        tasks.coverage_snapshot()
        make_integration("critical", owner_user=estate[2])
        Integration.objects.filter(business_owner=estate[0]).update(status=IntegrationStatus.RETIRED)
        assert dict(tiers(build("risk-tiers", iam_admin)))["critical"] == 2, "the stored counts until the refresh"
    with time_machine.travel(TAKEN + timedelta(hours=1), tick=False):
        tasks.coverage_snapshot()
        refreshed_tiers, refreshed_owners = build("risk-tiers", iam_admin), build("top-owners", iam_admin)
    StoredFigure.objects.all().delete()
    assert tiers(refreshed_tiers) == tiers(build("risk-tiers", iam_admin))
    assert owners(refreshed_owners) == owners(build("top-owners", iam_admin))
    assert "person0" not in [name for name, *_rest in owners(refreshed_owners)]
    assert refreshed_tiers["as_of"] == "15:00"


def test_stale_figures_are_not_shown_the_panel_counts_live(estate, make_integration, iam_admin):
    with time_machine.travel(TAKEN, tick=False):
        tasks.coverage_snapshot()
    make_integration("critical")
    with time_machine.travel(TAKEN + figures.MAX_AGE + timedelta(minutes=1), tick=False):
        context = build("risk-tiers", iam_admin)
        ranking = build("top-owners", iam_admin)
    assert context["as_of"] == "" and ranking["as_of"] == ""
    assert dict(tiers(context))["critical"] == 3, "counted now"
    assert owners(ranking) == owners(build("top-owners", iam_admin))


def test_the_dashboard_reads_both_stored_figures_in_one_query_and_says_as_of_when(
    estate, iam_admin, web_as, django_assert_max_num_queries
):
    with time_machine.travel(TAKEN, tick=False):
        tasks.coverage_snapshot()
    client = web_as(iam_admin)
    with time_machine.travel(TAKEN + timedelta(minutes=10), tick=False):
        page = client.get("/dashboard/").content.decode()
        with django_assert_max_num_queries(1000) as captured:
            client.get("/dashboard/")
    stored_reads = [query for query in captured.captured_queries if StoredFigure._meta.db_table in query["sql"]]
    assert len(stored_reads) == 1
    assert page.count("As of 14:00 (counted every hour).") == 2
    # The sprawl panel's registered count is the stored one too, and says so.
    assert "registered integrations as of 14:00, counted every hour" in page
    StoredFigure.objects.all().delete()
    live = client.get("/dashboard/").content.decode()
    assert "As of" not in live and "registered integrations as of" not in live


def test_as_of_names_the_day_when_it_is_not_today():
    late = TAKEN + timedelta(hours=9, minutes=30)
    with time_machine.travel(late + timedelta(minutes=15), tick=False):
        assert figures.as_of(late) == "23:30"
    with time_machine.travel(late + timedelta(hours=1), tick=False):
        assert figures.as_of(late) == "09 Jul 23:30"
    assert figures.as_of(None) == ""
