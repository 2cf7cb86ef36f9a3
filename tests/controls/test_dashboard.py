"""The dashboard: for IAM admins, reviewers and auditors only (anyone else 404), every registered
panel drawn in a fixed number of queries however large the inventory, the panels flagged for the
home page on those roles' home pages, and the framework coverage panel agreeing with the
framework pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from governance import dashboard, scheduling
from governance.charts import bar_list
from governance.controls import catalog, dashboard_panels, overview, registry, snapshots, tasks
from governance.controls.dashboard_panels import MET_SHARE, PANEL_KEY
from governance.controls.models import MetricSnapshot
from governance.controls.registry import Figure, Threshold
from governance.models import User
from governance.roles import Pool, Role
from inventory.models import Integration, IntegrationStatus

pytestmark = pytest.mark.django_db

URL = "/dashboard/"
NOT_MET_CONTROL = "separation-of-duties"


def fixed_evidence(control_id: str) -> Callable[[], list[Figure]]:
    """One figure, met for every control but one, measured without a query."""
    value = 0.0 if control_id == NOT_MET_CONTROL else 100.0

    def evidence() -> list[Figure]:
        return [Figure(key=f"{control_id}.share", label="Share", value=value, threshold=Threshold(met=90))]

    return evidence


@pytest.fixture
def fixed_controls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every registered control answers with a fixed figure, so the coverage is known."""
    monkeypatch.setattr(
        registry,
        "_CONTROLS",
        {control.id: replace(control, evidence=fixed_evidence(control.id)) for control in registry.controls()},
    )


@pytest.fixture
def only_panels(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    def use(*panels: dashboard.DashboardPanel) -> None:
        monkeypatch.setattr(dashboard, "_PANELS", {panel.key: panel for panel in panels})

    return use


def coverage_panel() -> dashboard.DashboardPanel:
    (panel,) = [panel for panel in dashboard.panels() if panel.key == PANEL_KEY]
    return panel


def section(html: str, key: str) -> str:
    found = re.search(rf'<section class="panel dashboard-panel" id="dashboard-{key}".*?</section>', html, re.S)
    assert found, f"no {key} panel"
    return found.group(0)


# --- Who may see it ------------------------------------------------------------------------------


@pytest.mark.parametrize("role_user", ["iam_admin", "reviewer", "auditor", "security_reviewer"])
def test_iam_admins_reviewers_and_auditors_see_the_dashboard(
    role_user: str, request: pytest.FixtureRequest, web_as, fixed_controls, only_panels
) -> None:
    only_panels(coverage_panel())
    response = web_as(request.getfixturevalue(role_user)).get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<h2 id="panel-framework-coverage">Framework coverage</h2>' in html
    assert 'href="/static/governance/charts.css"' in html or "governance/charts" in html


def test_a_business_user_gets_404(web_as, outsider, owner) -> None:
    assert web_as(outsider).get(URL).status_code == 404
    assert web_as(owner).get(URL).status_code == 404


def test_anonymous_is_sent_to_sign_in(client) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_only_reads(web_as, iam_admin) -> None:
    assert web_as(iam_admin).post(URL).status_code == 405


def test_the_nav_entry_shows_for_those_roles_only(web_as, auditor, outsider, fixed_controls, only_panels) -> None:
    only_panels()
    link = f'href="{URL}"'
    assert link in web_as(auditor).get(reverse("home")).content.decode()
    assert link not in web_as(outsider).get(reverse("home")).content.decode()


# --- How panels are drawn --------------------------------------------------------------------------


def test_a_panel_template_gets_its_build_dict_and_an_empty_panel_is_left_out(web_as, reviewer, only_panels) -> None:
    seen: list[Any] = []

    def build(request: Any) -> dict[str, Any]:
        seen.append(request.user)
        return {"chart": bar_list([("Alice", 3)], title="Risk held by owner")}

    only_panels(
        dashboard.DashboardPanel(key="owners", title="Top owners", template="charts/chart.html", build=build, order=2),
        dashboard.DashboardPanel(key="nothing", title="Nothing", template="charts/chart.html", build=lambda r: None),
    )
    html = web_as(reviewer).get(URL).content.decode()
    assert seen == [reviewer]
    assert "<title>Alice: 3</title>" in section(html, "owners")
    assert "Nothing" not in html


def test_with_no_panel_the_page_says_so(web_as, reviewer, only_panels) -> None:
    only_panels()
    assert "No dashboard panel has anything to show yet." in web_as(reviewer).get(URL).content.decode()


# --- Framework coverage ------------------------------------------------------------------------------


def test_coverage_counts_items_as_the_framework_pages_do_and_links_each_framework(
    web_as, iam_admin, fixed_controls, only_panels
) -> None:
    only_panels(coverage_panel())
    html = section(web_as(iam_admin).get(URL).content.decode(), PANEL_KEY)
    views = overview.framework_views()
    assert {view.framework.slug for view in views} >= {info.slug for info in catalog.builtin_frameworks()}
    for view in views:
        coverage = view.coverage
        row = re.search(
            rf'<th scope="row"><a href="{reverse("framework-detail", args=[view.framework.slug])}">'
            rf"{re.escape(view.framework.name)}</a></th>(.*?)</tr>",
            html,
        )
        assert row, view.framework.slug
        cells = re.findall(r"<td>([^<]*)</td>", row.group(1))
        expected = [
            coverage["met"],
            coverage["partly"],
            coverage["not_met"],
            coverage[overview.NO_CONTROL],
            coverage["not_applicable"],
            len(view.items),
        ]
        assert cells == [str(count) for count in expected]
    # The control that is not met leaves items short somewhere; the rest are met.
    assert sum(view.coverage["not_met"] + view.coverage["partly"] for view in views) > 0
    assert sum(view.coverage["met"] for view in views) > 0


def test_coverage_summary_and_weekly_trend(web_as, iam_admin, fixed_controls, only_panels) -> None:
    only_panels(coverage_panel())
    today = timezone.localdate()
    MetricSnapshot.objects.create(key=MET_SHARE, day=today - timedelta(weeks=2), value=40)
    MetricSnapshot.objects.create(key=MET_SHARE, day=today, value=55.5)
    html = section(web_as(iam_admin).get(URL).content.decode(), PANEL_KEY)
    views = overview.framework_views()
    items = sum(len(view.items) for view in views)
    met = sum(view.coverage["met"] for view in views)
    share = round(100 * met / items, 1)
    assert f"{share:g} % of the {items} items of {len(views)} frameworks are met" in html
    assert "Share of framework items met, weekly" in html
    assert "Items met 55.5%" in html  # the line's direct label


def test_the_met_share_metric_measures_the_coverage(fixed_controls) -> None:
    (metric,) = [metric for metric in dashboard.metrics() if metric.key == MET_SHARE]
    views = overview.framework_views()
    items = sum(len(view.items) for view in views)
    assert metric.compute(date.today()) == round(100 * sum(view.coverage["met"] for view in views) / items, 1)


# --- Home pages --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role_user", ["iam_admin", "reviewer", "auditor"])
def test_home_panels_show_on_those_roles_home_pages(
    role_user: str, request: pytest.FixtureRequest, web_as, fixed_controls
) -> None:
    response = web_as(request.getfixturevalue(role_user)).get(reverse("home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<h2 id="panel-dashboard">At a glance</h2>' in html
    home = [panel for panel in dashboard.panels() if panel.home]
    assert home, "no panel is flagged for home pages"
    for panel in home:
        assert f'id="home-panel-{panel.key}"' in html


def test_home_panels_stay_off_a_business_users_home_page(web_as, owner, fixed_controls) -> None:
    response = web_as(owner).get(reverse("home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "panel-dashboard" not in html and "charts.css" not in html


def test_only_panels_flagged_for_home_are_on_it(web_as, reviewer, only_panels, fixed_controls) -> None:
    only_panels(replace(coverage_panel(), home=False))
    response = web_as(reviewer).get(reverse("home"))
    assert response.status_code == 200
    assert "panel-dashboard" not in response.content.decode()


# --- Fixed queries with every registered panel ---------------------------------------------------------

TIERS = ["low", "medium", "high", "critical"]
STATUSES = [IntegrationStatus.ACTIVE, IntegrationStatus.ACTIVE, IntegrationStatus.PENDING, IntegrationStatus.SUSPENDED]


def add_inventory(count: int, owners: list[User], start: int) -> None:
    """Integrations of every tier and several statuses spread over the owners, and a week of
    snapshots of every metric."""
    Integration.objects.bulk_create(
        [
            Integration(
                name=f"Dashboard bot {start + index}",
                kind="agent",
                purpose="Measures the dashboard.",
                business_owner=owners[index % len(owners)],
                status=STATUSES[index % len(STATUSES)],
                risk_tier=TIERS[index % len(TIERS)],
                risk_score=(index * 7) % 100,
                orphaned=index % 9 == 0,
            )
            for index in range(count)
        ]
    )
    today = timezone.localdate()
    MetricSnapshot.objects.bulk_create(
        [
            MetricSnapshot(key=metric.key, day=today - timedelta(days=back), value=start + back)
            for metric in dashboard.metrics()
            for back in range(start % 5, start % 5 + 7)
        ],
        ignore_conflicts=True,
    )


def count_queries(client: Any, django_assert_max_num_queries: Any, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("url", [URL, "/"])
def test_every_registered_panel_costs_the_same_queries_on_small_and_larger_data(
    url: str, web_as, make_user, reviewer, django_assert_max_num_queries
) -> None:
    owners = [make_user(f"dash-owner-{index}", Role.BUSINESS_USER) for index in range(3)]
    add_inventory(6, owners, start=0)
    client = web_as(reviewer)
    client.get(url)  # sessions and caches settle
    small = count_queries(client, django_assert_max_num_queries, url)
    owners += [make_user(f"dash-owner-more-{index}", Role.BUSINESS_USER) for index in range(12)]
    add_inventory(120, owners, start=100)
    larger = count_queries(client, django_assert_max_num_queries, url)
    assert small == larger
    # Every registered panel was drawn on the dashboard.
    if url == URL:
        html = client.get(url).content.decode()
        for panel in dashboard.panels():
            assert f'id="dashboard-{panel.key}"' in html, panel.key


def test_reviewer_pool_members_see_it_too(web_as, make_user, fixed_controls, only_panels) -> None:
    only_panels(coverage_panel())
    pooled = make_user("pooled", Pool.SECURITY_REVIEWERS)
    assert web_as(pooled).get(URL).status_code == 200


# --- Stored coverage ---------------------------------------------------------------------------------


def refuse_evidence(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, measuring any control fails the test: the panel must read what is stored."""

    def evidence() -> list[Figure]:
        raise AssertionError("the dashboard measured a control")

    monkeypatch.setattr(
        registry, "_CONTROLS", {control.id: replace(control, evidence=evidence) for control in registry.controls()}
    )


def test_the_panel_reads_the_hourly_coverage_without_measuring_again(
    web_as, iam_admin, fixed_controls, only_panels, monkeypatch, django_assert_max_num_queries
) -> None:
    only_panels(coverage_panel())
    live = section(web_as(iam_admin).get(URL).content.decode(), PANEL_KEY)
    assert "Measured now." in live
    assert tasks.coverage_snapshot() > 0
    refuse_evidence(monkeypatch)
    stored = section(web_as(iam_admin).get(URL).content.decode(), PANEL_KEY)
    assert "(every hour); the framework pages measure live." in stored
    first_table = re.compile(r"<tbody>.*?</tbody>", re.S)
    assert first_table.findall(stored)[0] == first_table.findall(live)[0]
    request = RequestFactory().get(URL)
    request.user = iam_admin
    with django_assert_max_num_queries(4):  # the stored counts, the trend, the organisation's frameworks
        coverage_panel().build(request)


def test_stale_coverage_is_not_shown(web_as, iam_admin, fixed_controls, only_panels) -> None:
    only_panels(coverage_panel())
    dashboard_panels.coverage_snapshot(timezone.localdate() - timedelta(days=3))
    assert "Measured now." in section(web_as(iam_admin).get(URL).content.decode(), PANEL_KEY)


def test_a_framework_added_since_the_last_measure_shows_as_not_measured(fixed_controls, iam_admin) -> None:
    dashboard_panels.coverage_snapshot()
    MetricSnapshot.objects.filter(key__startswith=dashboard_panels.coverage_key("csa-maestro", "")).delete()
    coverage = dashboard_panels.stored_coverage(timezone.localdate())
    assert coverage is not None and coverage.measured_at is not None
    found = {info.slug: counts for info, counts in coverage.frameworks}
    infos = {info.slug: info for info, _counts in coverage.frameworks}
    assert found["csa-maestro"] is None
    assert sum((found["nist-csf-2.0"] or {}).values()) == len(infos["nist-csf-2.0"].items)
    chart = dashboard_panels.coverage_chart(coverage)
    (row,) = [row for row in chart["table"]["rows"] if row["label"] == infos["csa-maestro"].name]
    assert row["cells"][:5] == ["–"] * 5


def test_the_coverage_task_is_scheduled_hourly() -> None:
    (task,) = [task for task in scheduling.registered() if task.name == snapshots.COVERAGE_SCHEDULE_NAME]
    assert task.func == "governance.controls.tasks.coverage_snapshot" and scheduling.is_allowed_task(task.func)
    minute, *every = task.cron.split()
    assert minute.isdigit() and every == ["*", "*", "*", "*"]


def test_the_pages_navigation_is_worked_out_once_however_many_panels(web_as, reviewer, only_panels) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def quiet(key: str) -> dashboard.DashboardPanel:
        return dashboard.DashboardPanel(
            key=key,
            title=key,
            template="charts/chart.html",
            build=lambda request: {"chart": bar_list([("A", 1)], title=f"Chart {key}")},
        )

    client = web_as(reviewer)
    counts = []
    for keys in (["one"], ["one", "two", "three", "four"]):
        only_panels(*(quiet(key) for key in keys))
        client.get(URL)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(URL).status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]
