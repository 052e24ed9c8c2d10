"""`WorkerSettings`, the class `arq workers.WorkerSettings` runs, built from our Settings."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import unquote

from arq.connections import RedisSettings

from jobcore.config import Settings, load_settings
from jobcore.keys import Keys
from jobcore.registry import TaskRegistry, load_registry
from jobcore.serializer import dumps, loads
from workers.context import REGISTRY_KEY, SETTINGS_KEY, shutdown, startup
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


def worker_options(settings: Settings, tasks: TaskRegistry) -> dict[str, Any]:
    """ARQ `Worker` keyword arguments: every task, JSON serialization, our hooks, tuned polling."""
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
        "ctx": {SETTINGS_KEY: settings, REGISTRY_KEY: tasks},
    }


# arq reads a settings class's attributes; this one's come from JOBS_* variables and .env.
_settings = load_settings()
WorkerSettings = type("WorkerSettings", (), worker_options(_settings, load_registry(_settings)))
