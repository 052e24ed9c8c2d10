from __future__ import annotations

import inspect
import socket
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.utils import import_string
from arq.worker import Worker

from arq_jobs import _arq
from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._jobs.states import JobState
from arq_jobs._serializer import dumps, loads
from arq_jobs._worker import settings as worker_settings
from arq_jobs._worker.context import CLIENT_SETTINGS_KEY, RUNTIME_KEY, SETTINGS_KEY, shutdown, startup
from arq_jobs._worker.settings import pool_settings, worker_options
from tests.shipped import registry
from workers.tasks.noop import NoopInput, noop

from .conftest import RunWorker, make_settings


def test_worker_options_come_from_settings() -> None:
    settings = make_settings(
        redis_url="redis://:p%40ss%3Aw%2Frd@redis.internal:6380/3",
        worker_concurrency=32,
        poll_delay_s=0.01,
        job_timeout_s=60,
        result_ttl_s=600,
        queues=("high", "reports"),
        queue_name="reports",
        shutdown_grace_s=7,
    )
    options = worker_options(settings, registry)
    redis = options["redis_settings"]
    assert (redis.host, redis.port, redis.database) == ("redis.internal", 6380, 3)
    assert redis.password == "p@ss:w/rd"  # decoded, as redis-py decodes it for the API
    assert options["queue_name"] == "unit:queue:reports"
    assert options["health_check_key"] == f"unit:queue:reports:health-check:{socket.gethostname()}"
    assert (options["max_jobs"], options["poll_delay"], options["job_timeout"]) == (32, 0.01, 360)
    assert (options["keep_result"], options["job_completion_wait"]) == (600, 7)
    assert (options["job_serializer"], options["job_deserializer"]) == (dumps, loads)
    assert (options["on_startup"], options["on_shutdown"]) == (startup, shutdown)
    assert sorted(f.name for f in options["functions"]) == ["generate_report", "noop", "send_webhook"]
    timeouts = {f.name: (f.timeout_s, f.max_tries) for f in options["functions"]}
    # ARQ's limits only back ours up: 300 s later, one try more (run_attempt dead-letters that one)
    assert timeouts == {"generate_report": (420, 4), "noop": (310, 4), "send_webhook": (330, 6)}


def test_each_queue_gets_a_pool_with_its_own_queue_key_health_check_and_concurrency() -> None:
    settings = make_settings(worker_concurrency=40, queue_concurrency={"high": 7})
    for queue, jobs in (("high", 7), ("default", 40), ("low", 40)):
        options = worker_options(settings, registry, queue)
        assert options["queue_name"] == f"unit:queue:{queue}"
        assert options["health_check_key"] == f"unit:queue:{queue}:health-check:{socket.gethostname()}"
        assert options["max_jobs"] == jobs
        pool = options["ctx"][SETTINGS_KEY]  # what the heartbeat, metrics and logs read
        assert (pool.queue_name, pool.worker_concurrency, pool.queues) == (queue, jobs, settings.queues)
    assert worker_options(settings, registry)["queue_name"] == "unit:queue:default"
    with pytest.raises(ValueError) as refused:
        worker_options(settings, registry, "urgent")
    assert str(refused.value) == "queue 'urgent' is not one of JOBS_QUEUES (high, default, low)"


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """arq_jobs._worker.settings as if started with JOBS_QUEUES=high,default,low,bulk-email."""
    settings = make_settings(queues=("high", "default", "low", "bulk-email"), queue_concurrency={"high": 5})
    monkeypatch.setattr(worker_settings, "deployment", lambda: (settings, registry))
    monkeypatch.setattr(worker_settings, "_pools", {})
    return settings


def test_arq_finds_a_pool_class_per_configured_queue(configured: Settings) -> None:
    for path, queue in (
        ("workers.HighWorkerSettings", "high"),
        ("workers.LowWorkerSettings", "low"),
        ("workers.BulkEmailWorkerSettings", "bulk-email"),
    ):
        pool = import_string(path)  # how `arq <path>` loads it
        assert pool.__name__ == path.rsplit(".", 1)[1]
        assert pool.queue_name == f"unit:queue:{queue}"
        assert pool.max_jobs == (5 if queue == "high" else 100)
    assert import_string("workers.HighWorkerSettings") is worker_settings.pool_class("HighWorkerSettings")
    assert import_string("workers.DefaultWorkerSettings") is import_string("workers.WorkerSettings")


def test_a_pool_name_without_a_configured_queue_is_an_attribute_error_naming_the_pools(
    configured: Settings,
) -> None:
    with pytest.raises(AttributeError) as missing:
        worker_settings.pool_class("UrgentWorkerSettings")
    assert str(missing.value) == (
        "UrgentWorkerSettings serves no queue of JOBS_QUEUES (high, default, low, bulk-email); the pools are "
        "HighWorkerSettings (high), WorkerSettings (default), LowWorkerSettings (low), "
        "BulkEmailWorkerSettings (bulk-email)"
    )
    with pytest.raises(ImportError):
        import_string("workers.UrgentWorkerSettings")
    with pytest.raises(ImportError):
        import_string("workers.something_else")


async def test_a_pool_runs_only_the_jobs_of_its_queue(
    job_client: JobClient, run_worker: RunWorker, settings: Settings
) -> None:
    plain = await job_client.enqueue(noop, NoopInput(value=1))
    urgent = await job_client.enqueue(noop, NoopInput(value=2), queue="high")
    await run_worker(settings=pool_settings(settings, "high"))
    assert (await job_client.status(urgent.job_id)).status is JobState.SUCCEEDED
    assert (await job_client.status(plain.job_id)).status is JobState.PENDING
    await run_worker()
    done = await job_client.statuses([plain.job_id, urgent.job_id])
    assert [(s.status, s.queue) for s in done if s] == [
        (JobState.SUCCEEDED, "default"),
        (JobState.SUCCEEDED, "high"),
    ]


def test_a_pool_enqueues_with_the_deployments_settings_not_its_own_queue() -> None:
    """Jobs a worker enqueues (schedule ticks, workflow steps) go to their task's queue: a `high` pool's
    settings name `high` as queue_name, which must not become the default of what it enqueues."""
    configured = make_settings()
    ctx = worker_options(configured, registry, "high")["ctx"]
    assert ctx[SETTINGS_KEY].queue_name == "high"
    assert ctx[CLIENT_SETTINGS_KEY] is configured and configured.queue_name == "default"


async def test_the_worker_client_of_a_high_pool_sends_a_task_without_a_queue_to_default(
    settings: Settings, job_client: JobClient
) -> None:
    ctx = {**worker_options(settings, registry, "high")["ctx"], "redis": job_client.redis}
    await startup(ctx)
    try:
        client = ctx[RUNTIME_KEY].client
        assert client is not None
        job = await client.enqueue(noop, NoopInput(value=3))
    finally:
        await shutdown(ctx)
    assert (await job_client.status(job.job_id)).queue == "default"


def test_worker_settings_makes_a_class_arq_runs_for_a_queue_with_the_given_tasks() -> None:
    settings = make_settings()
    high: Any = worker_settings.worker_settings(
        queue="high", task_packages=["workers.tasks"], settings=settings
    )
    assert (high.__name__, high.queue_name, high.max_jobs) == ("HighWorkerSettings", "unit:queue:high", 100)
    assert sorted(f.name for f in high.functions) == ["generate_report", "noop", "send_webhook"]
    default: Any = worker_settings.worker_settings(settings=settings, max_burst_jobs=5, poll_delay=0.2)
    assert (default.__name__, default.queue_name) == ("WorkerSettings", "unit:queue:default")
    assert (default.max_burst_jobs, default.poll_delay) == (5, 0.2)  # ARQ options over ours


def test_worker_settings_refuses_what_it_sets_itself_and_what_arq_does_not_take() -> None:
    settings = make_settings()
    with pytest.raises(TypeError) as owned:
        worker_settings.worker_settings(settings=settings, functions=[])
    assert (
        str(owned.value)
        == "worker_settings() sets functions itself; use the task_packages (JOBS_TASK_PACKAGES)"
    )
    with pytest.raises(TypeError) as unknown:
        worker_settings.worker_settings(settings=settings, max_jbos=3)
    assert str(unknown.value) == "worker_settings() got 'max_jbos', which is not an ARQ Worker option"


async def test_the_users_hooks_run_after_ours_on_start_up_and_before_ours_on_shutdown(
    arq_redis: ArqRedis, job_client: JobClient
) -> None:
    seen: list[str] = []

    async def on_startup(ctx: dict[str, Any]) -> None:
        seen.append(f"user start-up, ours ran: {RUNTIME_KEY in ctx}")
        ctx["resources"] = "the user's"  # names of ours would collide: ours are namespaced
        ctx["runtime"] = "the user's"

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        seen.append(f"user shutdown, ours still there: {RUNTIME_KEY in ctx}")

    cls = worker_settings.worker_settings(
        settings=job_client.settings, on_startup=on_startup, on_shutdown=on_shutdown
    )
    job = await job_client.enqueue(noop, NoopInput(value="hooks"))
    options = {k: v for k, v in vars(cls).items() if k in inspect.signature(Worker).parameters}
    del options["redis_settings"]
    options["poll_delay"] = 0.01
    worker = Worker(**options, redis_pool=arq_redis, handle_signals=False, burst=True)
    with _arq.without_redis_info():
        try:
            await worker.main()
        finally:
            await worker.on_shutdown(worker.ctx)  # type: ignore[misc]
    assert seen == ["user start-up, ours ran: True", "user shutdown, ours still there: True"]
    status = await job_client.status(job.job_id)
    assert (status.status, status.result) == (JobState.SUCCEEDED, {"value": "hooks"})
