"""The report's progress chart: decisions per hour when the campaign spans one day, per day
otherwise, as bars of an inline SVG drawn by the template (no script, no CDN). Whole-number axes
with a few round ticks, labelled buckets, and a title on every bar."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

WIDTH = 640
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 52
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Bucket:
    """One bar: its axis label, what its title says, and how many items were decided in it."""

    label: str
    title: str
    count: int


@dataclass
class Chart:
    title: str
    x_title: str
    buckets: list[Bucket]
    bars: list[dict[str, Any]] = field(default_factory=list)
    ticks: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    x_end: int = WIDTH - RIGHT
    y_base: int = HEIGHT - BOTTOM

    @property
    def total(self) -> int:
        return sum(bucket.count for bucket in self.buckets)


def _nice_step(top: int) -> int:
    """A round step (1, 2 or 5 times a power of ten) that gives at most five ticks above 0."""
    rough = max(top / 4, 1)
    power = 10 ** math.floor(math.log10(rough))
    for multiple in (1, 2, 5, 10):
        if multiple * power >= rough:
            return int(multiple * power)
    return int(10 * power)


def hourly_buckets(day: date, per_hour: dict[int, int]) -> list[Bucket]:
    """The 24 hours (UTC) of ``day``, each with the items decided in it."""
    return [
        Bucket(
            label=f"{hour:02d}:00",
            title=f"{day:%Y-%m-%d} {hour:02d}:00–{hour + 1:02d}:00 UTC: {per_hour.get(hour, 0)} decided",
            count=per_hour.get(hour, 0),
        )
        for hour in range(24)
    ]


def daily_buckets(series: list[tuple[date, int]]) -> list[Bucket]:
    """Each day of the cumulative ``series`` with the items decided that day."""
    buckets: list[Bucket] = []
    previous = 0
    for day, cumulative in series:
        count = cumulative - previous if buckets else cumulative
        previous = cumulative
        buckets.append(Bucket(label=f"{day:%d %b}", title=f"{day:%Y-%m-%d}: {count} decided", count=count))
    return buckets


def build_chart(buckets: list[Bucket], *, title: str, x_title: str) -> Chart:
    """Bars for ``buckets`` on a whole-number axis; a bucket with decisions is never thinner or
    lower than a visible bar, and at most ``MAX_X_LABELS`` buckets are labelled."""
    chart = Chart(title=title, x_title=x_title, buckets=buckets)
    if not buckets:
        return chart
    inner_width = WIDTH - LEFT - RIGHT
    inner_height = HEIGHT - TOP - BOTTOM
    step = _nice_step(max(bucket.count for bucket in buckets))
    axis_top = step * max(math.ceil(max(bucket.count for bucket in buckets) / step), 1)
    slot = inner_width / len(buckets)
    bar_width = max(slot * 0.7, 2.0)
    for index, bucket in enumerate(buckets):
        height = inner_height * bucket.count / axis_top
        if bucket.count:
            height = max(height, 2.0)
        chart.bars.append(
            {
                "x": f"{LEFT + slot * index + (slot - bar_width) / 2:.1f}",
                "y": f"{chart.y_base - height:.1f}",
                "width": f"{bar_width:.1f}",
                "height": f"{height:.1f}",
                "title": bucket.title,
                "count": bucket.count,
            }
        )
    every = max(math.ceil(len(buckets) / MAX_X_LABELS), 1)
    for index in range(0, len(buckets), every):
        chart.labels.append({"x": f"{LEFT + slot * (index + 0.5):.1f}", "text": buckets[index].label})
    for value in range(0, axis_top + 1, step):
        chart.ticks.append({"y": f"{chart.y_base - inner_height * value / axis_top:.1f}", "label": value})
    return chart
