"""Daily metric snapshots: every ``governance.dashboard.metrics()`` metric, measured once a day and
kept in ``MetricSnapshot(key, day)``, so that the dashboard shows trends from an installation's
first day. Panels read them with ONE query for several keys::

    from governance.controls.snapshots import weekly_series

    def weekly_series(keys: Iterable[str], weeks: int = 12, *, today: date | None = None
                      ) -> dict[str, list[tuple[date, float | None]]]

returns, for every key asked (known or not), ``weeks`` pairs ``(week_start, value)``, oldest
first, the current week last; ``week_start`` is the Monday; ``value`` is the last snapshot taken
in that week (for the current week: the latest so far), or None when none was taken. Feed it to
``governance.charts.line_chart`` as categories ``[f"{start:%d %b}" ...]`` and values.

Panel templates (``governance.controls.views_dashboard``): the template is rendered with the
dict ``build()`` returned as its context, plus ``data`` (the same dict), ``panel``,
``panel_id`` (the panel's key), ``request`` and ``user`` (no other context processor: no forms). The dashboard writes the panel's title itself (``<h2>``, an
``<h3>`` on home pages): a panel template starts with its content, uses ``<h3>`` for
subheadings, and draws charts with ``{% include "charts/chart.html" with chart=chart %}``
(the page links ``governance/charts.css``). Charts: ``governance.charts`` (``column_chart``,
``line_chart``, ``bar_list``, ``stacked_bars``; keyword ``tones`` for status colours).

``metrics_snapshot(day)`` is the write path (the ``controls-metrics-snapshot`` schedule runs it
daily through ``governance.controls.tasks.metrics_snapshot``): it measures every metric, then
upserts all of that day's rows in one statement inside one transaction. A rerun the same day
updates the day's rows, never adds any. A metric whose ``compute`` raises is left out of that
write (its earlier value for the day, if any, stays) and named in the ``MetricSnapshotFailed``
raised after the others were written, so one broken metric neither hides the rest nor passes
unnoticed (the worker records the task as failed). Snapshots are derived figures, not governance
state: no audit event is written for them. The framework coverage panel keeps its own hourly
snapshot (``controls-coverage-snapshot``, see ``governance.controls.dashboard_panels``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from governance import dashboard, portal, scheduling
from governance.controls.models import MetricSnapshot

log = logging.getLogger(__name__)

SCHEDULE_NAME = "controls-metrics-snapshot"
TASK = "governance.controls.tasks.metrics_snapshot"
# Late in the (UTC) day, so the day's row holds the day's closing value.
SNAPSHOT_CRON = "55 23 * * *"
# The framework coverage (every control's evidence measured) is kept hourly for the dashboard.
COVERAGE_SCHEDULE_NAME = "controls-coverage-snapshot"
COVERAGE_TASK = "governance.controls.tasks.coverage_snapshot"
COVERAGE_CRON = "7 * * * *"


class MetricSnapshotFailed(Exception):
    """Some metrics could not be measured; the others of the day were written."""

    def __init__(self, day: date, failed: list[str]) -> None:
        super().__init__(f"Metrics not measured on {day:%Y-%m-%d}: {', '.join(failed)}.")
        self.day = day
        self.failed = failed


@dataclass(frozen=True)
class SnapshotResult:
    day: date
    written: int
    failed: tuple[str, ...]


def week_start(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def snapshots_write(day: date, values: dict[str, float]) -> int:
    """Upsert one day's values: one INSERT ... ON CONFLICT (key, day) DO UPDATE inside one
    transaction, so the day's rows are written together or not at all."""
    now = timezone.now()
    rows = [MetricSnapshot(key=key, day=day, value=float(value), taken_at=now) for key, value in values.items()]
    with transaction.atomic():
        MetricSnapshot.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["key", "day"],
            update_fields=["value", "taken_at"],
            batch_size=500,
        )
    return len(rows)


def metrics_snapshot(day: date | None = None) -> SnapshotResult:
    """Measure every registered metric for ``day`` (today by default) and write the day's
    snapshots; raises ``MetricSnapshotFailed`` after writing when any metric failed."""
    day = day or timezone.localdate()
    values: dict[str, float] = {}
    failed: list[str] = []
    for metric in dashboard.metrics():
        try:
            # A savepoint of its own: a failing query must not abort a caller's transaction
            # (PostgreSQL refuses every later statement of an aborted one).
            with transaction.atomic():
                value = metric.compute(day)
        except Exception:
            # One broken metric must not cost the others their day: log it, write the rest,
            # and fail the task loudly below.
            log.exception("Metric %s could not be measured for %s", metric.key, day)
            failed.append(metric.key)
            continue
        if value is None:
            # Nothing to measure today (e.g. no campaign yet): no row, a gap in the trend.
            continue
        values[metric.key] = value
    written = snapshots_write(day, values)
    if failed:
        raise MetricSnapshotFailed(day, failed)
    return SnapshotResult(day=day, written=written, failed=())


def weekly_series(
    keys: Iterable[str], weeks: int = 12, *, today: date | None = None
) -> dict[str, list[tuple[date, float | None]]]:
    """The last snapshot of each of the last ``weeks`` weeks for every key, in one query (see the
    module's docstring)."""
    keys = list(dict.fromkeys(keys))
    today = today or timezone.localdate()
    starts = [week_start(today) - timedelta(weeks=back) for back in range(weeks - 1, -1, -1)]
    last: dict[tuple[str, date], float] = {}
    if keys and starts:
        rows = (
            MetricSnapshot.objects.filter(key__in=keys, day__gte=starts[0], day__lte=today)
            .order_by("key", "day")
            .values_list("key", "day", "value")
        )
        for key, day, value in rows:
            # Ordered by day: the week's last snapshot overwrites the earlier ones.
            last[(key, week_start(day))] = value
    return {key: [(start, last.get((key, start))) for start in starts] for key in keys}


def register() -> None:
    """The daily snapshot schedule, the dashboard's navigation entry and home-page panels, and
    the demo's snapshot history."""
    from governance import demo as demo_registry
    from governance.controls import demo, views_dashboard

    scheduling.register(SCHEDULE_NAME, TASK, SNAPSHOT_CRON)
    scheduling.register(COVERAGE_SCHEDULE_NAME, COVERAGE_TASK, COVERAGE_CRON)
    portal.register_nav(
        portal.NavEntry(
            label="Dashboard",
            url_name="dashboard",
            # First in the Oversight menu, which keeps its place in the header.
            order=84,
            visible=views_dashboard.may_see_dashboard,
            group=portal.OVERSIGHT,
        )
    )
    views_dashboard.register_home_panels()
    demo_registry.register("metric-history", demo.DEMO_ORDER, demo.seed)
