"""HTTP batch enqueue (ours only): `POST /jobs/noop/batch` with `{"items": [100 inputs]}` from
`bench.loadgen` in closed loop — --batch-connections (8) requests in flight, each connection sending its
next batch as soon as its answer came — for --batch-s (5 s) against one API process (no worker
running), on a redis-server of its own (the run leaves ~100,000 jobs queued). Jobs/s enqueued = 2xx
answers/s × the batch size.

Every accepted job must be stored: the job ids in the 2xx answers (`accepted`) are counted and must
equal the queue's size afterwards (`queued`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.harness import Harness
from bench.options import Options
from bench.results import RunResult
from bench.systems import SystemName

WARMUP_REQUESTS = 4
JOB_ID = '"job_id"'  # once per job in a 2xx answer: {"jobs": [{"job_id": ..., "status_url": ...}, ...]}


def closed_args(
    url: str, body_file: str, connections: int, duration_s: float, requests: int | None
) -> list[str]:
    args = ["post", "--url", url, "--body-file", body_file, "--closed", "--connections", str(connections)]
    args += ["--duration", str(duration_s), "--count", JOB_ID]
    return args + ([] if requests is None else ["--requests", str(requests)])


def write_body(directory: Path, size: int) -> Path:
    """The request's body, `size` noop inputs, in a file for the load generator."""
    path = directory / f"batch-{size}.json"
    path.write_text(json.dumps({"items": [{} for _ in range(size)]}))
    return path


async def run(harness: Harness, system: SystemName, run_no: int, options: Options) -> RunResult:
    size = options.batch_size
    body_file = write_body(harness.log_dir, size)
    async with harness.own_redis() as own, own.deployment(system) as deployment:
        if deployment.batch_path is None:
            raise ValueError(f"{system} has no batch enqueue")
        async with own.api(deployment) as api:
            url = api.base_url + deployment.batch_path
            headers = deployment.header_args()
            warmup = await own.loadgen([*closed_args(url, str(body_file), 2, 10, WARMUP_REQUESTS), *headers])
            if warmup["ok"] == 0:
                raise RuntimeError(
                    f"POST {deployment.batch_path} answered no 2xx to {warmup['sent']} requests "
                    f"(errors {warmup['errors']}): is the batch route in this tree?"
                )
            found: dict[str, Any] = await own.loadgen(
                [
                    *closed_args(
                        url,
                        str(body_file),
                        options.batch_connections,
                        options.batch_s,
                        options.batch_requests,
                    ),
                    *headers,
                ]
            )
            rss = api.child.peak_rss_mb()
            queued = await deployment.queued()
    rps = found["achieved_rps"]
    ids_per_answer = found["counted"] / found["ok"] if found["ok"] else None
    return RunResult(
        "http-batch",
        system,
        run_no,
        metrics={
            "jobs_per_s": round(rps * size, 1) if found["ok"] else None,
            "rps": rps if found["ok"] else None,
            "p50_ms": found.get("p50_ms"),
            "p99_ms": found.get("p99_ms"),
            "api_peak_rss_mb": rss,
        },
        counts={"accepted": warmup["counted"] + found["counted"], "queued": queued},
        details={
            "batch_size": size,
            "connections": options.batch_connections,
            "job_ids_per_answer": ids_per_answer,
            "load": found,
            "warmup": warmup,
            "redis": own.redis_description(),
        },
    )
