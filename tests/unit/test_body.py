"""Request body limits (arq_jobs._api.body) over the ASGI app: 413 `payload_too_large` from a declared
Content-Length or while a chunked body is read, a task's own lower `max_input_bytes`, every route of the
API and the dashboard's forms alike; nothing is enqueued."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from arq.connections import ArqRedis

from arq_jobs._api.body import BodyLimits
from arq_jobs._config import Settings
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, TaskRegistry, task
from tests.shipped import registry as shipped

from .conftest import make_settings

LIMIT = 1024


class TextInput(TaskInput):
    text: str


@task(max_input_bytes=100)
async def small(ctx: JobContext, data: TextInput) -> str:
    """Take a short text."""
    return data.text


@task(max_input_bytes=5000)
async def roomy(ctx: JobContext, data: TextInput) -> str:
    """Ask for more than the API allows: the API's limit still applies."""
    return data.text


@pytest.fixture
def settings() -> Settings:
    return make_settings(max_request_bytes=LIMIT)


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry([*shipped, small, roomy])


def too_large(limit: int = LIMIT, **task: str) -> dict[str, object]:
    which = f"task {task['task']!r} accepts (its max_input_bytes)" if task else "this API accepts"
    return {
        "error": "payload_too_large",
        "message": f"the request body is larger than the {limit} bytes {which}; nothing was done",
        "limit": limit,
        **task,
    }


def text_of(size: int) -> bytes:
    """A JSON body `{"text": "xxx…"}` of exactly `size` bytes."""
    return b'{"text": "' + b"x" * (size - 12) + b'"}'


async def chunked(body: bytes, chunk: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


JSON = {"content-type": "application/json"}


async def test_a_body_over_the_limit_is_413_and_nothing_is_enqueued(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    at_limit = await client.post("/jobs/roomy", content=text_of(LIMIT), headers=JSON)
    assert at_limit.status_code == 202
    over = await client.post("/jobs/roomy", content=text_of(LIMIT + 1), headers=JSON)
    assert (over.status_code, over.json()) == (413, too_large())
    assert await arq_redis.zcard("unit:queue:default") == 1


async def test_a_chunked_body_is_counted_as_it_is_read(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    fits = await client.post("/jobs/roomy", content=chunked(text_of(LIMIT)), headers=JSON)
    assert "content-length" not in fits.request.headers and fits.status_code == 202
    over = await client.post("/jobs/roomy", content=chunked(text_of(LIMIT + 1)), headers=JSON)
    assert (over.status_code, over.json()) == (413, too_large())
    assert await arq_redis.zcard("unit:queue:default") == 1


async def test_a_content_length_over_the_limit_is_refused_without_reading_the_body(
    client: httpx.AsyncClient,
) -> None:
    sent: list[int] = []

    async def counted() -> AsyncIterator[bytes]:
        for _ in range(100):
            sent.append(1)
            yield b"x" * 100

    headers = {**JSON, "content-length": str(100 * 100)}
    answer = await client.post("/jobs/noop", content=counted(), headers=headers)
    assert (answer.status_code, answer.json()) == (413, too_large())
    assert len(sent) <= 1  # ASGITransport reads one chunk ahead at most; the route read none


async def test_a_tasks_own_lower_limit_applies_to_its_route_only(client: httpx.AsyncClient) -> None:
    small_over = await client.post("/jobs/small", content=text_of(101), headers=JSON)
    assert (small_over.status_code, small_over.json()) == (413, too_large(100, task="small"))
    chunked_over = await client.post("/jobs/small", content=chunked(text_of(101), 10), headers=JSON)
    assert (chunked_over.status_code, chunked_over.json()) == (413, too_large(100, task="small"))
    assert (await client.post("/jobs/small", content=text_of(100), headers=JSON)).status_code == 202
    assert (await client.post("/jobs/roomy", content=text_of(101), headers=JSON)).status_code == 202


async def test_workflows_and_dead_letter_actions_are_capped_too(client: httpx.AsyncClient) -> None:
    steps = [{"task": "noop", "input": {"value": "x" * 300}} for _ in range(4)]
    workflow = await client.post("/workflows", json={"type": "group", "steps": steps})
    assert (workflow.status_code, workflow.json()) == (413, too_large())
    # a route without a body of its own: a declared Content-Length over the limit is refused all the same
    retry = await client.post("/dead-letters/nope/retry", content=b"x" * (LIMIT + 1))
    assert (retry.status_code, retry.json()) == (413, too_large())
    assert (await client.post("/dead-letters/nope/retry")).status_code == 404


async def test_the_dashboards_forms_are_capped_with_a_413_page(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/dashboard/jobs/cancel",
        headers={"Sec-Fetch-Site": "same-origin", "HX-Request": "true"},
        data={"job_id": ["a" * 40] * 30},
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("text/html")
    assert "the request body is larger than the 1024 bytes this API accepts" in answer.text


async def test_openapi_declares_413_where_a_body_is_read(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "413" in paths["/jobs/noop"]["post"]["responses"]
    assert "413" in paths["/workflows"]["post"]["responses"]
    assert "413" not in paths["/jobs/{job_id}"]["get"]["responses"]


def test_limits_are_the_setting_or_a_tasks_lower_own() -> None:
    limits = BodyLimits.of(make_settings(max_request_bytes=LIMIT), TaskRegistry([*shipped, small, roomy]))
    assert limits == BodyLimits(LIMIT, {"small": 100})  # roomy's 5000: the API's limit is lower
    assert (limits.limit(None), limits.limit("noop"), limits.limit("small")) == (LIMIT, LIMIT, 100)
    with pytest.raises(ValueError, match="max_input_bytes must be at least 1"):
        task(max_input_bytes=0)
