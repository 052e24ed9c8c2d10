"""Statistics read back (arq_jobs._stats.reader) from hashes written as the scripts write them, the
histogram's percentiles, `GET /stats` and its errors, and jobs run by a worker counted end to end (on
fakeredis, whose Lua runs the real scripts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis

from arq_jobs._config import Settings
from arq_jobs._keys import Keys
from arq_jobs._stats.histogram import LABELS, bucket, percentile
from arq_jobs._stats.reader import read_stats
from arq_jobs._stats.window import Window

from .conftest import RunWorker

NOW = 1_800_000_130_000  # 2027-01-15 08:02:10 UTC: 10 s into a minute
MINUTE = NOW // 60_000 * 60  # epoch s
HOUR = NOW // 3_600_000 * 3600


async def write(redis: ArqRedis, key: str, fields: dict[str, int]) -> None:
    await redis.hset(key, mapping=fields)  # type: ignore[misc]


async def scope(redis: ArqRedis, keys: Keys, queue: str, task: str, at_ms: int = NOW) -> None:
    await redis.zadd(keys.stats_scopes(), {f"{queue}:{task}": at_ms})


def test_percentiles_are_the_bounds_of_the_buckets_holding_their_ranks() -> None:
    assert percentile({}, 50) is None
    assert percentile({"10": 1}, 99) == 10
    counts = {"5": 50, "100": 45, "1000": 4, "inf": 1}  # 100 values
    assert [percentile(counts, p) for p in (50, 51, 95, 96, 99, 100)] == [5, 100, 100, 1000, 1000, 3_600_000]
    assert bucket(0.5) == "1" and bucket(2) == "2" and bucket(2.01) == "5" and bucket(3_600_001) == "inf"
    assert LABELS[0] == "1" and LABELS[-1] == "inf"


@pytest.mark.parametrize(
    ("window", "points", "resolution_s"),
    [("15m", 15, 60), ("1h", 60, 60), ("24h", 24, 3600), ("7d", 168, 3600), ("30d", 120, 21_600)],
)
async def test_every_window_has_its_points_ending_with_the_interval_now_running(
    arq_redis: ArqRedis, settings: Settings, window: str, points: int, resolution_s: int
) -> None:
    stats = await read_stats(arq_redis, settings, Window(window), NOW, queues=["default"])
    assert (stats.window, stats.resolution_s, len(stats.series)) == (window, resolution_s, points)
    last = NOW // 1000 // resolution_s * resolution_s
    assert stats.series[-1].t == datetime.fromtimestamp(last, UTC)
    assert stats.series[0].t == datetime.fromtimestamp(last - (points - 1) * resolution_s, UTC)
    empty = stats.series[0]
    assert (empty.succeeded, empty.failed, empty.run_p50_ms, empty.pending) == (0, 0, None, None)
    assert stats.tasks == []


async def test_minutes_sum_into_points_and_a_table_per_task(arq_redis: ArqRedis, settings: Settings) -> None:
    keys = Keys(settings.key_prefix)
    now_minute, earlier = (
        keys.stats("m", MINUTE, "jobs:default:a"),
        keys.stats("m", MINUTE - 120, "jobs:default:a"),
    )
    await write(arq_redis, now_minute, {"succeeded": 3, "failed": 1, "run:10": 3, "run:250": 1, "wait:1": 4})
    await write(arq_redis, earlier, {"succeeded": 1, "retried": 2, "run:inf": 3, "wait:5000": 3})
    await write(arq_redis, keys.stats("m", MINUTE, "jobs:high:a"), {"cancelled": 1})
    await write(arq_redis, keys.stats("m", MINUTE, "jobs:default:b"), {"failed": 2, "dead_lettered": 2})
    await write(arq_redis, keys.stats("m", MINUTE - 15 * 60, "jobs:default:b"), {"failed": 9})  # before it
    for queue, task in [("default", "a"), ("high", "a"), ("default", "b")]:
        await scope(arq_redis, keys, queue, task)

    stats = await read_stats(arq_redis, settings, Window.MINUTES_15, NOW, queues=["default", "high"])
    last, two_before = stats.series[-1], stats.series[-3]
    assert (last.succeeded, last.failed, last.retried, last.cancelled, last.dead_lettered) == (3, 3, 0, 1, 2)
    assert (last.run_p50_ms, last.run_p95_ms, last.wait_p99_ms) == (10, 250, 1)
    assert (two_before.succeeded, two_before.retried, two_before.run_p50_ms, two_before.wait_p50_ms) == (
        1,
        2,
        3_600_000,
        5000,
    )
    assert sum(point.failed for point in stats.series) == 3  # the minute before the window is not in it
    assert [row.model_dump() for row in stats.tasks] == [
        {
            "task": "a",
            "count": 5,
            "failure_rate": 0.2,
            "run_p50_ms": 250,  # 3 × 10, 1 × 250, 3 × beyond 1 h: the 4th of 7
            "run_p95_ms": 3_600_000,
            "wait_p95_ms": 5000,
            "succeeded": 4,
            "failed": 1,
            "retried": 2,
            "cancelled": 1,
            "dead_lettered": 0,
            "run_p99_ms": 3_600_000,
            "wait_p50_ms": 1,
            "wait_p99_ms": 5000,
        },
        {
            "task": "b",
            "count": 2,
            "failure_rate": 1.0,
            "run_p50_ms": None,
            "run_p95_ms": None,
            "wait_p95_ms": None,
            "succeeded": 0,
            "failed": 2,
            "retried": 0,
            "cancelled": 0,
            "dead_lettered": 2,
            "run_p99_ms": None,
            "wait_p50_ms": None,
            "wait_p99_ms": None,
        },
    ]

    only_a = await read_stats(arq_redis, settings, Window.MINUTES_15, NOW, queues=["default"], task="a")
    assert (only_a.series[-1].succeeded, only_a.series[-1].failed, only_a.series[-1].cancelled) == (3, 1, 1)
    assert [row.task for row in only_a.tasks] == ["a"]
    high = await read_stats(arq_redis, settings, Window.MINUTES_15, NOW, queues=["default"], queue="high")
    assert (high.series[-1].cancelled, high.series[-1].succeeded) == (1, 0)
    assert [row.task for row in high.tasks] == ["a"] and high.tasks[0].count == 0


async def test_depth_is_each_queues_average_added_up_and_null_without_samples(
    arq_redis: ArqRedis, settings: Settings
) -> None:
    keys = Keys(settings.key_prefix)
    sample = {"samples": 4, "pending": 10, "scheduled": 2, "running": 8, "retrying": 0}
    await write(arq_redis, keys.stats("m", MINUTE, "depth:default"), sample)
    await write(
        arq_redis, keys.stats("m", MINUTE, "depth:high"), {"samples": 2, "pending": 3, "scheduled": 0}
    )
    stats = await read_stats(arq_redis, settings, Window.MINUTES_15, NOW, queues=["default", "high", "low"])
    last = stats.series[-1]
    assert (last.pending, last.scheduled, last.running, last.retrying) == (4.0, 0.5, 2.0, 0.0)  # 10/4 + 3/2
    assert stats.series[-2].pending is None
    high = await read_stats(arq_redis, settings, Window.MINUTES_15, NOW, queues=["default"], queue="high")
    assert high.series[-1].pending == 1.5
    by_task = await read_stats(arq_redis, settings, Window.MINUTES_15, NOW, queues=["default"], task="a")
    assert by_task.series[-1].pending is None


async def test_long_windows_read_the_hours(arq_redis: ArqRedis, settings: Settings) -> None:
    keys = Keys(settings.key_prefix)
    await write(arq_redis, keys.stats("h", HOUR, "jobs:default:a"), {"succeeded": 7, "run:100": 7})
    await write(arq_redis, keys.stats("h", HOUR - 5 * 3600, "jobs:default:a"), {"succeeded": 2})
    await write(arq_redis, keys.stats("m", MINUTE, "jobs:default:a"), {"succeeded": 99})  # minutes: not read
    await scope(arq_redis, keys, "default", "a")
    day = await read_stats(arq_redis, settings, Window.HOURS_24, NOW, queues=["default"])
    assert [p.succeeded for p in day.series[-6:]] == [2, 0, 0, 0, 0, 7]
    month = await read_stats(arq_redis, settings, Window.DAYS_30, NOW, queues=["default"])
    # 6-hour points: 08:00 is in the one from 06:00, 03:00 in the one before
    assert [p.succeeded for p in month.series[-2:]] == [2, 7]
    assert month.tasks[0].run_p50_ms == 100


async def test_get_stats_answers_the_window_and_names_bad_input(client: httpx.AsyncClient) -> None:
    response = await client.get("/stats", params={"window": "15m"})
    assert response.status_code == 200
    body = response.json()
    assert (body["window"], body["resolution_s"], body["task"], body["queue"], len(body["series"])) == (
        "15m",
        60,
        None,
        None,
        15,
    )
    assert set(body["series"][0]) == {
        "t", "succeeded", "failed", "retried", "cancelled", "dead_lettered",
        "run_p50_ms", "run_p95_ms", "run_p99_ms", "wait_p50_ms", "wait_p95_ms", "wait_p99_ms",
        "pending", "scheduled", "running", "retrying",
    }  # fmt: skip
    assert (await client.get("/stats")).json()["window"] == "1h"

    bad = await client.get("/stats", params={"window": "2h"})
    assert bad.status_code == 422 and bad.json()["error"] == "validation_error"
    assert "15m" in bad.text and "window" in bad.text
    unknown = await client.get("/stats", params={"task": "nope"})
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_task"
    elsewhere = await client.get("/stats", params={"queue": "nope"})
    assert elsewhere.status_code == 422 and elsewhere.json()["error"] == "unknown_queue"


async def test_jobs_a_worker_ran_are_counted(client: httpx.AsyncClient, run_worker: RunWorker) -> None:
    for n in range(3):
        assert (await client.post("/jobs/noop", json={"value": n})).status_code == 202
    await run_worker()
    body = (await client.get("/stats", params={"window": "15m", "task": "noop"})).json()
    assert sum(point["succeeded"] for point in body["series"]) == 3
    row: dict[str, Any] = body["tasks"][0]
    assert (row["task"], row["count"], row["failure_rate"], row["succeeded"]) == ("noop", 3, 0.0, 3)
    assert row["run_p50_ms"] is not None and row["wait_p95_ms"] is not None
