"""Sleep: N jobs that each sleep 10 ms, enqueued first, then one worker at each concurrency (32, 128);
jobs/s (first start → last finish) and efficiency against the ideal `concurrency / 10 ms`."""

from __future__ import annotations

from typing import Any

from bench.harness import Harness
from bench.options import Options
from bench.results import RunResult, throughput
from bench.systems import SLEEP_S, SystemName


def ideal_jobs_per_s(concurrency: int) -> float:
    return concurrency / SLEEP_S


async def run(harness: Harness, system: SystemName, run_no: int, options: Options) -> RunResult:
    result = RunResult("sleep", system, run_no, counts={"enqueued": 0, "succeeded": 0})
    for concurrency in options.concurrencies:
        async with harness.deployment(system) as deployment:
            ids = await deployment.enqueue_many("sleep", options.sleep_jobs)
            async with harness.worker(deployment, concurrency) as worker:
                await harness.wait_done(deployment, ids, worker, options.timeout_s(len(ids)))
                rss = worker.peak_rss_mb()
            measured = throughput(await deployment.timings(ids))
        rate = measured.jobs_per_s
        ideal = ideal_jobs_per_s(concurrency)
        result.metrics[f"c{concurrency}.jobs_per_s"] = rate
        result.metrics[f"c{concurrency}.efficiency_pct"] = None if rate is None else 100 * rate / ideal
        result.metrics[f"c{concurrency}.worker_peak_rss_mb"] = rss
        result.counts["enqueued"] += len(ids)
        result.counts["succeeded"] += measured.succeeded
        detail: dict[str, Any] = {"seconds": measured.seconds, "ideal_jobs_per_s": ideal, "jobs": len(ids)}
        lost: dict[str, int] = result.details.setdefault("failures", {})
        for reason, n in measured.failures.items():
            lost[reason] = lost.get(reason, 0) + n
        result.details[f"c{concurrency}"] = detail
    if not result.details["failures"]:
        del result.details["failures"]
    return result
