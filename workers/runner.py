"""Runs registered tasks under ARQ: one ARQ function per task, wrapping it with our bookkeeping.

Per attempt the wrapper records the start (attempt, time, worker) in the job's record, validates the
stored payload against the task's input model, calls the task with a typed `JobContext`, and returns
its result as JSON-able data. ARQ stores the result (or the exception, readable through our
serializer) in the same transaction that removes the job.
"""

from __future__ import annotations

from typing import Any

from arq.worker import Function, func

from jobcore.client import now_ms
from jobcore.context import JobContext
from jobcore.records import record_ttl_ms, started_fields
from jobcore.registry import Task, TaskRegistry
from workers.context import get_resources


def arq_function(task: Task[Any, Any]) -> Function:
    """The ARQ function that runs `task`."""

    async def run(ctx: dict[str, Any], payload: Any) -> Any:
        resources = get_resources(ctx)
        job_id: str = ctx["job_id"]
        attempt: int = ctx["job_try"]
        settings = resources.settings
        ttl = record_ttl_ms(0, task.timeout_for(settings), settings.result_ttl_s)
        key = resources.keys.record(job_id)
        async with resources.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=started_fields(attempt, now_ms(), resources.worker_id))
            pipe.pexpire(key, ttl)
            await pipe.execute()
        data = task.parse_input(payload)
        result = await task(JobContext(job_id, task.name, attempt, resources), data)
        return task.dump_result(result)

    run.__qualname__ = run.__name__ = f"run_{task.name}"
    return func(run, name=task.name, timeout=task.timeout_s, max_tries=task.max_attempts)


def arq_functions(registry: TaskRegistry) -> list[Function]:
    return [arq_function(task) for task in registry]
