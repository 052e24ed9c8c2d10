"""Periodic jobs with the real Redis and real workers: three workers run each tick of a once-a-second
schedule exactly once, GET /schedules shows its next tick and last run, and ticks missed while no
worker ran are not made up for."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis

from tests.integration.tasks.scheduled import runs_key

from .conftest import Service, http_ok, service_env, start_api, start_worker, terminal, wait_for_status

SCHEDULE = "every_second"
ENABLED = {"JOBS_DISABLED_SCHEDULES": ""}  # empty: none disabled (conftest disables every_second)


def jobs_by_tick(client: redis.Redis, prefix: str) -> dict[int, list[str]]:
    """Every job the schedule made under `prefix`, by its tick (epoch ms, the id's last part)."""
    found: dict[int, list[str]] = {}
    for key in client.scan_iter(match=f"{prefix}:job:cron-{SCHEDULE}-*", count=500):
        job_id = key.decode().removeprefix(f"{prefix}:job:")
        found.setdefault(int(job_id.rsplit("-", 2)[1]), []).append(job_id)  # cron-<name>-<tick>-<hash>
    return found


def fired_ticks(client: redis.Redis, prefix: str) -> dict[int, str]:
    """The one job of each tick fired under `prefix` (fails if a tick made more than one)."""
    found = jobs_by_tick(client, prefix)
    assert [jobs for jobs in found.values() if len(jobs) > 1] == []
    return {tick: jobs[0] for tick, jobs in found.items()}


async def wait_for_tick(client: redis.Redis, prefix: str, at_or_after_ms: int, timeout_s: float = 15) -> None:
    """Poll until the schedule has fired a tick at or after `at_or_after_ms`."""
    deadline = time.monotonic() + timeout_s
    while not any(tick >= at_or_after_ms for tick in jobs_by_tick(client, prefix)):
        assert time.monotonic() < deadline, f"no tick at or after {at_or_after_ms} within {timeout_s} s"
        await asyncio.sleep(0.05)


async def start_workers(redis_url: str, prefix: str, log_dir: Path, names: list[str]) -> list[Service]:
    started = await asyncio.gather(
        *(asyncio.to_thread(start_worker, redis_url, prefix, log_dir, name, **ENABLED) for name in names)
    )
    return [service for service, _ in started]


async def stop_all(services: list[Service]) -> None:
    await asyncio.gather(*(asyncio.to_thread(service.stop) for service in services))


@pytest.fixture
async def schedules_api(
    redis_url: str, key_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the schedule enabled (the session's app has it disabled, like its workers)."""
    service, base = start_api(service_env(redis_url, key_prefix, **ENABLED), tmp_path_factory.mktemp("api"))
    try:
        await asyncio.to_thread(service.wait_until, http_ok(f"{base}/health/ready"))
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            yield client
    finally:
        service.stop()


def ms(moment: float) -> int:
    return round(moment * 1000)


def iso(tick_ms: int) -> str:
    return datetime.fromtimestamp(tick_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


async def test_three_workers_run_each_tick_once(
    redis_url: str,
    key_prefix: str,
    redis_client: redis.Redis,
    schedules_api: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    earlier = set(fired_ticks(redis_client, key_prefix))  # other tests' ticks under the session prefix
    workers = await start_workers(redis_url, key_prefix, tmp_path, ["sched-1", "sched-2", "sched-3"])
    try:
        # five seconds during which all three workers run
        start = time.time()
        end = start + 5
        await wait_for_tick(redis_client, key_prefix, ms(math.ceil(end)))
        fired = fired_ticks(redis_client, key_prefix)
        in_window = sorted(tick for tick in fired if ms(start) <= tick < ms(end))
        # the five whole seconds of the window, each once
        assert in_window == [1000 * second for second in range(math.ceil(start), math.ceil(end))]
        for tick in in_window:
            body = await wait_for_status(schedules_api, f"/jobs/{fired[tick]}", terminal)
            assert (body["task"], body["schedule"], body["status"]) == ("record_tick", SCHEDULE, "succeeded")
            assert body["result"] == "every second"
    finally:
        await stop_all(workers)

    fired = fired_ticks(redis_client, key_prefix)
    ticks = sorted(set(fired) - earlier)
    # from the first worker's first tick to the last one's stop: every second once, none missed
    assert ticks == list(range(ticks[0], ticks[-1] + 1000, 1000))
    ran: list[bytes] = redis_client.lrange(runs_key(key_prefix), 0, -1)  # type: ignore[assignment]
    runs = [job_id.decode() for job_id in ran]
    assert len(runs) == len(set(runs))  # no job ran twice
    assert {fired[tick] for tick in in_window} <= set(runs)

    newest = fired[ticks[-1]]
    before = (await schedules_api.get(f"/jobs/{newest}")).json()["status"]
    asked = datetime.now(UTC)
    response = await schedules_api.get("/schedules")
    after = (await schedules_api.get(f"/jobs/{newest}")).json()["status"]
    assert response.status_code == 200
    listed = {entry["name"]: entry for entry in response.json()["schedules"]}
    entry = listed[SCHEDULE]
    next_run = datetime.fromisoformat(entry["next_run_at"])
    assert asked < next_run <= asked + timedelta(seconds=1)
    assert {k: v for k, v in entry.items() if k not in ("next_run_at", "last_run")} == {
        "name": SCHEDULE,
        "task": "record_tick",
        "cron": "* * * * * *",
        "timezone": "UTC",
        "queue": "default",
        "enabled": True,
    }
    last_run = entry["last_run"]
    assert (last_run["job_id"], last_run["scheduled_for"]) == (newest, iso(ticks[-1]))
    assert last_run["status"] in {before, after}  # a session worker may run it meanwhile


async def test_ticks_missed_while_no_worker_ran_are_not_made_up_for(
    redis_url: str, key_prefix: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    first_started = time.time()
    (first,) = await start_workers(redis_url, key_prefix, tmp_path, ["sched-before"])
    try:
        await wait_for_tick(redis_client, key_prefix, ms(first_started) + 1000)
    finally:
        await stop_all([first])
    stopped = time.time()
    before_pause = fired_ticks(redis_client, key_prefix)

    await asyncio.sleep(3)  # no worker fires the schedule for three ticks or more

    resumed = time.time()
    (second,) = await start_workers(redis_url, key_prefix, tmp_path, ["sched-after"])
    try:
        await wait_for_tick(redis_client, key_prefix, ms(resumed) + 2000)
    finally:
        await stop_all([second])

    fired = fired_ticks(redis_client, key_prefix)
    assert [tick for tick in fired if ms(stopped) < tick < ms(resumed)] == []
    after = sorted(tick for tick in fired if tick not in before_pause)
    assert after[0] > ms(resumed)
    assert after == list(range(after[0], after[-1] + 1000, 1000))  # from its start, one per second
    assert len(after) >= 2
