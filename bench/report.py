"""The result of a benchmark: the table printed at the end (medians with min–max, ours/ARQ ratios,
targets), the table of issue 17's targets after it (each with its verdict and every other system's
figure from the same run) and the JSON written beside them (machine, versions, date, every raw run,
the summaries, the targets)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from bench.options import Options
from bench.results import RunResult
from bench.stats import Summary
from bench.systems import BASE_SYSTEMS, SYSTEMS, SystemName

HTTP_SYSTEMS: tuple[SystemName, ...] = ("ours", "arq")  # arq-tuned differs only in its worker
POLLING_SYSTEMS = BASE_SYSTEMS  # the peers have no HTTP app to poll
OURS: tuple[SystemName, ...] = ("ours",)  # http-batch: only ours has a batch route
SCALING_SYSTEMS: tuple[SystemName, ...] = ("ours", "arq-tuned")  # HTTP part: ours only
WORKLOAD_SYSTEMS: dict[str, tuple[SystemName, ...]] = {
    "http": HTTP_SYSTEMS,
    "http-batch": OURS,
    "polling": POLLING_SYSTEMS,
    "scaling": SCALING_SYSTEMS,
}
NOT_MEASURED = "not measured"


def systems_for(workload: str, systems: Sequence[SystemName]) -> list[SystemName]:
    """Those of `systems` that run `workload`."""
    runs = WORKLOAD_SYSTEMS.get(workload, SYSTEMS)
    return [s for s in systems if s in runs]


@dataclass(frozen=True, slots=True)
class Target:
    op: Literal[">=", "<="]
    value: float

    def met(self, value: float) -> bool:
        return value >= self.value if self.op == ">=" else value <= self.value

    def describe(self, unit: str) -> str:
        unit = "×" if unit == "×" else "" if unit.endswith("/s") else f" {unit}"
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


@dataclass(frozen=True, slots=True)
class Goal:
    """One target of issue 17: ours' median of `metric` against `target`; with `versus`, ours' median
    divided by that system's, from the same run."""

    key: str
    label: str
    workload: str
    metric: str
    unit: str
    target: Target
    versus: SystemName | None = None
    systems: tuple[SystemName, ...] | None = None  # those that measure it, when fewer than its workload's

    @property
    def shown_unit(self) -> str:
        return "×" if self.versus else self.unit

    def measured_by(self, system: SystemName) -> bool:
        return bool(systems_for(self.workload, [system])) and system in (self.systems or SYSTEMS)


def goals(options: Options) -> list[Goal]:
    """Issue 17's targets, in its order."""
    rate = f"{options.rate:,.0f}/s"
    drain = "drain, one worker process, ours ÷"
    return [
        Goal("worker_cpu", "worker CPU per no-op job (drain)", "drain", "worker_cpu_us_per_job", "µs",
             at_most(250)),
        Goal("redis_cpu", "Redis CPU per job (drain: enqueue + run)", "drain", "redis_cpu_us_per_job", "µs",
             at_most(150)),
        Goal("drain_vs_arq_tuned", f"{drain} arq-tuned", "drain", "jobs_per_s", "jobs/s", at_least(1.5),
             "arq-tuned"),
        Goal("drain_vs_saq", f"{drain} saq", "drain", "jobs_per_s", "jobs/s", at_least(1.5), "saq"),
        Goal("sleep_c128", "10 ms jobs, concurrency 128, one worker: % of ideal 12,800/s", "sleep",
             "c128.efficiency_pct", "%", at_least(25)),
        Goal("latency_p50", f"enqueue→start p50 at {rate}", "latency", "p50_ms", "ms", at_most(2)),
        Goal("latency_p99", f"enqueue→start p99 at {rate}", "latency", "p99_ms", "ms", at_most(10)),
        Goal("worker_rss", "worker peak RSS (drain)", "drain", "worker_peak_rss_mb", "MB", at_most(60)),
        Goal("api_rss", "API peak RSS after the HTTP ladder", "http", "api_peak_rss_mb", "MB", at_most(90)),
        Goal("redis_bytes", "Redis bytes per finished no-op job", "memory", "redis_bytes_per_job", "bytes",
             at_most(1000)),
        Goal("http_batch", f"HTTP batch enqueue, {options.batch_size} per request, one API process",
             "http-batch", "jobs_per_s", "jobs/s", at_least(20_000)),
        Goal("http_max", "HTTP enqueue, max, one API process", "http", "max_rps", "req/s", at_least(1500)),
        Goal("http_p99", "HTTP enqueue p99 at half that rate", "http", "p99_ms", "ms", at_most(20)),
        Goal("drain_scaling", "drain, 1 → 2 worker processes", "scaling", "drain_factor", "×",
             at_least(1.5)),
        Goal("http_scaling", "HTTP enqueue, 1 → 2 API processes", "scaling", "http_factor", "×",
             at_least(1.5), systems=OURS),
    ]  # fmt: skip


def row_targets(options: Options) -> dict[tuple[str, str], Target]:
    """The absolute goals by (workload, metric), shown in the results table's target column."""
    return {(g.workload, g.metric): g.target for g in goals(options) if g.versus is None}


def rows(options: Options) -> list[Row]:
    """The table's rows, in order: what each shows, where it is read from, its target (issue 17's,
    where it sets one for that figure)."""
    http = HTTP_SYSTEMS
    polling = POLLING_SYSTEMS
    top = max(options.concurrencies)
    sleep = []
    for c in options.concurrencies:
        jobs = f"{options.sleep_jobs:,} × 10 ms, concurrency {c}"
        sleep += [
            Row("2 sleep", "sleep", f"c{c}.jobs_per_s", jobs, "jobs/s"),
            Row("2 sleep", "sleep", f"c{c}.efficiency_pct", f"  efficiency vs ideal {c / 0.01:,.0f}/s", "%"),
        ]
    arrivals = f"{options.rate:,.0f}/s for {options.duration_s:g} s"
    polled = f"  with {options.poll_clients} clients polling every {options.poll_interval_s * 1000:g} ms"
    poll_jobs = f"{options.poll_jobs:,} × 10 ms, c{options.poll_concurrency}, no polling"
    batch = f"POST batch of {options.batch_size}, {options.batch_connections} in flight"
    scaled = f"{options.jobs:,} noop, "
    closed = f"POST enqueue, {options.scaling_connections} in flight, "
    found = [
        Row("1 drain", "drain", "jobs_per_s", f"{options.jobs:,} noop, one worker", "jobs/s"),
        Row("1 drain", "drain", "worker_cpu_us_per_job", "  worker CPU per job", "µs"),
        Row("1 drain", "drain", "redis_cpu_us_per_job", "  Redis CPU per job (enqueue + run)", "µs"),
        *sleep,
        Row("3 latency", "latency", "p50_ms", f"enqueue→start p50, {arrivals}", "ms"),
        Row("3 latency", "latency", "p99_ms", "enqueue→start p99", "ms"),
        Row("3 latency", "latency", "max_ms", "enqueue→start max", "ms"),
        Row("4 http", "http", "max_rps", "POST enqueue, max (one API process)", "req/s", None, http),
        Row("4 http", "http", "half_rps", "  at half that rate", "req/s", None, http),
        Row("4 http", "http", "p50_ms", "  p50", "ms", None, http),
        Row("4 http", "http", "p99_ms", "  p99", "ms", None, http),
        Row("4 http", "http-batch", "jobs_per_s", f"{batch} (one API process)", "jobs/s", None, OURS),
        Row("4 http", "http-batch", "rps", "  batches", "req/s", None, OURS),
        Row("4 http", "http-batch", "p99_ms", "  p99 per batch", "ms", None, OURS),
        Row("5 polling", "polling", "baseline_jobs_per_s", poll_jobs, "jobs/s", None, polling),
        Row("5 polling", "polling", "jobs_per_s", polled, "jobs/s", None, polling),
        Row("5 polling", "polling", "drop_pct", "  throughput drop", "%", None, polling, ratio=False),
        Row("5 polling", "polling", "status_rps", "  status requests served", "req/s", None, polling),
        Row("5 polling", "polling", "status_p99_ms", "  status request p99", "ms", None, polling),
        Row("6 memory", "drain", "worker_peak_rss_mb", "worker peak RSS after the drain", "MB"),
        Row("6 memory", "sleep", f"c{top}.worker_peak_rss_mb", f"worker peak RSS, sleep c{top}", "MB"),
        Row("6 memory", "http", "api_peak_rss_mb", "API peak RSS after the HTTP ladder", "MB", None, http),
        Row(
            "6 memory", "polling", "api_peak_rss_mb", "API peak RSS after status polling", "MB", None, polling
        ),
        Row("6 memory", "memory", "redis_bytes_per_job",
            f"Redis per finished noop job ({options.memory_jobs:,} jobs)", "bytes"),
        Row("6 memory", "memory", "redis_bytes_per_job_at_end", "  the moment the last job ended", "bytes"),
        Row("6 memory", "memory", "redis_keys_per_job", "  Redis keys per finished job", "keys"),
        Row("7 scaling", "scaling", "drain_1p_jobs_per_s", f"{scaled}1 worker process", "jobs/s", None,
            SCALING_SYSTEMS),
        Row("7 scaling", "scaling", "drain_2p_jobs_per_s", f"{scaled}2 worker processes", "jobs/s", None,
            SCALING_SYSTEMS),
        Row("7 scaling", "scaling", "drain_factor", "  factor", "×", None, SCALING_SYSTEMS, ratio=False),
        Row("7 scaling", "scaling", "http_1p_rps", f"{closed}1 API process", "req/s", None, OURS),
        Row("7 scaling", "scaling", "http_2p_rps", f"{closed}2 API processes", "req/s", None, OURS),
        Row("7 scaling", "scaling", "http_factor", "  factor", "×", None, OURS, ratio=False),
    ]  # fmt: skip
    targets = row_targets(options)
    return [replace(row, target=targets.get((row.workload, row.metric))) for row in found]


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("jobs/s", "req/s", "µs", "bytes"):
        return f"{value:,.0f}"
    if unit == "×":
        return f"{value:,.2f}×"
    if unit == "keys":
        return f"{value:,.2f}"
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


def times(r: float) -> str:
    """A ratio as shown: two decimals, and never a bare 0.00×."""
    return f"{r:.2f}×" if r >= 0.01 else "<0.01×"


def ratio(ours: Summary | None, other: Summary | None) -> float | None:
    if ours is None or other is None or other.median == 0:
        return None
    return ours.median / other.median


def verdict(row: Row, ours: Summary | None) -> str:
    if row.target is None:
        return ""
    if ours is None:
        return NOT_MEASURED
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
                line.append("—" if r is None else times(r))
        line += [row.target.describe(row.unit) if row.target else "", verdict(row, ours)]
        lines.append(line)
        last_section = row.section
    return render(header, lines, set(range(3, len(header) - 1)))


def render(header: list[str], lines: list[list[str]], numeric: set[int]) -> str:
    """Aligned columns (those in `numeric` to the right), a rule under the header."""
    widths = [max(len(x[i]) for x in [header, *lines]) for i in range(len(header))]
    out = []
    for line in [header, *lines]:
        out.append(
            "  ".join(
                (text.rjust(width) if i in numeric else text.ljust(width))
                for i, (text, width) in enumerate(zip(line, widths, strict=True))
            ).rstrip()
        )
    out.insert(1, "-" * max(len(line) for line in out))
    return "\n".join(out)


@dataclass(frozen=True, slots=True)
class Assessed:
    """A goal as this run measured it: ours' figure (a ratio for a relative goal), the verdict, and
    each other system's figure with ours ÷ it."""

    goal: Goal
    measured: float | None
    verdict: str  # pass, MISS, not measured
    ours: Summary | None
    others: dict[SystemName, tuple[Summary | None, float | None]]  # figure, ours ÷ it
    ran: dict[SystemName, bool]  # whether the system runs the goal's workload at all

    def to_json(self) -> dict[str, Any]:
        goal = self.goal
        return {
            "key": goal.key,
            "label": goal.label,
            "workload": goal.workload,
            "metric": goal.metric,
            "unit": goal.shown_unit,
            "goal": {"op": goal.target.op, "value": goal.target.value, "versus": goal.versus},
            "measured": self.measured,
            "verdict": self.verdict,
            "ours": None if self.ours is None else self.ours.to_json(),
            "others": {
                system: {
                    "value": None if figure is None else figure.to_json(),
                    "ours_ratio": r,
                }
                for system, (figure, r) in self.others.items()
                if self.ran[system]
            },
        }


def assess(
    options: Options,
    summary: dict[str, dict[str, dict[str, Summary]]],
    systems: Sequence[SystemName],
    workloads: Sequence[str],
) -> list[Assessed]:
    """Every goal of issue 17 against this run: measured only where its workload ran, ours ran it,
    and (for a relative goal) the system it is measured against ran it too; "not measured" otherwise."""
    found: list[Assessed] = []
    for goal in goals(options):
        by_system = summary.get(goal.workload, {}).get(goal.metric, {}) if goal.workload in workloads else {}
        ours = by_system.get("ours") if "ours" in systems else None
        rest: list[SystemName] = [s for s in systems if s != "ours"]
        compared = goal.unit != "×"  # a ratio of two scaling factors says nothing
        others = {s: (by_system.get(s), ratio(ours, by_system.get(s)) if compared else None) for s in rest}
        ran = {s: goal.measured_by(s) for s in rest}
        measured = ours.median if ours is not None else None
        if goal.versus is not None:
            measured = others[goal.versus][1] if goal.versus in others else None
        if measured is None:
            outcome = NOT_MEASURED
        else:
            outcome = "pass" if goal.target.met(measured) else "MISS"
        found.append(Assessed(goal, measured, outcome, ours, others, ran))
    return found


def targets_table(assessed: Sequence[Assessed], systems: Sequence[SystemName]) -> str:
    """Issue 17's targets: each goal, ours' figure (for "ours ÷ X": that ratio), pass / MISS / not
    measured, and each other system's figure from the same run with ours ÷ it."""
    others = [s for s in systems if s != "ours"]
    header = ["target (issue 17)", "goal", "ours", "verdict", *others]
    lines = []
    for a in assessed:
        goal = a.goal
        unit = goal.shown_unit
        described = goal.target.describe(unit) + (f" {unit}" if unit.endswith("/s") else "")
        line = [goal.label, described, fmt(a.measured, unit), a.verdict]
        for system in others:
            figure, r = a.others[system]
            if not a.ran[system]:
                line.append("n/a")
            elif figure is None:
                line.append("—")
            else:
                line.append(fmt(figure.median, goal.unit) + ("" if r is None else f" ({times(r)})"))
        lines.append(line)
    text = render(header, lines, {2, *range(4, len(header))})
    if others:
        text += "\nother systems: their figure in this run (ours ÷ it); n/a: the system does not run it"
    return text


def problems(results: Iterable[RunResult]) -> list[str]:
    """Runs that failed, and jobs that were lost: every enqueued job must succeed, every accepted
    HTTP request must have left a job in its queue, every batch answer must name each of its jobs."""
    found = []
    for r in results:
        where = f"{r.workload} {r.system} run {r.run}"
        if r.error is not None:
            found.append(f"{where}: {r.error}")
            continue
        per_answer = r.details.get("job_ids_per_answer")
        if per_answer is not None and per_answer != r.details.get("batch_size"):
            found.append(
                f"{where}: {per_answer:g} job ids per 2xx answer, not one per item "
                f"({r.details.get('batch_size')})"
            )
        if "enqueued" in r.counts and r.counts.get("succeeded") != r.counts["enqueued"]:
            if not ended_by_peer(r):
                lost = f"{r.counts.get('succeeded', 0):,}/{r.counts['enqueued']:,} jobs succeeded"
                found.append(f"{where}: {lost} {r.details.get('failures') or ''}".rstrip())
        if "accepted" in r.counts and r.counts["queued"] < r.counts["accepted"]:
            found.append(
                f"{where}: {r.counts['accepted']:,} requests accepted, {r.counts['queued']:,} jobs queued"
            )
    return found


KNOWN_PEER_FAILURES = {  # what a peer records on a job it ended itself without running it, and why
    "swept": "SAQ's sweep at worker start aborts a job it finds dequeued but not yet marked active "
    "(a race in SAQ, tobymao/saq#124, #277)",
}


def ended_by_peer(r: RunResult) -> bool:
    """Whether every job of a peer's run that did not succeed was ended by the peer itself for a known
    reason of its own (a note, not a problem of the harness)."""
    lost = r.counts.get("enqueued", 0) - r.counts.get("succeeded", 0)
    reasons: dict[str, int] = r.details.get("failures") or {}
    known = sum(n for reason, n in reasons.items() if reason in KNOWN_PEER_FAILURES)
    return r.system not in BASE_SYSTEMS and lost > 0 and known == lost


def notes(results: Iterable[RunResult]) -> list[str]:
    """Worth a look, not failures: HTTP errors below the ladder's 1 % threshold, runs whose ladder
    passed its top step (the max is then a lower bound), a peer's jobs it ended itself for a known
    reason of its own, an API that did not run the processes asked for, errors of the batch load."""
    found = []
    for r in results:
        where = f"{r.workload} {r.system} run {r.run}"
        if r.error is None and ended_by_peer(r):
            reasons = r.details["failures"]
            why = "; ".join(f"{n} {reason!r}: {KNOWN_PEER_FAILURES[reason]}" for reason, n in reasons.items())
            found.append(f"{where}: {r.system} ended jobs without running them ({why})")
        steps = r.details.get("steps", [])
        errors: dict[str, int] = defaultdict(int)
        for step in [*(s for s in steps if s.get("passed")), r.details.get("half") or {}]:
            for code, n in (step.get("errors") or {}).items():
                errors[code] += n
        if errors:
            found.append(f"{where}: HTTP errors below the breaking step {dict(errors)}")
        if r.details.get("ladder_topped_out"):
            found.append(f"{where}: the ladder's top rate passed; max req/s is a lower bound")
        for n in (2, 3, 4):
            http = r.details.get(f"http_{n}p") or {}
            if http and not http.get("honoured"):
                found.append(
                    f"{where}: JOBS_API_WORKERS={n} not honoured (the API ran {http.get('process_tree')} "
                    "process(es), no workers of its own): HTTP scaling not measured"
                )
        batch_errors = (r.details.get("load") or {}).get("errors") if r.workload == "http-batch" else None
        if batch_errors:
            found.append(f"{where}: HTTP errors {batch_errors}")
    return found
