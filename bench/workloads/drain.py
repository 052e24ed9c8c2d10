"""Drain: N `noop` jobs enqueued first, then one worker process started; jobs/s from the first job's
start to the last job's finish as recorded by the system, and the worker's peak RSS once done (and, in
the JSON, its CPU time per job, start-up included)."""

from __future__ import annotations

import time
from typing import Any

from bench.harness import Harness
from bench.options import Options
from bench.results import RunResult, throughput
from bench.systems import SystemName


async def run(
    harness: Harness,
    system: SystemName,
    run_no: int,
    options: Options,
    task: str = "noop",
    payload: dict[str, Any] | None = None,
) -> RunResult:
    async with harness.deployment(system) as deployment:
        clock = time.monotonic()
        ids = await deployment.enqueue_many(task, options.jobs, payload)
        enqueue_s = time.monotonic() - clock
        async with harness.worker(deployment) as worker:
            await harness.wait_done(deployment, ids, worker, options.timeout_s(len(ids)))
            rss = worker.peak_rss_mb()
            cpu_s = worker.cpu_s()
        measured = throughput(await deployment.timings(ids))
    return RunResult(
        "drain",
        system,
        run_no,
        metrics={"jobs_per_s": measured.jobs_per_s, "worker_peak_rss_mb": rss},
        counts={"enqueued": len(ids), "succeeded": measured.succeeded},
        details={
            "task": task,
            "seconds": measured.seconds,
            "enqueue_s": round(enqueue_s, 3),
            "worker_cpu_us_per_job": None if cpu_s is None or not ids else round(cpu_s * 1e6 / len(ids)),
        },
    )
