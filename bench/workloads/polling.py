"""Status polling: the sleep workload (N 10 ms jobs, concurrency 128) with the system's app running,
once with K clients (default 20) each polling `GET /jobs/{id}` every 50 ms (`bench.loadgen poll`, open
loop: K / 0.05 s req/s) and once without; jobs/s of each, the drop, and the status req/s served.
The two phases alternate in order from run to run."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness import Api, Harness
from bench.options import Options
from bench.results import RunResult, Throughput, throughput
from bench.systems import Deployment, SystemName


def write_ids(directory: Path, job_ids: Sequence[str]) -> Path:
    path = Path(tempfile.mkstemp(prefix="ids-", suffix=".txt", dir=directory)[1])
    path.write_text("\n".join(job_ids) + "\n")
    return path


async def phase(
    harness: Harness, deployment: Deployment, api: Api, options: Options, polled: bool
) -> tuple[Throughput, dict[str, Any]]:
    ids = await deployment.enqueue_many("sleep", options.poll_jobs)
    timeout = options.timeout_s(len(ids))
    report: dict[str, Any] = {}
    if polled:
        poll_args = [
            "--url", api.base_url + deployment.status_path,
            "--ids-file", str(write_ids(harness.log_dir, ids)),
            "--clients", str(options.poll_clients),
            "--interval", str(options.poll_interval_s),
            *deployment.header_args(),
        ]  # fmt: skip
        async with harness.poller(poll_args) as poller:
            async with harness.worker(deployment, options.poll_concurrency) as worker:
                await harness.wait_done(deployment, ids, worker, timeout)
        report = poller.report
    else:
        async with harness.worker(deployment, options.poll_concurrency) as worker:
            await harness.wait_done(deployment, ids, worker, timeout)
    return throughput(await deployment.timings(ids)), report


async def run(harness: Harness, system: SystemName, run_no: int, options: Options) -> RunResult:
    measured: dict[bool, Throughput] = {}
    poll_report: dict[str, Any] = {}
    async with harness.deployment(system) as deployment, harness.api(deployment) as api:
        for polled in (False, True) if run_no % 2 else (True, False):
            measured[polled], report = await phase(harness, deployment, api, options, polled)
            if polled:
                poll_report = report
        rss = api.child.peak_rss_mb()
    base, loaded = measured[False].jobs_per_s, measured[True].jobs_per_s
    drop = 100 * (1 - loaded / base) if base and loaded is not None else None
    return RunResult(
        "polling",
        system,
        run_no,
        metrics={
            "baseline_jobs_per_s": base,
            "jobs_per_s": loaded,
            "drop_pct": drop,
            "status_rps": poll_report.get("achieved_rps"),
            "status_p99_ms": poll_report.get("p99_ms"),
            "api_peak_rss_mb": rss,
        },
        counts={
            "enqueued": measured[False].jobs + measured[True].jobs,
            "succeeded": measured[False].succeeded + measured[True].succeeded,
        },
        details={
            "poller": poll_report,
            "clients": options.poll_clients,
            "interval_s": options.poll_interval_s,
        },
    )
