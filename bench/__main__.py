"""`python -m bench`: every workload, on our system and on plain ARQ (defaults and tuned), SAQ and
taskiq (drain, sleep, latency, memory; each installed on first use in its own virtual environment),
repeated; prints a table of medians (min–max) with ours/other ratios, then issue 17's targets, each
with pass / MISS / not measured and every other system's figure from the same run; writes the raw
runs with the machine, versions and date as JSON.

    .venv/bin/python -m bench                      # everything at full size
    .venv/bin/python -m bench --smoke              # a few hundred jobs: checks the harness works
    .venv/bin/python -m bench --workloads drain,latency --systems ours,arq-tuned --runs 5

Redis: JOBS_REDIS_URL, else 127.0.0.1:6379 database 14 when it answers, else an embedded server.
Each run writes under its own key prefix / queue and deletes every key it wrote. The workloads that
read Redis's own totals or fill it — drain (Redis CPU per job), memory (bytes per finished job),
http-batch and scaling — start a redis-server of their own for each run instead (bench/own_redis.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from arq_jobs._logs import configure_logging
from bench import machine, processes, report
from bench.harness import Harness, progress
from bench.options import WORKLOADS, Options
from bench.redis_target import RedisTarget, redis_target
from bench.results import RunResult
from bench.systems import BASE_SYSTEMS, SYSTEMS, SystemName, open_deployment
from bench.workloads import drain, http, http_batch, latency, memory, polling, scaling, sleep

Workload = Callable[[Harness, SystemName, int, Options], Awaitable[RunResult]]
RUNNERS: dict[str, Workload] = {
    "drain": drain.run,
    "sleep": sleep.run,
    "latency": latency.run,
    "http": http.run,
    "http-batch": http_batch.run,
    "polling": polling.run,
    "memory": memory.run,
    "scaling": scaling.run,
}
DEFAULT_JSON = Path("bench-results/latest.json")


def comma_list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in choices]
        if unknown or not items:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}")
        return [c for c in choices if c in items]

    return parse


def int_list(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--workloads", type=comma_list(WORKLOADS), default=list(WORKLOADS), help="default: all")
    p.add_argument(
        "--systems", type=comma_list(SYSTEMS), help=f"default: all; with --smoke {','.join(BASE_SYSTEMS)}"
    )
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one run: checks that it works")
    p.add_argument("--runs", type=int, help="repetitions (default 3)")
    p.add_argument("--jobs", type=int, help="drain: noop jobs (default 20,000)")
    p.add_argument("--sleep-jobs", type=int, help="sleep: 10 ms jobs per concurrency (default 5,000)")
    p.add_argument("--concurrencies", type=int_list, help="sleep: worker concurrencies (default 32,128)")
    p.add_argument("--rate", type=float, help="latency: arrivals per second (default 200)")
    p.add_argument("--duration", type=float, help="latency: seconds of arrivals (default 20)")
    p.add_argument("--http-rates", type=int_list, help="http: the ladder of req/s")
    p.add_argument("--http-step-s", type=float, help="http: seconds per ladder step (default 3)")
    p.add_argument("--http-refine", type=int, help="http: bisections after the ladder breaks (default 2)")
    p.add_argument("--http-half-s", type=float, help="http: seconds at half the max rate (default 10)")
    p.add_argument("--poll-jobs", type=int, help="polling: 10 ms jobs per phase (default 5,000)")
    p.add_argument("--poll-clients", type=int, help="polling: clients polling (default 20)")
    p.add_argument("--poll-interval", type=float, help="polling: seconds between a client's polls (0.05)")
    p.add_argument("--batch-size", type=int, help="http-batch: jobs per request (default 100)")
    p.add_argument("--batch-s", type=float, help="http-batch: seconds of requests (default 5)")
    p.add_argument("--batch-connections", type=int, help="http-batch: requests in flight (default 8)")
    p.add_argument("--memory-jobs", type=int, help="memory: finished noop jobs measured (default 3,000)")
    p.add_argument(
        "--memory-settle-s",
        type=float,
        help="memory: seconds waited after the last job ended (default 5; ours: events_keep_s + 2)",
    )
    p.add_argument("--scaling-http-s", type=float, help="scaling: seconds of HTTP load per step (default 5)")
    p.add_argument("--scaling-connections", type=int, help="scaling: HTTP requests in flight (default 32)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write results ({DEFAULT_JSON})")
    p.add_argument("--keep-logs", action="store_true", help="keep the child processes' logs")
    return p


def options_from(args: argparse.Namespace) -> Options:
    base = Options.smoke_sizes() if args.smoke else Options()
    return base.with_(
        runs=args.runs,
        jobs=args.jobs,
        sleep_jobs=args.sleep_jobs,
        concurrencies=args.concurrencies,
        rate=args.rate,
        duration_s=args.duration,
        http_rates=args.http_rates,
        http_step_s=args.http_step_s,
        http_refine=args.http_refine,
        http_half_s=args.http_half_s,
        poll_jobs=args.poll_jobs,
        poll_clients=args.poll_clients,
        poll_interval_s=args.poll_interval,
        batch_size=args.batch_size,
        batch_s=args.batch_s,
        batch_connections=args.batch_connections,
        memory_jobs=args.memory_jobs,
        memory_settle_s=args.memory_settle_s,
        scaling_http_s=args.scaling_http_s,
        scaling_connections=args.scaling_connections,
    )


def brief(result: RunResult) -> str:
    if result.error is not None:
        return f"ERROR {result.error}"
    shown = " ".join(f"{k}={v:,.1f}" for k, v in result.metrics.items() if v is not None)
    counts = " ".join(f"{k}={v:,}" for k, v in result.counts.items())
    return f"{shown} ({counts})"


async def run_all(
    harness: Harness, options: Options, workloads: Sequence[str], systems: Sequence[SystemName]
) -> list[RunResult]:
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    results: list[RunResult] = []
    for workload in workloads:
        chosen = report.systems_for(workload, systems)
        if not chosen:
            continue
        for run_no in range(1, options.runs + 1):
            turn = (run_no - 1) % len(chosen)
            for system in chosen[turn:] + chosen[:turn]:  # rotate who goes first
                clock = time.monotonic()
                try:
                    result = await RUNNERS[workload](harness, system, run_no, options)
                except Exception as error:  # one failed run must not lose the others
                    result = RunResult(workload, system, run_no, error=f"{type(error).__name__}: {error}")
                result.details["wall_s"] = round(time.monotonic() - clock, 1)
                progress(f"[{workload} run {run_no}/{options.runs}] {system}: {brief(result)}")
                results.append(result)
    return results


async def describe_systems(redis_url: str, systems: Sequence[SystemName]) -> dict[str, Any]:
    described: dict[str, Any] = {}
    for system in systems:
        deployment = await open_deployment(system, redis_url)
        try:
            described[system] = deployment.describe()
        finally:
            await deployment.aclose()
    return described


def redis_version(url: str) -> str | None:
    client = redis.Redis.from_url(url)
    try:
        info: dict[str, Any] = client.info("server")  # type: ignore[assignment]
        return str(info.get("redis_version"))
    except redis.RedisError:
        return None
    finally:
        client.close()


def document(
    args: argparse.Namespace,
    options: Options,
    target: RedisTarget,
    systems_info: dict[str, Any],
    results: list[RunResult],
    started: datetime,
    wall_s: float,
    commit: str | None,
) -> dict[str, Any]:
    summary = report.summarize(results)
    notes = report.notes(results)
    commit_at_end = machine.git_commit()
    if commit_at_end != commit:
        notes.append(f"the checkout moved from commit {commit} to {commit_at_end} during the run")
    return {
        "schema": "arq-jobs-bench/1",
        "date": started.isoformat(timespec="seconds"),
        "duration_s": round(wall_s, 1),
        "command": ["python", "-m", "bench", *sys.argv[1:]],
        "git_commit": commit,
        "git_commit_at_end": commit_at_end,
        "machine": machine.machine_info(),
        "versions": machine.versions(redis_version(target.url)),
        "redis": {"url": target.redacted_url, "source": target.source},
        "options": options.to_json(),
        "workloads": args.workloads,
        "systems": systems_info,
        "summary": {
            workload: {
                metric: {system: s.to_json() for system, s in by_system.items()}
                for metric, by_system in metrics.items()
            }
            for workload, metrics in summary.items()
        },
        "rows": [
            report.row_data(row, summary, args.systems)
            for row in report.rows(options)
            if row.workload in args.workloads
        ],
        "targets": [a.to_json() for a in report.assess(options, summary, args.systems, args.workloads)],
        "problems": report.problems(results),
        "notes": notes,
        "runs": [r.to_json() for r in results],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.systems is None:
        args.systems = list(BASE_SYSTEMS if args.smoke else SYSTEMS)
    options = options_from(args)
    configure_logging("WARNING", "console")
    started = datetime.now(UTC)
    commit = machine.git_commit()
    clock = time.monotonic()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    try:
        with redis_target() as target:
            progress(f"bench: Redis {target.redacted_url} ({target.source}); logs in {log_dir}")
            systems_info = asyncio.run(describe_systems(target.url, args.systems))
            harness = Harness(target.url, log_dir)
            results = asyncio.run(run_all(harness, options, args.workloads, args.systems))
            wall_s = time.monotonic() - clock
            doc = document(args, options, target, systems_info, results, started, wall_s, commit)
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C; SIGTERM cancels the main task
        processes.kill_leftovers()
        progress(f"bench: interrupted; child logs in {log_dir}")
        return 130
    finally:
        processes.kill_leftovers()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    summary = report.summarize(results)
    runs = f"{options.runs} run{'s' if options.runs > 1 else ''}"
    mode = "smoke mode (sizes too small to mean anything)" if options.smoke else runs
    print(f"arq-jobs bench — {mode}, median (min–max); {started:%Y-%m-%d %H:%M} UTC, {wall_s:.0f} s")
    print(report.table(options, summary, args.systems, args.workloads))
    print()
    assessed = report.assess(options, summary, args.systems, args.workloads)
    print(report.targets_table(assessed, args.systems))
    print()
    for line in doc["notes"]:
        print(f"note: {line}")
    for line in doc["problems"]:
        print(f"PROBLEM: {line}")
    print(f"results: {args.json}")
    if doc["problems"] or args.keep_logs:
        progress(f"bench: child logs kept in {log_dir}")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 1 if doc["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
