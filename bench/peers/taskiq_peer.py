"""taskiq with taskiq-redis, run by its own virtual environment (bench/peer_systems.py installs it):
the broker for `taskiq worker bench.peers.taskiq_peer:broker` (taskiq's own CLI, logging at its default
level), a `RedisStreamBroker` with a `RedisAsyncResultBackend`; and `python -m bench.peers.taskiq_peer`,
the agent that enqueues with `kiq()` and reads results back from the result backend.

taskiq keeps no enqueue / start / finish times, so the agent labels each message with its enqueue
time (epoch ms, just before `kiq()`), and a middleware in the worker adds the start (pre_execute) and
finish (post_execute) times to the result's labels, which the backend stores with the result.

    BENCH_PEER_REDIS_URL, BENCH_PEER_QUEUE, BENCH_PEER_READY_KEY: as for bench.peers.saq_peer
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from redis.asyncio import Redis  # type: ignore[import-not-found, unused-ignore]
from taskiq import TaskiqEvents, TaskiqMiddleware, TaskiqState  # type: ignore[import-not-found]
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker  # type: ignore[import-not-found]

from bench.peers.agent import Progress, serve

REDIS_URL = os.environ.get("BENCH_PEER_REDIS_URL", "redis://127.0.0.1:6379/14")
QUEUE = os.environ.get("BENCH_PEER_QUEUE", "bench-taskiq")


def now_ms() -> int:
    return round(time.time() * 1000)


class Timings(TaskiqMiddleware):  # type: ignore[misc]
    def pre_execute(self, message: Any) -> Any:
        message.labels["started_ms"] = now_ms()
        return message

    def post_execute(self, message: Any, result: Any) -> None:
        result.labels["started_ms"] = message.labels.get("started_ms")
        result.labels["finished_ms"] = now_ms()


backend = RedisAsyncResultBackend(REDIS_URL, prefix_str=f"{QUEUE}:result")
broker = (
    RedisStreamBroker(REDIS_URL, queue_name=QUEUE).with_result_backend(backend).with_middlewares(Timings())
)


async def noop(value: Any = None) -> Any:
    """Return the value unchanged."""
    return value


async def sleep(seconds: float = 0.01) -> None:
    """Sleep `seconds` (10 ms by default)."""
    await asyncio.sleep(seconds)


TASKS = {
    name: broker.register_task(func, task_name=name) for name, func in (("noop", noop), ("sleep", sleep))
}


async def ready(state: TaskiqState) -> None:
    async with Redis.from_url(REDIS_URL) as redis:
        await redis.set(os.environ["BENCH_PEER_READY_KEY"], 1)


broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, ready)


async def agent() -> None:
    await broker.startup()

    async def ended(ids: list[str]) -> list[bool]:
        return list(await asyncio.gather(*(backend.is_result_ready(task_id) for task_id in ids)))

    progress = Progress(ended, batch=50)

    async def kick(kind: str, args: tuple[Any, ...]) -> str:
        task = await TASKS[kind].kicker().with_labels(enqueued_ms=now_ms()).kiq(*args)
        return str(task.task_id)

    async def enqueue(request: dict[str, Any]) -> list[str]:
        args = (request["seconds"],) if request["kind"] == "sleep" else ()
        ids = list(await asyncio.gather(*(kick(request["kind"], args) for _ in range(request["n"]))))
        progress.add(ids)
        return ids

    async def timing(task_id: str) -> list[Any]:
        try:
            result = await backend.get_result(task_id)
        except Exception:  # no result (yet)
            return [task_id, None, None, None, False]
        labels = result.labels
        error = f"{type(result.error).__name__}: {result.error}" if result.is_err else None
        return [task_id, labels.get("enqueued_ms"), labels.get("started_ms"), labels.get("finished_ms"),
                not result.is_err, error]  # fmt: skip

    async def timings(request: dict[str, Any]) -> list[list[Any]]:
        found: list[list[Any]] = []
        for start in range(0, len(progress.ids), 200):
            found += await asyncio.gather(*(timing(i) for i in progress.ids[start : start + 200]))
        return found

    try:
        await serve(
            {"enqueue": enqueue, "progress": progress.check, "ended": progress.ended, "timings": timings}
        )
    finally:
        await broker.shutdown()


if __name__ == "__main__":
    asyncio.run(agent())
