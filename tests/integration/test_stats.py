"""`GET /stats` with real processes: the real app under uvicorn, a real worker (`arq
workers.WorkerSettings`) and the real Redis, on a key prefix of their own. A known mix of jobs runs; the
counts agree exactly with those jobs, and the percentiles with the buckets of the run and wait times
their records show. The depth a worker samples agrees with what its queue holds."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from arq_jobs._stats.histogram import BOUNDS_MS

from .conftest import (
    delete_prefix,
    enqueue_job,
    http_ok,
    service_env,
    start_api,
    start_worker,
    terminal,
    wait_for_status,
)

SCHEDULED = 3  # delayed jobs waiting in the default queue the whole time


@pytest.fixture(scope="module")
def deployment(redis_url: str, key_prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API and a worker sampling depth every second; SCHEDULED jobs wait an hour in its queue."""
    prefix = f"{key_prefix}-stats-{uuid.uuid4().hex[:6]}"
    logs = tmp_path_factory.mktemp("stats")
    api, base = start_api(service_env(redis_url, prefix, JOBS_STATS_SAMPLE_S="1"), logs)
    services = [api]
    try:
        api.wait_until(http_ok(f"{base}/health/ready"))
        for _ in range(SCHEDULED):
            accepted = httpx.post(f"{base}/jobs/nap", json={"seconds": 0}, params={"delay": 3600}, timeout=10)
            assert accepted.status_code == 202, accepted.text
        worker, _ = start_worker(redis_url, prefix, logs, "stats-worker", JOBS_STATS_SAMPLE_S="1")
        services.append(worker)
        yield base
    finally:
        for service in services:
            service.stop()
        delete_prefix(redis_url, prefix)


def ms(timestamp: str) -> int:
    return round(datetime.fromisoformat(timestamp).timestamp() * 1000)


def bucket_bound(value_ms: int) -> int:
    """The histogram bucket a duration falls in, read as its bound (the last bound beyond it)."""
    return next((bound for bound in BOUNDS_MS if value_ms <= bound), BOUNDS_MS[-1])


def nearest_rank(values: list[int], percent: int) -> int:
    ordered = sorted(values)
    return ordered[math.ceil(percent / 100 * len(ordered)) - 1]


async def stats(http: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    response = await http.get("/stats", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_depth_samples_show_what_the_queue_holds(deployment: str) -> None:
    async with httpx.AsyncClient(base_url=deployment, timeout=10) as http:

        async def sampled() -> list[dict[str, Any]]:
            body = await stats(http, window="15m", queue="default")
            assert body["window"] == "15m" and body["resolution_s"] == 60 and len(body["series"]) == 15
            return [point for point in body["series"] if point["scheduled"] is not None]

        for _ in range(100):  # the worker samples every second
            if await sampled():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.5)  # a few more samples, averaged in
        points = await sampled()
        assert points
        for point in points:  # nothing ran yet: every sample saw the same queue
            depth = (point["pending"], point["scheduled"], point["running"], point["retrying"])
            assert depth == (0.0, float(SCHEDULED), 0.0, 0.0)
        # a task's statistics have no depth
        by_task = await stats(http, window="15m", task="nap")
        assert all(point["scheduled"] is None for point in by_task["series"])


async def test_counts_and_percentiles_agree_exactly_with_a_known_mix_of_jobs(deployment: str) -> None:
    async with httpx.AsyncClient(base_url=deployment, timeout=10) as http:
        naps = [await enqueue_job(http, "nap", {"seconds": seconds}) for seconds in [0.06] * 8 + [0.6] * 2]
        fails = [await enqueue_job(http, "fail", {"permanent": True}) for _ in range(3)]
        flaky = [
            await enqueue_job(http, "fail", {"permanent": False, "retry_after_s": 0.2}) for _ in range(2)
        ]
        later = await enqueue_job(http, "nap", {"seconds": 0}, delay=3600)
        assert (await http.delete(f"/jobs/{later['job_id']}")).status_code == 200
        ended = [await wait_for_status(http, job["status_url"], terminal) for job in naps + fails + flaky]
        assert [body["status"] for body in ended] == ["succeeded"] * 10 + ["failed"] * 5

        body = await stats(http, window="15m")
        totals = {
            name: sum(point[name] for point in body["series"])
            for name in ("succeeded", "failed", "retried", "cancelled", "dead_lettered")
        }
        assert totals == {"succeeded": 10, "failed": 5, "retried": 2, "cancelled": 1, "dead_lettered": 5}

        runs = [ms(b["finished_at"]) - ms(b["started_at"]) for b in ended[:10]]
        waits = [ms(b["started_at"]) - ms(b["scheduled_for"] or b["enqueued_at"]) for b in ended[:10]]
        run_buckets, wait_buckets = [bucket_bound(v) for v in runs], [bucket_bound(v) for v in waits]
        tasks = {row["task"]: row for row in body["tasks"]}
        assert list(tasks) == ["nap", "fail"]  # busiest first
        assert tasks["nap"] == {
            "task": "nap",
            "count": 10,
            "failure_rate": 0.0,
            "succeeded": 10,
            "failed": 0,
            "retried": 0,
            "cancelled": 1,
            "dead_lettered": 0,
            "run_p50_ms": nearest_rank(run_buckets, 50),
            "run_p95_ms": nearest_rank(run_buckets, 95),
            "run_p99_ms": nearest_rank(run_buckets, 99),
            "wait_p50_ms": nearest_rank(wait_buckets, 50),
            "wait_p95_ms": nearest_rank(wait_buckets, 95),
            "wait_p99_ms": nearest_rank(wait_buckets, 99),
        }
        assert (
            tasks["nap"]["run_p50_ms"] == 100 and tasks["nap"]["run_p95_ms"] == 1000
        )  # 60 ms and 600 ms naps
        fail = tasks["fail"]
        assert (
            fail["count"],
            fail["failure_rate"],
            fail["failed"],
            fail["dead_lettered"],
            fail["retried"],
        ) == (
            5,
            1.0,
            5,
            5,
            2,
        )
        assert fail["succeeded"] == 0 and fail["cancelled"] == 0
        assert (
            fail["run_p50_ms"] is not None and fail["run_p50_ms"] <= fail["run_p95_ms"] <= fail["run_p99_ms"]
        )

        # one task's series: its own jobs only; the 1 h window: 60 points of a minute
        nap = await stats(http, window="1h", task="nap")
        assert nap["task"] == "nap" and len(nap["series"]) == 60 and nap["resolution_s"] == 60
        assert sum(point["succeeded"] for point in nap["series"]) == 10
        assert sum(point["failed"] for point in nap["series"]) == 0
        assert [row["task"] for row in nap["tasks"]] == ["nap"]
        # the hours: the 24 h window reads the same counts from the hour hashes
        day = await stats(http, window="24h")
        assert len(day["series"]) == 24 and day["resolution_s"] == 3600
        assert sum(point["succeeded"] for point in day["series"]) == 10
        assert {row["task"]: row["count"] for row in day["tasks"]} == {"nap": 10, "fail": 5}
