"""Daily metric snapshots: one row per metric and day whatever how often the task runs, every
metric measured even when one fails, weekly series read in one query, and the demo's history."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import cast

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone
from django_q.tasks import async_task

from governance import dashboard, scheduling
from governance.controls import demo, snapshots, tasks
from governance.controls.dashboard_panels import COVERAGE_PREFIX, MET_SHARE
from governance.controls.models import MetricSnapshot

pytestmark = pytest.mark.django_db

UTC = timezone.get_fixed_timezone(0)
# A Wednesday: its week started on Monday 7 July 2025.
WEDNESDAY = datetime(2025, 7, 9, 22, 0, tzinfo=UTC)


class Gauge:
    """A metric whose value the test sets; ``calls`` records the days it was asked about."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.calls: list[date] = []

    def __call__(self, day: date) -> float:
        self.calls.append(day)
        return self.value


def nothing_to_measure(day: date) -> float:
    # A metric may answer None despite its annotation (no campaign yet, say): a gap, not a 0.
    return cast(float, None)


def broken(day: date) -> float:
    raise RuntimeError("the database of this metric is gone")


def broken_query(day: date) -> float:
    """A metric whose SQL fails: on PostgreSQL that aborts the enclosing transaction, unless the
    measurement ran in a savepoint of its own."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM no_such_table_of_this_metric")
    return 1.0


@pytest.fixture
def only_metrics(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Replace the registered metrics with the given ones for one test."""

    def use(*metrics: dashboard.Metric) -> None:
        monkeypatch.setattr(dashboard, "_METRICS", {metric.key: metric for metric in metrics})

    return use


@pytest.fixture
def gauges(only_metrics: Callable[..., None]) -> Iterator[dict[str, Gauge]]:
    found = {"sprawl.registered": Gauge(120), "credentials.standing": Gauge(7)}
    only_metrics(*(dashboard.Metric(key=key, label=key, compute=gauge) for key, gauge in found.items()))
    yield found


def stored() -> dict[tuple[str, date], float]:
    """The snapshots of the test's metrics (the demo also stores the framework coverage)."""
    rows = MetricSnapshot.objects.exclude(key__startswith=COVERAGE_PREFIX).exclude(key=MET_SHARE)
    return {(row.key, row.day): row.value for row in rows}


def test_a_rerun_the_same_day_updates_the_day_and_adds_nothing(gauges: dict[str, Gauge]) -> None:
    with time_machine.travel(WEDNESDAY, tick=False):
        assert snapshots.metrics_snapshot().written == 2
        gauges["sprawl.registered"].value = 125
        snapshots.metrics_snapshot()
    assert stored() == {("sprawl.registered", date(2025, 7, 9)): 125, ("credentials.standing", date(2025, 7, 9)): 7}


def test_each_day_gets_its_own_rows(gauges: dict[str, Gauge]) -> None:
    with time_machine.travel(WEDNESDAY, tick=False) as traveller:
        snapshots.metrics_snapshot()
        traveller.shift(timedelta(days=1))
        gauges["credentials.standing"].value = 5
        snapshots.metrics_snapshot()
    assert stored()[("credentials.standing", date(2025, 7, 9))] == 7
    assert stored()[("credentials.standing", date(2025, 7, 10))] == 5
    assert gauges["credentials.standing"].calls == [date(2025, 7, 9), date(2025, 7, 10)]


def test_a_failing_metric_keeps_its_earlier_value_and_the_others_are_written(
    only_metrics: Callable[..., None],
) -> None:
    healthy = Gauge(3)
    flaky = Gauge(40)
    only_metrics(dashboard.Metric("a.healthy", "Healthy", healthy), dashboard.Metric("b.flaky", "Flaky", flaky))
    with time_machine.travel(WEDNESDAY, tick=False):
        snapshots.metrics_snapshot()
        healthy.value = 4
        only_metrics(dashboard.Metric("a.healthy", "Healthy", healthy), dashboard.Metric("b.flaky", "Flaky", broken))
        with pytest.raises(snapshots.MetricSnapshotFailed, match="b.flaky"):
            snapshots.metrics_snapshot()
    assert stored() == {("a.healthy", date(2025, 7, 9)): 4, ("b.flaky", date(2025, 7, 9)): 40}


def test_a_metric_whose_query_fails_costs_the_others_nothing_inside_a_transaction(
    only_metrics: Callable[..., None],
) -> None:
    only_metrics(dashboard.Metric("a.broken", "Broken", broken_query), dashboard.Metric("b.fine", "Fine", Gauge(3)))
    with time_machine.travel(WEDNESDAY, tick=False), transaction.atomic():
        with pytest.raises(snapshots.MetricSnapshotFailed, match="a.broken"):
            snapshots.metrics_snapshot()
        assert stored() == {("b.fine", date(2025, 7, 9)): 3}


def test_nothing_to_measure_leaves_a_gap(only_metrics: Callable[..., None]) -> None:
    only_metrics(dashboard.Metric("campaign.completion", "Completion", nothing_to_measure))
    assert snapshots.metrics_snapshot(date(2025, 7, 9)).written == 0
    assert not MetricSnapshot.objects.exists()


def test_the_task_measures_the_day_it_is_given_or_today(gauges: dict[str, Gauge]) -> None:
    with time_machine.travel(WEDNESDAY, tick=False):
        assert tasks.metrics_snapshot() == 2
        assert tasks.metrics_snapshot("2025-07-01") == 2
    assert {day for _key, day in stored()} == {date(2025, 7, 9), date(2025, 7, 1)}


def test_the_schedule_is_daily_and_the_worker_may_run_it(gauges: dict[str, Gauge]) -> None:
    (task,) = [task for task in scheduling.registered() if task.name == snapshots.SCHEDULE_NAME]
    assert task.func == "governance.controls.tasks.metrics_snapshot"
    minute, hour, *every = task.cron.split()
    assert every == ["*", "*", "*"] and minute.isdigit() and hour.isdigit()
    assert scheduling.is_allowed_task(task.func)
    with time_machine.travel(WEDNESDAY, tick=False):
        assert async_task(task.func, sync=True)
    assert len(stored()) == 2


def snapshot(key: str, day: date, value: float) -> None:
    MetricSnapshot.objects.create(key=key, day=day, value=value)


def test_weekly_series_takes_each_weeks_last_value_in_one_query(django_assert_num_queries) -> None:
    today = date(2025, 7, 9)  # Wednesday; this week began on 7 July
    snapshot("sprawl.registered", date(2025, 6, 23), 90)  # Monday, three weeks back
    snapshot("sprawl.registered", date(2025, 6, 29), 100)  # Sunday, same week: the one kept
    snapshot("sprawl.registered", date(2025, 7, 8), 110)
    snapshot("sprawl.registered", date(2025, 7, 9), 115)
    snapshot("credentials.standing", date(2025, 7, 1), 6)
    snapshot("sprawl.registered", date(2025, 3, 1), 10)  # too old for four weeks
    snapshot("sprawl.registered", date(2025, 7, 10), 999)  # after "today": not shown
    with django_assert_num_queries(1):
        series = snapshots.weekly_series(["sprawl.registered", "credentials.standing", "never.taken"], 4, today=today)
    weeks = [date(2025, 6, 16), date(2025, 6, 23), date(2025, 6, 30), date(2025, 7, 7)]
    assert series["sprawl.registered"] == list(zip(weeks, [None, 100, None, 115], strict=True))
    assert series["credentials.standing"] == list(zip(weeks, [None, None, 6, None], strict=True))
    assert series["never.taken"] == [(week, None) for week in weeks]


def test_weekly_series_of_no_keys_reads_nothing(django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        assert snapshots.weekly_series([], 12) == {}


# --- The demo's history ------------------------------------------------------------------------


def test_demo_seeds_half_a_year_from_backfill_or_from_todays_value(only_metrics: Callable[..., None]) -> None:
    measured = Gauge(50)
    backfill = Gauge(20)
    only_metrics(
        dashboard.Metric("integrations.registered", "Registered integrations", measured, backfill),
        dashboard.Metric("owners.named_share", "Named owners (%)", Gauge(99.5)),
        dashboard.Metric("credentials.standing", "Standing credentials", Gauge(12)),
    )
    with time_machine.travel(WEDNESDAY, tick=False):
        demo.seed()
    today = date(2025, 7, 9)
    days = demo.history_days(today)
    assert len(days) == demo.HISTORY_WEEKS and days[-1] == date(2025, 7, 6) and days[0].weekday() == 6
    rows = stored()
    # Measured from the rows' own dates where the metric can, and today's value as the task would.
    assert backfill.calls == days
    assert {day: rows[("integrations.registered", day)] for day in days} == dict.fromkeys(days, 20)
    assert rows[("integrations.registered", today)] == 50
    # Otherwise a plausible history: whole counts stay whole, shares stay within 0-100.
    standing = [rows[("credentials.standing", day)] for day in days]
    assert all(value >= 0 and value.is_integer() for value in standing)
    shares = [rows[("owners.named_share", day)] for day in days]
    assert all(0 <= value <= 100 for value in shares)
    assert len(rows) == 3 * (demo.HISTORY_WEEKS + 1)
    # Every seeded week shows in the dashboard's weekly series.
    series = snapshots.weekly_series(["credentials.standing"], demo.HISTORY_WEEKS + 1, today=today)
    assert all(value is not None for _week, value in series["credentials.standing"])


def test_demo_twice_changes_nothing_and_never_overwrites_a_real_snapshot(
    only_metrics: Callable[..., None],
) -> None:
    gauge = Gauge(30)
    only_metrics(dashboard.Metric("credentials.standing", "Standing credentials", gauge))
    with time_machine.travel(WEDNESDAY, tick=False):
        snapshots.metrics_snapshot()
        gauge.value = 31
        demo.seed()
        first = stored()
        gauge.value = 44
        demo.seed()
    assert stored() == first
    assert first[("credentials.standing", date(2025, 7, 9))] == 30


def test_demo_skips_a_metric_that_cannot_be_measured(only_metrics: Callable[..., None]) -> None:
    only_metrics(dashboard.Metric("a.broken", "Broken", broken), dashboard.Metric("b.fine", "Fine", Gauge(3)))
    with time_machine.travel(WEDNESDAY, tick=False):
        demo.seed()
    assert {key for key, _day in stored()} == {"b.fine"}


def test_demo_skips_a_metric_whose_query_fails_inside_the_seeders_transaction(
    only_metrics: Callable[..., None],
) -> None:
    only_metrics(dashboard.Metric("a.broken", "Broken", broken_query), dashboard.Metric("b.fine", "Fine", Gauge(3)))
    # As seed_demo runs every seeder: inside one transaction.
    with time_machine.travel(WEDNESDAY, tick=False), transaction.atomic():
        demo.seed()
    assert {key for key, _day in stored()} == {"b.fine"}


def test_demo_skips_a_metric_whose_backfill_fails(only_metrics: Callable[..., None]) -> None:
    only_metrics(
        dashboard.Metric("a.broken", "Broken", Gauge(5), backfill=broken_query),
        dashboard.Metric("b.fine", "Fine", Gauge(3)),
    )
    with time_machine.travel(WEDNESDAY, tick=False), transaction.atomic():
        demo.seed()
    assert {key for key, _day in stored()} == {"b.fine"}


def test_the_demo_seeder_runs_after_every_apps_own() -> None:
    from governance import demo as demo_registry

    names = [seeder.name for seeder in demo_registry.seeders()]
    assert names[-2:] == ["metric-history", "framework-coverage"]


def test_the_demo_stores_todays_framework_coverage(only_metrics: Callable[..., None]) -> None:
    from governance import demo as demo_registry

    (seeder,) = [seeder for seeder in demo_registry.seeders() if seeder.name == "framework-coverage"]
    with time_machine.travel(WEDNESDAY, tick=False):
        seeder.run()
    stored_keys = set(MetricSnapshot.objects.filter(day=date(2025, 7, 9)).values_list("key", flat=True))
    assert MET_SHARE in stored_keys
    assert f"{COVERAGE_PREFIX}nist-csf-2.0.met" in stored_keys
