"""Accessible inline-SVG charts: a chart is a context dict that ``templates/charts/chart.html``
draws (no script, no CDN, no inline style: colours come from CSS classes in
``governance/charts.css``), with a one-sentence summary and the same numbers as a table.

Usage from a panel's ``build()``::

    chart = column_chart(["Mon", "Tue"], [("Opened", [3, 5]), ("Closed", [1, 4])],
                         title="Findings per day", stacked=True)
    return {"chart": chart}

and in its template ``{% include "charts/chart.html" with chart=chart %}``.

Rules every chart follows: the value axis starts at 0 and ends on a round tick (1, 2, 2.5 or 5
times a power of ten; percentages on 0-100); a non-zero value is never drawn thinner than a
visible mark; every series is told apart without colour — a fill pattern (columns) or a marker
shape and dash (lines), a legend that shows the same pattern or shape, and direct labels at the
end of each line; every mark carries a ``<title>`` with its category, series and value.

Values are non-negative numbers; ``None`` means "not measured" (a gap in a line, an empty cell
in the table, no column). Optional keyword arguments beyond the plan's interface: ``summary``
(replaces the generated sentence), ``category_label`` (the table's first column), ``links``
(one URL per category or row, linked from the table), ``key`` (the chart's element id, when the
same title appears twice on one page), ``table_open`` (show the table unfolded), ``tones``
(column and line charts: one colour name per series instead of the palette — ``ok``, ``warn``,
``danger``, ``muted``, ``accent`` — for series whose meaning has a colour, such as statuses).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

from django.utils.text import slugify

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 14, 44
# Lines leave room on the right for their direct labels (name and last value, shortened to fit).
LINE_RIGHT = 150
END_LABEL_CHARS = 22
BAR_ROW, BAR_LABEL_WIDTH, BAR_VALUE_ROOM = 26, 190, 64
# Category labels on the x axis: about this wide per character (11 px text), with a gap between.
LABEL_CHAR_WIDTH, LABEL_GAP = 6.4, 10
# Patterns and marker shapes by series index (cycled): told apart without colour.
PATTERNS = ("solid", "diagonal", "dots", "cross", "horizontal", "vertical")
MARKERS = ("circle", "square", "triangle", "diamond", "cross", "bar")
MIN_MARK = 2.0

Number = float | int | None


def format_value(value: Number, unit: str = "") -> str:
    """A value as people read it: whole numbers without decimals, others with one; the unit
    after (``%`` without a space)."""
    if value is None:
        return "–"
    rounded = round(float(value), 1)
    text = f"{rounded:,.0f}" if rounded == int(rounded) else f"{rounded:,.1f}"
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def nice_axis(peak: float, *, unit: str = "", integers: bool = False) -> tuple[float, list[float]]:
    """The axis top and its ticks from 0: a round step (1, 2, 2.5 or 5 times a power of ten;
    whole steps when every value is a whole number) giving at most five ticks above 0.
    Percentages up to 100 use 0-100; an empty chart has the axis 0-1."""
    if unit == "%" and peak <= 100:
        return 100.0, [0.0, 25.0, 50.0, 75.0, 100.0]
    if peak <= 0:
        return 1.0, [0.0, 1.0]
    power = 10.0 ** math.floor(math.log10(peak / 5))
    if integers:
        power = max(power, 1.0)
    step = power
    for multiple in (1.0, 2.0, 2.5, 5.0, 10.0):
        if multiple == 2.5 and (power < 1 or (integers and power == 1)):
            continue
        step = multiple * power
        if step * 5 >= peak:
            break
    count = max(math.ceil(round(peak / step, 9)), 1)
    return round(step * count, 9), [round(step * index, 9) for index in range(count + 1)]


def _whole(series: Sequence[tuple[str, Sequence[Number]]]) -> bool:
    return all(value is None or float(value).is_integer() for _name, values in series for value in values)


def _chart_id(kind: str, title: str, key: str | None) -> str:
    if key:
        return f"chart-{slugify(key)}"
    digest = hashlib.sha1(f"{kind}:{title}".encode(), usedforsecurity=False).hexdigest()[:6]
    return f"chart-{slugify(title)[:40] or kind}-{digest}"


def _fmt(number: float) -> str:
    return f"{number:.1f}"


def _x_labels(categories: Sequence[str], centres: list[float]) -> list[dict[str, str]]:
    """Every k-th category's label, counted back from the last (the latest week is always
    labelled), k as small as lets the widest label fit without touching its neighbours."""
    if not categories:
        return []
    spacing = (centres[-1] - centres[0]) / (len(centres) - 1) if len(centres) > 1 else math.inf
    widest = max(len(str(category)) for category in categories) * LABEL_CHAR_WIDTH + LABEL_GAP
    every = max(math.ceil(widest / spacing), 1)
    last = len(categories) - 1
    return [
        {"x": _fmt(centre), "text": str(category)}
        for index, (category, centre) in enumerate(zip(categories, centres, strict=True))
        if (last - index) % every == 0
    ]


def _series_meta(
    chart_id: str, series: Sequence[tuple[str, Sequence[Number]]], tones: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Per series: its colour class (``series-N``, or ``tone-<name>`` when the caller gives tones
    such as ok / warn / danger / muted), its fill pattern, marker shape and their element ids."""
    if tones is not None and len(tones) != len(series):
        raise ValueError("Give one tone per series.")
    meta = []
    for index, (name, _values) in enumerate(series):
        marker = MARKERS[index % len(MARKERS)]
        meta.append(
            {
                "name": name,
                "index": index,
                "css": f"tone-{tones[index]}" if tones else f"series-{index % len(PATTERNS)}",
                "pattern": PATTERNS[index % len(PATTERNS)],
                "pattern_id": f"{chart_id}-p{index}",
                "marker": marker,
                "swatch_marker": _marker_path(marker, 14, 7),
            }
        )
    return meta


def _table(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number]]],
    *,
    unit: str,
    category_label: str,
    links: Sequence[str | None] | None,
    total: bool,
) -> dict[str, Any]:
    headers = [category_label, *(name for name, _values in series)]
    if total:
        headers.append("Total")
    rows = []
    for index, category in enumerate(categories):
        values = [values[index] for _name, values in series]
        cells = [format_value(value, unit) for value in values]
        if total:
            cells.append(format_value(sum(value or 0 for value in values), unit))
        rows.append({"label": category, "link": links[index] if links else None, "cells": cells})
    return {"headers": headers, "rows": rows}


def _check(categories: Sequence[str], series: Sequence[tuple[str, Sequence[Number]]]) -> None:
    for name, values in series:
        if len(values) != len(categories):
            raise ValueError(f"Series {name!r} has {len(values)} values for {len(categories)} categories.")
    if any(value is not None and value < 0 for _name, values in series for value in values):
        raise ValueError("Chart values must not be negative.")


def _frame(chart_id: str, kind: str, title: str, unit: str, right: float, height: float) -> dict[str, Any]:
    return {
        "id": chart_id,
        "kind": kind,
        "title": title,
        "unit": unit,
        "width": WIDTH,
        "height": int(height),
        "left": LEFT,
        "top": TOP,
        "x_end": _fmt(WIDTH - right),
        "base": _fmt(height - BOTTOM),
        "x_label_y": _fmt(height - BOTTOM + 16),
    }


def _ticks(top_value: float, tick_values: list[float], base: float, inner_height: float, unit: str) -> list[dict]:
    return [
        {"y": _fmt(base - inner_height * value / top_value), "label": format_value(value, unit)}
        for value in tick_values
    ]


def _column_summary(
    categories: Sequence[str], series: Sequence[tuple[str, Sequence[Number]]], unit: str, stacked: bool
) -> str:
    if not categories or not series:
        return "No data to show."
    entries = f"{len(categories)} {'entry' if len(categories) == 1 else 'entries'}"
    if stacked or len(series) == 1:
        totals = [sum(values[index] or 0 for _name, values in series) for index in range(len(categories))]
        high = max(range(len(categories)), key=lambda index: totals[index])
        highest = f"the highest is {categories[high]} ({format_value(totals[high], unit)})"
        if unit == "%":
            low = min(range(len(categories)), key=lambda index: totals[index])
            return f"{entries}; {highest}, the lowest {categories[low]} ({format_value(totals[low], unit)})."
        if len(series) == 1:
            return f"{entries} totalling {format_value(sum(totals), unit)}; {highest}."
        parts = ", ".join(f"{name} {format_value(sum(v or 0 for v in values), unit)}" for name, values in series)
        return f"{entries}, in total {parts}; {highest}."
    peaks = []
    for name, values in series:
        measured = [(value, index) for index, value in enumerate(values) if value is not None]
        if measured:
            value, index = max(measured)
            peaks.append(f"{name} peaks at {format_value(value, unit)} ({categories[index]})")
    return f"{entries}; " + ", ".join(peaks) + "." if peaks else "No data to show."


def column_chart(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number]]],
    *,
    title: str,
    unit: str = "",
    stacked: bool = False,
    summary: str | None = None,
    category_label: str = "Category",
    links: Sequence[str | None] | None = None,
    key: str | None = None,
    table_open: bool = False,
    tones: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Vertical columns per category: side by side per series, or stacked (then the table has a
    total column and the axis is scaled to the tallest stack)."""
    _check(categories, series)
    chart_id = _chart_id("column", title, key)
    chart = _frame(chart_id, "column", title, unit, RIGHT, HEIGHT)
    base, inner_height = HEIGHT - BOTTOM, HEIGHT - TOP - BOTTOM
    inner_width = WIDTH - LEFT - RIGHT
    if stacked:
        peak = max([sum(values[index] or 0 for _n, values in series) for index in range(len(categories))] or [0])
    else:
        peak = max([value or 0 for _n, values in series for value in values] or [0])
    top_value, tick_values = nice_axis(float(peak), unit=unit, integers=_whole(series))
    meta = _series_meta(chart_id, series, tones)
    slot = inner_width / max(len(categories), 1)
    marks = _column_marks(categories, series, meta, slot=slot, top_value=top_value, stacked=stacked, unit=unit)
    centres = [LEFT + slot * (index + 0.5) for index in range(len(categories))]
    chart.update(
        stacked=stacked,
        series=meta,
        marks=marks,
        ticks=_ticks(top_value, tick_values, base, inner_height, unit),
        labels=_x_labels(categories, centres),
        summary=summary or _column_summary(categories, series, unit, stacked),
        table=_table(categories, series, unit=unit, category_label=category_label, links=links, total=stacked),
        table_open=table_open,
    )
    return chart


def _column_marks(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number]]],
    meta: list[dict[str, Any]],
    *,
    slot: float,
    top_value: float,
    stacked: bool,
    unit: str,
) -> list[dict[str, Any]]:
    """One rectangle per non-zero value: side by side within the category's slot, or piled up."""
    base, inner_height = HEIGHT - BOTTOM, HEIGHT - TOP - BOTTOM
    group = slot * 0.76
    width = group if stacked else group / max(len(series), 1)
    marks = []
    for index, category in enumerate(categories):
        left = LEFT + slot * index + slot * 0.12
        stack_top = float(base)
        for position, (name, values) in enumerate(series):
            value = values[index]
            if not value:
                # Nothing to draw; the table still says 0 (or "–" when not measured).
                continue
            height = max(inner_height * value / top_value, MIN_MARK)
            mark_y = stack_top - height if stacked else base - height
            if stacked:
                stack_top = mark_y
            marks.append(
                {
                    "x": _fmt(left if stacked else left + width * position),
                    "y": _fmt(mark_y),
                    "width": _fmt(max(width - 1, 1)),
                    "height": _fmt(height),
                    "series": meta[position],
                    "title": f"{category}, {name}: {format_value(value, unit)}",
                }
            )
    return marks


def _line_summary(categories: Sequence[str], series: Sequence[tuple[str, Sequence[Number]]], unit: str) -> str:
    parts = []
    for name, values in series:
        measured = [(index, value) for index, value in enumerate(values) if value is not None]
        if not measured:
            parts.append(f"{name} not measured")
            continue
        (first_index, first), (last_index, last) = measured[0], measured[-1]
        if last_index == first_index or last == first:
            change = "unchanged" if last_index != first_index else "one measurement"
        else:
            direction = "up" if last > first else "down"
            change = f"{direction} {format_value(abs(last - first), unit)} since {categories[first_index]}"
        when = "" if last_index == len(categories) - 1 else f" on {categories[last_index]}"
        parts.append(f"{name} {format_value(last, unit)}{when} ({change})")
    if not parts:
        return "No data to show."
    return f"Latest ({categories[-1]}): " + "; ".join(parts) + "."


def _line_points(
    values: Sequence[Number], xs: list[float], base: float, inner_height: float, top_value: float
) -> list[tuple[float, float] | None]:
    return [
        None if value is None else (point_x, base - inner_height * value / top_value)
        for value, point_x in zip(values, xs, strict=True)
    ]


def line_chart(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number]]],
    *,
    title: str,
    unit: str = "",
    summary: str | None = None,
    category_label: str = "Category",
    key: str | None = None,
    table_open: bool = False,
    tones: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A line per series over the categories (usually weeks), with a marker of the series' shape
    on every point, a dash pattern per series and the series' name and last value written at its
    end. ``None`` breaks the line."""
    _check(categories, series)
    chart_id = _chart_id("line", title, key)
    chart = _frame(chart_id, "line", title, unit, LINE_RIGHT, HEIGHT)
    base, inner_height = HEIGHT - BOTTOM, HEIGHT - TOP - BOTTOM
    inner_width = WIDTH - LEFT - LINE_RIGHT
    peak = max([value or 0 for _n, values in series for value in values] or [0])
    top_value, tick_values = nice_axis(float(peak), unit=unit, integers=_whole(series))
    count = len(categories)
    xs = [LEFT + (inner_width * index / (count - 1) if count > 1 else inner_width / 2) for index in range(count)]
    meta = _series_meta(chart_id, series, tones)
    lines = [
        _line(categories, name, values, meta[position], _line_points(values, xs, base, inner_height, top_value), unit)
        for position, (name, values) in enumerate(series)
    ]
    _spread_end_labels(lines)
    chart.update(
        series=meta,
        lines=lines,
        ticks=_ticks(top_value, tick_values, base, inner_height, unit),
        labels=_x_labels(categories, xs),
        summary=summary or _line_summary(categories, series, unit),
        table=_table(categories, series, unit=unit, category_label=category_label, links=None, total=False),
        table_open=table_open,
    )
    return chart


def _end_label(name: str, value: str) -> str:
    """The series' name and value, the name shortened so that both fit beside the plot."""
    room = END_LABEL_CHARS - len(value) - 1
    short = name if len(name) <= room else name[: max(room - 1, 1)] + "…"
    return f"{short} {value}"


def _line(
    categories: Sequence[str],
    name: str,
    values: Sequence[Number],
    meta: dict[str, Any],
    points: list[tuple[float, float] | None],
    unit: str,
) -> dict[str, Any]:
    """One series' polylines (broken where a value is missing), markers and end label."""
    segments: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            segments.append([])
        else:
            segments[-1].append(point)
    markers = [
        {
            "x": _fmt(point[0]),
            "y": _fmt(point[1]),
            "title": f"{categories[index]}, {name}: {format_value(values[index], unit)}",
            "path": _marker_path(meta["marker"], point[0], point[1]),
        }
        for index, point in enumerate(points)
        if point is not None
    ]
    last = next(((index, point) for index, point in reversed(list(enumerate(points))) if point), None)
    end = None
    if last is not None:
        end = {
            "x": _fmt(last[1][0] + 8),
            "y": _fmt(last[1][1]),
            "text": _end_label(name, format_value(values[last[0]], unit)),
        }
    paths = [
        " ".join(f"{_fmt(point_x)},{_fmt(point_y)}" for point_x, point_y in segment)
        for segment in segments
        if len(segment) > 1
    ]
    return {"series": meta, "paths": paths, "markers": markers, "end": end}


def _spread_end_labels(lines: list[dict[str, Any]]) -> None:
    """Move the direct labels at the lines' ends apart vertically so that they never overlap."""
    ends = sorted((line["end"] for line in lines if line["end"]), key=lambda end: float(end["y"]))
    previous = -math.inf
    for end in ends:
        label_y = max(float(end["y"]), previous + 13)
        end["y"] = _fmt(label_y)
        previous = label_y


def _marker_path(shape: str, cx: float, cy: float) -> str:
    """An SVG path of a 7-8 px marker centred on (cx, cy)."""
    size = 3.5
    if shape == "circle":
        return f"M{cx - size:.1f},{cy:.1f}a{size},{size} 0 1,0 {size * 2},0a{size},{size} 0 1,0 {-size * 2},0Z"
    if shape == "square":
        return f"M{cx - size:.1f},{cy - size:.1f}h{size * 2}v{size * 2}h{-size * 2}Z"
    if shape == "triangle":
        return f"M{cx:.1f},{cy - size - 1:.1f}L{cx + size + 0.5:.1f},{cy + size:.1f}L{cx - size - 0.5:.1f},{cy + size:.1f}Z"
    if shape == "diamond":
        return f"M{cx:.1f},{cy - size - 1:.1f}L{cx + size + 1:.1f},{cy:.1f}L{cx:.1f},{cy + size + 1:.1f}L{cx - size - 1:.1f},{cy:.1f}Z"
    if shape == "cross":
        return (
            f"M{cx - size:.1f},{cy - size:.1f}L{cx + size:.1f},{cy + size:.1f}"
            f"M{cx + size:.1f},{cy - size:.1f}L{cx - size:.1f},{cy + size:.1f}"
        )
    return f"M{cx - size - 1:.1f},{cy - 1.5:.1f}h{size * 2 + 2}v3h{-size * 2 - 2}Z"


def bar_list(
    rows: Sequence[tuple[str, Number]],
    *,
    title: str,
    unit: str = "",
    summary: str | None = None,
    category_label: str = "Name",
    value_label: str = "Value",
    links: Sequence[str | None] | None = None,
    key: str | None = None,
    table_open: bool = False,
) -> dict[str, Any]:
    """Horizontal bars, one per row in the given order, each labelled with its name on the left
    and its value at its end (one series: no legend needed)."""
    labels = [label for label, _value in rows]
    series = [(value_label, [value for _label, value in rows])]
    _check(labels, series)
    chart_id = _chart_id("bars", title, key)
    peak = max([value or 0 for _label, value in rows] or [0])
    chart, scale = _horizontal_frame(chart_id, "bars", title, unit, len(rows), peak, integers=_whole(series))
    bars = []
    for index, (label, value) in enumerate(rows):
        row_top = TOP + BAR_ROW * index
        length = max(scale * value, MIN_MARK) if value else 0.0
        bars.append(
            {
                "x": BAR_LABEL_WIDTH,
                "y": _fmt(row_top + 4),
                "width": _fmt(length),
                "height": BAR_ROW - 8,
                "label": _short_label(label),
                "label_y": _fmt(row_top + BAR_ROW / 2 + 4),
                "value_x": _fmt(BAR_LABEL_WIDTH + length + 6),
                "value": format_value(value, unit),
                "title": f"{label}: {format_value(value, unit)}",
            }
        )
    chart.update(
        series=_series_meta(chart_id, series),
        bars=bars,
        summary=_bar_summary(rows, unit) if summary is None else summary,
        table=_table(labels, series, unit=unit, category_label=category_label, links=links, total=False),
        table_open=table_open,
    )
    return chart


def _short_label(label: str) -> str:
    """A row's name as it fits left of the bars (the mark's title and the table keep it whole)."""
    return label if len(label) <= 28 else label[:27] + "…"


def _horizontal_frame(
    chart_id: str, kind: str, title: str, unit: str, rows: int, peak: float, *, integers: bool
) -> tuple[dict[str, Any], float]:
    """The frame of a horizontal chart with ``rows`` rows, its vertical grid lines and ticks,
    and the scale (pixels per unit) of its bars."""
    height = TOP + BAR_ROW * max(rows, 1) + BOTTOM
    chart = _frame(chart_id, kind, title, unit, RIGHT, height)
    chart["left"] = BAR_LABEL_WIDTH
    inner_width = WIDTH - BAR_LABEL_WIDTH - RIGHT - BAR_VALUE_ROOM
    top_value, tick_values = nice_axis(float(peak), unit=unit, integers=integers)
    scale = inner_width / top_value
    chart["ticks"] = [
        {"x": _fmt(BAR_LABEL_WIDTH + scale * value), "label": format_value(value, unit)} for value in tick_values
    ]
    return chart, scale


def _bar_summary(rows: Sequence[tuple[str, Number]], unit: str) -> str:
    measured = [(label, value) for label, value in rows if value is not None]
    if not measured:
        return "No data to show."
    label, value = max(measured, key=lambda row: row[1] or 0)
    total = sum(value or 0 for _label, value in measured)
    if unit == "%":
        return f"{len(measured)} entries; the highest is {label} ({format_value(value, unit)})."
    return f"{len(measured)} entries totalling {format_value(total, unit)}; the highest is {label} ({format_value(value, unit)})."


def stacked_bars(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number]]],
    *,
    title: str,
    unit: str = "",
    summary: str | None = None,
    category_label: str = "Category",
    links: Sequence[str | None] | None = None,
    key: str | None = None,
    table_open: bool = False,
    tones: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Horizontal stacked bars, one row per category (long names fit on the left), each split
    into its series' parts in order, with the row's total at its end; the table adds a total
    column."""
    _check(categories, series)
    chart_id = _chart_id("stacked", title, key)
    totals = [sum(values[index] or 0 for _name, values in series) for index in range(len(categories))]
    chart, scale = _horizontal_frame(
        chart_id, "stacked", title, unit, len(categories), max(totals or [0]), integers=_whole(series)
    )
    meta = _series_meta(chart_id, series, tones)
    rows = []
    for index, category in enumerate(categories):
        row_top = TOP + BAR_ROW * index
        start = float(BAR_LABEL_WIDTH)
        parts = []
        for position, (name, values) in enumerate(series):
            value = values[index]
            if not value:
                continue
            length = max(scale * value, MIN_MARK)
            title_text = f"{category}, {name}: {format_value(value, unit)}"
            parts.append({"x": _fmt(start), "width": _fmt(length), "series": meta[position], "title": title_text})
            start += length
        rows.append(
            {
                "label": _short_label(category),
                "y": _fmt(row_top + 4),
                "height": BAR_ROW - 8,
                "label_y": _fmt(row_top + BAR_ROW / 2 + 4),
                "parts": parts,
                "total_x": _fmt(start + 6),
                "total": format_value(totals[index], unit),
            }
        )
    chart.update(
        series=meta,
        rows=rows,
        summary=summary or _column_summary(categories, series, unit, stacked=True),
        table=_table(categories, series, unit=unit, category_label=category_label, links=links, total=True),
        table_open=table_open,
    )
    return chart
