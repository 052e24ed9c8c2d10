"""Drain: enqueue N jobs first, then start one `arq workers.WorkerSettings` and measure jobs/s from
the first job's start to the last job's finish, as recorded in the jobs' own status.

    python -m bench.drain --jobs 5000                                    # noop jobs
    python -m bench.drain --jobs 2000 --task generate_report --payload '{"rows": 1, "step_delay_s": 0.01}'

Redis: JOBS_REDIS_URL, else 127.0.0.1:6379 database 9 when it answers, else an embedded server.
Everything it writes is under a fresh key prefix and deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from app.main import create_arq
from devserver.redis_server import EmbeddedRedis, is_reachable
from jobcore.client import JobClient
from jobcore.config import Settings
from jobcore.keys import Keys
from jobcore.states import JobState
from workers.tasks import registry

LOCAL_REDIS = "redis://127.0.0.1:6379/9"
ENQUEUE_BATCH = 500


@dataclass(frozen=True)
class DrainResult:
    task: str
    jobs: int
    succeeded: int
    seconds: float

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else float("inf")


async def drain(redis_url: str, task: str, payload: object, jobs: int, timeout_s: float) -> DrainResult:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "JOBS_REDIS_URL": redis_url, "JOBS_KEY_PREFIX": prefix, "JOBS_LOG_LEVEL": "WARNING"}
    settings = Settings(redis_url=redis_url, key_prefix=prefix)
    arq = create_arq(settings)
    client = JobClient(arq, settings, registry)
    ids: list[str] = []
    worker: asyncio.subprocess.Process | None = None
    try:
        for start in range(0, jobs, ENQUEUE_BATCH):
            batch = range(start, min(start + ENQUEUE_BATCH, jobs))
            ids += [
                job.job_id
                for job in await asyncio.gather(*(client.enqueue_payload(task, payload) for _ in batch))
            ]
        arq_cli = str(Path(sys.executable).with_name("arq"))
        worker = await asyncio.create_subprocess_exec(
            arq_cli, "workers.WorkerSettings", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout_s
        while await count_results(client, ids) < jobs:
            if time.monotonic() > deadline:
                raise SystemExit(f"drain: not all {jobs} jobs finished within {timeout_s:.0f}s")
            await asyncio.sleep(0.05)
        statuses = [await client.status(job_id) for job_id in ids]
        starts = [s.started_at for s in statuses if s.started_at]
        ends = [s.finished_at for s in statuses if s.finished_at]
        seconds = (max(ends) - min(starts)).total_seconds()
        succeeded = sum(s.status is JobState.SUCCEEDED for s in statuses)
        return DrainResult(task, jobs, succeeded, seconds)
    finally:
        if worker is not None:
            worker.terminate()
            await asyncio.wait_for(worker.wait(), timeout=30)
        await cleanup(client, prefix, ids)
        await arq.aclose()


async def count_results(client: JobClient, ids: list[str]) -> int:
    async with client.redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.exists(Keys.arq_result(job_id))
        return sum(await pipe.execute())


async def cleanup(client: JobClient, prefix: str, ids: list[str]) -> None:
    keys = [key async for key in client.redis.scan_iter(match=f"{prefix}:*", count=1000)]
    keys += [Keys.arq_result(job_id) for job_id in ids] + [Keys.arq_job(job_id) for job_id in ids]
    for start in range(0, len(keys), 1000):
        await client.redis.delete(*keys[start : start + 1000])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--task", default="noop", choices=sorted(t.name for t in registry))
    parser.add_argument("--payload", default="{}", help="JSON input of each job")
    parser.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
    args = parser.parse_args()
    with ExitStack() as stack:
        url = os.environ.get("JOBS_REDIS_URL") or (LOCAL_REDIS if is_reachable(LOCAL_REDIS) else None)
        if url is None:
            url = stack.enter_context(EmbeddedRedis()).url
        result = asyncio.run(drain(url, args.task, json.loads(args.payload), args.jobs, args.timeout))
    print(
        f"drain {result.task}: {result.succeeded}/{result.jobs} succeeded, "
        f"first start -> last finish {result.seconds:.2f}s = {result.jobs_per_s:.0f} jobs/s (one worker)"
    )
    if result.succeeded != result.jobs:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
