"""Back-pressure (JOBS_QUEUE_MAX_PENDING, checked inside the enqueue script: arq_jobs._jobs.enqueue) on
fakeredis: a full queue refuses API and JobClient enqueues with QueueFullError / 429 and stores
nothing — no job, no Idempotency-Key claim, the dead letter kept — while the jobs workers enqueue
themselves (workflow steps, schedule ticks) always go in."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from arq.connections import ArqRedis

from arq_jobs._client import JobClient
from arq_jobs._clock import now_ms
from arq_jobs._config import Settings
from arq_jobs._errors import QueueFullError
from arq_jobs._jobs.states import JobState
from arq_jobs._tasks.registry import TaskRegistry
from arq_jobs._workflows.engine import Workflows
from arq_jobs._workflows.spec import Workflow
from workers.tasks.noop import NoopInput, noop

from .conftest import make_settings
from .test_dead_letters import add, letter, on_queue

HIGH = "unit:queue:high"
WAITING = "unit:index:phase:queued:queue:high"


@pytest.fixture
def settings() -> Settings:
    return make_settings(queue_max_pending="high=3")


def full(pending: int = 3) -> dict[str, object]:
    return {
        "error": "queue_full",
        "message": f"queue 'high' already holds {pending} jobs waiting to start (its limit is 3): the job "
        "was not queued; try again in 5 s",
        "queue": "high",
        "pending": pending,
        "limit": 3,
    }


async def fill(job_client: JobClient, n: int = 3) -> list[str]:
    return [(await job_client.enqueue(noop, NoopInput(value=i), queue="high")).job_id for i in range(n)]


async def test_a_full_queue_refuses_the_job_and_stores_nothing(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    await job_client.enqueue(noop, NoopInput(), queue="high", delay=600)  # a scheduled job counts
    await fill(job_client, 2)
    with pytest.raises(QueueFullError) as refused:
        await job_client.enqueue(noop, NoopInput(value=9), queue="high")
    assert (refused.value.queue, refused.value.pending, refused.value.limit) == ("high", 3, 3)
    assert refused.value.headers() == {"Retry-After": "5"}
    assert (await arq_redis.zcard(HIGH), await arq_redis.zcard(WAITING)) == (3, 3)
    assert await arq_redis.zcard("unit:index:all") == 3  # no record of the refused job
    # other queues have no limit
    for n in range(5):
        await job_client.enqueue(noop, NoopInput(value=n))
    assert await arq_redis.zcard("unit:queue:default") == 5


async def test_a_job_leaving_the_waiting_jobs_makes_room(job_client: JobClient) -> None:
    ids = await fill(job_client)
    await job_client.cancel(ids[0])
    accepted = await job_client.enqueue(noop, NoopInput(), queue="high")
    assert accepted.status is JobState.PENDING
    with pytest.raises(QueueFullError):
        await job_client.enqueue(noop, NoopInput(), queue="high")


async def test_concurrent_enqueues_stop_exactly_at_the_limit(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    answers = await asyncio.gather(
        *(job_client.enqueue(noop, NoopInput(value=n), queue="high") for n in range(20)),
        return_exceptions=True,
    )
    refused = [answer for answer in answers if isinstance(answer, QueueFullError)]
    assert (len(answers) - len(refused), len(refused)) == (3, 17)
    assert await arq_redis.zcard(HIGH) == 3


async def test_a_refused_idempotency_key_leaves_no_claim(job_client: JobClient, arq_redis: ArqRedis) -> None:
    ids = await fill(job_client)
    with pytest.raises(QueueFullError):
        await job_client.enqueue(noop, NoopInput(), queue="high", idempotency_key="order-1")
    assert await arq_redis.keys("unit:idempotency:*") == []
    await job_client.cancel(ids[0])
    made = await job_client.enqueue(noop, NoopInput(), queue="high", idempotency_key="order-1")
    again = await job_client.enqueue(noop, NoopInput(), queue="high", idempotency_key="order-1")
    assert (made.replayed, again.replayed, again.job_id) == (False, True, made.job_id)
    assert len(await arq_redis.keys("unit:idempotency:*")) == 1


async def test_a_refused_dead_letter_retry_keeps_the_dead_letter(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    await add(arq_redis, job_client.dead_letters, letter("old", now_ms(), record=on_queue("high")))
    ids = await fill(job_client)
    with pytest.raises(QueueFullError):
        await job_client.retry_dead_letter("old")
    assert (await job_client.dead_letters.get("old")).job_id == "old"
    assert await arq_redis.zrange("unit:dead-letters:queue:high", 0, -1) == [b"old"]
    await job_client.cancel(ids[0])
    retried = await job_client.retry_dead_letter("old")
    assert retried.retry_of == "old"
    assert await arq_redis.exists("unit:dead:old") == 0
    assert await arq_redis.zcard("unit:dead-letters:queue:high") == 0


async def test_a_workflow_is_refused_whole_when_its_first_stages_queue_is_full(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    await fill(job_client, 2)
    group = Workflow.group(*(noop.step(NoopInput(value=n), queue="high") for n in range(4)))
    await Workflows(job_client).create(group)  # room left: its first stage goes in whole, past the limit
    assert await arq_redis.zcard(HIGH) == 6
    with pytest.raises(QueueFullError) as refused:
        await Workflows(job_client).create(Workflow.chain(noop.step(NoopInput(), queue="high")))
    assert refused.value.pending == 6
    assert len(await arq_redis.keys("unit:workflow:*")) == 1  # the refused one stored nothing


async def test_jobs_workers_enqueue_go_in_whatever_the_limit(
    arq_redis: ArqRedis, settings: Settings, registry: TaskRegistry, job_client: JobClient
) -> None:
    await fill(job_client)
    worker_client = JobClient(
        arq_redis, settings, registry, guard=False, replica_ack=False, back_pressure=False
    )
    tick = await worker_client.enqueue(noop, NoopInput(), queue="high", job_id="cron-tick-1", schedule="s")
    assert (tick.job_id, tick.replayed) == ("cron-tick-1", False)
    # a later workflow step, even from the API's client: its workflow was let in when created
    step = await job_client.enqueue(noop, NoopInput(), queue="high", job_id="wf-step", workflow="wf:1:0")
    assert step.replayed is False
    assert await arq_redis.zcard(HIGH) == 5


async def test_without_a_limit_nothing_is_counted(
    arq_redis: ArqRedis, registry: TaskRegistry, job_client: JobClient
) -> None:
    prepared = job_client._prepare(noop, NoopInput(), None, None, queue="high")
    _, limited = job_client._enqueue_write(prepared).call(job_client.settings)
    assert limited[7:9] == [3, WAITING]
    unlimited_client = JobClient(arq_redis, make_settings(), registry)
    _, unlimited = unlimited_client._enqueue_write(prepared).call(unlimited_client.settings)
    assert unlimited[7:9] == [0, ""]  # max_pending 0: the script skips the count


async def test_the_api_answers_429_with_retry_after(client: httpx.AsyncClient, job_client: JobClient) -> None:
    await fill(job_client)
    response = await client.post("/jobs/noop", params={"queue": "high"}, json={})
    assert (response.status_code, response.headers["retry-after"], response.json()) == (429, "5", full())
    flow = await client.post(
        "/workflows", json={"type": "group", "steps": [{"task": "noop", "queue": "high"}]}
    )
    assert (flow.status_code, flow.headers["retry-after"], flow.json()) == (429, "5", full())


async def test_dead_letter_retries_answer_429_and_keep_the_letter(
    client: httpx.AsyncClient, job_client: JobClient, arq_redis: ArqRedis
) -> None:
    await add(arq_redis, job_client.dead_letters, letter("old", now_ms(), record=on_queue("high")))
    await fill(job_client)
    response = await client.post("/dead-letters/old/retry")
    assert (response.status_code, response.headers["retry-after"], response.json()) == (429, "5", full())
    page = await client.post(
        "/dashboard/jobs/old/retry", headers={"Sec-Fetch-Site": "same-origin", "HX-Request": "true"}
    )
    assert (page.status_code, page.headers["retry-after"]) == (429, "5")
    assert "queue &#39;high&#39; already holds 3 jobs waiting to start" in page.text
    assert (await client.get("/dead-letters/old")).status_code == 200
