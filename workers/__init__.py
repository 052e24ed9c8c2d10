"""The reference deployment's ARQ workers, one pool per queue: `arq workers.WorkerSettings` serves the
default queue (`JOBS_QUEUE_NAME`), `arq workers.HighWorkerSettings`, `arq workers.LowWorkerSettings`,
... each other configured queue (`JOBS_QUEUES`).

The classes are made on first access, so importing `workers.tasks` (as the API does, for the task
registry) does not read worker settings.
"""

from __future__ import annotations

from arq_jobs.worker import pool_class


def __getattr__(name: str) -> type:
    if name.endswith("WorkerSettings"):
        return pool_class(name)
    raise AttributeError(f"module 'workers' has no attribute {name!r}")
