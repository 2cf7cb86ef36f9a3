"""The inventory's and discovery's dashboard panels and metrics: risk tiers, top owners by risk
held, sprawl over time, and the daily metrics behind the trends (registered integrations,
standing credentials, unregistered apps) measured now and for a past day from the rows' dates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import RequestFactory
from django.utils import timezone

from governance import dashboard
from governance.controls.models import MetricSnapshot
from governance.models import User
from governance.roles import Role
from inventory import dashboard_panels
from inventory.discovery import dashboard_panels as discovery_panels
from inventory.discovery.models import Finding
from inventory.models import Credential, Integration, IntegrationStatus
from inventory.services import integration_retire, integration_transition

pytestmark = pytest.mark.django_db

UTC = timezone.get_fixed_timezone(0)
# A Wednesday noon: the week started on Monday the 2nd.
NOW = datetime(2025, 7, 9, 12, 0, tzinfo=UTC)
SCORES = {"low": 5, "medium": 30, "high": 60, "critical": 90}


@pytest.fixture
def make_integration(owner: User) -> Callable[..., Integration]:
    counter = {"n": 0}

    def make(
        tier: str = "low", *, status: str = IntegrationStatus.ACTIVE, owner_user: User | None = None, **extra: Any
    ) -> Integration:
        counter["n"] += 1
        return Integration.objects.create(
            name=f"Bot {counter['n']}",
            kind="agent",
            purpose="demo",
            business_owner=owner_user or owner,
            status=status,
            risk_tier=tier,
            risk_score=extra.pop("risk_score", SCORES[tier]),
            **extra,
        )

    return make


def build(panel_key: str, user: User) -> dict[str, Any]:
    request = RequestFactory().get("/dashboard/")
    request.user = user
    (panel,) = [panel for panel in dashboard.panels() if panel.key == panel_key]
    context = panel.build(request)
    assert context is not None
    return context


def metric(key: str) -> dashboard.Metric:
    (found,) = [item for item in dashboard.metrics() if item.key == key]
    return found


# --- Risk tiers ---------------------------------------------------------------------------------


def test_risk_tiers_count_active_integrations_and_link_each_tier(
    make_integration, iam_admin, django_assert_num_queries
):
    for tier in ("low", "low", "medium", "high", "critical", "critical", "critical"):
        make_integration(tier)
    make_integration("critical", status=IntegrationStatus.PENDING)
    make_integration("high", status=IntegrationStatus.RETIRED)
    make_integration("high", status=IntegrationStatus.SUSPENDED)
    with django_assert_num_queries(2):  # nothing stored: the stored figures, then counted live
        context = build("risk-tiers", iam_admin)
    assert [(tier["value"], tier["count"]) for tier in context["tiers"]] == [
        ("low", 2),
        ("medium", 1),
        ("high", 1),
        ("critical", 3),
    ]
    assert (context["total"], context["high"]) == (7, 4)
    assert context["tiers"][3]["url"] == "/inventory/?status=active&risk_tier=critical"
    assert [row["link"] for row in context["chart"]["table"]["rows"]] == [tier["url"] for tier in context["tiers"]]
    assert context["chart"]["summary"] == "7 active integrations, 4 of them high or critical risk."


def test_risk_tiers_link_opens_the_list_the_count_came_from(make_integration, iam_admin, web_as):
    make_integration("critical")
    make_integration("critical")
    make_integration("low")
    context = build("risk-tiers", iam_admin)
    page = web_as(iam_admin).get(context["tiers"][3]["url"])
    assert page.status_code == 200
    assert page.content.decode().count("/inventory/") >= 2
    assert page.context["page"].paginator.count == 2


def test_risk_tiers_queries_do_not_grow_with_the_inventory(make_integration, iam_admin, django_assert_num_queries):
    for index in range(120):
        make_integration(("low", "medium", "high", "critical")[index % 4])
    with django_assert_num_queries(2):
        context = build("risk-tiers", iam_admin)
    assert context["total"] == 120


# --- Top owners ---------------------------------------------------------------------------------


def test_top_owners_rank_by_summed_risk_of_active_integrations(
    make_integration, make_user, iam_admin, django_assert_num_queries
):
    ann = make_user("ann", Role.BUSINESS_USER, first_name="Ann", last_name="Lee")
    bob = make_user("bob", Role.BUSINESS_USER)
    cat = make_user("cat", Role.BUSINESS_USER)
    make_integration("critical", owner_user=ann)  # 90
    make_integration("low", owner_user=ann)  # 5
    make_integration("medium", owner_user=bob, risk_score=40)
    make_integration("medium", owner_user=bob, risk_score=55)  # 95, no high ones
    make_integration("critical", owner_user=cat, status=IntegrationStatus.RETIRED)  # not held any more
    make_integration("high", owner_user=cat)  # 60
    with django_assert_num_queries(3):  # nothing stored: the stored figures, the ranking, the people
        context = build("top-owners", iam_admin)
    rows = context["rows"]
    assert [(row["owner"].username, row["risk"], row["integrations"], row["high"]) for row in rows] == [
        ("ann", 95, 2, 1),
        ("bob", 95, 2, 0),
        ("cat", 60, 1, 1),
    ], "equal risk: the owner with more high or critical integrations first"
    assert rows[0]["owner"].label == "Ann Lee"
    assert rows[0]["url"] == "/inventory/?status=active&owner=ann"
    assert context["chart"]["table"]["rows"][0] == {"label": "Ann Lee", "link": rows[0]["url"], "cells": ["95"]}


def test_top_owners_show_ten_in_three_queries(make_integration, make_user, iam_admin, django_assert_num_queries):
    for index in range(14):
        person = make_user(f"person{index:02}", Role.BUSINESS_USER)
        for _ in range(index % 3 + 1):
            make_integration("high", owner_user=person)
    with django_assert_num_queries(3):
        context = build("top-owners", iam_admin)
    assert len(context["rows"]) == dashboard_panels.TOP_OWNERS
    assert [row["risk"] for row in context["rows"]] == [180] * 4 + [120] * 5 + [60]


def test_top_owners_without_active_integrations_show_no_chart(iam_admin):
    context = build("top-owners", iam_admin)
    assert context["rows"] == [] and context["chart"] is None


# --- Registered integrations (metric) -----------------------------------------------------------


def test_registered_metric_is_active_integrations_now_and_as_recorded_for_a_past_day(owner, iam_admin):
    start = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        bot = Integration.objects.create(
            name="Notes bot", kind="chatbot", purpose="Notes", business_owner=owner, status=IntegrationStatus.PENDING
        )
    with time_machine.travel(start + timedelta(days=2), tick=False):
        integration_transition(actor=iam_admin, integration=bot, to_status=IntegrationStatus.ACTIVE)
    with time_machine.travel(start + timedelta(days=10), tick=False):
        integration_retire(actor=iam_admin, integration=bot, reason="Replaced")
    # A row written in bulk (no history): it counts with its status from the day it was created.
    Integration.objects.bulk_create(
        [
            Integration(
                name="Imported",
                kind="agent",
                purpose="Imported",
                business_owner=owner,
                status=IntegrationStatus.ACTIVE,
                created_at=start + timedelta(days=5),
            )
        ]
    )
    registered = metric("inventory.registered")
    assert registered.backfill is not None
    assert [registered.backfill(date(2025, 5, day)) for day in (1, 2, 3, 5, 6, 10, 11, 12)] == [
        0.0,  # pending
        0.0,
        1.0,  # approved on the 3rd
        1.0,
        2.0,  # the imported one exists from the 6th
        2.0,
        1.0,  # retired on the 11th
        1.0,
    ]
    with time_machine.travel(NOW, tick=False):
        assert registered.compute(NOW.date()) == 1.0


# --- Standing credentials (metrics) -------------------------------------------------------------


def test_standing_credentials_count_long_lived_unexpired_ones_of_integrations_in_service(make_integration):
    first, second = make_integration(), make_integration()
    retired = make_integration(status=IntegrationStatus.RETIRED)
    day = timedelta(days=1)

    def credential(integration: Integration, kind: str, created: datetime, expires: datetime | None = None) -> None:
        Credential.objects.create(
            integration=integration, type=kind, identifier=f"id-{kind}", created_at=created, expires_at=expires
        )

    credential(first, "api_key", NOW - 30 * day)
    credential(first, "oauth_client", NOW - 30 * day, NOW - 5 * day)  # expired five days ago
    credential(first, "workload_identity_token", NOW - 30 * day)  # short-lived: not standing
    credential(second, "certificate", NOW - 3 * day, NOW + 300 * day)  # recorded three days ago
    credential(retired, "service_account", NOW - 30 * day)  # its integration is retired
    count, holders = metric("inventory.standing_credentials"), metric("inventory.standing_credential_holders")
    assert count.backfill is not None and holders.backfill is not None
    with time_machine.travel(NOW, tick=False):
        assert (count.compute(NOW.date()), holders.compute(NOW.date())) == (2.0, 2.0)
    ten_days_ago = (NOW - 10 * day).date()
    assert (count.backfill(ten_days_ago), holders.backfill(ten_days_ago)) == (2.0, 1.0)
    yesterday = (NOW - day).date()
    assert (count.backfill(yesterday), holders.backfill(yesterday)) == (2.0, 2.0)


# --- Unregistered apps (metric) and the sprawl panel --------------------------------------------


def finding(kind: str, key: str, opened: datetime, closed: datetime | None = None) -> Finding:
    return Finding.objects.create(
        kind=kind,
        source="google",
        app_key=key,
        title=key,
        opened_at=opened,
        closed_at=closed,
        status="open" if closed is None else "dismissed",
    )


def test_unregistered_apps_are_shadow_findings_open_at_the_end_of_the_day(db):
    day = timedelta(days=1)
    finding("shadow", "app-a", NOW - 20 * day)
    finding("shadow", "app-b", NOW - 20 * day, NOW - 5 * day)  # dismissed five days ago
    finding("shadow", "app-c", NOW - 2 * day)
    finding("drift", "app-d", NOW - 20 * day)  # registered, beyond its grants: not unregistered
    unregistered = metric("discovery.unregistered_apps")
    assert unregistered.backfill is not None
    assert unregistered.compute(NOW.date()) == 2.0
    assert unregistered.backfill((NOW - 21 * day).date()) == 0.0
    assert unregistered.backfill((NOW - 10 * day).date()) == 2.0
    assert unregistered.backfill((NOW - 5 * day).date()) == 1.0, "closed that day"
    assert unregistered.backfill((NOW - 2 * day).date()) == 2.0


def test_sprawl_reads_weekly_snapshots_and_shows_now_for_this_week(
    make_integration, iam_admin, django_assert_num_queries
):
    make_integration()
    make_integration()
    finding("shadow", "app-a", NOW - timedelta(days=3))
    for weeks_back, registered, unregistered in ((1, 1, 4), (3, 1, 6)):
        sunday = date(2025, 7, 6) - timedelta(weeks=weeks_back - 1)
        MetricSnapshot.objects.create(key="inventory.registered", day=sunday, value=registered)
        MetricSnapshot.objects.create(key="discovery.unregistered_apps", day=sunday, value=unregistered)
    MetricSnapshot.objects.create(key="inventory.registered", day=date(2025, 7, 5), value=99)  # earlier that week
    with time_machine.travel(NOW, tick=False), django_assert_num_queries(4):  # the stored figures, then live
        context = build("sprawl", iam_admin)
    assert (context["registered"], context["unregistered"]) == (2, 1)
    table = {row["label"]: row["cells"] for row in context["chart"]["table"]["rows"]}
    assert len(table) == discovery_panels.WEEKS
    assert table["07 Jul"] == ["2", "1"], "this week: now"
    assert table["30 Jun"] == ["1", "4"], "last week: its last snapshot (Sunday's)"
    assert table["23 Jun"] == ["–", "–"], "no snapshot that week"
    assert table["16 Jun"] == ["1", "6"]
    assert context["registered_url"] == "/inventory/?status=active"
    assert context["unregistered_url"] == "/discovery/findings/?kind=shadow&status=active"


def test_sprawl_queries_do_not_grow_with_the_data(make_integration, iam_admin, django_assert_num_queries):
    for index in range(40):
        make_integration()
        finding("shadow", f"app-{index}", NOW - timedelta(days=index))
    for back in range(84):
        day = NOW.date() - timedelta(days=back)
        MetricSnapshot.objects.create(key="inventory.registered", day=day, value=back)
        MetricSnapshot.objects.create(key="discovery.unregistered_apps", day=day, value=back)
    with time_machine.travel(NOW, tick=False), django_assert_num_queries(4):  # the stored figures, then live
        context = build("sprawl", iam_admin)
    assert (context["registered"], context["unregistered"]) == (40, 40)
