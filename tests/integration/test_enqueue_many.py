"""Bulk enqueue against the real Redis, the real API under uvicorn and a real `arq` worker: the jobs of one
`POST /jobs/{task}/batch` run, and show in listings, event streams, queue counts and both processes'
metrics exactly as jobs enqueued one by one do. Its own key prefix (its own API and worker): counts
are exact."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devserver.redis_server import free_port

from .conftest import delete_prefix, enqueue_job
from .test_observability import Stack, eventually, metric_values, read_events

COUNT = 150


@pytest.fixture
def prefix(redis_url: str, key_prefix: str) -> Iterator[str]:
    name = f"{key_prefix}-batch-{uuid.uuid4().hex[:8]}"
    yield name
    delete_prefix(redis_url, name)


async def test_a_batchs_jobs_run_and_show_everywhere_like_single_ones(
    redis_url: str, prefix: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    stack = Stack(redis_url, prefix, tmp_path)
    request.addfinalizer(stack.stop)
    port = free_port()
    stack.worker("w", JOBS_WORKER_METRICS_PORT=str(port))
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        single = (await enqueue_job(http, "noop", {"value": -1}))["job_id"]
        response = await http.post("/jobs/noop/batch", json={"items": [{"value": n} for n in range(COUNT)]})
        assert response.status_code == 202, response.text
        ids = [job["job_id"] for job in response.json()["jobs"]]
        assert len(set(ids)) == COUNT

        async def all_succeeded() -> bool:
            page = (await http.get("/jobs", params={"state": "succeeded", "limit": 500})).json()
            return len(page["items"]) == COUNT + 1

        await eventually(all_succeeded, 30, f"{COUNT + 1} succeeded jobs")
        for n, job_id in enumerate(ids):
            status = (await http.get(f"/jobs/{job_id}")).json()
            assert (status["status"], status["result"], status["attempt"]) == ("succeeded", {"value": n}, 1)

        listed = (await http.get("/jobs", params={"task": "noop", "limit": 500})).json()
        assert sorted(item["job_id"] for item in listed["items"]) == sorted([single, *ids])
        assert listed["next_cursor"] is None
        for state in ("pending", "scheduled", "running", "retrying", "failed", "cancelled"):
            assert (await http.get("/jobs", params={"state": state})).json()["items"] == [], state
        queues = {q["name"]: q for q in (await http.get("/queues")).json()}
        counts = {state: queues["default"][state] for state in ("pending", "running", "succeeded", "failed")}
        assert counts == {"pending": 0, "running": 0, "succeeded": COUNT + 1, "failed": 0}

        one_by_one = [event["event"] for event in await read_events(http, single)]
        assert one_by_one == ["pending", "running", "succeeded"]
        for job_id in (ids[0], ids[-1]):
            events = await read_events(http, job_id)
            assert [event["event"] for event in events] == one_by_one
            assert all(event["data"]["job_id"] == job_id for event in events)

        worker = metric_values((await http.get(f"http://127.0.0.1:{port}/metrics")).text)
        noop = (("queue", "default"), ("task", "noop"))
        for name in ("jobs_started_total", "jobs_succeeded_total", "jobs_wait_seconds_count"):
            assert worker[(name, noop)] == COUNT + 1, name
        assert worker[("jobs_duration_seconds_count", (("outcome", "succeeded"), *noop))] == COUNT + 1
        api = metric_values((await http.get("/metrics")).text)
        batch = (("method", "POST"), ("route", "/jobs/noop/batch"), ("status", "202"))
        assert api[("http_requests_total", batch)] == 1
        assert api[("queue_jobs", (("queue", "default"), ("state", "succeeded")))] == COUNT + 1
        assert api[("queue_jobs", (("queue", "default"), ("state", "pending")))] == 0
