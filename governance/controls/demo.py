"""The demo's metric history: half a year of weekly snapshots of every registered dashboard metric,
so that the demo's trend charts have something to show on its first day.

A metric with ``backfill(day)`` is measured for each past week from the rows' own dates; any
other gets a plausible history drawn towards its value today (deterministic per metric, so a
rerun draws the same). Today's value is measured as the daily task would. Rows that already
exist are kept (``ignore_conflicts``): the seeder never overwrites a real snapshot and running it
twice changes nothing. It runs after every app's own seeder, so that it measures their data.
(The framework coverage panel registers its own seeder, which stores today's coverage.)
"""

from __future__ import annotations

import logging
import random
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from governance import dashboard
from governance.controls.models import MetricSnapshot

log = logging.getLogger(__name__)

DEMO_ORDER = 90
HISTORY_WEEKS = 26


def history_days(today: date, weeks: int = HISTORY_WEEKS) -> list[date]:
    """The last day (Sunday) of each of the ``weeks`` weeks before today's, oldest first."""
    last_sunday = today - timedelta(days=today.weekday() + 1)
    return [last_sunday - timedelta(weeks=back) for back in range(weeks - 1, -1, -1)]


def plausible_history(key: str, today_value: float, days: list[date], *, percent: bool) -> list[float]:
    """A history ending near ``today_value``: a start at 60-100 % of it, a steady drift towards it
    and a little noise; whole numbers stay whole, shares stay within 0-100."""
    chance = random.Random(key)  # noqa: S311 - demo figures, not security
    start = today_value * chance.uniform(0.6, 1.0)
    whole = float(today_value).is_integer()
    history = []
    for index, _day in enumerate(days):
        progress = (index + 1) / (len(days) + 1)
        value = start + (today_value - start) * progress
        value *= 1 + chance.uniform(-0.06, 0.06)
        value = max(value, 0.0)
        if percent:
            value = min(value, 100.0)
        history.append(float(round(value)) if whole else round(value, 1))
    return history


def _is_percent(metric: dashboard.Metric) -> bool:
    return "%" in metric.label or "share" in metric.key


def metric_history(metric: dashboard.Metric, today: date, days: list[date]) -> dict[date, float]:
    """Today's value and each past week's, or only what could be measured."""
    found: dict[date, float] = {}
    try:
        # A savepoint of its own: seed_demo runs the seeder in one transaction, which a failing
        # query would otherwise abort for every later metric (PostgreSQL).
        with transaction.atomic():
            today_value = metric.compute(today)
            if today_value is None:
                return {}
            found[today] = float(today_value)
            if metric.backfill is not None:
                for day in days:
                    value = metric.backfill(day)
                    if value is not None:
                        found[day] = float(value)
    except Exception:
        log.exception("Demo history: metric %s could not be measured", metric.key)
        return {}
    if metric.backfill is not None:
        return found
    found.update(
        zip(days, plausible_history(metric.key, float(today_value), days, percent=_is_percent(metric)), strict=True)
    )
    return found


def seed() -> None:
    today = timezone.localdate()
    days = history_days(today)
    now = timezone.now()
    rows = [
        MetricSnapshot(key=metric.key, day=day, value=value, taken_at=now)
        for metric in dashboard.metrics()
        for day, value in metric_history(metric, today, days).items()
    ]
    MetricSnapshot.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
