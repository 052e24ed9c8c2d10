"""arq_jobs.testing: the app and its jobs in one test, on an in-memory Redis, with the real worker."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from app.main import create_app as create_reference_app
from arq_jobs import JobContext, RetryPolicy, TaskInput, TransientError, task
from arq_jobs._api.install import installation, mount
from arq_jobs._connection import create_arq
from arq_jobs._errors import JobNotFoundError
from arq_jobs._jobs.states import JobState
from arq_jobs._keys import Keys
from arq_jobs._tasks.registry import TaskRegistry
from arq_jobs.fastapi import EnqueuedJob, JobsDep, WorkflowAccepted
from arq_jobs.testing import HarnessError, JobsHarness
from arq_jobs.worker import worker_settings

from .conftest import make_settings

LIFESPAN: list[str] = []
HOOKS: list[str] = []
log = logging.getLogger("tests.shop")


class Number(TaskInput):
    n: int


class Order(BaseModel):
    order_id: int


@task(max_attempts=1)
async def send_receipt(ctx: JobContext, data: Number) -> str:
    """What a user's route enqueues."""
    log.warning("sending the receipt of order %s", data.n)
    return f"receipt for order {data.n}"


@task(retry=RetryPolicy(max_attempts=3))
async def flaky(ctx: JobContext, data: Number) -> int:
    """Fail the first two attempts, asking for a retry in a minute."""
    if ctx.attempt < 3:
        raise TransientError(f"blip {ctx.attempt}", retry_after_s=60)
    return data.n * 10


@task(retry=RetryPolicy(max_attempts=2, base_s=0))
async def broken(ctx: JobContext, data: Number) -> None:
    """Always fail, retried at once."""
    raise TransientError(f"still down for {data.n}")


@task(retry=RetryPolicy(max_attempts=100, base_s=0))
async def hopeless(ctx: JobContext, data: Number) -> None:
    """Always fail, with many attempts."""
    raise TransientError("again")


@task(timeout_s=0.05, max_attempts=1)
async def stalls(ctx: JobContext, data: Number) -> None:
    """Sleep far past the time limit."""
    await asyncio.sleep(5)


@task(max_attempts=1)
async def add_one(ctx: JobContext, data: Number) -> Number:
    return Number(n=data.n + 1)


@task(max_attempts=1)
async def double(ctx: JobContext, data: Number) -> Number:
    return Number(n=data.n * 2)


@task(max_attempts=1, rate_limit="20/s")
async def paced(ctx: JobContext, data: Number) -> int:
    return data.n


@task(max_attempts=1)
async def count_stock(ctx: JobContext, data: Number) -> int:
    """Read a resource the worker's start-up hook stored."""
    stock: dict[int, int] = ctx.shared["stock"]
    return stock[data.n]


REGISTRY = TaskRegistry([send_receipt, flaky, broken, hopeless, stalls, add_one, double, paced, count_stock])


@asynccontextmanager
async def user_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    LIFESPAN.append("started")
    yield {"greeting": "hello from the lifespan"}
    LIFESPAN.append("stopped")


def shop_app() -> FastAPI:
    """A user's app: its own lifespan and routes, with the job API installed."""
    app = FastAPI(lifespan=user_lifespan)

    @app.post("/orders", status_code=202)
    async def create_order(order: Order, jobs: JobsDep) -> EnqueuedJob:
        return await jobs.enqueue(send_receipt, Number(n=order.order_id))

    @app.post("/pipelines", status_code=202)
    async def create_pipeline(start: Number, jobs: JobsDep) -> WorkflowAccepted:
        return await jobs.chain(add_one.step(start), double.step())

    @app.get("/greeting")
    async def greeting(request: Request) -> dict[str, str]:
        return {"greeting": request.state.greeting}

    mount(app, make_settings(), REGISTRY)
    return app


@pytest.fixture
async def harness() -> AsyncIterator[JobsHarness]:
    async with JobsHarness(shop_app()) as harness:
        yield harness


@pytest.fixture
async def reference() -> AsyncIterator[JobsHarness]:
    async with JobsHarness(create_reference_app(make_settings())) as harness:
        yield harness


async def test_a_job_enqueued_over_http_runs_with_drain(reference: JobsHarness) -> None:
    response = await reference.client.post("/jobs/noop", json={"value": {"hello": [1, 2]}})
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert await reference.drain() == [job_id]
    body = (await reference.client.get(f"/jobs/{job_id}")).json()
    assert (body["status"], body["attempt"], body["result"]) == ("succeeded", 1, {"value": {"hello": [1, 2]}})
    assert await reference.drain() == []


async def test_a_report_runs_with_its_progress_and_is_stored(reference: JobsHarness) -> None:
    accepted = (await reference.client.post("/reports", json={"rows": 50, "seed": 3})).json()
    assert await reference.drain() == [accepted["job_id"]]
    status = await reference.jobs.status(accepted["job_id"])
    assert status.status == JobState.SUCCEEDED
    assert status.progress is not None
    assert (status.progress.step, status.progress.total, status.progress.percent) == (4, 4, 100.0)
    assert status.progress.message == "report stored"
    report = await reference.client.get(accepted["report_url"])
    assert report.status_code == 200
    assert (report.json()["report_id"], report.json()["rows"]) == (accepted["job_id"], 50)


async def test_a_users_route_enqueues_and_the_job_succeeds(harness: JobsHarness) -> None:
    response = await harness.client.post("/orders", json={"order_id": 7})
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert (await harness.jobs.status(job_id)).status == JobState.PENDING
    assert await harness.drain() == [job_id]
    status = await harness.jobs.status(job_id)
    assert (status.status, status.attempt, status.result) == (JobState.SUCCEEDED, 1, "receipt for order 7")


async def test_what_tasks_log_reaches_pytests_log_capture(caplog: pytest.LogCaptureFixture) -> None:
    async with JobsHarness(shop_app()) as harness:  # the workers' start-up leaves logging alone
        await harness.client.post("/orders", json={"order_id": 9})
        await harness.drain()
    assert [r.getMessage() for r in caplog.records if r.name == "tests.shop"] == [
        "sending the receipt of order 9"
    ]


async def test_retries_waiting_out_a_backoff_run_with_drain_scheduled(harness: JobsHarness) -> None:
    job = await harness.jobs.enqueue(flaky, Number(n=4))
    assert await harness.drain() == [job.job_id]
    waiting = await harness.jobs.status(job.job_id)
    assert (waiting.status, waiting.attempt) == (JobState.RETRYING, 1)
    assert waiting.error is not None and waiting.error.message == "blip 1"
    assert await harness.drain(scheduled=True) == [job.job_id, job.job_id]
    status = await harness.jobs.status(job.job_id)
    assert (status.status, status.attempt, status.result, status.error) == (JobState.SUCCEEDED, 3, 40, None)


async def test_a_job_failing_every_attempt_is_dead_lettered(harness: JobsHarness) -> None:
    job = await harness.jobs.enqueue(broken, Number(n=5))
    assert await harness.drain() == [job.job_id, job.job_id]  # retried at once: no backoff
    status = await harness.jobs.status(job.job_id)
    assert (status.status, status.attempt, status.dead_lettered) == (JobState.FAILED, 2, True)
    letter = await harness.jobs.dead_letters.get(job.job_id)
    assert (letter.task, letter.reason, letter.attempts) == ("broken", "attempts_exhausted", 2)
    assert (letter.error.type, letter.error.message) == ("TransientError", "still down for 5")


async def test_the_time_limit_stops_a_job(harness: JobsHarness) -> None:
    job = await harness.jobs.enqueue(stalls, Number(n=1))
    assert await harness.drain() == [job.job_id]
    status = await harness.jobs.status(job.job_id)
    assert (status.status, status.attempt, status.dead_lettered) == (JobState.FAILED, 1, True)
    assert status.error is not None
    assert (status.error.type, status.error.message) == (
        "TimeLimitExceeded",
        "the attempt ran longer than the hard time limit of 0.05 s and was stopped",
    )


async def test_a_workflow_chain_runs_step_after_step(harness: JobsHarness) -> None:
    accepted = (await harness.client.post("/pipelines", json={"n": 2})).json()
    ran = await harness.drain()
    assert len(ran) == 2
    body = (await harness.client.get(f"/workflows/{accepted['workflow_id']}")).json()
    assert (body["status"], body["result"]) == ("succeeded", {"n": 6})
    assert [(s["task"], s["status"], s["job_id"]) for s in body["steps"]] == [
        ("add_one", "succeeded", ran[0]),
        ("double", "succeeded", ran[1]),
    ]


async def test_run_runs_only_that_job(harness: JobsHarness) -> None:
    first = (await harness.client.post("/orders", json={"order_id": 1})).json()["job_id"]
    second = (await harness.client.post("/orders", json={"order_id": 2})).json()["job_id"]
    status = await harness.run(second)
    assert (status.status, status.result) == (JobState.SUCCEEDED, "receipt for order 2")
    assert (await harness.jobs.status(first)).status == JobState.PENDING
    assert await harness.drain() == [first]


async def test_run_runs_a_job_scheduled_for_later(harness: JobsHarness) -> None:
    job = await harness.jobs.enqueue(add_one, Number(n=1), delay=3600)
    status = await harness.run(job.job_id)
    assert (status.status, status.result) == (JobState.SUCCEEDED, {"n": 2})


async def test_run_refuses_unknown_and_finished_jobs(harness: JobsHarness) -> None:
    with pytest.raises(JobNotFoundError):
        await harness.run("nope")
    job = await harness.jobs.enqueue(add_one, Number(n=1))
    await harness.drain()
    with pytest.raises(HarnessError) as refused:
        await harness.run(job.job_id)
    assert str(refused.value) == (
        f"job {job.job_id} is succeeded, not waiting to run: only a pending, scheduled or retrying job can be run"
    )
    held = await harness.jobs.enqueue(add_one, Number(n=1))
    await harness.redis.set(Keys.arq_in_progress(held.job_id), b"1", px=60_000)  # a lease nobody holds
    with pytest.raises(HarnessError) as refused:
        await harness.run(held.job_id)
    assert str(refused.value) == f"job {held.job_id} could not start: its lease is held"


async def test_run_respects_a_rate_limit_and_leaves_other_jobs_due(harness: JobsHarness) -> None:
    first, second, third = [(await harness.jobs.enqueue(paced, Number(n=n))).job_id for n in range(3)]
    queue = Keys("unit").queue("default")
    due = await harness.redis.zscore(queue, first)
    assert (await harness.run(third)).result == 2
    assert await harness.redis.zscore(queue, first) == due  # left where it was
    with pytest.raises(HarnessError) as refused:
        await harness.run(second)
    assert str(refused.value) == f"job {second} could not start: its task's rate limit holds it back"
    assert sorted(await harness.drain(scheduled=True)) == sorted([first, second])


async def test_a_scheduled_job_runs_only_with_drain_scheduled(harness: JobsHarness) -> None:
    later = await harness.jobs.enqueue(add_one, Number(n=10), delay=3600)
    now = await harness.jobs.enqueue(add_one, Number(n=20))
    assert await harness.drain() == [now.job_id]
    assert (await harness.jobs.status(later.job_id)).status == JobState.SCHEDULED
    assert await harness.drain(scheduled=True) == [later.job_id]
    status = await harness.jobs.status(later.job_id)
    assert (status.status, status.result) == (JobState.SUCCEEDED, {"n": 11})


async def test_drain_scheduled_waits_for_a_rate_limit(harness: JobsHarness) -> None:
    jobs = [(await harness.jobs.enqueue(paced, Number(n=n))).job_id for n in range(3)]
    assert await harness.drain() == jobs[:1]  # the others are held back for their turn
    assert sorted(await harness.drain(scheduled=True)) == sorted(jobs[1:])
    assert [(await harness.jobs.status(j)).result for j in jobs] == [0, 1, 2]


async def test_drain_stops_jobs_that_keep_coming(harness: JobsHarness) -> None:
    job = await harness.jobs.enqueue(hopeless, Number(n=1))
    with pytest.raises(HarnessError) as stopped:
        await harness.drain(max_jobs=5)
    assert str(stopped.value) == (
        "drain() ran 5 jobs (max_jobs=5) and more are due: does a task enqueue or retry jobs without end? "
        "Pass a larger max_jobs if this is expected"
    )
    assert (await harness.jobs.status(job.job_id)).attempt == 5


async def test_drain_scheduled_reports_jobs_that_cannot_start(harness: JobsHarness) -> None:
    job = await harness.jobs.enqueue(add_one, Number(n=1), delay=60)
    await harness.redis.set(Keys.arq_in_progress(job.job_id), b"1", px=60_000)  # a lease nobody holds
    assert await harness.drain() == []
    with pytest.raises(HarnessError) as stuck:
        await harness.drain(scheduled=True)
    assert (
        str(stuck.value) == f"jobs wait in their queues but none can start (held by a lease?): {job.job_id}"
    )


async def test_the_users_lifespan_runs_and_its_state_reaches_routes() -> None:
    LIFESPAN.clear()
    async with JobsHarness(shop_app()) as harness:
        assert LIFESPAN == ["started"]
        response = await harness.client.get("/greeting")
        assert response.json() == {"greeting": "hello from the lifespan"}
    assert LIFESPAN == ["started", "stopped"]


async def store_stock(ctx: dict[str, Any]) -> None:
    HOOKS.append("startup")
    ctx["stock"] = {7: 3}


async def drop_stock(ctx: dict[str, Any]) -> None:
    HOOKS.append(f"shutdown with {ctx['stock']}")


async def test_the_worker_hooks_give_tasks_their_resources() -> None:
    HOOKS.clear()
    settings = make_settings()
    WorkerSettings = worker_settings(
        settings=settings, task_packages=["workers.tasks"], on_startup=store_stock, on_shutdown=drop_stock
    )
    async with JobsHarness(shop_app(), worker=WorkerSettings) as harness:
        assert HOOKS == ["startup"] * len(settings.queues)  # one worker per queue, as in production
        job = await harness.jobs.enqueue(count_stock, Number(n=7))
        assert (await harness.run(job.job_id)).result == 3
    assert HOOKS == ["startup"] * 3 + ["shutdown with {7: 3}"] * 3


def test_worker_takes_only_a_worker_settings_class() -> None:
    class Mine:
        pass

    with pytest.raises(TypeError, match=r"worker= takes a class made by arq_jobs.worker.worker_settings\(\)"):
        JobsHarness(shop_app(), worker=Mine)


def test_an_app_without_install_is_refused() -> None:
    with pytest.raises(LookupError, match="arq_jobs is not installed in this app"):
        JobsHarness(FastAPI())


async def test_harnesses_one_after_another_start_empty_and_restore_the_app() -> None:
    app = shop_app()
    async with JobsHarness(app) as first:
        job = await first.jobs.enqueue(add_one, Number(n=1))
        assert installation(app).connect is not create_arq
    assert installation(app).connect is create_arq
    async with JobsHarness(app) as second:
        with pytest.raises(JobNotFoundError):
            await second.jobs.status(job.job_id)
        assert await second.drain() == []


async def test_settings_replace_the_apps_for_requests_and_workers() -> None:
    app = shop_app()
    async with JobsHarness(app, settings=make_settings(key_prefix="other")) as harness:
        job_id = (await harness.client.post("/orders", json={"order_id": 3})).json()["job_id"]
        assert await harness.redis.exists(f"other:job:{job_id}") == 1
        assert await harness.drain() == [job_id]
    assert installation(app).settings.key_prefix == "unit"


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_importing_the_library_does_not_import_fakeredis() -> None:
    done = run_python(
        "import sys, arq_jobs, arq_jobs.fastapi, arq_jobs.worker; print('fakeredis' in sys.modules)"
    )
    assert (done.returncode, done.stdout) == (0, "False\n")


def test_without_fakeredis_the_import_error_says_what_to_install() -> None:
    done = run_python("import sys; sys.modules['fakeredis'] = None; import arq_jobs.testing")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "ImportError: arq_jobs.testing needs fakeredis with Lua support (import of fakeredis halted; "
        "None in sys.modules): pip install 'arq-jobs[testing]'"
    )


async def test_with_authentication_on_the_client_is_admin_and_keys_can_be_made() -> None:
    app = FastAPI()
    mount(app, make_settings(auth="keys", allowed_hosts=("localhost",)), REGISTRY)
    async with JobsHarness(app) as harness:
        assert harness.settings.allowed_hosts == ("localhost", "test")
        admin = await harness.client.post("/jobs/send_receipt", json={"n": 1})
        assert admin.status_code == 202, admin.text
        assert harness.client.headers["authorization"] == f"Bearer {harness.admin_token}"
        key = await harness.create_key("billing", "jobs:read")
        as_billing = {"Authorization": f"Bearer {key}"}
        hidden = await harness.client.get(f"/jobs/{admin.json()['job_id']}", headers=as_billing)
        assert (hidden.status_code, hidden.json()["error"]) == (404, "job_not_found")
        refused = await harness.client.post("/jobs/send_receipt", json={"n": 2}, headers=as_billing)
        assert (refused.status_code, refused.json()["scope"]) == (403, "jobs:enqueue:send_receipt")
        anonymous = await harness.client.get("/jobs", headers={"Authorization": ""})
        assert anonymous.status_code == 401
