"""The dashboard's charts: round axes, marks where the numbers put them, every series told apart
without colour, and the same numbers as a sentence and a table."""

from __future__ import annotations

import itertools
import re

import pytest
from django.template.loader import render_to_string

from governance.charts import (
    BOTTOM,
    HEIGHT,
    MIN_MARK,
    TOP,
    bar_list,
    column_chart,
    format_value,
    line_chart,
    nice_axis,
    stacked_bars,
)

INNER_HEIGHT = HEIGHT - TOP - BOTTOM
BASE = HEIGHT - BOTTOM


@pytest.mark.parametrize(
    ("peak", "integers", "top", "ticks"),
    [
        (0, True, 1, [0, 1]),
        (3, True, 3, [0, 1, 2, 3]),
        (7, True, 8, [0, 2, 4, 6, 8]),
        (12, True, 15, [0, 5, 10, 15]),
        (12, False, 12.5, [0, 2.5, 5, 7.5, 10, 12.5]),
        (101, True, 125, [0, 25, 50, 75, 100, 125]),
        (1234, True, 1250, [0, 250, 500, 750, 1000, 1250]),
        (0.3, False, 0.3, [0, 0.1, 0.2, 0.3]),
    ],
)
def test_axis_ends_on_a_round_tick(peak: float, integers: bool, top: float, ticks: list[float]) -> None:
    assert nice_axis(peak, integers=integers) == (top, ticks)


def test_percentages_use_the_whole_scale() -> None:
    assert nice_axis(42, unit="%") == (100, [0, 25, 50, 75, 100])


def test_values_read_as_people_write_them() -> None:
    assert format_value(1234) == "1,234"
    assert format_value(12.34, "%") == "12.3%"
    assert format_value(3, "days") == "3 days"
    assert format_value(None) == "–"


def test_columns_stand_as_high_as_their_values() -> None:
    chart = column_chart(["Mon", "Tue"], [("Opened", [4, 0]), ("Closed", [2, 1])], title="Findings")
    assert [tick["label"] for tick in chart["ticks"]] == ["0", "1", "2", "3", "4"]
    opened_monday, closed_monday, closed_tuesday = chart["marks"]
    assert float(opened_monday["height"]) == pytest.approx(INNER_HEIGHT)
    assert float(closed_monday["height"]) == pytest.approx(INNER_HEIGHT / 2)
    assert float(opened_monday["y"]) + float(opened_monday["height"]) == pytest.approx(BASE)
    # Side by side: the second series starts where the first ends.
    assert float(closed_monday["x"]) > float(opened_monday["x"])
    # A zero draws nothing, and each mark says what it is.
    assert len(chart["marks"]) == 3
    assert closed_tuesday["title"] == "Tue, Closed: 1"


def test_stacked_columns_pile_up_and_the_table_adds_a_total() -> None:
    chart = column_chart(["A"], [("Met", [3]), ("Not met", [1])], title="Status", stacked=True)
    met, not_met = chart["marks"]
    assert float(not_met["y"]) + float(not_met["height"]) == pytest.approx(float(met["y"]))
    assert chart["table"]["headers"] == ["Category", "Met", "Not met", "Total"]
    assert chart["table"]["rows"][0]["cells"] == ["3", "1", "4"]


def test_a_tiny_value_is_still_visible() -> None:
    chart = column_chart(["A", "B"], [("Count", [1000, 1])], title="Uneven")
    assert float(chart["marks"][1]["height"]) == MIN_MARK


def test_series_differ_by_pattern_and_marker_not_only_colour() -> None:
    series = [(f"S{index}", [index + 1, index + 2]) for index in range(4)]
    columns = column_chart(["a", "b"], series, title="Patterns")
    assert len({meta["pattern"] for meta in columns["series"]}) == 4
    lines = line_chart(["a", "b"], series, title="Shapes")
    assert len({meta["marker"] for meta in lines["series"]}) == 4
    html = render_to_string("charts/chart.html", {"chart": columns})
    # Each series' pattern is defined once and used by its marks and its legend swatch.
    for meta in columns["series"]:
        assert html.count(f'id="{meta["pattern_id"]}"') == 1
        assert html.count(f'fill="url(#{meta["pattern_id"]})"') == 3
    assert "style=" not in html


def test_line_breaks_where_nothing_was_measured_and_labels_its_end() -> None:
    chart = line_chart(
        ["w1", "w2", "w3", "w4"], [("Registered", [10, None, 12, 14]), ("Shadow", [4, 3, 3, None])], title="Sprawl"
    )
    registered, shadow = chart["lines"]
    assert len(registered["paths"]) == 1  # w1 alone is no segment; w3-w4 is one
    assert len(registered["markers"]) == 3
    assert registered["end"]["text"] == "Registered 14"
    assert shadow["end"]["text"] == "Shadow 3"
    assert chart["summary"] == ("Latest (w4): Registered 14 (up 4 since w1); Shadow 3 on w3 (down 1 since w1).")
    assert chart["table"]["rows"][1]["cells"] == ["–", "3"]


def test_end_labels_never_overlap() -> None:
    chart = line_chart(["a", "b"], [("One", [5, 5]), ("Two", [5, 5])], title="Same")
    first, second = (float(line["end"]["y"]) for line in chart["lines"])
    assert abs(first - second) >= 13


def test_bar_list_keeps_the_order_and_links_the_table() -> None:
    chart = bar_list([("Alice Archer", 30), ("Bob", 12.5)], title="Owners", unit="points", links=["/people/1/", None])
    alice, bob = chart["bars"]
    assert float(alice["width"]) > float(bob["width"])
    assert alice["value"] == "30 points"
    assert chart["summary"] == "2 entries totalling 42.5 points; the highest is Alice Archer (30 points)."
    html = render_to_string("charts/chart.html", {"chart": chart})
    assert '<a href="/people/1/">Alice Archer</a>' in html
    assert "chart-legend" not in html  # one series: nothing to tell apart


def test_stacked_bars_split_each_row_by_series() -> None:
    chart = stacked_bars(
        ["OWASP Top 10 for Agentic Applications 2026", "NIST CSF 2.0"],
        [("Met", [6, 0]), ("Not met", [4, 2])],
        title="Coverage",
        tones=["ok", "danger"],
    )
    first, second = chart["rows"]
    assert [part["series"]["css"] for part in first["parts"]] == ["tone-ok", "tone-danger"]
    assert float(first["parts"][1]["x"]) == pytest.approx(
        float(first["parts"][0]["x"]) + float(first["parts"][0]["width"])
    )
    assert first["label"].endswith("…") and first["total"] == "10"
    assert len(second["parts"]) == 1
    assert (
        chart["summary"]
        == "2 entries, in total Met 6, Not met 6; the highest is OWASP Top 10 for Agentic Applications 2026 (10)."
    )


def test_rendered_chart_is_labelled_for_screen_readers() -> None:
    chart = column_chart(["Mon"], [("Opened", [2])], title="Findings per day", key="findings")
    html = render_to_string("charts/chart.html", {"chart": chart})
    assert 'role="img"' in html
    assert 'aria-labelledby="chart-findings-title chart-findings-summary"' in html
    assert '<title id="chart-findings-title">Findings per day</title>' in html
    assert "<title>Mon, Opened: 2</title>" in html
    assert re.search(r"<caption>Findings per day</caption>", html)
    assert "<details" in html  # the table folds away unless asked to be open
    assert "<details" not in render_to_string("charts/chart.html", {"chart": {**chart, "table_open": True}})


def test_mismatched_or_negative_series_are_refused() -> None:
    with pytest.raises(ValueError, match="2 categories"):
        column_chart(["a", "b"], [("S", [1])], title="Bad")
    with pytest.raises(ValueError, match="negative"):
        line_chart(["a"], [("S", [-1])], title="Bad")


def test_crowded_axis_labels_are_thinned_keeping_the_latest() -> None:
    weeks = [f"{day:02d} Oct" for day in range(1, 13)]
    chart = line_chart(weeks, [("Registered", list(range(12)))], title="Weekly")
    shown = [label["text"] for label in chart["labels"]]
    assert shown[-1] == "12 Oct" and 2 < len(shown) < 12
    gaps = {round(float(right["x"]) - float(left["x"]), 1) for left, right in itertools.pairwise(chart["labels"])}
    assert max(gaps) - min(gaps) < 0.5 and min(gaps) >= len("12 Oct") * 6.4
    few = column_chart(["Low", "High"], [("Count", [1, 2])], title="Tiers")
    assert [label["text"] for label in few["labels"]] == ["Low", "High"]
