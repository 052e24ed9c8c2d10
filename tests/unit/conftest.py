"""Unit-test fixtures: fakeredis behind a real ArqRedis, the app over ASGITransport."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from arq.worker import Worker
from fakeredis.aioredis import FakeAsyncRedisConnection
from fastapi import FastAPI
from redis.asyncio import ConnectionPool
from typer.testing import CliRunner

from arq_jobs import _arq
from arq_jobs._api.deps import AppState, get_state
from arq_jobs._cli.main import app as cli_app
from arq_jobs._cli.session import client_session
from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._serializer import dumps, loads
from arq_jobs._tasks.context import JobContext, Resources
from arq_jobs._tasks.registry import TaskRegistry
from arq_jobs.testing import _close_redis, _fake_redis, _worker
from tests.apps import create_app
from tests.shipped import registry as shipped_registry


@pytest.fixture(autouse=True)
def no_jobs_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests see only the settings they build, whatever JOBS_* the shell exported."""
    for name in list(os.environ):
        if name.startswith("JOBS_"):
            monkeypatch.delenv(name)


def make_settings(**overrides: Any) -> Settings:
    # auth off and the ASGI client's host allowed: the tests of authentication turn it on themselves
    values: dict[str, Any] = {
        "key_prefix": "unit",
        "redis_url": "redis://127.0.0.1:1/0",
        "auth": "off",
        "allowed_hosts": ("test",),
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def registry() -> TaskRegistry:
    return shipped_registry


@pytest.fixture
async def arq_redis() -> AsyncIterator[ArqRedis]:
    redis = _fake_redis()
    yield redis
    await _close_redis(redis)


@pytest.fixture
def job_client(arq_redis: ArqRedis, settings: Settings, registry: TaskRegistry) -> JobClient:
    return JobClient(arq_redis, settings, registry)


@pytest.fixture
def app(settings: Settings, registry: TaskRegistry, arq_redis: ArqRedis) -> Iterator[FastAPI]:
    app = create_app(settings, registry)
    app.dependency_overrides[get_state] = lambda: AppState(settings, registry, arq_redis)
    yield app
    app.dependency_overrides.clear()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def job_context(
    redis: ArqRedis,
    settings: Settings,
    http: httpx.AsyncClient,
    job_id: str = "job-1",
    task: str = "task",
) -> JobContext:
    resources = Resources(settings=settings, redis=redis, http=http, worker_id="test:1")
    return JobContext(job_id=job_id, task=task, attempt=1, resources=resources)


MakeWorker = Callable[..., Worker]
RunWorker = Callable[..., Awaitable[Worker]]


@pytest.fixture
def make_worker(arq_redis: ArqRedis, settings: Settings, registry: TaskRegistry) -> Iterator[MakeWorker]:
    """A real arq Worker on fakeredis with the options WorkerSettings uses (other `settings` if
    given; keyword arguments override Worker options)."""

    def make(settings: Settings = settings, **overrides: Any) -> Worker:
        return _worker(arq_redis, settings, registry, **overrides)

    with _arq.without_redis_info():  # fakeredis has no INFO command
        yield make


@pytest.fixture
def run_worker(make_worker: MakeWorker) -> RunWorker:
    """Run a burst worker until the queue is empty (or max_burst_jobs were started)."""

    async def run(**overrides: Any) -> Worker:
        worker = make_worker(burst=True, **overrides)
        try:
            await worker.main()
        finally:
            await worker.on_shutdown(worker.ctx)  # type: ignore[misc]
        return worker

    return run


Invoke = Callable[..., Awaitable[Any]]


@pytest.fixture
def invoke(arq_redis: ArqRedis, settings: Settings, registry: TaskRegistry) -> Invoke:
    """Run `arq-jobs <args>` on the test's fake Redis server; returns the CliRunner result."""
    server = arq_redis.connection_pool.connection_kwargs["server"]

    @asynccontextmanager
    async def opener() -> AsyncIterator[JobClient]:
        pool = ConnectionPool(connection_class=FakeAsyncRedisConnection, server=server)
        redis = ArqRedis(pool, job_serializer=dumps, job_deserializer=loads)
        async with client_session(settings, registry, redis) as client:
            yield client

    async def run(*args: str, input: str | None = None) -> Any:
        runner = CliRunner()
        return await asyncio.to_thread(runner.invoke, cli_app, list(args), input=input, obj=opener)

    return run
