"""The dashboard's weekly chart: findings opened and closed per week as bars of an inline SVG the
template draws (no script, no CDN), on a whole-number axis with a few round ticks. The page shows
the same numbers in a table beside it, for those who do not see the bars."""

from __future__ import annotations

import math
from typing import Any

CHART_WIDTH, CHART_HEIGHT = 640, 240
CHART_LEFT, CHART_RIGHT, CHART_TOP, CHART_BOTTOM = 44, 12, 12, 40


def _nice_step(peak: int) -> int:
    """A round tick step (1, 2 or 5 times a power of ten) giving at most four ticks above 0."""
    power = 1
    while True:
        for multiple in (1, 2, 5):
            if multiple * power * 4 >= peak:
                return multiple * power
        power *= 10


def weekly_chart(weeks: list[dict[str, Any]]) -> dict[str, Any]:
    """Two bars per week, findings opened and findings closed, on a whole-number axis; a week
    with any is never lower than a visible bar. Every other week is labelled."""
    peak = max([max(week["total"], week["closed"]) for week in weeks] or [0])
    step = _nice_step(max(peak, 1))
    axis_top = step * max(math.ceil(peak / step), 1)
    inner_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
    inner_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    base = CHART_HEIGHT - CHART_BOTTOM
    slot = inner_width / max(len(weeks), 1)
    width = slot * 0.38
    bars, labels = [], []
    for index, week in enumerate(weeks):
        left = CHART_LEFT + slot * index + slot * 0.1
        for offset, value, kind in ((0.0, week["total"], "opened"), (width, week["closed"], "closed")):
            height = max(inner_height * value / axis_top, 2.0) if value else 0.0
            bars.append(
                {
                    "x": f"{left + offset:.1f}",
                    "y": f"{base - height:.1f}",
                    "width": f"{width:.1f}",
                    "height": f"{height:.1f}",
                    "kind": kind,
                    "title": f"Week of {week['start']:%Y-%m-%d}: {value} {kind}",
                }
            )
        if index % 2 == 0:
            labels.append({"x": f"{CHART_LEFT + slot * (index + 0.5):.1f}", "text": f"{week['start']:%d %b}"})
    ticks = [
        {"y": f"{base - inner_height * value / axis_top:.1f}", "label": value} for value in range(0, axis_top + 1, step)
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": CHART_LEFT,
        "top": CHART_TOP,
        "x_end": CHART_WIDTH - CHART_RIGHT,
        "base": base,
        "bars": bars,
        "labels": labels,
        "ticks": ticks,
        "opened": sum(week["total"] for week in weeks),
        "closed": sum(week["closed"] for week in weeks),
    }
