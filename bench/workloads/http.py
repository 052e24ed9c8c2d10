"""HTTP enqueue: the system's app under uvicorn (one process, no worker running) driven by
`bench.loadgen` in its own process, open loop at fixed rates.

Max req/s: a ladder of rates, --http-step-s each; a step passes when the 2xx answers came at ≥ 95 %
of the offered rate with < 1 % errors. The ladder stops at the first step that fails, then bisects
--http-refine times between the highest rate that passed and the lowest that failed; the max is the
achieved rate of the highest step that passed. Then p50 / p99 / max latency (from each request's
due time) at half that rate. Every 2xx answer must have left a job in the queue: `accepted` (2xx) and
`queued` (the queue's size afterwards) are both recorded.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.harness import Harness
from bench.options import Options
from bench.results import RunResult
from bench.systems import SystemName

PASS_RATE = 0.95
MAX_ERRORS = 0.01
WARMUP_RATE = 100
MIN_REFINE_GAP = 50  # req/s: no finer than this


def passed(step: dict[str, Any]) -> bool:
    offered = float(step["target_rps"])
    return bool(
        step["achieved_rps"] >= PASS_RATE * offered and step["error_count"] < MAX_ERRORS * step["sent"]
    )


def post_args(url: str, rate: float, duration_s: float, headers: list[str]) -> list[str]:
    return ["post", "--url", url, "--rate", str(rate), "--duration", str(duration_s), *headers]


async def run(harness: Harness, system: SystemName, run_no: int, options: Options) -> RunResult:
    steps: list[dict[str, Any]] = []
    async with harness.deployment(system) as deployment, harness.api(deployment) as api:
        url = api.base_url + deployment.enqueue_path
        headers = deployment.header_args()
        pause_s = min(1.0, options.http_step_s / 4)  # lets the app finish what a step left
        warmup = await harness.loadgen(
            post_args(url, WARMUP_RATE, min(1.0, options.http_step_s / 2), headers)
        )

        async def step(rate: int, phase: str) -> dict[str, Any]:
            await asyncio.sleep(pause_s)
            found = await harness.loadgen(post_args(url, rate, options.http_step_s, headers))
            steps.append({**found, "phase": phase, "passed": passed(found)})
            return steps[-1]

        best: dict[str, Any] | None = None
        failed: int | None = None
        for rate in options.http_rates:
            if not (found := await step(rate, "ladder"))["passed"]:
                failed = rate
                break
            best = found
        for _ in range(options.http_refine):
            low = 0 if best is None else int(best["target_rps"])
            if failed is None or failed - low < MIN_REFINE_GAP:
                break
            rate = (low + failed) // 2
            if (found := await step(rate, "refine"))["passed"]:
                best = found
            else:
                failed = rate
        half: dict[str, Any] = {}
        if best is not None:
            await asyncio.sleep(pause_s)
            half_rate = round(best["achieved_rps"] / 2)
            half = await harness.loadgen(post_args(url, half_rate, options.http_half_s, headers))
        rss = api.child.peak_rss_mb()
        accepted = sum(s["ok"] for s in [warmup, *steps, half] if s)
        queued = await deployment.queued()
    return RunResult(
        "http",
        system,
        run_no,
        metrics={
            "max_rps": best["achieved_rps"] if best else None,
            "half_rps": half.get("achieved_rps"),
            "p50_ms": half.get("p50_ms"),
            "p99_ms": half.get("p99_ms"),
            "max_ms": half.get("max_ms"),
            "api_peak_rss_mb": rss,
        },
        counts={"accepted": accepted, "queued": queued},
        details={
            "steps": steps,
            "half": half,
            "warmup": warmup,
            "ladder_topped_out": failed is None,
        },
    )
