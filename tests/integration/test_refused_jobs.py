"""Jobs ARQ fails before any task code runs are dead-lettered, not just logged."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from arq.jobs import serialize_job

from arq_jobs._keys import Keys
from arq_jobs._serializer import dumps

from .conftest import Service


async def dead_letter(http: httpx.AsyncClient, job_id: str, timeout_s: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = await http.get(f"/dead-letters/{job_id}")
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} was not dead-lettered in {timeout_s}s")


@pytest.fixture
def job_id(redis_client: redis.Redis) -> Iterator[str]:
    """A new job id; ARQ's keys of it are deleted afterwards (a job put on the queue by hand has no
    record under the session's prefix, whose clean-up goes by records)."""
    made = uuid.uuid4().hex
    yield made
    redis_client.delete(
        Keys.arq_job(made), Keys.arq_result(made), Keys.arq_retry(made), Keys.arq_in_progress(made)
    )


def put_on_queue(redis_client: redis.Redis, prefix: str, job_id: str, data: bytes | None) -> None:
    now = int(time.time() * 1000)
    if data is not None:
        redis_client.psetex(Keys.arq_job(job_id), 60_000, data)
    redis_client.zadd(Keys(prefix).queue("default"), {job_id: now})


def stored_input(redis_client: redis.Redis, prefix: str, job_id: str) -> Any:
    """A dead letter's input as stored (the API shows only what it may)."""
    raw = redis_client.get(Keys(prefix).dead_letter(job_id))
    assert isinstance(raw, bytes)
    return json.loads(raw)["input"]


async def test_unknown_function_is_dead_lettered(
    http: httpx.AsyncClient, worker: Service, redis_client: redis.Redis, key_prefix: str, job_id: str
) -> None:
    job = serialize_job("retired_task", ({"a": 1},), {}, None, int(time.time() * 1000), serializer=dumps)
    put_on_queue(redis_client, key_prefix, job_id, job)
    letter = await dead_letter(http, job_id)
    # the API does not know the task, so not its secrets: the whole input is hidden
    assert (letter["task"], letter["reason"], letter["input"]) == ("retired_task", "unknown_task", "***")
    assert letter["error"]["message"] == "function 'retired_task' not found"
    assert stored_input(redis_client, key_prefix, job_id) == {"a": 1}  # kept for a retry under another name


async def test_undecodable_job_is_dead_lettered(
    http: httpx.AsyncClient, worker: Service, redis_client: redis.Redis, key_prefix: str, job_id: str
) -> None:
    put_on_queue(redis_client, key_prefix, job_id, b"\x80\x04not json")
    letter = await dead_letter(http, job_id)
    assert (letter["reason"], letter["error"]["type"]) == ("unreadable_job", "DeserializationError")
    assert letter["input"] == "***"  # its task is unknown: hidden whole
    assert stored_input(redis_client, key_prefix, job_id) == "\ufffd\x04not json"


async def test_expired_job_is_dead_lettered_with_its_task(
    http: httpx.AsyncClient, worker: Service, redis_client: redis.Redis, key_prefix: str
) -> None:
    accepted = await http.post("/jobs/noop", params={"delay": 1}, json={"value": 1})
    job_id = accepted.json()["job_id"]
    redis_client.delete(Keys.arq_job(job_id))  # as if it had waited past its expiry
    letter = await dead_letter(http, job_id)
    assert (letter["task"], letter["reason"], letter["input"]) == ("noop", "job_expired", None)
    assert letter["error"]["message"] == "job expired"
