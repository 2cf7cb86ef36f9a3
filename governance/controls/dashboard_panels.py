"""The control catalog's dashboard panel and metric: framework coverage, registered from
``ControlsConfig.ready``.

Coverage per framework counts its items by status, judged exactly as the framework pages judge
them (``overview.framework_views``: every mapped control's evidence measured once). Measuring
every control costs about a second at 100,000 integrations, too much for each view of the
dashboard, so the hourly ``coverage_snapshot`` task stores the counts as today's snapshots
(``coverage.<framework slug>.<status>``, and the share met overall for the trend) and the panel
reads the latest of them in one query, saying when they were measured. Until the task has run
(none from today or yesterday) the panel measures live, as the framework pages always do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from governance import dashboard
from governance import demo as demo_registry
from governance.charts import line_chart, stacked_bars
from governance.controls import catalog, figures, overview
from governance.controls.catalog import FrameworkInfo
from governance.controls.models import MetricSnapshot
from governance.controls.registry import Status
from governance.controls.snapshots import snapshots_write, weekly_series

PANEL_KEY = "framework-coverage"
MET_SHARE = "frameworks.items_met_share"
COVERAGE_PREFIX = "coverage."
TREND_WEEKS = 12
# Stored counts older than this are not shown: the panel measures live instead.
FRESH_DAYS = 1
# The coverage chart's parts, left to right: what is met, then each kind of shortfall.
COVERAGE_PARTS = (
    (Status.MET, "Met", "ok"),
    (Status.PARTLY, "Partly met", "warn"),
    (Status.NOT_MET, "Not met", "danger"),
    (overview.NO_CONTROL, "No control", "gap"),
    (Status.NOT_APPLICABLE, "Nothing to measure", "muted"),
)
STATUSES = tuple(str(status) for status, _label, _tone in COVERAGE_PARTS)


def coverage_key(slug: str, status: str) -> str:
    return f"{COVERAGE_PREFIX}{slug}.{status}"


def met_share(counts: list[dict[str, int]]) -> float:
    """The share of all frameworks' items that are met (0 when there are no items)."""
    items = sum(sum(count.values()) for count in counts)
    met = sum(count.get(Status.MET, 0) for count in counts)
    return round(100.0 * met / items, 1) if items else 0.0


def measure() -> list[tuple[FrameworkInfo, dict[str, int]]]:
    """Every framework with its items counted by status, measured now."""
    return [
        (view.framework, {status: view.coverage[status] for status in STATUSES}) for view in overview.framework_views()
    ]


def coverage_snapshot(day: date | None = None) -> int:
    """Measure the coverage now and upsert it as ``day``'s (today's) snapshots; returns how many
    rows were written. Run hourly, so that the dashboard is at most an hour behind."""
    measured = measure()
    values: dict[str, float] = {MET_SHARE: met_share([counts for _info, counts in measured])}
    for info, counts in measured:
        values.update({coverage_key(info.slug, status): count for status, count in counts.items()})
    return snapshots_write(day or timezone.localdate(), values)


@dataclass(frozen=True)
class Coverage:
    frameworks: list[tuple[FrameworkInfo, dict[str, int] | None]]  # None: not measured yet
    measured_at: datetime | None  # None: measured now


def stored_coverage(today: date) -> Coverage | None:
    """The latest stored counts (today's or yesterday's, the latest day only) of the current
    frameworks, in one query plus the catalog's; None when there are none."""
    rows = list(
        MetricSnapshot.objects.filter(key__startswith=COVERAGE_PREFIX, day__gte=today - timedelta(days=FRESH_DAYS))
        .order_by("-day")
        .values_list("key", "day", "value", "taken_at")
    )
    if not rows:
        return None
    latest = rows[0][1]
    counts: dict[str, dict[str, int]] = {}
    for key, day, value, _taken_at in rows:
        if day == latest:
            slug, _dot, status = key.removeprefix(COVERAGE_PREFIX).rpartition(".")
            counts.setdefault(slug, {})[status] = int(value)
    measured_at = max(taken_at for _key, day, _value, taken_at in rows if day == latest)
    return Coverage(
        frameworks=[(info, counts.get(info.slug)) for info in catalog.frameworks()],
        measured_at=measured_at,
    )


def coverage_chart(coverage: Coverage) -> dict[str, Any]:
    measured = [counts for _info, counts in coverage.frameworks if counts is not None]
    total_items = sum(sum(counts.values()) for counts in measured)
    gaps = sum(
        counts.get(status, 0) for counts in measured for status in (Status.PARTLY, Status.NOT_MET, overview.NO_CONTROL)
    )
    share = met_share(measured)
    frameworks = len(coverage.frameworks)
    return stacked_bars(
        [info.name for info, _counts in coverage.frameworks],
        [
            (label, [None if counts is None else counts.get(status, 0) for _info, counts in coverage.frameworks])
            for status, label, _tone in COVERAGE_PARTS
        ],
        title="Framework items by status",
        category_label="Framework",
        links=[reverse("framework-detail", args=[info.slug]) for info, _counts in coverage.frameworks],
        tones=[tone for _status, _label, tone in COVERAGE_PARTS],
        summary=(
            f"{share:g} % of the {total_items} items of {frameworks} framework{'s' if frameworks != 1 else ''} "
            f"are met; {gaps} item{'s' if gaps != 1 else ''} fall short or have no control."
        ),
        table_open=True,
    )


def coverage_build(request: HttpRequest) -> dict[str, Any] | None:
    """Items met / partly met / not met / without a control / unmeasurable per framework, and the
    weekly share met: the stored counts and the trend (two queries and the catalog's), or the
    framework pages' measurement when nothing recent is stored."""
    coverage = stored_coverage(timezone.localdate())
    if coverage is None:
        coverage = Coverage(frameworks=list(measure()), measured_at=None)
    if not coverage.frameworks:
        return None
    weeks = weekly_series([MET_SHARE], TREND_WEEKS)[MET_SHARE]
    trend = None
    if any(value is not None for _start, value in weeks):
        trend = line_chart(
            [f"{start:%d %b}" for start, _value in weeks],
            [("Items met", [value for _start, value in weeks])],
            title="Share of framework items met, weekly",
            unit="%",
            category_label="Week starting",
        )
    return {"chart": coverage_chart(coverage), "trend": trend, "measured_at": coverage.measured_at}


def met_share_today(day: date) -> float:
    """Measured now (evidence has no history, so the day is today's)."""
    return met_share([counts for _info, counts in measure()])


def coverage_demo() -> None:
    """The demo stores today's coverage and the dashboard figures as the hourly task would, so its
    dashboard reads them at once."""
    coverage_snapshot()
    figures.refresh()


def register() -> None:
    dashboard.register_panel(
        dashboard.DashboardPanel(
            key=PANEL_KEY,
            title="Framework coverage",
            template="dashboard/framework_coverage.html",
            build=coverage_build,
            order=90,
            home=True,
        )
    )
    dashboard.register_metric(dashboard.Metric(key=MET_SHARE, label="Framework items met (%)", compute=met_share_today))
    # After every app's seeder and the metric history (order 90).
    demo_registry.register("framework-coverage", 91, coverage_demo)
