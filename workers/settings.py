"""The classes the arq CLI runs, built from our Settings: one worker pool per queue.

- `arq workers.WorkerSettings` serves `JOBS_QUEUE_NAME` (`default`);
- `arq workers.<Queue>WorkerSettings` serves any other configured queue (`JOBS_QUEUES`): `high` →
  `HighWorkerSettings`, `low` → `LowWorkerSettings`, `bulk-email` → `BulkEmailWorkerSettings`
  (`workers.settings.<Queue>WorkerSettings` works too). They are made on first access (PEP 562).

A pool runs `JOBS_QUEUE_CONCURRENCY`'s number for its queue at once, else `JOBS_WORKER_CONCURRENCY`.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import unquote

from arq.connections import RedisSettings

from jobcore.config import Settings, load_settings, pool_class_name
from jobcore.keys import Keys
from jobcore.registry import TaskRegistry, load_registry
from jobcore.serializer import dumps, loads
from workers.context import CLIENT_SETTINGS_KEY, REGISTRY_KEY, SETTINGS_KEY, shutdown, startup
from workers.runner import ARQ_TIMEOUT_MARGIN_S, arq_functions


def redis_settings(settings: Settings) -> RedisSettings:
    """ARQ's connection settings for our URL (ARQ leaves %-escapes in the password; redis-py, which
    the API uses, decodes them: decode here too so both log in with the same password)."""
    redis = RedisSettings.from_dsn(str(settings.redis_url))
    redis.username = unquote(redis.username) if redis.username else None
    redis.password = unquote(redis.password) if redis.password else None
    redis.conn_timeout = max(1, round(settings.redis_timeout_s))
    return redis


def health_check_key(queue: str) -> str:
    """Per host (a container's hostname is its id), so each container's `arq --check` checks its
    own worker rather than any worker of the queue."""
    return f"{queue}:health-check:{socket.gethostname()}"


def pool_settings(settings: Settings, queue: str | None = None) -> Settings:
    """The settings of `queue`'s pool (default: `settings.queue_name`): everything in the worker that
    reads `queue_name` or `worker_concurrency` (heartbeat, metrics, logs) then sees that pool's."""
    queue = settings.queue_name if queue is None else queue
    if queue not in settings.queues:
        raise ValueError(f"queue {queue!r} is not one of JOBS_QUEUES ({', '.join(settings.queues)})")
    return settings.model_copy(
        update={"queue_name": queue, "worker_concurrency": settings.concurrency_for(queue)}
    )


def worker_options(settings: Settings, tasks: TaskRegistry, queue: str | None = None) -> dict[str, Any]:
    """ARQ `Worker` keyword arguments for the pool of `queue` (default: `settings.queue_name`): every
    task, JSON serialization, our hooks, tuned polling."""
    tasks.check_queues(settings)
    configured = settings
    settings = pool_settings(settings, queue)
    queue = Keys(settings.key_prefix).queue(settings.queue_name)
    return {
        "functions": arq_functions(tasks),
        "redis_settings": redis_settings(settings),
        "queue_name": queue,
        "health_check_key": health_check_key(queue),
        "max_jobs": settings.worker_concurrency,
        "poll_delay": settings.poll_delay_s,
        "job_timeout": settings.job_timeout_s + ARQ_TIMEOUT_MARGIN_S,
        "keep_result": settings.result_ttl_s,
        "expires_extra_ms": settings.job_expires_s * 1000,
        "health_check_interval": settings.health_check_interval_s,
        "job_completion_wait": settings.shutdown_grace_s,
        "job_serializer": dumps,
        "job_deserializer": loads,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "ctx": {SETTINGS_KEY: settings, CLIENT_SETTINGS_KEY: configured, REGISTRY_KEY: tasks},
    }


def settings_class(name: str, settings: Settings, tasks: TaskRegistry, queue: str) -> type:
    """A class whose attributes are the Worker options of `queue`'s pool (what arq reads)."""
    options = worker_options(settings, tasks, queue)
    return type(name, (), {**options, "__module__": __name__, "__doc__": f"The pool of queue {queue!r}."})


# arq reads a settings class's attributes; these come from JOBS_* variables and .env.
_settings = load_settings()
_registry = load_registry(_settings)
WorkerSettings = settings_class("WorkerSettings", _settings, _registry, _settings.queue_name)
_pools: dict[str, type] = {pool_class_name(_settings.queue_name): WorkerSettings}


def pool_names(settings: Settings) -> dict[str, str]:
    """`<Queue>WorkerSettings` → queue, for every configured queue."""
    return {pool_class_name(queue): queue for queue in settings.queues}


def describe_pools(settings: Settings) -> list[str]:
    """`WorkerSettings (default)`, `HighWorkerSettings (high)`, ...: each class and the queue it serves."""
    return [
        f"{'WorkerSettings' if queue == settings.queue_name else pool} ({queue})"
        for pool, queue in pool_names(settings).items()
    ]


def __getattr__(name: str) -> type:
    """`HighWorkerSettings` and the like: the pool of each configured queue, made once."""
    if name in _pools:
        return _pools[name]
    queue = pool_names(_settings).get(name)
    if queue is None:
        if not name.endswith("WorkerSettings"):
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        raise AttributeError(
            f"{name} serves no queue of JOBS_QUEUES ({', '.join(_settings.queues)}); "
            f"the pools are {', '.join(describe_pools(_settings))}"
        )
    _pools[name] = settings_class(name, _settings, _registry, queue)
    return _pools[name]


def __dir__() -> list[str]:
    return sorted({*globals(), "WorkerSettings", *pool_names(_settings)})
