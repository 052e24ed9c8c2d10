"""A worker that dies loses nothing: SIGKILL (lease runs out, another worker re-runs the jobs) and
SIGTERM (running jobs finish within the grace period or go back to the queue)."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from arq_jobs._keys import Keys

from .conftest import kill, start_worker

# default lease (JOBS_LEASE_S=10) + one poll: the documented recovery bound is 15 s
RECOVERY_BOUND_S = 15.0


async def statuses(http: httpx.AsyncClient, urls: list[str]) -> list[dict[str, Any]]:
    return [r.json() for r in await asyncio.gather(*(http.get(u) for u in urls))]


async def wait_all(
    http: httpx.AsyncClient, urls: list[str], done: Any, timeout_s: float, check: Any = None
) -> list[dict[str, Any]]:
    """Poll every job until `done(body)` holds for all; `check(body)` asserts on each body seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        bodies = await statuses(http, urls)
        for body in bodies:
            if check is not None:
                check(body)
        if all(done(b) for b in bodies):
            return bodies
        if time.monotonic() > deadline:
            raise AssertionError(f"not all done in {timeout_s}s: {[b['status'] for b in bodies]}")
        await asyncio.sleep(0.1)


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def worker_of(redis_client: redis.Redis, prefix: str, job_id: str) -> str:
    value = redis_client.hget(Keys(prefix).record(job_id), "worker")
    assert isinstance(value, bytes)
    return value.decode()


async def test_sigkill_mid_job_reruns_every_job_on_another_worker_within_the_bound(
    http: httpx.AsyncClient, redis_url: str, key_prefix: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    first, first_id = start_worker(redis_url, key_prefix, tmp_path, "doomed", JOBS_QUEUE_NAME="lifecycle")
    try:
        accepted = [(await http.post("/jobs/hold", json={"seconds": 4})).json() for _ in range(20)]
        urls = [a["status_url"] for a in accepted]
        await wait_all(http, urls, lambda b: b["status"] == "running", timeout_s=10)
        second, second_id = start_worker(
            redis_url, key_prefix, tmp_path, "survivor", JOBS_QUEUE_NAME="lifecycle"
        )
        await asyncio.sleep(0.5)  # the first worker still holds every lease
        assert {worker_of(redis_client, key_prefix, a["job_id"]) for a in accepted} == {first_id}
        killed_at = time.time()
        kill(first)
    except BaseException:
        first.stop()
        raise

    def never_running_on_the_dead_worker(body: dict[str, Any]) -> None:
        # past the bound, a `running` job must be one the survivor started after the kill
        if body["status"] == "running" and time.time() > killed_at + RECOVERY_BOUND_S:
            assert epoch(body["started_at"]) > killed_at, body

    try:
        restarted = await wait_all(
            http,
            urls,
            lambda b: b["status"] == "running" and b["attempt"] == 2,
            timeout_s=RECOVERY_BOUND_S + 5,
            check=never_running_on_the_dead_worker,
        )
        restarts = [epoch(body["started_at"]) - killed_at for body in restarted]
        assert all(0 < delay <= RECOVERY_BOUND_S for delay in restarts), restarts
        recovery = max(restarts)
        done = await wait_all(
            http, urls, lambda b: b["is_terminal"], timeout_s=15, check=never_running_on_the_dead_worker
        )
        assert [(b["status"], b["attempt"]) for b in done] == [("succeeded", 2)] * 20
        assert {b["result"]["worker"] for b in done} == {second_id}
        print(f"recovery after SIGKILL: {recovery:.2f} s (last of 20 jobs restarted)")
    finally:
        second.stop()


async def test_sigterm_finishes_or_puts_back_every_job(
    http: httpx.AsyncClient, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    leaving, _ = start_worker(
        redis_url, key_prefix, tmp_path, "leaving", JOBS_QUEUE_NAME="lifecycle", JOBS_SHUTDOWN_GRACE_S="1"
    )
    try:
        quick = [
            (await http.post("/jobs/hold", json={"seconds": 0.5})).json()["status_url"] for _ in range(5)
        ]
        slow = [(await http.post("/jobs/hold", json={"seconds": 3})).json()["status_url"] for _ in range(5)]
        await wait_all(http, quick + slow, lambda b: b["status"] == "running", timeout_s=10)
        leaving.process.send_signal(signal.SIGTERM)
        assert leaving.process.wait(timeout=10) == 0
    finally:
        leaving.stop()
    finished = await statuses(http, quick)
    assert [(b["status"], b["attempt"]) for b in finished] == [("succeeded", 1)] * 5
    put_back = await statuses(http, slow)
    assert [b["status"] for b in put_back] == ["pending"] * 5  # back in the queue, none left running
    taker, taker_id = start_worker(redis_url, key_prefix, tmp_path, "taker", JOBS_QUEUE_NAME="lifecycle")
    try:
        done = await wait_all(http, slow, lambda b: b["is_terminal"], timeout_s=15)
        # the interrupted attempt was given back: the re-run is attempt 1 again
        assert [(b["status"], b["attempt"]) for b in done] == [("succeeded", 1)] * 5
        assert {b["result"]["worker"] for b in done} == {taker_id}
    finally:
        taker.stop()
