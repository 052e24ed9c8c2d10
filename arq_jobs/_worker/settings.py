"""The classes the arq CLI runs, built from our Settings: one worker pool per queue.

`worker_settings()` makes one (`WorkerSettings = worker_settings()` in your `worker.py`, then
`arq myproject.worker.WorkerSettings`); `pool_class("HighWorkerSettings")` makes the pool of a
configured queue by its class name (`high` → `HighWorkerSettings`, `bulk-email` →
`BulkEmailWorkerSettings`), for a module's PEP 562 `__getattr__`.

A pool runs `JOBS_QUEUE_CONCURRENCY`'s number for its queue at once, else `JOBS_WORKER_CONCURRENCY`.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Awaitable, Callable, Sequence
from functools import cache, partial
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker

from arq_jobs import _arq
from arq_jobs._config import Settings, load_settings, pool_class_name
from arq_jobs._connection import open_arq, redis_options
from arq_jobs._keys import Keys
from arq_jobs._serializer import dumps, loads
from arq_jobs._tasks.registry import TaskRegistry, load_registry
from arq_jobs._worker.context import CLIENT_SETTINGS_KEY, REGISTRY_KEY, SETTINGS_KEY, shutdown, startup
from arq_jobs._worker.runner import ARQ_TIMEOUT_MARGIN_S, arq_functions


def redis_settings(settings: Settings) -> RedisSettings:
    """ARQ's connection settings, from the options the API and the CLI connect with (so the password
    is %-decoded and the TLS files are the same). The pool is ours (`open_arq`): its transactions
    share round trips (arq_jobs._transactions), and with Sentinels ARQ's own support would drop the
    TLS files, the timeouts and the Sentinels' password. The fields stay filled in for anyone who
    reads them."""
    options = redis_options(settings)
    tls = options.tls or {}
    fields: dict[str, Any] = {
        "host": options.host,
        "port": options.port,
        "database": options.db,
        "username": options.username,
        "password": options.password,
        "ssl": options.tls is not None,
        "ssl_ca_certs": tls.get("ssl_ca_certs"),
        "ssl_certfile": tls.get("ssl_certfile"),
        "ssl_keyfile": tls.get("ssl_keyfile"),
        "ssl_cert_reqs": tls.get("ssl_cert_reqs", "required"),
        "conn_timeout": max(1, round(settings.redis_timeout_s)),
    }
    _arq.open_pools_own_way()
    if options.sentinel_master is not None:
        fields.update(host=list(options.sentinels), sentinel=True, sentinel_master=options.sentinel_master)
    return _arq.OwnPoolSettings(
        **fields, open_pool=partial(open_arq, options, socket_timeout=None, coalesce=True)
    )


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
        "keep_result": settings.longest_keep_s,
        "expires_extra_ms": settings.job_expires_s * 1000,
        "health_check_interval": settings.health_check_interval_s,
        "job_completion_wait": settings.shutdown_grace_s,
        "job_serializer": dumps,
        "job_deserializer": loads,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "ctx": {SETTINGS_KEY: settings, CLIENT_SETTINGS_KEY: configured, REGISTRY_KEY: tasks},
    }


Hook = Callable[[dict[str, Any]], Awaitable[None]]


class PoolSettings:
    """The base of every class `worker_settings()` makes (arq reads their attributes)."""


# options worker_settings() derives from Settings and the registry and will not take from a caller
OWN_OPTIONS = {
    "functions": "the task_packages (JOBS_TASK_PACKAGES)",
    "queue_name": "queue=",
    "job_serializer": None,
    "job_deserializer": None,
    "ctx": "on_startup (store your resources on the ctx it is given)",
    "health_check_key": None,
}


def worker_settings(
    *,
    queue: str | None = None,
    task_packages: Sequence[str] | None = None,
    on_startup: Hook | None = None,
    on_shutdown: Hook | None = None,
    settings: Settings | None = None,
    **arq_options: Any,
) -> type:
    """A class the `arq` command runs (`WorkerSettings = worker_settings()` in `myproject/worker.py`,
    then `arq myproject.worker.WorkerSettings`): the pool of `queue` (default `JOBS_QUEUE_NAME`) running
    the tasks of `task_packages` (default `JOBS_TASK_PACKAGES`), with `settings` (default: the `JOBS_*`
    environment).

    `on_startup` runs after ours and `on_shutdown` before ours, each with the worker's context dict:
    what your start-up stores in it, a task reads as `ctx.shared[name]`. Any other keyword is an ARQ
    `Worker` option (e.g. `max_burst_jobs`), applied over ours."""
    settings = (settings or load_settings()).with_task_packages(task_packages)
    return settings_class(
        settings,
        load_registry(settings),
        queue,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        arq_options=arq_options,
    )


def settings_class(
    settings: Settings,
    tasks: TaskRegistry,
    queue: str | None = None,
    *,
    on_startup: Hook | None = None,
    on_shutdown: Hook | None = None,
    arq_options: dict[str, Any] | None = None,
) -> type:
    """A class whose attributes are the Worker options of `queue`'s pool (what arq reads)."""
    queue = settings.queue_name if queue is None else queue
    options = worker_options(settings, tasks, queue)
    if on_startup is not None:
        options["on_startup"] = after_ours(on_startup)
    if on_shutdown is not None:
        options["on_shutdown"] = before_ours(on_shutdown)
    options.update(checked_options(arq_options or {}))
    name = "WorkerSettings" if queue == settings.queue_name else pool_class_name(queue)
    return type(
        name,
        (PoolSettings,),
        {**options, "__module__": "arq_jobs.worker", "__doc__": f"The pool of queue {queue!r}."},
    )


def checked_options(arq_options: dict[str, Any]) -> dict[str, Any]:
    """`arq_options` if each is an ARQ Worker option that worker_settings() does not derive itself."""
    accepted = set(inspect.signature(Worker).parameters)
    for name in arq_options:
        if name in OWN_OPTIONS:
            instead = OWN_OPTIONS[name]
            raise TypeError(f"worker_settings() sets {name} itself" + (f"; use {instead}" if instead else ""))
        if name not in accepted or name in ("on_startup", "on_shutdown"):
            raise TypeError(f"worker_settings() got {name!r}, which is not an ARQ Worker option")
    return arq_options


def after_ours(theirs: Hook) -> Hook:
    """Our start-up, then the caller's (which may use what ours built)."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        await startup(ctx)
        await theirs(ctx)

    return on_startup


def before_ours(theirs: Hook) -> Hook:
    """The caller's shutdown, then ours (also when theirs fails)."""

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        try:
            await theirs(ctx)
        finally:
            await shutdown(ctx)

    return on_shutdown


def pool_names(settings: Settings) -> dict[str, str]:
    """`<Queue>WorkerSettings` → queue, for every configured queue."""
    return {pool_class_name(queue): queue for queue in settings.queues}


def describe_pools(settings: Settings) -> list[str]:
    """`WorkerSettings (default)`, `HighWorkerSettings (high)`, ...: each class and the queue it serves."""
    return [
        f"{'WorkerSettings' if queue == settings.queue_name else pool} ({queue})"
        for pool, queue in pool_names(settings).items()
    ]


@cache
def deployment() -> tuple[Settings, TaskRegistry]:
    """This process's settings and task registry, read once (from `JOBS_*` variables and `.env`)."""
    settings = load_settings()
    return settings, load_registry(settings)


_pools: dict[str, type] = {}  # queue → its class, made once per process


def pool_class(name: str) -> type:
    """The settings class named `name`: `WorkerSettings` serves `JOBS_QUEUE_NAME`, `HighWorkerSettings`
    the queue `high`, ... (AttributeError naming the pools for a name that serves no configured queue)."""
    settings, registry = deployment()
    queue = settings.queue_name if name == "WorkerSettings" else pool_names(settings).get(name)
    if queue is None:
        raise AttributeError(
            f"{name} serves no queue of JOBS_QUEUES ({', '.join(settings.queues)}); "
            f"the pools are {', '.join(describe_pools(settings))}"
        )
    if queue not in _pools:
        _pools[queue] = settings_class(settings, registry, queue)
    return _pools[queue]
