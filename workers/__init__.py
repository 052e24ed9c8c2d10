"""ARQ workers: run with `arq workers.WorkerSettings`.

`WorkerSettings` is loaded on first access, so importing `workers.tasks` (as the API does, for the
task registry) does not read worker settings.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "WorkerSettings":
        from workers.settings import WorkerSettings

        return WorkerSettings
    raise AttributeError(f"module 'workers' has no attribute {name!r}")
