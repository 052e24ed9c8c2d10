"""ARQ workers, one pool per queue: `arq workers.WorkerSettings` serves the default queue
(`JOBS_QUEUE_NAME`), `arq workers.HighWorkerSettings`, `arq workers.LowWorkerSettings`, ... each other
configured queue (`JOBS_QUEUES`; see `workers.settings`).

The settings classes are loaded on first access, so importing `workers.tasks` (as the API does, for
the task registry) does not read worker settings.
"""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name.endswith("WorkerSettings"):
        return getattr(importlib.import_module("workers.settings"), name)
    raise AttributeError(f"module 'workers' has no attribute {name!r}")
