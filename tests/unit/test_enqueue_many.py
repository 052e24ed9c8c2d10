"""Bulk enqueue on fakeredis: `POST /jobs/{task}/batch`, `Jobs.enqueue_many` and `JobClient.enqueue_many`.
Every input is validated first and a bad one refuses the whole batch (422 naming its index and field);
otherwise every job is stored in one script call, or none is (a full queue: 429, the batch counted
whole); an Idempotency-Key covers the batch; the jobs are then listed, evented, run and counted like
jobs enqueued one by one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

from arq_jobs._api.deps import AppState, get_state
from arq_jobs._api.install import mount
from arq_jobs._client import MAX_BATCH_JOBS, JobClient
from arq_jobs._config import Settings
from arq_jobs._errors import IdempotencyConflictError, QueueFullError, TaskInputError
from arq_jobs._jobs.records import ENQUEUED_AT, OWNER, TRACE
from arq_jobs._keys import Keys
from arq_jobs._serializer import loads
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, TaskRegistry, task
from arq_jobs._tracing import configure_tracing, shutdown_tracing
from arq_jobs.fastapi import EnqueuedBatch, JobsDep
from arq_jobs.testing import JobsHarness
from tests.apps import create_app
from tests.shipped import registry as shipped
from workers.tasks.noop import NoopInput, noop
from workers.tasks.webhooks import send_webhook

from .conftest import RunWorker, make_settings
from .test_auth import bearer, keyed_app, make_key
from .test_client import Mail, Secret, mail, secret
from .test_secrets import GIVEN, KEY_A, REGISTRY, SHOWN, everything_stored, no_secret_in, open_vault
from .test_tracing import traceparent
from .test_version_guard import live_worker, without

KEYS = Keys("unit")
QUEUE = KEYS.queue("default")


class TextInput(TaskInput):
    text: str


@task(max_input_bytes=100)
async def short_text(ctx: JobContext, data: TextInput) -> str:
    """Take a text of at most 100 bytes as JSON."""
    return data.text


@asynccontextmanager
async def api_of(app: FastAPI, state: AppState) -> AsyncIterator[httpx.AsyncClient]:
    app.dependency_overrides[get_state] = lambda: state
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def api(arq_redis: ArqRedis, settings: Settings, registry: TaskRegistry = shipped) -> Any:
    """An ASGI client of the reference app on `settings` and `registry`."""
    return api_of(create_app(settings, registry), AppState(settings, registry, arq_redis))


def batch(*values: Any) -> dict[str, Any]:
    return {"items": [{"value": value} for value in values]}


async def our_keys(redis: ArqRedis) -> list[str]:
    """Every key written: ours (`unit:*`) and ARQ's job keys."""
    return sorted([key.decode() async for key in redis.scan_iter(match="*")])


def invalid(*detail: tuple[list[Any], str, str], task: str = "send_webhook") -> dict[str, Any]:
    """The 422 answer naming each `(loc, msg, type)`."""
    where = "; ".join(f"{'.'.join(str(p) for p in loc)}: {msg}" for loc, msg, _ in detail)
    return {
        "error": "validation_error",
        "message": f"invalid request for task {task!r}: {where}",
        "task": task,
        "detail": [{"loc": loc, "msg": msg, "type": kind} for loc, msg, kind in detail],
    }


# --- the route ---------------------------------------------------------------------------------------


async def test_a_batch_answers_202_with_every_job_in_order(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    response = await client.post("/jobs/noop/batch", json=batch("a", "b", "c"))
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"task", "status", "scheduled_for", "jobs", "idempotent_replay"}
    assert (body["task"], body["status"], body["scheduled_for"], body["idempotent_replay"]) == (
        "noop", "pending", None, False
    )  # fmt: skip
    ids = [job["job_id"] for job in body["jobs"]]
    assert len(set(ids)) == 3
    assert [job["status_url"] for job in body["jobs"]] == [f"http://test/jobs/{i}" for i in ids]
    assert "location" not in response.headers
    for job_id, value in zip(ids, "abc", strict=True):
        assert loads(await arq_redis.get(Keys.arq_job(job_id)))["a"] == [{"value": value}]
        status = (await client.get(f"/jobs/{job_id}")).json()
        assert (status["task"], status["queue"], status["status"]) == ("noop", "default", "pending")
    assert await arq_redis.zrange(QUEUE, 0, -1) == sorted(i.encode() for i in ids)


async def test_batch_jobs_are_stored_exactly_like_a_single_enqueues(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    single = (await client.post("/jobs/noop", json={"value": 1})).json()["job_id"]
    first, second = [
        j["job_id"] for j in (await client.post("/jobs/noop/batch", json=batch(1, 2))).json()["jobs"]
    ]

    async def stored(job_id: str) -> dict[str, Any]:
        record = await arq_redis.hgetall(KEYS.record(job_id))
        events = await arq_redis.xrange(KEYS.events(job_id))
        return {
            "record": {k: v for k, v in record.items() if k != ENQUEUED_AT.encode()},
            "events": [
                {k: v for k, v in fields.items() if k != ENQUEUED_AT.encode()} for _, fields in events
            ],
            "job_ttl": round(await arq_redis.pttl(Keys.arq_job(job_id)), -4),
            "record_ttl": round(await arq_redis.pttl(KEYS.record(job_id)), -4),
            "event_ttl": round(await arq_redis.pttl(KEYS.events(job_id)), -4),
        }

    assert await stored(first) == await stored(single) == await stored(second)
    for index in ("all", "queue:default", "task:noop", "phase:queued", "phase:queued:queue:default"):
        members = await arq_redis.zrange(KEYS.index(index), 0, -1)
        assert sorted(members) == sorted(j.encode() for j in (single, first, second)), index
    listed = (await client.get("/jobs", params={"task": "noop", "state": "pending"})).json()["items"]
    assert {item["job_id"] for item in listed} == {single, first, second}
    queues = {q["name"]: q for q in (await client.get("/queues")).json()}
    assert queues["default"]["pending"] == 3


async def test_one_bad_input_refuses_the_whole_batch_naming_each_by_its_index(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    good = {"url": "https://example.com/hook", "payload": {}}
    items = [good, {"url": "not a url", "payload": {}}, good, {"payload": {}}]
    response = await client.post("/jobs/send_webhook/batch", json={"items": items})
    assert response.status_code == 422
    assert response.json() == invalid(
        (
            ["body", "items", 1, "url"],
            "Input should be a valid URL, relative URL without a base",
            "url_parsing",
        ),
        (["body", "items", 3, "url"], "Field required", "missing"),
    )
    assert await our_keys(arq_redis) == []


@pytest.mark.parametrize(
    ("count", "message", "kind"),
    [
        (0, "List should have at least 1 item after validation, not 0", "too_short"),
        (MAX_BATCH_JOBS + 1, "List should have at most 1000 items after validation, not 1001", "too_long"),
    ],
)
async def test_a_batch_has_1_to_1000_inputs(
    client: httpx.AsyncClient, arq_redis: ArqRedis, count: int, message: str, kind: str
) -> None:
    response = await client.post("/jobs/noop/batch", json=batch(*range(count)))
    assert response.status_code == 422
    assert response.json() == invalid((["body", "items"], message, kind), task="noop")
    assert await our_keys(arq_redis) == []
    full = await client.post("/jobs/noop/batch", json=batch(*range(MAX_BATCH_JOBS)))
    assert full.status_code == 202 and len(full.json()["jobs"]) == MAX_BATCH_JOBS
    assert await arq_redis.zcard(QUEUE) == MAX_BATCH_JOBS


async def test_an_input_json_cannot_carry_is_422_with_its_index(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    response = await client.post("/jobs/noop/batch", json=batch(1, 2**70))
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body", "items", 1],
            "msg": "cannot be stored as JSON (Integer exceeds 64-bit range)",
            "type": "json_unstorable",
        }
    ]
    assert await our_keys(arq_redis) == []


async def test_each_input_is_held_to_what_one_job_of_its_task_may_have(arq_redis: ArqRedis) -> None:
    registry = TaskRegistry([*shipped, short_text])
    async with api(arq_redis, make_settings(max_request_bytes=300), registry) as http:
        fits = {"text": "x" * 80}  # 91 bytes as JSON
        response = await http.post("/jobs/short_text/batch", json={"items": [fits, {"text": "x" * 90}, fits]})
        assert response.status_code == 422
        assert response.json() == invalid(
            (["body", "items", 1], "the input is 101 bytes as JSON, more than one job's 100", "too_large"),
            task="short_text",
        )
        assert await our_keys(arq_redis) == []
        # the body itself may be larger than one job's (JOBS_MAX_BATCH_REQUEST_BYTES), and each
        # input of a task without a limit of its own as large as JOBS_MAX_REQUEST_BYTES
        assert (await http.post("/jobs/short_text/batch", json={"items": [fits] * 10})).status_code == 202
        assert (await http.post("/jobs/noop/batch", json=batch("y" * 250, "y" * 250))).status_code == 202
        refused = await http.post("/jobs/noop/batch", json=batch("y" * 250, "y" * 300))
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "items", 1]
        assert await arq_redis.zcard(QUEUE) == 12


async def test_a_body_over_the_batch_limit_is_413_before_it_is_parsed(arq_redis: ArqRedis) -> None:
    settings = make_settings(max_request_bytes=100, max_batch_request_bytes=1000)
    async with api(arq_redis, settings) as http:
        assert (await http.post("/jobs/noop/batch", json=batch(*(["z" * 10] * 20)))).status_code == 202
        response = await http.post("/jobs/noop/batch", json=batch(*(["z" * 10] * 100)))
        assert response.status_code == 413
        assert response.json() == {
            "error": "payload_too_large",
            "message": "the request body is larger than the 1000 bytes a batch may have "
            "(JOBS_MAX_BATCH_REQUEST_BYTES); nothing was done",
            "limit": 1000,
        }
        # sent without a Content-Length: refused while it is read
        chunks = [b'{"items": [', *([b'{"value": "zzzzzzzzzz"},'] * 50), b'{"value": 1}]}']

        async def stream() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        streamed = await http.post(
            "/jobs/noop/batch", content=stream(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert await arq_redis.zcard(QUEUE) == 20


async def test_delay_run_at_and_queue_apply_to_every_job(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    response = await client.post("/jobs/noop/batch", params={"delay": 60, "queue": "high"}, json=batch(1, 2))
    body = response.json()
    assert (response.status_code, body["status"]) == (202, "scheduled")
    for job in body["jobs"]:
        status = (await client.get(job["status_url"])).json()
        assert (status["status"], status["queue"]) == ("scheduled", "high")
        assert status["scheduled_for"] == body["scheduled_for"]
    assert await arq_redis.zcard(KEYS.queue("high")) == 2
    both = await client.post(
        "/jobs/noop/batch", params={"delay": 1, "run_at": "2031-01-01T00:00:00Z"}, json=batch(1)
    )
    assert (both.status_code, both.json()["error"]) == (422, "invalid_schedule")
    unknown = await client.post("/jobs/noop/batch", params={"queue": "urgent"}, json=batch(1))
    assert (unknown.status_code, unknown.json()["error"]) == (422, "unknown_queue")
    assert await arq_redis.zcard(KEYS.queue("high")) == 2


async def test_an_unknown_task_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs/resize_image/batch", json={"items": [{}]})
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_task"


async def test_openapi_has_a_typed_batch_route_per_task(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for task_ in shipped:
        operation = spec["paths"][f"/jobs/{task_.name}/batch"]["post"]
        assert operation["security"] == [{"bearer": [f"jobs:enqueue:{task_.name}"]}]
        assert {"202", "200", "409", "413", "422", "429"} <= set(operation["responses"])
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        items = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]["items"]
        assert items["items"] == {"$ref": f"#/components/schemas/{task_.input_model.__name__}"}
        assert (items["minItems"], items["maxItems"]) == (1, MAX_BATCH_JOBS)
    assert spec["paths"]["/jobs/send_webhook/batch"]["post"]["operationId"] == "enqueue_send_webhook_batch"


# --- all or nothing: back-pressure ------------------------------------------------------------------


async def test_a_full_queue_refuses_the_whole_batch_counted_whole(arq_redis: ArqRedis) -> None:
    async with api(arq_redis, make_settings(queue_max_pending="default=5")) as http:
        assert (await http.post("/jobs/noop/batch", json=batch(1, 2, 3))).status_code == 202
        before = await our_keys(arq_redis)
        refused = await http.post("/jobs/noop/batch", json=batch(4, 5, 6))
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "5"
        assert refused.json() == {
            "error": "queue_full",
            "message": "queue 'default' holds 3 jobs waiting to start and its limit is 5: a batch of 3 does "
            "not fit, its jobs were not queued; try again in 5 s",
            "queue": "default",
            "pending": 3,
            "limit": 5,
            "batch": 3,
        }
        assert await our_keys(arq_redis) == before
        # with an Idempotency-Key: no claim is left either, and the key works once there is room
        keyed = await http.post("/jobs/noop/batch", json=batch(4, 5, 6), headers={"Idempotency-Key": "k"})
        assert keyed.status_code == 429 and await our_keys(arq_redis) == before
        assert (await http.post("/jobs/noop/batch", json=batch(4, 5))).status_code == 202  # exactly fills it
        assert (await http.post("/jobs/noop", json={"value": 6})).status_code == 429
        assert await arq_redis.zcard(QUEUE) == 5


async def test_concurrent_batches_never_overfill_a_queue(arq_redis: ArqRedis) -> None:
    client = JobClient(arq_redis, make_settings(queue_max_pending="default=10"), shipped)
    outcomes = await asyncio.gather(
        *(client.enqueue_many(noop, [NoopInput(value=n)] * 3) for n in range(8)), return_exceptions=True
    )
    stored = [o for o in outcomes if isinstance(o, list)]
    assert len(stored) == 3 and all(isinstance(o, QueueFullError) for o in outcomes if o not in stored)
    assert await arq_redis.zcard(QUEUE) == 9


# --- the Idempotency-Key covers the batch ---------------------------------------------------------


async def test_a_replayed_batch_answers_200_with_the_same_jobs(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    key = {"Idempotency-Key": "import-7"}
    first = await client.post("/jobs/noop/batch", json=batch(1, 2, 3), headers=key)
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers
    again = await client.post("/jobs/noop/batch", json=batch(1, 2, 3), headers=key)
    assert (again.status_code, again.headers["idempotent-replayed"]) == (200, "true")
    assert again.json() == {**first.json(), "status": None, "idempotent_replay": True}
    assert await arq_redis.zcard(QUEUE) == 3
    # another batch, the same inputs in another order, or one job: the key is taken
    for other in (batch(1, 2, 4), batch(3, 2, 1)):
        conflict = await client.post("/jobs/noop/batch", json=other, headers=key)
        assert conflict.status_code == 409
        assert conflict.json()["job_id"] == first.json()["jobs"][0]["job_id"]
    assert (await client.post("/jobs/noop", json={"value": 1}, headers=key)).status_code == 409
    assert (
        await client.post("/jobs/noop/batch", json=batch(1, 2, 3), headers=key, params={"delay": 5})
    ).status_code == 409
    # and a single job's key is not a batch's
    await client.post("/jobs/noop", json={"value": 1}, headers={"Idempotency-Key": "one"})
    only = await client.post("/jobs/noop/batch", json=batch(1), headers={"Idempotency-Key": "one"})
    assert only.status_code == 409
    assert await arq_redis.zcard(QUEUE) == 4


async def test_concurrent_identical_keyed_batches_make_one_set_of_jobs(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    items = [NoopInput(value=n) for n in range(5)]
    answers = await asyncio.gather(
        *(job_client.enqueue_many(noop, items, idempotency_key="same") for _ in range(10))
    )
    ids = {tuple(job.job_id for job in answer) for answer in answers}
    assert len(ids) == 1
    assert sum(not answer[0].replayed for answer in answers) == 1
    assert await arq_redis.zcard(QUEUE) == 5


async def test_the_key_is_the_callers_own_and_secrets_stay_sealed_in_the_fingerprint(
    arq_redis: ArqRedis,
) -> None:
    client = JobClient(arq_redis, make_settings(secrets_key=KEY_A), REGISTRY)
    given = [open_vault.input_model.model_validate(GIVEN)] * 2
    first = await client.enqueue_many(open_vault, given, idempotency_key="v", owner="ann")
    assert [
        job.job_id for job in await client.enqueue_many(open_vault, given, idempotency_key="v", owner="ann")
    ] == [job.job_id for job in first]
    other = await client.enqueue_many(open_vault, given, idempotency_key="v", owner="bob")
    assert {job.job_id for job in other}.isdisjoint(job.job_id for job in first)
    changed = [open_vault.input_model.model_validate({**GIVEN, "password": "another one"})] * 2
    with pytest.raises(IdempotencyConflictError):
        await client.enqueue_many(open_vault, changed, idempotency_key="v", owner="ann")
    assert no_secret_in(await everything_stored(arq_redis))


# --- who may, and what the jobs carry -------------------------------------------------------------


async def test_the_route_needs_the_tasks_enqueue_scope_and_the_jobs_are_the_keys(arq_redis: ArqRedis) -> None:
    app = keyed_app(arq_redis)
    noop_key = await make_key(arq_redis, "ann", "jobs:enqueue:noop", "jobs:read")
    other_key = await make_key(arq_redis, "bob", "jobs:enqueue:generate_report")
    async with api_of(app, app.dependency_overrides[get_state]()) as http:
        assert (await http.post("/jobs/noop/batch", json=batch(1))).status_code == 401
        forbidden = await http.post("/jobs/noop/batch", json=batch(1), headers=bearer(other_key))
        assert (forbidden.status_code, forbidden.json()["scope"]) == (403, "jobs:enqueue:noop")
        response = await http.post("/jobs/noop/batch", json=batch(1, 2), headers=bearer(noop_key))
        assert response.status_code == 202
        for job in response.json()["jobs"]:
            assert await arq_redis.hget(KEYS.record(job["job_id"]), OWNER) == b"ann"
            status = await http.get(job["status_url"], headers=bearer(noop_key))
            assert status.json()["owner"] == "ann"
        listed = (await http.get("/jobs", headers=bearer(noop_key))).json()["items"]
        assert len(listed) == 2


async def test_the_version_guard_refuses_a_batch_no_live_worker_can_run(
    client: httpx.AsyncClient, arq_redis: ArqRedis, settings: Settings
) -> None:
    await live_worker(arq_redis, settings, "w1", without("noop"))
    response = await client.post("/jobs/noop/batch", json=batch(1, 2))
    assert (response.status_code, response.json()["error"]) == (409, "task_not_served")
    assert await arq_redis.zcard(QUEUE) == 0
    assert (await client.post("/jobs/generate_report/batch", json={"items": [{}]})).status_code == 202


async def test_secret_inputs_are_sealed_in_every_job(arq_redis: ArqRedis) -> None:
    client = JobClient(arq_redis, make_settings(secrets_key=KEY_A), REGISTRY)
    jobs = await client.enqueue_many(open_vault, [GIVEN, {**GIVEN, "user": "bob"}])
    for job in jobs:
        assert no_secret_in(await arq_redis.get(Keys.arq_job(job.job_id)) or b"missing")
    assert [(await client.details(job.job_id)).input for job in jobs] == [SHOWN, {**SHOWN, "user": "bob"}]


# --- JobClient and the Jobs facade ----------------------------------------------------------------


async def test_the_client_validates_every_input_first_naming_each_by_its_index(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    good = {"url": "https://example.com/hook", "payload": {}}
    items = [
        good,
        {"url": "nope", "payload": {}},
        send_webhook.input_model.model_validate(good),
        {"payload": {}},
    ]
    with pytest.raises(TaskInputError) as refused:
        await job_client.enqueue_many(send_webhook, items)
    assert [(e["loc"], e["type"]) for e in refused.value.errors] == [
        ([1, "url"], "url_parsing"),
        ([3, "url"], "missing"),
    ]
    with pytest.raises(TaskInputError, match="a batch has 1 to 1000 inputs, not 0"):
        await job_client.enqueue_many(noop, [])
    assert await our_keys(arq_redis) == []
    jobs = await job_client.enqueue_many(send_webhook, [good, good])
    assert [job.task for job in jobs] == ["send_webhook"] * 2


async def test_inputs_are_stored_as_one_jobs_are_and_one_that_would_not_come_back_is_named(
    arq_redis: ArqRedis, settings: Settings
) -> None:
    client = JobClient(arq_redis, settings, TaskRegistry([mail, secret]))
    jobs = await client.enqueue_many(
        mail, [Mail.model_validate({"from": f"{n}@example.com"}) for n in range(2)]
    )
    stored = [loads(await arq_redis.get(Keys.arq_job(job.job_id)))["a"] for job in jobs]
    assert stored == [[{"from": "0@example.com"}], [{"from": "1@example.com"}]]
    with pytest.raises(TaskInputError) as refused:
        await client.enqueue_many(secret, [Secret(token=SecretStr("a")), Secret(token=SecretStr("b"))])
    reason = "does not survive being stored as JSON (a SecretStr or excluded field?)"
    assert refused.value.errors == [
        {"loc": [0], "msg": reason, "type": "json_round_trip"},
        {"loc": [1], "msg": reason, "type": "json_round_trip"},
    ]
    assert await arq_redis.zcard(QUEUE) == 2


async def test_one_producer_span_stands_for_the_batch_and_every_job_carries_it(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing(make_settings(), "jobs-test", exporter=exporter)
    try:
        jobs = await job_client.enqueue_many(noop, [NoopInput(value=n) for n in range(3)])
    finally:
        shutdown_tracing()
    (span,) = exporter.get_finished_spans()
    assert span.name == "enqueue noop"
    attributes = dict(span.attributes or {})
    assert (attributes["messaging.message.id"], attributes["messaging.batch.message_count"]) == (
        jobs[0].job_id,
        3,
    )
    carriers = {await arq_redis.hget(KEYS.record(job.job_id), TRACE) for job in jobs}
    assert carriers == {json.dumps({"traceparent": traceparent(span)}, separators=(",", ":")).encode()}


async def test_batch_jobs_run_and_count_like_single_ones(
    client: httpx.AsyncClient, arq_redis: ArqRedis, run_worker: RunWorker
) -> None:
    ids = [
        job["job_id"] for job in (await client.post("/jobs/noop/batch", json=batch(*range(7)))).json()["jobs"]
    ]
    await run_worker()
    for n, job_id in enumerate(ids):
        status = (await client.get(f"/jobs/{job_id}")).json()
        assert (status["status"], status["result"]) == ("succeeded", {"value": n})
        events = [fields[b"event"] for _, fields in await arq_redis.xrange(KEYS.events(job_id))]
        assert events == [b"pending", b"running", b"succeeded"]
    succeeded = (await client.get("/jobs", params={"state": "succeeded"})).json()["items"]
    assert sorted(item["job_id"] for item in succeeded) == sorted(ids)
    queues = {q["name"]: q for q in (await client.get("/queues")).json()}
    assert (queues["default"]["pending"], queues["default"]["succeeded"]) == (0, 7)


async def test_the_facade_enqueues_a_batch_from_a_route_of_yours_and_the_harness_runs_it() -> None:
    router = APIRouter()

    @router.post("/imports", status_code=202)
    async def start_import(jobs: JobsDep) -> EnqueuedBatch:
        return await jobs.enqueue_many(noop, [NoopInput(value=n) for n in range(3)])

    app = FastAPI()
    app.include_router(router)
    mount(app, make_settings(), shipped)
    async with JobsHarness(app) as harness:
        response = await harness.client.post("/imports")
        assert response.status_code == 202
        ids = [job["job_id"] for job in response.json()["jobs"]]
        assert len(ids) == 3
        assert sorted(await harness.drain()) == sorted(ids)
        for n, job_id in enumerate(ids):
            assert (await harness.jobs.status(job_id)).result == {"value": n}
