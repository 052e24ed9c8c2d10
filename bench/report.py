"""The result of a benchmark: the table printed at the end (medians with min–max, ours/ARQ ratios,
targets) and the JSON written beside it (machine, versions, date, every raw run, the summaries)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bench.options import Options
from bench.results import RunResult
from bench.stats import Summary
from bench.systems import BASE_SYSTEMS, SYSTEMS, SystemName

HTTP_SYSTEMS: tuple[SystemName, ...] = ("ours", "arq")  # arq-tuned differs only in its worker
POLLING_SYSTEMS = BASE_SYSTEMS  # the peers have no HTTP app to poll


def systems_for(workload: str, systems: Sequence[SystemName]) -> list[SystemName]:
    """Those of `systems` that run `workload`."""
    runs = {"http": HTTP_SYSTEMS, "polling": POLLING_SYSTEMS}.get(workload, SYSTEMS)
    return [s for s in systems if s in runs]


@dataclass(frozen=True, slots=True)
class Target:
    op: Literal[">=", "<="]
    value: float

    def met(self, value: float) -> bool:
        return value >= self.value if self.op == ">=" else value <= self.value

    def describe(self, unit: str) -> str:
        unit = "" if unit.endswith("/s") else f" {unit}"
        return f"{'≥' if self.op == '>=' else '≤'} {self.value:,g}{unit}"


@dataclass(frozen=True, slots=True)
class Row:
    section: str
    workload: str
    metric: str
    label: str
    unit: str
    target: Target | None = None
    systems: tuple[SystemName, ...] = SYSTEMS
    ratio: bool = True  # False where ours/ARQ means nothing (a difference of percentages)


def at_least(value: float) -> Target:
    return Target(">=", value)


def at_most(value: float) -> Target:
    return Target("<=", value)


def rows(options: Options) -> list[Row]:
    """The table's rows, in order: what each shows, where it is read from, its target."""
    http = HTTP_SYSTEMS
    polling = POLLING_SYSTEMS
    top = max(options.concurrencies)
    sleep = []
    for c in options.concurrencies:
        jobs = f"{options.sleep_jobs:,} × 10 ms, concurrency {c}"
        sleep += [
            Row("2 sleep", "sleep", f"c{c}.jobs_per_s", jobs, "jobs/s"),
            Row(
                "2 sleep", "sleep", f"c{c}.efficiency_pct", f"  efficiency vs ideal {c / 0.01:,.0f}/s", "%",
                at_least(70) if c == 128 else None,
            ),
        ]  # fmt: skip
    arrivals = f"{options.rate:,.0f}/s for {options.duration_s:g} s"
    polled = f"  with {options.poll_clients} clients polling every {options.poll_interval_s * 1000:g} ms"
    poll_jobs = f"{options.poll_jobs:,} × 10 ms, c{options.poll_concurrency}, no polling"
    return [
        Row("1 drain", "drain", "jobs_per_s", f"{options.jobs:,} noop, one worker", "jobs/s", at_least(1500)),
        *sleep,
        Row("3 latency", "latency", "p50_ms", f"enqueue→start p50, {arrivals}", "ms", at_most(10)),
        Row("3 latency", "latency", "p99_ms", "enqueue→start p99", "ms", at_most(25)),
        Row("3 latency", "latency", "max_ms", "enqueue→start max", "ms"),
        Row(
            "4 http", "http", "max_rps", "POST enqueue, max (one API process)", "req/s", at_least(1500), http
        ),
        Row("4 http", "http", "half_rps", "  at half that rate", "req/s", None, http),
        Row("4 http", "http", "p50_ms", "  p50", "ms", None, http),
        Row("4 http", "http", "p99_ms", "  p99", "ms", at_most(20), http),
        Row("5 polling", "polling", "baseline_jobs_per_s", poll_jobs, "jobs/s", None, polling),
        Row("5 polling", "polling", "jobs_per_s", polled, "jobs/s", None, polling),
        Row("5 polling", "polling", "drop_pct", "  throughput drop", "%", None, polling, ratio=False),
        Row("5 polling", "polling", "status_rps", "  status requests served", "req/s", None, polling),
        Row("5 polling", "polling", "status_p99_ms", "  status request p99", "ms", None, polling),
        Row("6 memory", "drain", "worker_peak_rss_mb", "worker peak RSS after the drain", "MB", at_most(80)),
        Row("6 memory", "sleep", f"c{top}.worker_peak_rss_mb", f"worker peak RSS, sleep c{top}", "MB"),
        Row("6 memory", "http", "api_peak_rss_mb", "API peak RSS after the HTTP ladder", "MB", None, http),
        Row(
            "6 memory", "polling", "api_peak_rss_mb", "API peak RSS after status polling", "MB", None, polling
        ),
    ]


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("jobs/s", "req/s"):
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def summarize(results: Iterable[RunResult]) -> dict[str, dict[str, dict[str, Summary]]]:
    """workload → metric → system → the summary of its successful runs."""
    values: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for result in results:
        if result.error is not None:
            continue
        for metric, value in result.metrics.items():
            if value is not None:
                values[(result.workload, metric, result.system)].append(value)
    summary: dict[str, dict[str, dict[str, Summary]]] = defaultdict(lambda: defaultdict(dict))
    for (workload, metric, system), found in values.items():
        measured = Summary.of(found)
        if measured is not None:
            summary[workload][metric][system] = measured
    return summary


def cell(summary: Summary | None, unit: str) -> str:
    if summary is None:
        return "—"
    if summary.n == 1:
        return fmt(summary.median, unit)
    return f"{fmt(summary.median, unit)} ({fmt(summary.min, unit)}–{fmt(summary.max, unit)})"


def ratio(ours: Summary | None, other: Summary | None) -> float | None:
    if ours is None or other is None or other.median == 0:
        return None
    return ours.median / other.median


def verdict(row: Row, ours: Summary | None) -> str:
    if row.target is None:
        return ""
    if ours is None:
        return "?"
    return "pass" if row.target.met(ours.median) else "MISS"


def row_data(
    row: Row, summary: dict[str, dict[str, dict[str, Summary]]], systems: Sequence[SystemName]
) -> dict[str, Any]:
    found = summary.get(row.workload, {}).get(row.metric, {})
    shown = [s for s in systems if s in row.systems]
    ours = found.get("ours")
    return {
        "section": row.section,
        "workload": row.workload,
        "metric": row.metric,
        "label": row.label.strip(),
        "unit": row.unit,
        "values": {s: found[s].to_json() if s in found else None for s in shown},
        "ratios": {f"ours/{s}": ratio(ours, found.get(s)) for s in shown if s != "ours" and row.ratio},
        "target": None if row.target is None else {"op": row.target.op, "value": row.target.value},
        "verdict": verdict(row, ours) or None,
    }


def table(
    options: Options,
    summary: dict[str, dict[str, dict[str, Summary]]],
    systems: Sequence[SystemName],
    workloads: Sequence[str],
) -> str:
    others = [s for s in systems if s != "ours"]
    header = ["", "metric", "unit", *systems, *(f"ours/{s}" for s in others if "ours" in systems)]
    header += ["target", ""]
    lines: list[list[str]] = []
    last_section = ""
    for row in rows(options):
        if row.workload not in workloads:
            continue
        found = summary.get(row.workload, {}).get(row.metric, {})
        ours = found.get("ours")
        line = [row.section if row.section != last_section else "", row.label, row.unit]
        line += [cell(found.get(s), row.unit) if s in row.systems else "n/a" for s in systems]
        if "ours" in systems:
            for other in others:
                r = ratio(ours, found.get(other)) if other in row.systems and row.ratio else None
                line.append("—" if r is None else f"{r:.2f}×")
        line += [row.target.describe(row.unit) if row.target else "", verdict(row, ours)]
        lines.append(line)
        last_section = row.section
    widths = [max(len(x[i]) for x in [header, *lines]) for i in range(len(header))]
    numeric = set(range(3, len(header) - 1))
    out = []
    for line in [header, *lines]:
        out.append(
            "  ".join(
                (text.rjust(width) if i in numeric else text.ljust(width))
                for i, (text, width) in enumerate(zip(line, widths, strict=True))
            ).rstrip()
        )
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def problems(results: Iterable[RunResult]) -> list[str]:
    """Runs that failed, and jobs that were lost: every enqueued job must succeed, every accepted
    HTTP request must have left a job in its queue."""
    found = []
    for r in results:
        where = f"{r.workload} {r.system} run {r.run}"
        if r.error is not None:
            found.append(f"{where}: {r.error}")
            continue
        if "enqueued" in r.counts and r.counts.get("succeeded") != r.counts["enqueued"]:
            found.append(f"{where}: {r.counts.get('succeeded', 0):,}/{r.counts['enqueued']:,} jobs succeeded")
        if "accepted" in r.counts and r.counts["queued"] < r.counts["accepted"]:
            found.append(
                f"{where}: {r.counts['accepted']:,} requests accepted, {r.counts['queued']:,} jobs queued"
            )
    return found


def notes(results: Iterable[RunResult]) -> list[str]:
    """Worth a look, not failures: HTTP errors below the ladder's 1 % threshold, and runs whose ladder
    passed its top step (the max is then a lower bound)."""
    found = []
    for r in results:
        where = f"{r.workload} {r.system} run {r.run}"
        steps = r.details.get("steps", [])
        errors: dict[str, int] = defaultdict(int)
        for step in [*(s for s in steps if s.get("passed")), r.details.get("half") or {}]:
            for code, n in (step.get("errors") or {}).items():
                errors[code] += n
        if errors:
            found.append(f"{where}: HTTP errors below the breaking step {dict(errors)}")
        if r.details.get("ladder_topped_out"):
            found.append(f"{where}: the ladder's top rate passed; max req/s is a lower bound")
    return found
