"""The dashboard's SVG charts (arq_jobs._dashboard.charts): one group per interval with its exact values
in a title, gaps for intervals without a value, axes with units and UTC time labels, escaped text, and
nothing the pages' CSP would refuse."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
from markupsafe import Markup

from arq_jobs._dashboard import charts
from arq_jobs._stats.reader import Stats, StatsPoint
from arq_jobs._stats.window import Window

SVG = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def point(at: datetime, **values: Any) -> StatsPoint:
    fields: dict[str, Any] = {
        "succeeded": 0,
        "failed": 0,
        "retried": 0,
        "cancelled": 0,
        "dead_lettered": 0,
        **dict.fromkeys(
            ("run_p50_ms", "run_p95_ms", "run_p99_ms", "wait_p50_ms", "wait_p95_ms", "wait_p99_ms")
        ),
        **dict.fromkeys(("pending", "scheduled", "running", "retrying")),
    }
    return StatsPoint(t=at, **{**fields, **values})


def stats(window: Window, values: dict[int, dict[str, Any]] | None = None, task: str | None = None) -> Stats:
    """A window's series from START, with `values` at some of its points (zeros elsewhere)."""
    step = window.resolution_s
    series = [
        point(START + timedelta(seconds=i * step), **(values or {}).get(i, {})) for i in range(window.points)
    ]
    return Stats(window=window, resolution_s=step, task=task, queue=None, series=series, tasks=[])


def parse(svg: Markup) -> ElementTree.Element:
    """The chart as XML (it must be well-formed)."""
    return ElementTree.fromstring(str(svg).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def points(root: ElementTree.Element) -> list[ElementTree.Element]:
    return [g for g in root.iter(f"{SVG}g") if "data-point" in g.attrib]


def title(group: ElementTree.Element) -> str:
    found = group.find(f"{SVG}title")
    assert found is not None and found.text is not None
    return found.text


@pytest.mark.parametrize(
    ("window", "count"),
    [
        (Window.MINUTES_15, 15),
        (Window.HOUR_1, 60),
        (Window.HOURS_24, 24),
        (Window.DAYS_7, 168),
        (Window.DAYS_30, 120),
    ],
)
def test_every_chart_has_one_group_per_interval_of_its_window(window: Window, count: int) -> None:
    data = stats(window)
    for svg, kind in [
        (charts.throughput_chart(data), "throughput"),
        (charts.depth_chart(data), "depth"),
        (charts.latency_chart(data, "run"), "run-time"),
        (charts.latency_chart(data, "wait", percentiles=[95]), "wait-time"),
        (charts.failure_rate_chart(data), "failure-rate"),
    ]:
        root = parse(svg)
        assert (root.get("data-chart"), root.get("data-points")) == (kind, str(count))
        assert [g.get("data-point") for g in points(root)] == [str(i) for i in range(count)]


def test_throughput_bars_stack_succeeded_and_failed_and_their_titles_say_the_exact_counts() -> None:
    root = parse(charts.throughput_chart(stats(Window.MINUTES_15, {5: {"succeeded": 42, "failed": 3}})))
    groups = points(root)
    assert title(groups[5]) == "12:05–12:06 UTC · 42 succeeded · 3 failed"
    assert title(groups[0]) == "12:00–12:01 UTC · 0 succeeded · 0 failed"
    assert title(groups[14]) == "12:14–12:15 UTC · 0 succeeded · 0 failed · so far"
    succeeded, failed = (
        groups[5].find(f"{SVG}rect[@class='{css}']") for css in ("bar-succeeded", "bar-failed")
    )
    assert succeeded is not None and failed is not None
    # failed sits on top of succeeded, 3/42 of its height, and is hatched (told apart without colour)
    assert float(failed.get("y", 0)) + float(failed.get("height", 0)) == pytest.approx(
        float(succeeded.get("y", 0))
    )
    assert float(failed.get("height", 0)) == pytest.approx(
        float(succeeded.get("height", 0)) * 3 / 42, abs=0.2
    )
    assert failed.get("fill") == "url(#throughput-hatch)"
    assert root.find(f".//{SVG}pattern[@id='throughput-hatch']") is not None
    assert {t.text for t in root.iter(f"{SVG}text")} >= {
        "succeeded (solid)",
        "failed (hatched)",
        "jobs per minute",
    }


def test_an_empty_window_still_draws_axes_and_zero_height_bars() -> None:
    root = parse(charts.throughput_chart(stats(Window.HOUR_1)))
    bars = [
        rect for g in points(root) for rect in g.iter(f"{SVG}rect") if rect.get("class") == "bar-succeeded"
    ]
    assert len(bars) == 60 and {rect.get("height") for rect in bars} == {"0.0"}
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "tick"]
    assert labels[:2] == ["0", "1"]  # y-axis 0 to 1
    assert "12:00" in labels and "12:50" in labels  # x-axis every 10 min, in UTC


def test_y_axis_ticks_are_round_and_reach_the_highest_value() -> None:
    assert charts.ticks(0) == [0, 1]
    assert charts.ticks(7) == [0, 2, 4, 6, 8]
    assert charts.ticks(42) == [0, 20, 40, 60]
    assert charts.ticks(100) == [0, 25, 50, 75, 100]
    assert charts.ticks(0.6) == [0, 0.2, 0.4, 0.6]


@pytest.mark.parametrize(
    ("window", "unit", "labels"),
    [
        (Window.MINUTES_15, "jobs per minute", {"12:00", "12:02"}),
        (Window.HOURS_24, "jobs per hour", {"12:00", "15:00"}),
        (Window.DAYS_7, "jobs per hour", {"Dec 6", "Dec 7"}),
        (Window.DAYS_30, "jobs per 6 h", {"Dec 10"}),
    ],
)
def test_units_follow_the_resolution_and_long_windows_are_labelled_by_date(
    window: Window, unit: str, labels: set[str]
) -> None:
    root = parse(charts.throughput_chart(stats(window)))
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert unit in texts and labels <= texts


def test_hourly_titles_carry_the_date() -> None:
    root = parse(charts.throughput_chart(stats(Window.HOURS_24, {1: {"succeeded": 7}})))
    assert title(points(root)[1]) == "2026-12-05 13:00–14:00 UTC · 7 succeeded · 0 failed"


def test_depth_lines_break_where_no_sample_was_taken_and_differ_by_dash_and_marker() -> None:
    sampled = {"pending": 3.5, "scheduled": 1.0, "running": 2.0, "retrying": 0.0}
    data = stats(Window.MINUTES_15, dict.fromkeys((0, 1, 2, 6, 7), sampled))
    root = parse(charts.depth_chart(data))
    groups = points(root)
    assert title(groups[1]) == "12:01–12:02 UTC · pending 3.5 · scheduled 1 · running 2 · retrying 0"
    assert title(groups[4]) == (
        "12:04–12:05 UTC · pending no sample · scheduled no sample · running no sample · retrying no sample"
    )
    assert len(list(groups[1].iter())) > 3 and not [e for e in groups[4] if "marker" in e.get("class", "")]
    paths = [p for p in root.iter(f"{SVG}path") if "line " in p.get("class", "") and p.get("d")]
    pending = next(p for p in paths if "line-0" in p.get("class", ""))
    assert pending.get("d", "").count("M") == 2  # two runs: 0–2 and 6–7
    dashes = {p.get("stroke-dasharray") for p in paths}
    assert len(dashes) == 4  # solid (None) and three patterns
    assert "jobs" in {t.text for t in root.iter(f"{SVG}text")}


def test_latency_chart_draws_the_asked_percentiles_in_ms() -> None:
    data = stats(Window.MINUTES_15, {3: {"wait_p50_ms": 5, "wait_p95_ms": 250, "wait_p99_ms": 30_000}})
    root = parse(charts.latency_chart(data, "wait"))
    assert title(points(root)[3]) == "12:03–12:04 UTC · p50 5 ms · p95 250 ms · p99 30,000 ms"
    assert title(points(root)[2]) == "12:02–12:03 UTC · p50 — · p95 — · p99 —"
    only_p95 = parse(charts.latency_chart(data, "wait", percentiles=[95], title="Wait p95"))
    assert title(points(only_p95)[3]) == "12:03–12:04 UTC · p95 250 ms"
    assert "ms" in {t.text for t in only_p95.iter(f"{SVG}text")}


def test_failure_rate_is_a_percentage_of_the_jobs_ended_and_a_gap_without_jobs() -> None:
    data = stats(Window.MINUTES_15, {2: {"succeeded": 39, "failed": 3}, 3: {"failed": 2}})
    root = parse(charts.failure_rate_chart(data))
    groups = points(root)
    assert title(groups[2]) == "12:02–12:03 UTC · 7.1 % failed (3 of 42)"
    assert title(groups[3]) == "12:03–12:04 UTC · 100 % failed (2 of 2)"
    assert title(groups[4]) == "12:04–12:05 UTC · no jobs ended"
    assert [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "tick"][:5] == [
        "0",
        "25",
        "50",
        "75",
        "100",
    ]
    assert charts.failed_percent(data.series[0]) is None


def test_text_is_escaped_and_nothing_needs_inline_style_or_script() -> None:
    data = stats(Window.MINUTES_15, {0: {"succeeded": 1, "pending": 1.0, "run_p50_ms": 1}}, task="<b>&x")
    for svg in [
        charts.throughput_chart(data, title='<script>alert("x")</script>', chart_id='a"b<c>'),
        charts.depth_chart(data, title="<i>depth</i>"),
        charts.latency_chart(data, "run", title="p & q"),
        charts.failure_rate_chart(data, title="<rate>"),
    ]:
        text = str(svg)
        assert "<script" not in text and "style=" not in text and "<i>" not in text and "<rate>" not in text
        root = parse(svg)  # well-formed: every text escaped
        assert root.get("role") == "img"
        label = root.get("aria-labelledby", "")
        ids = {e.get("id") for e in root.iter() if e.get("id")}
        assert label and set(label.split()) <= ids
        assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}desc") is not None
    escaped = str(charts.throughput_chart(data, title='<script>alert("x")</script>', chart_id='a"b<c>'))
    assert "&lt;script&gt;" in escaped and 'id="a-b-c-title"' in escaped


def test_desc_sums_the_window_for_a_screen_reader() -> None:
    data = stats(Window.MINUTES_15, {1: {"succeeded": 4, "failed": 1}, 9: {"succeeded": 6}})
    desc = parse(charts.throughput_chart(data)).find(f"{SVG}desc")
    assert desc is not None and desc.text is not None
    assert re.search(
        r"per minute, 2026-12-05 12:00 to 2026-12-05 12:15 UTC: 10 succeeded, 1 failed in all", desc.text
    )
