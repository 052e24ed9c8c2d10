"""Plain ARQ 0.28, the baseline: the same no-op and 10 ms sleep work as our `noop` and `sleep` tasks,
run by `arq bench.plain_arq.WorkerSettings --custom-log-dict bench.plain_arq.LOG_CONFIG`.

Everything else is ARQ's default (pickle, `max_jobs` 10, `poll_delay` 0.5 s, ...) unless set by:
    BENCH_ARQ_REDIS_URL     Redis (default redis://127.0.0.1:6379/14)
    BENCH_ARQ_QUEUE         queue name (the harness gives each run its own)
    BENCH_ARQ_POLL_DELAY_S  poll_delay
    BENCH_ARQ_MAX_JOBS      max_jobs
    BENCH_ARQ_LOG_LEVEL     level of ARQ's logger (default INFO, ARQ's own: two lines per job),
                            set by LOG_CONFIG
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from arq.connections import RedisSettings
from arq.constants import default_queue_name

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


async def noop(ctx: dict[str, Any], value: Any = None) -> Any:
    """Return the value unchanged."""
    return value


async def sleep(ctx: dict[str, Any], seconds: float = 0.01) -> None:
    """Sleep `seconds` (10 ms by default)."""
    await asyncio.sleep(seconds)


def worker_options(env: dict[str, str]) -> dict[str, Any]:
    options: dict[str, Any] = {
        "functions": [noop, sleep],
        "redis_settings": RedisSettings.from_dsn(env.get("BENCH_ARQ_REDIS_URL", DEFAULT_REDIS_URL)),
        "queue_name": env.get("BENCH_ARQ_QUEUE", default_queue_name),
    }
    if env.get("BENCH_ARQ_POLL_DELAY_S"):
        options["poll_delay"] = float(env["BENCH_ARQ_POLL_DELAY_S"])
    if env.get("BENCH_ARQ_MAX_JOBS"):
        options["max_jobs"] = int(env["BENCH_ARQ_MAX_JOBS"])
    return options


LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "stderr": {"level": os.environ.get("BENCH_ARQ_LOG_LEVEL", "INFO"), "class": "logging.StreamHandler"}
    },
    "loggers": {"arq": {"handlers": ["stderr"], "level": os.environ.get("BENCH_ARQ_LOG_LEVEL", "INFO")}},
}

WorkerSettings = type("WorkerSettings", (), worker_options(dict(os.environ)))
