"""Scaling, 1 → 2 processes, in the same run:

- drain (ours, plain ARQ tuned): the drain workload (N noop jobs, each run on a Redis of its own) with
  one worker process and with two (two `arq ...WorkerSettings` processes on the same queue, started as
  the harness starts one); factor = jobs/s with two ÷ jobs/s with one.
- HTTP enqueue (ours): `POST /jobs/noop` from `bench.loadgen` in closed loop (--scaling-connections
  (32) requests in flight, --scaling-http-s (5 s) after a 1 s warm-up) against the API with one
  process and with `JOBS_API_WORKERS=2`; factor = req/s with two ÷ with one. The API's process tree is
  checked: when it does not run two server processes the setting is not honoured and the HTTP factor
  is not measured (None, with a note).

Which of the two goes first alternates from run to run.
"""

from __future__ import annotations

from typing import Any

from bench.harness import Harness
from bench.options import Options
from bench.results import RunResult
from bench.systems import SystemName
from bench.workloads import drain

PROCESSES = (1, 2)
HTTP_SYSTEMS: tuple[SystemName, ...] = ("ours",)  # the plain ARQ app runs one process


def factor(one: float | None, two: float | None) -> float | None:
    return None if one is None or two is None or one == 0 else round(two / one, 3)


async def http_rate(harness: Harness, system: SystemName, processes: int, options: Options) -> dict[str, Any]:
    async with harness.own_redis() as own, own.deployment(system) as deployment:
        async with own.api(deployment, processes) as api:
            serving = 1 + len(api.child.descendants())  # uvicorn's supervisor plus its workers
            url = api.base_url + deployment.enqueue_path
            base = ["post", "--url", url, "--closed", "--connections", str(options.scaling_connections)]
            headers = deployment.header_args()
            warmup = await own.loadgen([*base, "--duration", str(min(1.0, options.scaling_http_s)), *headers])
            found = await own.loadgen([*base, "--duration", str(options.scaling_http_s), *headers])
            rss = api.child.peak_rss_mb()
            cpu = api.child.cpu_by_process()
            queued = await deployment.queued()
    honoured = processes == 1 or serving - 1 >= processes
    return {
        "rps": found["achieved_rps"] if honoured and found["ok"] else None,
        "p50_ms": found.get("p50_ms"),
        "p99_ms": found.get("p99_ms"),
        "api_cpu_s_by_process": cpu,  # the supervisor first, when there is one
        "loadgen_cpu_s": found.get("cpu_s"),
        "seconds": found.get("duration_s"),
        "process_tree": serving,
        "honoured": honoured,
        "accepted": warmup["ok"] + found["ok"],
        "queued": queued,
        "api_peak_rss_mb": rss,
        "errors": found["errors"],
    }


async def run(harness: Harness, system: SystemName, run_no: int, options: Options) -> RunResult:
    order = PROCESSES if run_no % 2 else PROCESSES[::-1]
    drains = {n: await drain.measure(harness, system, options, n) for n in order}
    result = RunResult("scaling", system, run_no, counts={"enqueued": 0, "succeeded": 0})
    for n, found in drains.items():
        result.metrics[f"drain_{n}p_jobs_per_s"] = found["jobs_per_s"]
        result.counts["enqueued"] += found["enqueued"]
        result.counts["succeeded"] += found["succeeded"]
        result.details[f"drain_{n}p"] = found
    result.metrics["drain_factor"] = factor(drains[1]["jobs_per_s"], drains[2]["jobs_per_s"])
    if system in HTTP_SYSTEMS:
        https = {n: await http_rate(harness, system, n, options) for n in order}
        for n, found in https.items():
            result.metrics[f"http_{n}p_rps"] = found["rps"]
            result.details[f"http_{n}p"] = found
        result.metrics["http_factor"] = factor(https[1]["rps"], https[2]["rps"])
        result.counts["accepted"] = sum(found["accepted"] for found in https.values())
        result.counts["queued"] = sum(found["queued"] for found in https.values())
    return result
