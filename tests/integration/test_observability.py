"""Observability against the real Redis, the real API under uvicorn and real `arq` workers: the
worker registry, queue counts, job listing, live events, Prometheus metrics and JSON logs.

Each test uses its own key prefix (its own API and workers), so counts are exact."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devserver.redis_server import free_port

from .conftest import (
    Service,
    delete_prefix,
    enqueue_job,
    http_ok,
    kill,
    service_env,
    start_api,
    start_worker,
    wait_for_status,
)

HEARTBEAT_S = 0.5
STALE_BOUND_S = 3 * HEARTBEAT_S + 1.0  # 3 missed beats, plus a beat of slack


@pytest.fixture
def prefix(redis_url: str, key_prefix: str) -> Iterator[str]:
    name = f"{key_prefix}-obs-{uuid.uuid4().hex[:8]}"
    yield name
    delete_prefix(redis_url, name)


class Stack:
    """One API and the workers a test starts, on one key prefix."""

    def __init__(self, redis_url: str, prefix: str, log_dir: Path) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.log_dir = log_dir
        self.services: list[Service] = []
        self.env = {"JOBS_HEARTBEAT_S": str(HEARTBEAT_S)}
        api, self.base = start_api(service_env(redis_url, prefix, **self.env), log_dir)
        self.services.append(api)
        api.wait_until(http_ok(f"{self.base}/health/ready"))

    def worker(self, name: str, **env: str) -> tuple[Service, str]:
        service, worker_id = start_worker(self.redis_url, self.prefix, self.log_dir, name, **self.env, **env)
        self.services.append(service)
        return service, worker_id

    def stop(self) -> None:
        for service in self.services:
            service.stop()


@pytest.fixture
async def stack(redis_url: str, prefix: str, tmp_path: Path) -> AsyncIterator[Stack]:
    found = Stack(redis_url, prefix, tmp_path)
    try:
        yield found
    finally:
        found.stop()


async def enqueue(http: httpx.AsyncClient, task: str, body: dict[str, Any], **params: Any) -> str:
    job_id: str = (await enqueue_job(http, task, body, **params))["job_id"]
    return job_id


async def eventually(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not seen in {timeout_s}s; last: {last}")


async def test_workers_register_go_stale_when_killed_and_health_names_starved_queues(stack: Stack) -> None:
    one, one_id = stack.worker("w1", JOBS_QUEUE_NAME="lifecycle")
    two, two_id = stack.worker("w2", JOBS_QUEUE_NAME="lifecycle")
    async with httpx.AsyncClient(base_url=stack.base, timeout=10) as http:
        workers = (await http.get("/workers")).json()
        by_id = {w["worker_id"]: w for w in workers}
        assert set(by_id) == {one_id, two_id}
        for service, worker_id in ((one, one_id), (two, two_id)):
            info = by_id[worker_id]
            assert (info["state"], info["pid"], info["queues"], info["running"]) == (
                "alive",
                service.process.pid,
                ["lifecycle"],
                0,
            )
            assert info["concurrency"] == 100 and len(info["registry_version"]) == 12
            assert info["last_seen_age_s"] < STALE_BOUND_S
        health = await http.get("/health/workers")
        assert health.status_code == 200 and health.json()["starved_queues"] == []

        # a running job shows on its worker
        job = await enqueue(http, "hold", {"seconds": 30})
        await wait_for_status(http, f"/jobs/{job}", lambda b: b["status"] == "running")
        runner = (await http.get(f"/jobs/{job}")).json()

        async def owner() -> list[dict[str, Any]]:
            return [w for w in (await http.get("/workers")).json() if w["running_jobs"] == [job]]

        owners = await eventually(owner, 3, "the job on its worker's heartbeat")
        assert len(owners) == 1 and owners[0]["running"] == 1
        assert owners[0]["worker_id"] in {one_id, two_id} and runner["status"] == "running"

        killed_at = time.monotonic()
        kill(one)

        async def one_is_stale() -> bool:
            state = {w["worker_id"]: w["state"] for w in (await http.get("/workers")).json()}
            return state.get(one_id) == "stale" and state.get(two_id) == "alive"

        await eventually(one_is_stale, STALE_BOUND_S + 2, "w1 stale")
        assert time.monotonic() - killed_at <= STALE_BOUND_S + 1

        two.stop()  # SIGTERM: a clean stop is listed as stopped, not stale
        state = {w["worker_id"]: w["state"] for w in (await http.get("/workers")).json()}
        assert state[two_id] == "stopped"

        pending = await enqueue(http, "hold", {"seconds": 1})

        async def starved() -> dict[str, Any] | None:
            response = await http.get("/health/workers")
            return response.json() if response.status_code == 503 else None

        body = await eventually(starved, 5, "503 from /health/workers")
        assert body["error"] == "starved_queues" and body["starved_queues"] == ["lifecycle"]
        assert "lifecycle" in body["message"]
        lifecycle = next(q for q in body["queues"] if q["name"] == "lifecycle")
        assert lifecycle["workers"] == 0 and lifecycle["pending"] >= 1
        del pending


async def test_queue_counts_and_state_listings_match_a_known_mix(stack: Stack) -> None:
    stack.worker("w", JOBS_WORKER_CONCURRENCY="2")
    async with httpx.AsyncClient(base_url=stack.base, timeout=10) as http:
        failed = await enqueue(http, "fail", {"permanent": True})
        retrying = await enqueue(http, "fail", {"permanent": False, "retry_after_s": 300})
        await wait_for_status(http, f"/jobs/{failed}", lambda b: b["status"] == "failed")
        await wait_for_status(http, f"/jobs/{retrying}", lambda b: b["status"] == "retrying")
        running = [await enqueue(http, "nap", {"seconds": 60}) for _ in range(2)]
        for job in running:
            await wait_for_status(http, f"/jobs/{job}", lambda b: b["status"] == "running")
        pending = [await enqueue(http, "nap", {"seconds": 60}) for _ in range(3)]
        scheduled = [await enqueue(http, "noop", {"value": n}, delay=3600) for n in range(2)]
        assert (await http.delete(f"/jobs/{scheduled[1]}")).status_code == 200
        await asyncio.sleep(0.5)  # the worker is full: nothing else may start

        queues = {q["name"]: q for q in (await http.get("/queues")).json()}
        default = queues["default"]
        counts = {
            k: default[k] for k in ("pending", "scheduled", "running", "retrying", "succeeded", "failed")
        }
        assert counts == {
            "pending": 3,
            "scheduled": 1,
            "running": 2,
            "retrying": 1,
            "succeeded": 0,
            "failed": 1,
        }
        assert (default["cancelled"], default["dead_lettered"], default["workers"]) == (1, 1, 1)
        assert default["oldest_pending_age_s"] is not None and 0.4 <= default["oldest_pending_age_s"] < 10

        expected = {
            "pending": pending,
            "scheduled": scheduled[:1],
            "running": running,
            "retrying": [retrying],
            "failed": [failed],
            "cancelled": scheduled[1:],
            "succeeded": [],
        }
        for state, ids in expected.items():
            page = (await http.get("/jobs", params={"state": state, "queue": "default"})).json()
            assert sorted(item["job_id"] for item in page["items"]) == sorted(ids), state
            assert all(item["status"] == state for item in page["items"])
            assert page["next_cursor"] is None
        listed = (await http.get("/jobs", params={"task": "fail"})).json()["items"]
        assert {item["job_id"] for item in listed} == {failed, retrying}
        failed_item = next(item for item in listed if item["job_id"] == failed)
        assert failed_item["dead_lettered"] is True and failed_item["error"]["type"] == "PermanentError"


async def test_listing_pages_through_1000_jobs_without_duplicates_or_gaps(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        ids: list[str] = []
        for start in range(0, 1000, 50):
            batch = await asyncio.gather(
                *(enqueue(http, "noop", {"value": n}) for n in range(start, start + 50))
            )
            ids.extend(batch)
        seen: list[str] = []
        times: list[datetime] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 37}
            if cursor:
                params["cursor"] = cursor
            page = (await http.get("/jobs", params=params)).json()
            pages += 1
            seen.extend(item["job_id"] for item in page["items"])
            times.extend(datetime.fromisoformat(item["enqueued_at"]) for item in page["items"])
            if pages == 3:  # new jobs while paging go to the front, not into later pages
                await enqueue(http, "noop", {"value": -1})
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 1000 and len(set(seen)) == 1000 and set(seen) == set(ids)
        assert pages == 28  # ceil(1000 / 37)
        assert times == sorted(times, reverse=True)
        # filtered: every one is pending (no worker runs this prefix)
        pending = (await http.get("/jobs", params={"state": "pending", "limit": 500})).json()
        assert len(pending["items"]) == 500 and pending["next_cursor"] is not None
        assert (await http.get("/jobs", params={"state": "nonsense"})).status_code == 422
        assert (await http.get("/jobs", params={"cursor": "not-a-cursor"})).status_code == 422


async def read_events(
    http: httpx.AsyncClient, job_id: str, last_event_id: str | None = None, timeout_s: float = 30
) -> list[dict[str, Any]]:
    """Read a job's SSE stream to its end: each event's id, name and data."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with asyncio.timeout(timeout_s):
        async with http.stream("GET", f"/jobs/{job_id}/events", headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("id: "):
                    current["id"] = line[4:]
                elif line.startswith("event: "):
                    current["event"] = line[7:]
                elif line.startswith("data: "):
                    current["data"] = json.loads(line[6:])
                elif line == "" and current:
                    events.append(current)
                    current = {}
    return events


async def test_events_deliver_the_whole_ordered_sequence_and_resume_after_a_reconnect(stack: Stack) -> None:
    stack.worker("w")
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        assert (await http.get(f"/jobs/{uuid.uuid4().hex}/events")).status_code == 404
        job = await enqueue(http, "generate_report", {"rows": 10, "step_delay_s": 0.2})
        events = await read_events(http, job)
        names = [e["event"] for e in events]
        assert names == [
            "pending",
            "running",
            "progress",
            "progress",
            "progress",
            "progress",
            "progress",
            "succeeded",
        ]
        assert [e["data"]["status"] for e in events] == ["pending"] + ["running"] * 6 + ["succeeded"]
        assert [e["data"]["progress"]["step"] for e in events[2:7]] == [0, 1, 2, 3, 4]
        assert events[-1]["data"]["result"]["rows"] == 10 and events[-1]["data"]["is_terminal"] is True
        assert all(e["data"]["job_id"] == job for e in events)
        ids = [tuple(int(p) for p in e["id"].split("-")) for e in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)

        # reconnect after the third event: exactly the rest, in order
        rest = await read_events(http, job, last_event_id=events[2]["id"])
        assert [e["id"] for e in rest] == [e["id"] for e in events[3:]]
        # after the last event: the stream ends at once, empty
        assert await read_events(http, job, last_event_id=events[-1]["id"], timeout_s=5) == []
        # the status the stream ended on is what GET shows
        assert (await http.get(f"/jobs/{job}")).json()["status"] == "succeeded"


async def test_events_stream_pings_while_idle_and_resumes_live(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        job = await enqueue(http, "noop", {"value": 1}, delay=3600)
        lines: list[str] = []
        async with asyncio.timeout(25):
            async with http.stream("GET", f"/jobs/{job}/events") as response:
                async for line in response.aiter_lines():
                    lines.append(line)
                    if line == ": ping":
                        break
        assert lines[:2] == ["id: " + lines[0][4:], "event: scheduled"]
        assert ": ping" in lines
        # the cancel ends a reconnected stream
        first_id = lines[0][4:]

        async def cancel_soon() -> None:
            await asyncio.sleep(0.5)
            assert (await http.delete(f"/jobs/{job}")).status_code == 200

        canceller = asyncio.create_task(cancel_soon())
        rest = await read_events(http, job, last_event_id=first_id, timeout_s=10)
        await canceller
        assert [e["event"] for e in rest] == ["cancelled"]


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


async def test_metrics_of_api_and_worker_count_the_jobs_run_and_logs_are_json(stack: Stack) -> None:
    port = free_port()
    worker, _ = stack.worker("w", JOBS_WORKER_METRICS_PORT=str(port), JOBS_LOG_FORMAT="json")
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        done = [await enqueue(http, "noop", {"value": n}) for n in range(3)]
        failed = await enqueue(http, "fail", {"permanent": True})
        for job in [*done, failed]:
            await wait_for_status(http, f"/jobs/{job}", lambda b: b["is_terminal"])
        await asyncio.sleep(0.2)
        scraped = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        values = metric_values(scraped)
        noop = (("queue", "default"), ("task", "noop"))
        fail = (("queue", "default"), ("task", "fail"))
        assert values[("jobs_started_total", noop)] == 3
        assert values[("jobs_succeeded_total", noop)] == 3
        assert values[("jobs_started_total", fail)] == 1
        assert values[("jobs_failed_total", fail)] == 1
        assert values[("jobs_dead_lettered_total", fail)] == 1
        assert values[("jobs_running", noop)] == 0
        assert values[("jobs_duration_seconds_count", (("outcome", "succeeded"), *noop))] == 3
        assert values[("jobs_wait_seconds_count", noop)] == 3
        for job in [*done, failed]:
            assert job not in scraped

        api = (await http.get("/metrics")).text
        api_values = metric_values(api)
        post = (("method", "POST"), ("route", "/jobs/noop"), ("status", "202"))
        assert api_values[("http_requests_total", post)] == 3
        assert api_values[("queue_jobs", (("queue", "default"), ("state", "succeeded")))] == 3
        assert api_values[("queue_jobs", (("queue", "default"), ("state", "failed")))] == 1
        assert api_values[("queue_dead_letters", (("queue", "default"),))] == 1
        assert api_values[("queue_live_workers", (("queue", "default"),))] == 1
        assert api_values[("workers_live", ())] == 1
        assert any(
            key[0] == "http_requests_total" and ("route", "/jobs/{job_id}") in key[1] for key in api_values
        )
        for job in [*done, failed]:
            assert job not in api

    worker.stop()
    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    assert lines, worker.log()
    for job in done:
        mine = [line for line in lines if line.get("job_id") == job]
        assert [line["event"] for line in mine] == ["job.running", "job.succeeded"], mine
        assert all(
            line["level"] == "info" and line["task"] == "noop" and line["attempt"] == 1 for line in mine
        )
        assert "duration_ms" in mine[1] and "wait_ms" in mine[0]
    mine = [line for line in lines if line.get("job_id") == failed]
    assert [line["event"] for line in mine] == ["job.running", "job.failed"], mine


async def test_an_open_event_stream_does_not_hold_up_api_shutdown(stack: Stack) -> None:
    api = stack.services[0]
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        job = await enqueue(http, "noop", {"value": 1}, delay=3600)
        async with http.stream("GET", f"/jobs/{job}/events") as response:
            lines = response.aiter_lines()
            assert (await anext(lines)).startswith("id: ")
            started = time.monotonic()
            api.process.terminate()  # SIGTERM while the stream is open and idle
            await asyncio.to_thread(api.process.wait, 15)
            stopped_in = time.monotonic() - started
    # uvicorn re-raises the SIGTERM it handled once it has shut down
    assert api.process.returncode in (0, -signal.SIGTERM), api.log()
    assert "Application shutdown complete" in api.log()
    assert stopped_in < 7.0  # uvicorn's 5 s graceful-shutdown timeout, plus start-up slack
