"""SAQ, run by its own virtual environment (bench/peer_systems.py installs it): the worker's settings
for `saq bench.peers.saq_peer.settings` (SAQ's own CLI and event loop, logging at its default level),
and `python -m bench.peers.saq_peer` — the agent that enqueues with `Queue.enqueue` and reads jobs back
with `Queue.jobs` (SAQ's records: queued / started / completed, epoch ms).

    BENCH_PEER_REDIS_URL    Redis
    BENCH_PEER_QUEUE        the queue's name (the harness gives each run its own)
    BENCH_PEER_CONCURRENCY  the worker's concurrency
    BENCH_PEER_READY_KEY    set by the worker's startup hook once it runs

The one departure from SAQ's defaults: its worker's first sweep is deferred by one sweep interval (see
`startup`).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from saq import Queue, Status  # type: ignore[import-not-found]

from bench.peers.agent import Progress, serve

REDIS_URL = os.environ.get("BENCH_PEER_REDIS_URL", "redis://127.0.0.1:6379/14")
QUEUE = os.environ.get("BENCH_PEER_QUEUE", "bench-saq")
TERMINAL = {Status.COMPLETE, Status.FAILED, Status.ABORTED}


async def noop(ctx: dict[str, Any], value: Any = None) -> Any:
    """Return the value unchanged."""
    return value


async def sleep(ctx: dict[str, Any], seconds: float = 0.01) -> None:
    """Sleep `seconds` (10 ms by default)."""
    await asyncio.sleep(seconds)


async def startup(ctx: dict[str, Any]) -> None:
    worker = ctx["worker"]
    # SAQ sweeps stuck jobs when its worker starts, then every `timers["sweep"]` (60 s). With a backlog
    # that first sweep races the worker's own dequeue: a job moved to the active list but not marked
    # active yet is aborted as "swept" and another stalls ~5 s (tobymao/saq#124, #277), which would
    # dominate a drain of a few seconds. The first sweep is skipped as if one had just run: SAQ's own
    # sweep lock, held for one interval. Later sweeps run as usual.
    sweep_lock = worker.queue.namespace("sweep")
    await worker.queue.redis.set(sweep_lock, 1, ex=worker.timers["sweep"], nx=True)
    await worker.queue.redis.set(os.environ["BENCH_PEER_READY_KEY"], 1)


queue = Queue.from_url(REDIS_URL, name=QUEUE)
settings: dict[str, Any] = {
    "queue": queue,
    "functions": [noop, sleep],
    "concurrency": int(os.environ.get("BENCH_PEER_CONCURRENCY", "10")),
    "startup": startup,
}


async def agent() -> None:
    await queue.connect()

    async def ended(keys: list[str]) -> list[bool]:
        return [job is not None and job.status in TERMINAL for job in await queue.jobs(keys)]

    progress = Progress(ended)

    async def enqueue(request: dict[str, Any]) -> list[str]:
        kwargs = {"seconds": request["seconds"]} if request["kind"] == "sleep" else {}
        jobs = await asyncio.gather(*(queue.enqueue(request["kind"], **kwargs) for _ in range(request["n"])))
        keys = [job.key for job in jobs]
        progress.add(keys)
        return keys

    async def timings(request: dict[str, Any]) -> list[list[Any]]:
        found: list[list[Any]] = []
        for start in range(0, len(progress.ids), 500):
            keys = progress.ids[start : start + 500]
            for key, job in zip(keys, await queue.jobs(keys), strict=True):
                if job is None:
                    found.append([key, None, None, None, False])
                else:
                    complete = job.status == Status.COMPLETE
                    found.append([key, job.queued or None, job.started or None, job.completed or None,
                                  complete, None if complete else job.error or str(job.status)])  # fmt: skip
        return found

    try:
        await serve(
            {"enqueue": enqueue, "progress": progress.check, "ended": progress.ended, "timings": timings}
        )
    finally:
        await queue.disconnect()


if __name__ == "__main__":
    asyncio.run(agent())
