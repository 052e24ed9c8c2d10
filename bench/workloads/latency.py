"""Latency: `noop` jobs arriving open-loop at a fixed rate (200/s) for a fixed time (20 s) while one
worker runs; enqueue → start p50 / p99 / max, from each job's recorded enqueue and start times."""

from __future__ import annotations

import asyncio

from bench.harness import Harness
from bench.options import Options
from bench.results import RunResult, failures
from bench.stats import latency_summary, percentile
from bench.systems import Deployment, SystemName


async def arrive(deployment: Deployment, rate: float, duration_s: float) -> tuple[list[str], list[float]]:
    """Enqueue job i at `start + i / rate`, each without waiting for the previous ones; the ids and
    how late (ms) each enqueue was issued."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    pending: list[asyncio.Task[str]] = []
    lateness: list[float] = []
    for i in range(round(rate * duration_s)):
        due = start + i / rate
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        lateness.append((loop.time() - due) * 1000)
        pending.append(asyncio.create_task(deployment.enqueue("noop")))
    return list(await asyncio.gather(*pending)), lateness


async def run(harness: Harness, system: SystemName, run_no: int, options: Options) -> RunResult:
    async with harness.deployment(system) as deployment:
        async with harness.worker(deployment, ready=True) as worker:
            ids, lateness = await arrive(deployment, options.rate, options.duration_s)
            await harness.wait_done(deployment, ids, worker, options.timeout_s(len(ids)))
        timings = await deployment.timings(ids)
    waits = [
        float(t.started_ms - t.enqueued_ms)
        for t in timings
        if t.started_ms is not None and t.enqueued_ms is not None
    ]
    return RunResult(
        "latency",
        system,
        run_no,
        metrics=dict(latency_summary(waits)),
        counts={"enqueued": len(ids), "succeeded": sum(t.succeeded for t in timings)},
        details={
            **({"failures": lost} if (lost := failures(timings)) else {}),
            "rate": options.rate,
            "duration_s": options.duration_s,
            "arrival_lateness_p99_ms": round(percentile(lateness, 99), 2) if lateness else None,
        },
    )
