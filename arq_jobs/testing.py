"""Test your jobs without Redis or a worker process: `JobsHarness` runs your app's lifespan on an
in-memory Redis (fakeredis), serves the app to an httpx client, and runs the jobs it enqueues through
the real worker code, in the test's event loop: retries, time limits, dead letters, progress and
workflows behave as in production.

```python
import pytest
from arq_jobs.testing import JobsHarness

from myproject.main import create_app
from myproject.worker import WorkerSettings


@pytest.fixture
async def harness():
    async with JobsHarness(create_app(), worker=WorkerSettings) as harness:
        yield harness


async def test_an_order_sends_its_receipt(harness: JobsHarness) -> None:
    response = await harness.client.post("/orders", json={"order_id": 7})
    job_id = response.json()["job_id"]
    assert await harness.drain() == [job_id]
    assert (await harness.jobs.status(job_id)).status == "succeeded"
```

- `drain()` runs every job due now, and the jobs that makes due (a workflow's next steps, retries
  without a backoff), until none is due; `drain(scheduled=True)` also runs delayed jobs and retries
  waiting out a backoff, by making them due now. `run(job_id)` runs one job now.
- `worker=`: a class made by `arq_jobs.worker.worker_settings()`; its `on_startup` and `on_shutdown`
  run around each queue's in-process worker, so tasks find what your start-up stored (`ctx.shared`).
- Schedules (`Cron`) do not fire by themselves: enqueue the task in the test.

Needs fakeredis with Lua: `pip install 'arq-jobs[testing]'`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import secrets
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import AsyncExitStack, contextmanager
from types import TracebackType
from typing import Any

try:
    import fakeredis
    from fakeredis.aioredis import FakeAsyncRedisConnection

    if importlib.util.find_spec("lupa") is None:  # fakeredis runs Lua scripts with lupa
        raise ImportError("No module named 'lupa'", name="lupa")
except ImportError as error:
    raise ImportError(
        f"arq_jobs.testing needs fakeredis with Lua support ({error}): pip install 'arq-jobs[testing]'"
    ) from error

import httpx
import structlog
from arq.connections import ArqRedis
from arq.worker import Worker
from fastapi import FastAPI
from pydantic import SecretStr
from redis.asyncio import ConnectionPool

from arq_jobs import _arq
from arq_jobs._api.install import Installation, installation
from arq_jobs._auth.keys import KeyStore
from arq_jobs._client import JobClient
from arq_jobs._clock import now_ms
from arq_jobs._config import Settings
from arq_jobs._jobs.status import JobStatus
from arq_jobs._serializer import dumps, loads
from arq_jobs._tasks.registry import TaskRegistry
from arq_jobs._worker.settings import PoolSettings, worker_options

__all__ = ["HarnessError", "JobsHarness"]

MAX_JOBS = 1000  # drain()'s default bound on the jobs it runs
LIMIT_WAIT_S = 5.0  # longest real wait drain(scheduled=True) makes for a job a task's limit holds back
IDLE_ROUNDS = 5  # rounds drain(scheduled=True) tries while jobs wait but none can start
PARKED_MS = 10**15  # where run() puts the other due jobs of its queue while it claims its job

ASGIApp = Any  # what httpx.ASGITransport takes: async (scope, receive, send) -> None


class HarnessError(RuntimeError):
    """`drain()` or `run()` cannot do what was asked: jobs keep coming, a job is not waiting to run,
    or waiting jobs cannot start."""


class JobsHarness:
    """Your app on an in-memory Redis, with a worker per queue that runs its jobs when told to.

    `app` is a FastAPI app on which `arq_jobs.fastapi.install()` was called. `worker`: a class made by
    `arq_jobs.worker.worker_settings()`, whose start-up and shutdown hooks run around each queue's
    worker (the tasks and settings are the app's). `settings` replace the app's for its requests and
    for the workers. Entering runs the app's whole lifespan (yours included); leaving ends it.

    `client` is an `httpx.AsyncClient` on the app (base URL `http://test`, a host the harness allows),
    `jobs` a `JobClient` and `redis` the `ArqRedis` on the in-memory Redis. With authentication on
    (`JOBS_AUTH=keys`, the default) `client` sends an admin key (JOBS_ADMIN_TOKEN, or one made for the
    test: `admin_token`); send your own `Authorization` header to test as another key, made with
    `await harness.create_key(name, *scopes)`. One harness runs at a time per app; each starts with an
    empty Redis.
    """

    client: httpx.AsyncClient
    jobs: JobClient
    redis: ArqRedis

    def __init__(self, app: FastAPI, *, worker: type | None = None, settings: Settings | None = None) -> None:
        if worker is not None and not issubclass(worker, PoolSettings):
            raise TypeError(f"worker= takes a class made by arq_jobs.worker.worker_settings(): {worker!r}")
        self.app = app
        self._installation = installation(app)  # LookupError when install() was not called
        self.settings = for_tests(settings or self._installation.settings)
        self._hooks = worker
        self._workers: dict[str, Worker] = {}  # queue → its worker
        self._stack: AsyncExitStack | None = None

    @property
    def registry(self) -> TaskRegistry:
        return self._installation.registry

    @property
    def admin_token(self) -> str:
        """The admin key `client` sends when authentication is on."""
        assert self.settings.admin_token is not None
        return self.settings.admin_token.get_secret_value()

    async def create_key(self, name: str, *scopes: str) -> str:
        """A new API key `name` with `scopes` (as `arq-jobs keys create` makes one); its secret."""
        _, secret = await KeyStore(self.redis, self.jobs.keys).create(name, scopes)
        return secret

    async def __aenter__(self) -> JobsHarness:
        if self._stack is not None:
            raise RuntimeError("this JobsHarness is already running")
        server = fakeredis.FakeServer()
        async with AsyncExitStack() as stack:
            stack.enter_context(_in_memory(self._installation, server, self.settings))
            self.redis = _fake_redis(server)
            stack.push_async_callback(_close_redis, self.redis)
            state = await stack.enter_async_context(self.app.router.lifespan_context(self.app))
            self.jobs = JobClient(self.redis, self.settings, self.registry)
            for queue in self.settings.queues:
                worker = self._worker(queue)
                stack.push_async_callback(_stop_worker, worker)  # also when a start-up hook fails
                await _start_worker(worker)
                self._workers[queue] = worker
            transport = httpx.ASGITransport(app=_with_state(self.app, state or {}))
            headers = {"Authorization": f"Bearer {self.admin_token}"} if self.settings.auth == "keys" else {}
            self.client = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}", headers=headers)
            )
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        self._workers = {}
        if stack is not None:
            await stack.aclose()

    def _worker(self, queue: str) -> Worker:
        """The worker of `queue`'s pool; it fires no schedules and serves no metrics."""
        settings = self.settings.model_copy(update={"schedules_enabled": False, "worker_metrics_port": 0})
        hooks = {}
        if self._hooks is not None:
            hooks = {name: getattr(self._hooks, name) for name in ("on_startup", "on_shutdown")}
        return _worker(self.redis, settings, self.registry, queue, **hooks)

    async def drain(self, *, scheduled: bool = False, max_jobs: int = MAX_JOBS) -> list[str]:
        """Run every job due now, then those that became due meanwhile, until none is due; with
        `scheduled`, also every job waiting for a later time (made due now), until no job waits.
        Answers the ids of the jobs that ran, in the order they started (a job once per attempt).

        Jobs of a queue run concurrently, up to its concurrency. HarnessError after `max_jobs` runs
        while more are due, or when waiting jobs cannot start (held back by a task's limit for more
        than a few seconds)."""
        ran: list[str] = []
        idle = 0
        while True:
            started = await self._round()
            if started:
                ran += started
                idle = 0
                if len(ran) >= max_jobs and await self._waiting(due=not scheduled):
                    raise HarnessError(
                        f"drain() ran {len(ran)} jobs (max_jobs={max_jobs}) and more are due: does a task "
                        "enqueue or retry jobs without end? Pass a larger max_jobs if this is expected"
                    )
                continue
            waiting = await self._waiting(due=False) if scheduled else []
            if not waiting:
                return ran
            idle += 1
            if idle == 1:
                await self._make_due(waiting)
            elif idle <= IDLE_ROUNDS:
                await self._wait_for_limits(waiting)
            else:
                ids = ", ".join(job_id for _, job_id, _ in waiting)
                raise HarnessError(f"jobs wait in their queues but none can start (held by a lease?): {ids}")

    async def run(self, job_id: str) -> JobStatus:
        """Run the job `job_id` now, even if it is scheduled for later or waiting out a backoff (the
        other jobs stay where they are), and answer its status once it has ended. JobNotFoundError for
        an unknown id; HarnessError when it is not waiting to run, or its task's rate or concurrency
        limit holds it back."""
        current = await self.jobs.status(job_id)
        worker = self._workers.get(current.queue or self.settings.queue_name)
        queue = None if worker is None else _arq.queue_of(worker)
        score = None if queue is None else await self.redis.zscore(queue, job_id)
        if worker is None or queue is None or score is None:
            raise HarnessError(
                f"job {job_id} is {current.status.value}, not waiting to run: "
                "only a pending, scheduled or retrying job can be run"
            )
        now = now_ms()
        due = await self.redis.zrangebyscore(queue, "-inf", now, withscores=True)
        others = {member.decode(): at for member, at in due if member.decode() != job_id}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(queue, {job_id: min(score, now)}, xx=True)
            if others:
                pipe.zadd(queue, dict.fromkeys(others, PARKED_MS), xx=True)
            await pipe.execute()
        try:
            started = await _arq.poll_once(worker)
        finally:
            if others:
                await self.redis.zadd(queue, others, xx=True)
        if not started:
            held = (await self.jobs.status(job_id)).throttled
            why = f"its task's {held.reason} limit holds it back" if held else "its lease is held"
            raise HarnessError(f"job {job_id} could not start: {why}")
        await asyncio.wait([task for _, task in started])
        return await self.jobs.status(job_id)

    async def _round(self) -> list[str]:
        """Claim the due jobs of every queue as a worker's poll does, and wait until they have ended;
        their ids, in the order they started."""
        started = [job for worker in self._workers.values() for job in await _arq.poll_once(worker)]
        if started:
            await asyncio.wait([task for _, task in started])
        return [job_id for job_id, _ in started]

    async def _waiting(self, *, due: bool) -> list[tuple[str, str, float]]:
        """(queue key, job id, run-at ms) of each job in a queue: due now only, or all."""
        until: float | str = now_ms() if due else "+inf"
        found = []
        for worker in self._workers.values():
            queue = _arq.queue_of(worker)
            entries = await self.redis.zrangebyscore(queue, "-inf", until, withscores=True)
            found += [(queue, member.decode(), score) for member, score in entries]
        return found

    async def _make_due(self, waiting: list[tuple[str, str, float]]) -> None:
        """Time travel: every waiting job is due now (its record still shows its planned time)."""
        now = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue, job_id, score in waiting:
                if score > now:
                    pipe.zadd(queue, {job_id: now}, xx=True)
            await pipe.execute()

    async def _wait_for_limits(self, waiting: list[tuple[str, str, float]]) -> None:
        """Made due, the jobs were held back again by their task's rate or concurrency limit: wait, for
        real, until the first may start."""
        wait_s = (min(score for *_, score in waiting) - now_ms()) / 1000
        if wait_s > LIMIT_WAIT_S:
            ids = ", ".join(job_id for _, job_id, _ in waiting)
            raise HarnessError(
                f"jobs are held back by their task's rate or concurrency limit for {wait_s:.1f} s "
                f"(more than drain() waits, {LIMIT_WAIT_S:g} s): {ids}"
            )
        await asyncio.sleep(max(0.0, wait_s))


# ------------------------------------------------------------------ building blocks (also for our tests)


HOST = "test"


def for_tests(settings: Settings) -> Settings:
    """`settings` with the client's host allowed and, when authentication is on, an admin token."""
    update: dict[str, Any] = {"allowed_hosts": (*settings.allowed_hosts, HOST)}
    if settings.auth == "keys" and settings.admin_token is None:
        update["admin_token"] = SecretStr(secrets.token_urlsafe(32))
    return settings.model_copy(update=update)


def _fake_redis(server: fakeredis.FakeServer | None = None) -> ArqRedis:
    """An ArqRedis with our serializer on an in-memory Redis (`server`, else a new one)."""
    pool = ConnectionPool(connection_class=FakeAsyncRedisConnection, server=server or fakeredis.FakeServer())
    return ArqRedis(pool, job_serializer=dumps, job_deserializer=loads)


async def _close_redis(redis: ArqRedis) -> None:
    await redis.aclose()
    await redis.connection_pool.disconnect()


def _worker(
    redis: ArqRedis, settings: Settings, registry: TaskRegistry, queue: str | None = None, **overrides: Any
) -> Worker:
    """A real ARQ Worker of `queue`'s pool (default: `settings.queue_name`) on `redis`, with the options
    WorkerSettings has; keyword arguments override them. Its on_startup has not run."""
    options = worker_options(settings, registry, queue)
    del options["redis_settings"]
    options["poll_delay"] = 0.01
    options.update(overrides)
    return Worker(**options, redis_pool=redis, handle_signals=False)


async def _start_worker(worker: Worker) -> None:
    """Run the worker's start-up (ours, then the user's) but not its poll loop: the harness polls."""
    worker.ctx["redis"] = _arq.redis_of(worker)
    with _arq.poll_kept(), _logging_kept():  # adopt() re-points the poll of a Worker.main not run here
        if worker.on_startup is not None:
            await worker.on_startup(worker.ctx)


async def _stop_worker(worker: Worker) -> None:
    """Cancel the jobs still running (a test that failed mid-run) and run the worker's shutdown."""
    await _arq.stop_running(worker)
    if worker.on_shutdown is not None:
        with _logging_kept():
            await worker.on_shutdown(worker.ctx)


@contextmanager
def _logging_kept() -> Iterator[None]:
    """Leave the process's logging as it was (the worker's start-up configures its own, which would
    take the root logger from the test runner, pytest's log capture included)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configured, config = structlog.is_configured(), structlog.get_config()
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
        if configured:
            structlog.configure(**config)
        else:
            structlog.reset_defaults()


@contextmanager
def _in_memory(found: Installation, server: fakeredis.FakeServer, settings: Settings) -> Iterator[None]:
    """The app's lifespan connects to `server` with `settings` until the block ends."""
    saved = found.connect, found.settings
    found.connect = lambda _settings: _fake_redis(server)
    found.settings = settings
    try:
        yield
    finally:
        found.connect, found.settings = saved


def _with_state(app: ASGIApp, state: Mapping[str, Any]) -> ASGIApp:
    """`app` given a copy of the lifespan's `state` with each request, as an ASGI server does (httpx's
    ASGITransport runs no lifespan)."""

    async def serve(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "state": dict(state)}
        await app(scope, receive, send)

    return serve
