"""The dashboard's charts: statistics (`arq_jobs._stats.reader.Stats`) drawn as SVG on the server.

No script and no `style=` (the pages' CSP allows neither): colours come from classes in
dashboard.css, shapes from presentation attributes. Nothing relies on colour alone: failed bars are
hatched, succeeded ones solid; lines differ by dash pattern and marker shape; each chart has a legend,
a y-axis with its unit, UTC time labels and, per interval, a `<title>` with the exact values (shown on
hover). Every text is escaped.

Hooks for tests: `<svg data-chart="<kind>" data-points="<n>">` and one `<g data-point="<i>">` per
interval, oldest first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from markupsafe import Markup, escape

from arq_jobs._stats.reader import Stats, StatsPoint, failure_rate
from arq_jobs._stats.window import WINDOW_SECONDS, Window

WIDTH = 720
HEIGHT = 250
LEFT = 58  # room for the y-axis labels and unit
RIGHT = 14
TOP = 60  # room for the title, the legend and the unit
BOTTOM = 30  # room for the time labels
MAX_TIME_LABELS = 8
# steps between time labels (s), the smallest giving at most MAX_TIME_LABELS is used
LABEL_STEPS_S = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800)
DAY_S = 86_400

Kind = Literal["run", "wait"]


@dataclass(frozen=True, slots=True)
class Line:
    """One series of a line chart: its name in the legend, its values (None: no value, a gap), how
    it is drawn (a class, a dash pattern, a marker shape) and how a value reads in a title."""

    name: str
    values: Sequence[float | None]
    css: str
    dash: str | None
    marker: str
    size: float = 4.0  # half the marker's width


# dash patterns and markers of the lines of one chart, in order: told apart without colour
DASHES = (None, "7 4", "2 3", "9 3 2 3")
MARKERS = ("circle", "square", "triangle", "diamond")
MARKER_SIZES = (5.0, 4.0, 3.5, 2.5)


def styled(n: int, name: str, values: Sequence[float | None]) -> Line:
    """The `n`-th line of a chart, drawn unlike the others."""
    return Line(name, values, f"line-{n}", DASHES[n], MARKERS[n], MARKER_SIZES[n])


def throughput_chart(stats: Stats, *, chart_id: str = "throughput", title: str = "Throughput") -> Markup:
    """Stacked bars per interval: succeeded (solid) below failed (hatched)."""
    series = stats.series
    frame = Frame.of(stats, chart_id, max((p.succeeded + p.failed for p in series), default=0))
    succeeded = sum(p.succeeded for p in series)
    failed = sum(p.failed for p in series)
    desc = (
        f"Jobs that succeeded and failed, {per(stats.resolution_s)}, {span(stats)}: "
        f"{succeeded} succeeded, {failed} failed in all."
    )
    hatch = f"{frame.id}-hatch"
    bars = []
    for i, point in enumerate(series):
        x, width = frame.bar(i)
        y_ok, y_failed = frame.y(point.succeeded), frame.y(point.succeeded + point.failed)
        text = f"{frame.interval(i)} · {point.succeeded} succeeded · {point.failed} failed{frame.now(i)}"
        bars.append(
            f'<g data-point="{i}" class="point">{_title(text)}{frame.hit(i)}'
            f'<rect class="bar-succeeded" x="{x:.1f}" y="{y_ok:.1f}" width="{width:.1f}" '
            f'height="{frame.y(0) - y_ok:.1f}"/>'
            f'<rect class="bar-failed" x="{x:.1f}" y="{y_failed:.1f}" width="{width:.1f}" '
            f'height="{y_ok - y_failed:.1f}" fill="url(#{hatch})"/></g>'
        )
    legend = [
        ('<rect class="bar-succeeded" width="14" height="10" y="-9"/>', "succeeded (solid)"),
        (
            f'<rect class="bar-failed" width="14" height="10" y="-9" fill="url(#{hatch})"/>',
            "failed (hatched)",
        ),
    ]
    defs = (
        f'<defs><pattern id="{hatch}" patternUnits="userSpaceOnUse" width="5" height="5" '
        'patternTransform="rotate(45)"><rect class="hatch-ground" width="5" height="5"/>'
        '<line class="hatch-line" x1="0" y1="0" x2="0" y2="5" stroke-width="2.2"/></pattern></defs>'
    )
    return frame.svg(
        "throughput", title, desc, "jobs " + per(stats.resolution_s), defs + "".join(bars), legend
    )


def depth_chart(stats: Stats, *, chart_id: str = "depth", title: str = "Queue depth") -> Markup:
    """The sampled depth (average per interval) of pending, scheduled, running and retrying jobs; an
    interval without a sample is a gap."""
    series = stats.series
    names = ("pending", "scheduled", "running", "retrying")
    lines = [styled(n, name, [getattr(p, name) for p in series]) for n, name in enumerate(names)]
    desc = f"Average number of jobs in each state, {per(stats.resolution_s)}, {span(stats)}."
    return line_chart(stats, "depth", chart_id, title, desc, "jobs", lines, _depth)


def latency_chart(
    stats: Stats,
    kind: Kind,
    *,
    percentiles: Sequence[int] = (50, 95, 99),
    chart_id: str | None = None,
    title: str | None = None,
) -> Markup:
    """Percentiles of the run time (start → end of an attempt) or the wait (due → start), in ms,
    per interval; an interval without attempts is a gap."""
    what = "Run time" if kind == "run" else "Wait time"
    lines = [
        styled(n, f"p{p}", [getattr(point, f"{kind}_p{p}_ms") for point in stats.series])
        for n, p in enumerate(percentiles)
    ]
    shown = ", ".join(f"p{p}" for p in percentiles)
    desc = (
        f"{what} percentiles ({shown}) of the attempts that ended, {per(stats.resolution_s)}, "
        f"{span(stats)}, in milliseconds (histogram bucket bounds)."
    )
    name = f"{kind}-time"
    return line_chart(stats, name, chart_id or name, title or what, desc, "ms", lines, _ms)


def failed_percent(point: StatsPoint) -> float | None:
    """The interval's failure rate in %, None when no job ended."""
    rate = failure_rate(point.succeeded, point.failed)
    return None if rate is None else 100 * rate


def failure_rate_chart(
    stats: Stats, *, chart_id: str = "failure-rate", title: str = "Failure rate"
) -> Markup:
    """The share of the jobs ended in each interval that failed; an interval without jobs is a gap."""
    line = styled(0, "failed", [failed_percent(p) for p in stats.series])
    desc = f"Share of the jobs that ended that failed, {per(stats.resolution_s)}, {span(stats)}, in %."

    def detail(i: int) -> str:
        point = stats.series[i]
        rate = failed_percent(point)
        if rate is None:
            return "no jobs ended"
        return f"{_percent(rate)} failed ({point.failed} of {point.succeeded + point.failed})"

    return line_chart(stats, "failure-rate", chart_id, title, desc, "%", [line], _percent, detail, top=100)


def line_chart(
    stats: Stats,
    kind: str,
    chart_id: str,
    title: str,
    desc: str,
    unit: str,
    lines: Sequence[Line],
    reads: Callable[[float | None], str],
    detail: Callable[[int], str] | None = None,
    top: float | None = None,
) -> Markup:
    """Lines with a marker per value, broken where a value is None; each interval's title reads every
    line's value there (`reads`), or says `detail(i)`; the y-axis goes up to `top` if given."""
    highest = max((v for line in lines for v in line.values if v is not None), default=0.0)
    frame = Frame.of(stats, chart_id, top if top is not None else highest)
    paths = []
    for line in lines:
        path = _path([(frame.x(i), frame.y(v)) if v is not None else None for i, v in enumerate(line.values)])
        if path:
            dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
            paths.append(f'<path class="line {line.css}" d="{path}" fill="none"{dash}/>')
    points = []
    for i in range(len(stats.series)):
        if detail is not None:
            said = detail(i)
        else:
            said = " · ".join(f"{line.name} {reads(line.values[i])}" for line in lines)
        markers = "".join(
            _marker(line, frame.x(i), frame.y(value))
            for line in lines
            if (value := line.values[i]) is not None
        )
        points.append(
            f'<g data-point="{i}" class="point">{_title(f"{frame.interval(i)} · {said}{frame.now(i)}")}'
            f"{frame.hit(i)}{markers}</g>"
        )
    legend = [
        (
            f'<line class="line {line.css}" x1="0" y1="-4" x2="22" y2="-4"'
            + (f' stroke-dasharray="{line.dash}"' if line.dash else "")
            + f"/>{_marker(line, 11, -4)}",
            line.name,
        )
        for line in lines
    ]
    return frame.svg(kind, title, desc, unit, "".join(paths) + "".join(points), legend, legend_width=34)


@dataclass(frozen=True, slots=True)
class Frame:
    """Where a chart's intervals and values go: `points` slots across the plot, values from 0 up to
    `top` (the highest round tick at or above the highest value)."""

    id: str
    window: Window
    resolution_s: int
    starts: Sequence[datetime]
    ticks: Sequence[float]

    @classmethod
    def of(cls, stats: Stats, chart_id: str, highest: float) -> Frame:
        return cls(
            id=_slug(chart_id),
            window=stats.window,
            resolution_s=stats.resolution_s,
            starts=[p.t for p in stats.series],
            ticks=ticks(highest),
        )

    @property
    def points(self) -> int:
        return len(self.starts)

    @property
    def top(self) -> float:
        return self.ticks[-1]

    @property
    def slot(self) -> float:
        return (WIDTH - LEFT - RIGHT) / max(self.points, 1)

    def x(self, i: int) -> float:
        """The middle of interval `i`."""
        return LEFT + (i + 0.5) * self.slot

    def y(self, value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - min(value, self.top) / self.top)

    def bar(self, i: int) -> tuple[float, float]:
        """A bar's left edge and width: most of its slot, a gap either side."""
        width = max(self.slot * 0.72, 1.0)
        return self.x(i) - width / 2, width

    def hit(self, i: int) -> str:
        """An invisible rectangle over the whole slot, so an empty interval shows its title too."""
        return (
            f'<rect class="hit" x="{LEFT + i * self.slot:.1f}" y="{TOP}" width="{self.slot:.1f}" '
            f'height="{HEIGHT - TOP - BOTTOM}" fill="none" pointer-events="all"/>'
        )

    def interval(self, i: int) -> str:
        """`12:05–12:06 UTC`, with the date when an interval is an hour or more."""
        start = self.starts[i]
        end = start + timedelta(seconds=self.resolution_s)
        if self.resolution_s < 3600:
            return f"{start:%H:%M}–{end:%H:%M} UTC"
        return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC"

    def now(self, i: int) -> str:
        return " · so far" if i == self.points - 1 else ""

    def axes(self, unit: str) -> str:
        bottom = HEIGHT - BOTTOM
        parts = []
        for tick in self.ticks:
            y = self.y(tick)
            parts.append(
                f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
                f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                f"{escape(_number(tick))}</text>"
            )
        parts.append(f'<text class="unit" x="4" y="{TOP - 10}">{escape(unit)}</text>')
        for i, start in enumerate(self.starts):
            if not self.labelled(start):
                continue
            x = LEFT + i * self.slot
            label = f"{start:%H:%M}" if WINDOW_SECONDS[self.window] <= DAY_S else f"{start:%b} {start.day}"
            parts.append(
                f'<line class="axis" x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}"/>'
                f'<text class="tick" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
        parts.append(f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}"/>')
        parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/>')
        return "".join(parts)

    def labelled(self, start: datetime) -> bool:
        """Whether interval starting at `start` gets a time label: those on a round step."""
        seconds = WINDOW_SECONDS[self.window]
        step = next((s for s in LABEL_STEPS_S if seconds / s <= MAX_TIME_LABELS), LABEL_STEPS_S[-1])
        step = max(step, self.resolution_s)
        return int(start.timestamp()) % step == 0

    def svg(
        self,
        kind: str,
        title: str,
        desc: str,
        unit: str,
        body: str,
        legend: Sequence[tuple[str, str]],
        legend_width: int = 20,
    ) -> Markup:
        keys = []
        x = 4.0
        for swatch, name in legend:
            keys.append(
                f'<g class="key" transform="translate({x:.0f} 36)">{swatch}'
                f'<text x="{legend_width}" y="0">{escape(name)}</text></g>'
            )
            x += legend_width + 16 + 6.5 * len(name)
        return Markup(
            f'<svg class="chart chart-{kind}" data-chart="{kind}" data-points="{self.points}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{self.id}-title {self.id}-desc">'
            f'<title id="{self.id}-title">{escape(title)}</title>'
            f'<desc id="{self.id}-desc">{escape(desc)}</desc>'
            f'<text class="chart-title" x="4" y="16">{escape(title)}</text>'
            f'<g class="legend">{"".join(keys)}</g>'
            f'<g class="axes">{self.axes(unit)}</g><g class="data">{body}</g></svg>'
        )


def ticks(highest: float, count: int = 4) -> list[float]:
    """0 and a few round steps up to the first at or above `highest` (0 to 1 when it is 0)."""
    if highest <= 0:
        return [0.0, 1.0]
    rough = highest / count
    magnitude = 10 ** math.floor(math.log10(rough))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= rough)
    if highest >= 1:
        step = max(step, 1.0)  # counts: whole steps
    steps = math.ceil(highest / step - 1e-9)
    return [round(n * step, 10) for n in range(steps + 1)]


def per(resolution_s: int) -> str:
    """`per minute`, `per hour`, `per 6 h`: what one point of a series covers."""
    if resolution_s == 60:
        return "per minute"
    if resolution_s == 3600:
        return "per hour"
    if resolution_s % 3600 == 0:
        return f"per {resolution_s // 3600} h"
    return f"per {resolution_s // 60} min" if resolution_s % 60 == 0 else f"per {resolution_s} s"


def span(stats: Stats) -> str:
    """`2026-12-05 12:00 to 2026-12-05 12:15 UTC`: from the first interval's start to the last's end."""
    if not stats.series:
        return "no interval"
    last = stats.series[-1].t + timedelta(seconds=stats.resolution_s)
    return f"{stats.series[0].t:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-") or "chart"


def _title(text: str) -> str:
    return f"<title>{escape(text)}</title>"


def _path(points: Sequence[tuple[float, float] | None]) -> str:
    """An SVG path through the points, broken where one is None (a lone point draws nothing: its
    marker shows it)."""
    parts: list[str] = []
    pen_down = False
    for point in points:
        if point is None:
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{point[0]:.1f} {point[1]:.1f}")
        pen_down = True
    return " ".join(parts)


def _marker(line: Line, x: float, y: float) -> str:
    """A line's marker at (x, y); the later lines' are smaller, so markers at one spot all show."""
    css = f'class="marker {line.css}"'
    h = line.size
    if line.marker == "square":
        return f'<rect {css} x="{x - h:.1f}" y="{y - h:.1f}" width="{2 * h:.1f}" height="{2 * h:.1f}"/>'
    if line.marker == "triangle":
        return f'<path {css} d="M{x:.1f} {y - h:.1f}L{x + h:.1f} {y + h:.1f}L{x - h:.1f} {y + h:.1f}Z"/>'
    if line.marker == "diamond":
        corners = f"M{x:.1f} {y - h:.1f}L{x + h:.1f} {y:.1f}L{x:.1f} {y + h:.1f}L{x - h:.1f} {y:.1f}Z"
        return f'<path {css} d="{corners}"/>'
    return f'<circle {css} cx="{x:.1f}" cy="{y:.1f}" r="{h:.1f}"/>'


def _number(value: float | None) -> str:
    """`3`, `2.5`, `12k`, `1.5M`; `—` for no value."""
    if value is None:
        return "—"
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:g}k"
    return f"{round(value, 1):g}"


def _depth(value: float | None) -> str:
    return "no sample" if value is None else f"{value:g}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{round(value, 1):g} %"
