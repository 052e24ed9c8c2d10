"""Drain: N `noop` jobs enqueued first, then one worker process started; jobs/s from the first job's
start to the last job's finish as recorded by the system, the worker's peak RSS once done, its CPU time
per job (start-up included), and Redis's CPU time per job.

Each run has a redis-server of its own (bench/own_redis.py), so `INFO cpu` read before the enqueue and
after the last job ended counts this run's commands only — enqueue and run, plus the harness's few
polls of the queue's size and its one check that every job has a result (~1 µs per job) — and none of
another client's on a shared Redis.
"""

from __future__ import annotations

import time
from typing import Any

from bench.harness import Harness
from bench.options import Options
from bench.own_redis import cpu_us_per_job, read_cpu
from bench.processes import Child
from bench.results import RunResult, throughput
from bench.systems import SystemName

POLL_S = 0.2  # how often the harness asks whether the jobs ended (its commands count in Redis's CPU)


def worker_figures(workers: list[Child], jobs: int) -> tuple[float | None, float | None, float | None]:
    """The workers' peak RSS (the largest of them), and their CPU time in total and per job (µs)."""
    rss = [found for w in workers if (found := w.peak_rss_mb()) is not None]
    cpu = [w.cpu_s() for w in workers]
    cpu_s = None if not cpu or any(c is None for c in cpu) else sum(c for c in cpu if c is not None)
    per_job = None if cpu_s is None or not jobs else round(cpu_s * 1e6 / jobs)
    return (max(rss) if rss else None), cpu_s, per_job


async def measure(
    harness: Harness,
    system: SystemName,
    options: Options,
    processes: int = 1,
    task: str = "noop",
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One drain of `options.jobs` jobs by `processes` worker processes on a Redis of its own."""
    async with harness.own_redis() as own, own.deployment(system) as deployment:
        cpu_before = await read_cpu(deployment.redis)
        clock = time.monotonic()
        ids = await deployment.enqueue_many(task, options.jobs, payload)
        enqueue_s = time.monotonic() - clock
        async with own.workers(deployment, processes) as workers:
            await own.wait_done(deployment, ids, workers, options.timeout_s(len(ids)), POLL_S)
            cpu_after = await read_cpu(deployment.redis)
            rss, _, worker_cpu = worker_figures(workers, len(ids))
        measured = throughput(await deployment.timings(ids))
    return {
        "jobs_per_s": measured.jobs_per_s,
        "worker_peak_rss_mb": rss,
        "worker_cpu_us_per_job": worker_cpu,
        **cpu_us_per_job(cpu_before, cpu_after, len(ids)),
        "enqueued": len(ids),
        "succeeded": measured.succeeded,
        "seconds": measured.seconds,
        "enqueue_s": round(enqueue_s, 3),
        "failures": measured.failures,
        "redis": own.redis_description(),
    }


async def run(
    harness: Harness,
    system: SystemName,
    run_no: int,
    options: Options,
    task: str = "noop",
    payload: dict[str, Any] | None = None,
) -> RunResult:
    found = await measure(harness, system, options, 1, task, payload)
    metrics = ("jobs_per_s", "worker_peak_rss_mb", "worker_cpu_us_per_job", "redis_cpu_us_per_job")
    return RunResult(
        "drain",
        system,
        run_no,
        metrics={key: found[key] for key in metrics},
        counts={"enqueued": found["enqueued"], "succeeded": found["succeeded"]},
        details={
            "task": task,
            **{key: found[key] for key in ("seconds", "enqueue_s", "worker_cpu_us_per_job")},
            **{key: found[key] for key in ("redis_cpu_us_per_job", "redis_main_thread_cpu_us_per_job")},
            "redis": found["redis"],
            **({"failures": found["failures"]} if found["failures"] else {}),
        },
    )
