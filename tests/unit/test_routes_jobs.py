from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from arq.connections import ArqRedis
from fastapi import FastAPI
from redis.exceptions import OutOfMemoryError, ReadOnlyError

from arq_jobs._api.deps import AppState, JobsDep, get_state
from arq_jobs._api.schemas import EnqueuedJob
from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._connection import create_arq
from arq_jobs._keys import Keys
from arq_jobs._serializer import loads
from arq_jobs._tasks.registry import TaskRegistry
from tests.apps import create_app
from workers.tasks.noop import NoopInput, noop

from .conftest import make_settings


async def test_enqueue_answers_202_with_status_url_and_location(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    response = await client.post("/jobs/noop", json={"value": "hi"})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {
        "job_id", "task", "status", "status_url", "scheduled_for", "retry_of", "idempotent_replay"
    }  # fmt: skip
    assert (body["task"], body["status"], body["scheduled_for"]) == ("noop", "pending", None)
    assert body["status_url"] == f"http://test/jobs/{body['job_id']}"
    assert response.headers["location"] == body["status_url"]
    stored = await arq_redis.get(Keys.arq_job(body["job_id"]))
    assert stored is not None and loads(stored)["a"] == [{"value": "hi"}]


async def test_status_of_a_new_job_is_pending(client: httpx.AsyncClient) -> None:
    job_id = (await client.post("/jobs/generate_report", json={"rows": 10})).json()["job_id"]
    response = await client.get(f"/jobs/{job_id}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "job_id", "task", "queue", "status", "attempt", "max_attempts", "enqueued_at", "scheduled_for",
        "started_at", "finished_at", "progress", "result", "error", "is_terminal", "next_attempt_at",
        "dead_lettered", "retry_of", "cancel_requested", "throttled", "workflow_id", "schedule", "owner",
    }  # fmt: skip
    assert body["job_id"] == job_id
    assert (body["task"], body["queue"], body["status"], body["attempt"]) == (
        "generate_report",
        "default",
        "pending",
        0,
    )
    assert (body["started_at"], body["finished_at"], body["progress"], body["result"], body["error"]) == (
        None,
    ) * 5
    assert body["is_terminal"] is False
    assert (body["throttled"], body["workflow_id"], body["schedule"], body["owner"]) == (None,) * 4


async def test_delay_and_run_at_schedule_the_job(client: httpx.AsyncClient) -> None:
    delayed = await client.post("/jobs/noop", params={"delay": 30}, json={})
    assert delayed.status_code == 202 and delayed.json()["status"] == "scheduled"
    status = (await client.get(delayed.headers["location"])).json()
    assert status["status"] == "scheduled" and status["scheduled_for"] == delayed.json()["scheduled_for"]

    when = (datetime.now(UTC) + timedelta(days=30)).replace(hour=1, minute=4, second=5, microsecond=0)
    plus_two = when.astimezone(timezone(timedelta(hours=2))).isoformat()  # 03:04:05+02:00
    at = await client.post("/jobs/noop", params={"run_at": plus_two}, json={})
    assert at.status_code == 202
    assert at.json()["scheduled_for"] == when.strftime("%Y-%m-%dT01:04:05Z")


async def test_unknown_task_is_404_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs/resize_image", json={"w": 1})
    assert response.status_code == 404
    assert response.json() == {
        "error": "unknown_task",
        "message": "no task named 'resize_image' is registered",
        "task": "resize_image",
    }


async def test_invalid_body_is_422_naming_task_and_field(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    response = await client.post("/jobs/send_webhook", json={"url": "not a url", "payload": {}})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["task"] == "send_webhook"
    assert (
        body["message"]
        == "invalid request for task 'send_webhook': body.url: Input should be a valid URL, relative URL without a base"
    )
    assert body["detail"] == [
        {
            "loc": ["body", "url"],
            "msg": "Input should be a valid URL, relative URL without a base",
            "type": "url_parsing",
        }
    ]
    assert await arq_redis.zcard("unit:queue:default") == 0


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/jobs/noop", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"delay": "-1"}, "query.delay", "query.delay: Input should be greater than or equal to 0"),
        (
            {"delay": "soon"},
            "query.delay",
            "query.delay: Input should be a valid number, unable to parse string as a number",
        ),
        ({"delay": "inf"}, "query.delay", "query.delay: Input should be a finite number"),
        ({"run_at": "2031-01-01T00:00:00"}, "query.run_at", "query.run_at: Input should have timezone info"),
    ],
)
async def test_bad_schedule_query_is_422_naming_it(
    client: httpx.AsyncClient, params: dict[str, str], field: str, message: str
) -> None:
    response = await client.post("/jobs/noop", params=params, json={})
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == f"invalid request for task 'noop': {message}"
    assert [".".join(e["loc"]) for e in body["detail"]] == [field]


async def test_delay_with_run_at_is_422(client: httpx.AsyncClient, arq_redis: ArqRedis) -> None:
    response = await client.post("/jobs/noop", params={"delay": 5, "run_at": "2031-01-01T00:00:00Z"}, json={})
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_schedule",
        "message": "give either delay or run_at, not both",
        "fields": ["delay", "run_at"],
    }
    assert await arq_redis.zcard("unit:queue:default") == 0


async def test_unknown_job_is_404_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/jobs/deadbeef")
    assert response.status_code == 404
    assert response.json() == {
        "error": "job_not_found",
        "message": "no job with id 'deadbeef' (unknown, or its record has expired)",
        "job_id": "deadbeef",
    }


async def test_openapi_has_a_request_schema_per_task(
    client: httpx.AsyncClient, registry: TaskRegistry
) -> None:
    spec = (await client.get("/openapi.json")).json()
    for task in registry:
        operation = spec["paths"][f"/jobs/{task.name}"]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{task.input_model.__name__}"
        auth = {"401", "403"}  # the answers of the key check (tests/unit/test_auth.py)
        assert set(operation["responses"]) - auth == {"200", "202", "404", "409", "413", "422", "429", "503"}
        assert operation["responses"]["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    assert "url" in spec["components"]["schemas"]["WebhookInput"]["required"]
    assert "/jobs/{task}" not in spec["paths"]


@pytest.fixture
async def down_client(
    settings: Settings, registry: TaskRegistry, app: FastAPI
) -> AsyncIterator[httpx.AsyncClient]:
    dead = create_arq(settings)  # settings point at 127.0.0.1:1, where nothing listens
    app.dependency_overrides[get_state] = lambda: AppState(settings, registry, dead)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client
    await dead.aclose()


async def test_redis_down_is_503_not_500(down_client: httpx.AsyncClient) -> None:
    expected = {
        "error": "redis_unavailable",
        "message": "Redis is unreachable; the request was not completed. Try again shortly.",
    }
    for response in (
        await down_client.post("/jobs/noop", json={}),
        await down_client.get("/jobs/abc"),
        await down_client.get("/health/ready"),
        await down_client.post("/reports", json={}),
    ):
        assert response.status_code == 503
        assert response.json() == expected
    assert (await down_client.get("/health/live")).status_code == 200


async def test_redis_refusing_writes_is_503(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def out_of_memory(*args: object, **kwargs: object) -> None:
        raise OutOfMemoryError("command not allowed when used memory > 'maxmemory'")

    monkeypatch.setattr(JobClient, "enqueue", out_of_memory)
    response = await client.post("/jobs/noop", json={})
    assert response.status_code == 503
    assert response.json() == {
        "error": "redis_unavailable",
        "message": "Redis is out of memory (maxmemory): it refuses writes until memory is freed, so the "
        "request was not completed; reads still work. Try again later.",
        "reason": "out_of_memory",
    }

    async def read_only(*args: object, **kwargs: object) -> None:
        raise ReadOnlyError("You can't write against a read only replica.")

    monkeypatch.setattr(JobClient, "enqueue", read_only)
    response = await client.post("/jobs/noop", json={})
    assert (response.status_code, response.json()) == (
        503,
        {
            "error": "redis_unavailable",
            "message": "Redis refused the request (ReadOnlyError); the request was not completed. Try again "
            "shortly.",
        },
    )


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"value": 10**30}, []),
        ({"value": float("inf")}, ["body", "value", "float"]),
    ],
)
async def test_values_json_cannot_store_are_422(client: httpx.AsyncClient, body: dict, loc: list) -> None:
    import json

    response = await client.post(
        "/jobs/noop", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


async def test_webhook_headers_must_be_printable_ascii(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/jobs/send_webhook",
        json={"url": "http://x.example/", "payload": {}, "headers": {"x-a": "caf\u00e9\r\nx: y"}},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "headers", "x-a"]


async def test_run_at_too_far_ahead_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs/noop", params={"run_at": "9999-12-31T23:59:59-14:00"}, json={})
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_schedule",
        "message": "run_at must be at most 31536000 seconds ahead (JOBS_MAX_SCHEDULE_AHEAD_S)",
        "fields": ["run_at"],
    }


async def test_queue_query_sends_the_job_to_that_queue(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    response = await client.post("/jobs/noop", params={"queue": "high"}, json={"value": 1})
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert await arq_redis.zscore("unit:queue:high", job_id) is not None
    assert (await client.get(f"/jobs/{job_id}")).json()["queue"] == "high"
    listed = (await client.get("/jobs", params={"queue": "high"})).json()["items"]
    assert [(item["job_id"], item["queue"]) for item in listed] == [(job_id, "high")]
    assert (await client.get("/jobs", params={"queue": "default"})).json()["items"] == []
    queues = {q["name"]: q["pending"] for q in (await client.get("/queues")).json()}
    assert queues == {"high": 1, "default": 0, "low": 0}


async def test_unknown_queue_is_422_naming_the_known_ones(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    response = await client.post("/jobs/noop", params={"queue": "urgent"}, json={"value": 1})
    assert response.status_code == 422
    assert response.json() == {
        "error": "unknown_queue",
        "message": "no queue named 'urgent' is configured; the queues are high, default, low",
        "queue": "urgent",
        "queues": ["high", "default", "low"],
        "task": "noop",
    }
    assert await arq_redis.dbsize() == 0


async def test_openapi_documents_the_queue_query(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    parameters = {p["name"]: p for p in spec["paths"]["/jobs/noop"]["post"]["parameters"]}
    queue = parameters["queue"]
    assert (queue["in"], queue["required"]) == ("query", False)
    assert queue["description"] == "Run the job on this queue instead of the task's own (default)."
    assert {k: queue["schema"][k] for k in ("type", "maxLength", "enum")} == {
        "type": "string",
        "maxLength": 200,
        "enum": ["high", "default", "low"],
    }
    assert {"delay", "run_at", "queue", "Idempotency-Key"} <= set(parameters)


async def test_the_jobs_facade_takes_a_queue(app: FastAPI, client: httpx.AsyncClient) -> None:
    async def urgent_noop(jobs: JobsDep) -> EnqueuedJob:
        return await jobs.enqueue(noop, NoopInput(value="now"), queue="high")

    app.add_api_route("/urgent", urgent_noop, methods=["POST"])
    job = (await client.post("/urgent")).json()
    assert (await client.get(f"/jobs/{job['job_id']}")).json()["queue"] == "high"


async def test_the_delay_query_stops_at_max_schedule_ahead(
    registry: TaskRegistry, arq_redis: ArqRedis
) -> None:
    settings = make_settings(max_schedule_ahead_s=60)
    app = create_app(settings, registry)
    app.dependency_overrides[get_state] = lambda: AppState(settings, registry, arq_redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        spec = (await client.get("/openapi.json")).json()
        delay = next(p for p in spec["paths"]["/jobs/noop"]["post"]["parameters"] if p["name"] == "delay")
        assert delay["schema"]["anyOf"][0] == {"type": "number", "minimum": 0, "maximum": 60}
        assert (await client.post("/jobs/noop", params={"delay": 60}, json={})).status_code == 202
        over = await client.post("/jobs/noop", params={"delay": 61}, json={})
        assert (over.status_code, over.json()["detail"]) == (
            422,
            [
                {
                    "loc": ["query", "delay"],
                    "msg": "Input should be less than or equal to 60",
                    "type": "less_than_equal",
                }
            ],
        )
        later = (datetime.now(UTC) + timedelta(seconds=90)).isoformat()
        at = await client.post("/jobs/noop", params={"run_at": later}, json={})
        assert (at.status_code, at.json()) == (
            422,
            {
                "error": "invalid_schedule",
                "message": "run_at must be at most 60 seconds ahead (JOBS_MAX_SCHEDULE_AHEAD_S)",
                "fields": ["run_at"],
            },
        )
    assert await arq_redis.zcard("unit:queue:default") == 1
