"""Per-task limits: parsing (arq_jobs._limits.spec), the claim script holding jobs back (arq_jobs._worker.claims) and
the release script giving places back (arq_jobs._limits.worker), on fakeredis and the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest
from fakeredis.aioredis import FakeAsyncRedisConnection
from redis.asyncio import ConnectionPool, Redis

from arq_jobs._arq import IN_PROGRESS_PREFIX
from arq_jobs._keys import Keys
from arq_jobs._limits.spec import RateLimit, TaskLimits
from arq_jobs._limits.worker import RELEASE_SCRIPT, WorkerLimits
from arq_jobs._scripts.run import run_script
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, TaskRegistry, task
from arq_jobs._worker.claims import CLAIM_SCRIPT
from devserver.redis_server import is_reachable

REAL_REDIS_URL = "redis://127.0.0.1:6379/12"
NOW = 1_800_000_000_000
LEASE = 10_000


@pytest.mark.parametrize(
    ("text", "count", "period_s", "interval_ms", "shown"),
    [
        ("10/s", 10, 1, 100.0, "10/s"),
        ("100/m", 100, 60, 600.0, "100/m"),
        (" 5 / h ", 5, 3600, 720_000.0, "5/h"),
        ("1/d", 1, 86_400, 86_400_000.0, "1/d"),
        ("3/10s", 3, 10, 10_000 / 3, "3/10s"),
    ],
)
def test_rate_limits_parse(text: str, count: int, period_s: int, interval_ms: float, shown: str) -> None:
    rate = RateLimit.parse(text)
    assert (rate.count, rate.period_s, rate.interval_ms, str(rate)) == (count, period_s, interval_ms, shown)


@pytest.mark.parametrize("text", ["10", "10/x", "0/s", "-1/s", "1.5/s", "ten/s", "10/0s", ""])
def test_bad_rate_limits_are_refused_with_the_form_to_use(text: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimit.parse(text)


def test_max_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_concurrency must be at least 1"):
        TaskLimits(max_concurrency=0)
    assert not TaskLimits() and TaskLimits(max_concurrency=1)


@dataclass(frozen=True)
class Limited:
    """One queue under a key prefix of its own, its jobs' records naming their task."""

    redis: Redis
    prefix: str

    @property
    def keys(self) -> Keys:
        return Keys(self.prefix)

    @property
    def queue(self) -> str:
        return self.keys.queue("default")

    def job(self, n: int) -> str:
        return f"{self.prefix}-{n:04}"

    async def add(self, task: str, scores: dict[str, int]) -> None:
        await self.redis.zadd(self.queue, scores)  # type: ignore[arg-type]
        for job_id in scores:
            await self.redis.hset(self.keys.record(job_id), mapping={"task": task})  # type: ignore[misc]

    async def claim(
        self, limits: list[Any], *, want: int = 50, now: int = NOW, scan: int = 1_000
    ) -> list[str]:
        """`limits`: per task its name, interval and max running (the claim script also gets the
        task's limit keys and the record key prefix, as WorkerLimits.claim_args gives them)."""
        tail: list[Any] = []
        for i in range(0, len(limits), 3):
            kinds = ("rate", "slots", "running", "waiting")
            tail += [*limits[i : i + 3], *(self.keys.limit(limits[i], kind) for kind in kinds)]
        args = CLAIM_SCRIPT.args(
            now=now,
            lease_ms=LEASE,
            want=want,
            scan=scan,
            in_progress_prefix=IN_PROGRESS_PREFIX,
            limits=[self.keys.record(""), *tail] if tail else [],
        )
        answer = await run_script(self.redis, CLAIM_SCRIPT, CLAIM_SCRIPT.keys(queue=self.queue), args)
        return [answer[i].decode() for i in range(1, len(answer), 2)]

    async def release(self, task: str, job_id: str, max_running: int, now: int = NOW) -> int:
        keys = RELEASE_SCRIPT.keys(
            running=self.keys.limit(task, "running"), waiting=self.keys.limit(task, "waiting")
        )
        args = RELEASE_SCRIPT.args(
            job_id=job_id,
            now=now,
            max_running=max_running,
            record_prefix=self.keys.record(""),
            wake_suffix=Keys.wake_channel(""),
        )
        return int(await run_script(self.redis, RELEASE_SCRIPT, keys, args))

    async def score(self, job_id: str) -> int | None:
        score = await self.redis.zscore(self.queue, job_id)
        return None if score is None else int(score)

    async def throttle(self, job_id: str) -> tuple[str | None, int | None]:
        reason, until = await self.redis.hmget(self.keys.record(job_id), ["throttle", "throttled_until"])  # type: ignore[misc]
        return (reason.decode() if reason else None, int(until) if until else None)

    async def running(self, task: str) -> dict[str, int]:
        found = await self.redis.zrange(self.keys.limit(task, "running"), 0, -1, withscores=True)
        return {member.decode(): int(score) for member, score in found}

    async def waiting(self, task: str) -> list[str]:
        return [m.decode() for m in await self.redis.zrange(self.keys.limit(task, "waiting"), 0, -1)]


@pytest.fixture(params=["fakeredis", "redis"])
async def limited(request: pytest.FixtureRequest) -> AsyncIterator[Limited]:
    prefix = f"unit-limits-{uuid.uuid4().hex[:10]}"
    if request.param == "fakeredis":
        pool = ConnectionPool(connection_class=FakeAsyncRedisConnection, server=fakeredis.FakeServer())
        redis = Redis(connection_pool=pool)
        yield Limited(redis, prefix)
        await redis.aclose()
        await pool.disconnect()
        return
    if not is_reachable(REAL_REDIS_URL):
        pytest.skip("no Redis on 127.0.0.1:6379")
    redis = Redis.from_url(REAL_REDIS_URL)
    try:
        yield Limited(redis, prefix)
    finally:
        found = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        found += [key async for key in redis.scan_iter(match=f"{IN_PROGRESS_PREFIX}{prefix}*", count=1000)]
        if found:
            await redis.delete(*found)
        await redis.aclose()


async def test_a_rate_limit_claims_one_job_per_interval_and_parks_the_rest_in_slots(limited: Limited) -> None:
    jobs = [limited.job(n) for n in range(5)]
    await limited.add("hook", {job_id: NOW - 1_000 + n for n, job_id in enumerate(jobs)})
    assert await limited.claim(["hook", 100, 0]) == [jobs[0]]
    # the others wait for their slot, one interval apart, and say so; no attempt is counted
    assert [await limited.score(j) for j in jobs[1:]] == [NOW + 100, NOW + 200, NOW + 300, NOW + 400]
    assert [await limited.throttle(j) for j in jobs[1:]] == [("rate", NOW + 100 * n) for n in range(1, 5)]
    assert await limited.redis.exists(*(IN_PROGRESS_PREFIX + j for j in jobs[1:])) == 0
    # nothing more before the next slot; at it, exactly the next job
    assert await limited.claim(["hook", 100, 0], now=NOW + 99) == []
    assert await limited.claim(["hook", 100, 0], now=NOW + 100) == [jobs[1]]
    assert await limited.claim(["hook", 100, 0], now=NOW + 250) == [jobs[2]]
    # a late start pushes the next slot back: never two starts closer than the interval
    assert await limited.claim(["hook", 100, 0], now=NOW + 349) == []
    assert await limited.score(jobs[3]) == NOW + 350
    assert await limited.claim(["hook", 100, 0], now=NOW + 350) == [jobs[3]]


async def test_a_backlog_is_parked_once_in_order_and_a_newcomer_queues_behind_it(limited: Limited) -> None:
    jobs = [limited.job(n) for n in range(300)]
    await limited.add("hook", {job_id: NOW - 10_000 + n for n, job_id in enumerate(jobs)})
    assert await limited.claim(["hook", 100, 0], scan=1_000) == [jobs[0]]
    assert [await limited.score(j) for j in jobs[1:]] == [NOW + 100 * n for n in range(1, 300)]
    # parked jobs are not looked at again before their slot: nothing is due, nothing is written
    before = [await limited.throttle(j) for j in jobs[1:]]
    assert await limited.claim(["hook", 100, 0], now=NOW + 50, scan=1_000) == []
    assert [await limited.throttle(j) for j in jobs[1:]] == before
    # a job enqueued now, when the pace alone would let it start, still waits behind all of them
    await limited.add("hook", {limited.job(999): NOW + 150})
    assert await limited.claim(["hook", 100, 0], now=NOW + 150, scan=1_000) == [jobs[1]]
    assert await limited.score(limited.job(999)) == NOW + 30_000
    assert await limited.throttle(limited.job(999)) == ("rate", NOW + 30_000)


async def test_jobs_of_other_tasks_are_not_held_back(limited: Limited) -> None:
    await limited.add("hook", {limited.job(n): NOW - 100 + n for n in range(3)})
    await limited.add("free", {limited.job(n): NOW - 100 + n for n in range(3, 6)})
    claimed = await limited.claim(["hook", 1_000, 0])
    assert claimed == [limited.job(0), limited.job(3), limited.job(4), limited.job(5)]
    assert await limited.throttle(limited.job(3)) == (None, None)


async def test_a_concurrency_limit_claims_up_to_the_limit_and_parks_the_rest(limited: Limited) -> None:
    jobs = [limited.job(n) for n in range(5)]
    await limited.add("slow", {job_id: NOW - 1_000 + n for n, job_id in enumerate(jobs)})
    assert await limited.claim(["slow", 0, 2]) == jobs[:2]
    assert await limited.running("slow") == {jobs[0]: NOW + LEASE, jobs[1]: NOW + LEASE}
    # the rest wait one lease at most (a safety net), in their task's waiting set by due time
    assert [await limited.score(j) for j in jobs[2:]] == [NOW + LEASE] * 3
    assert [await limited.throttle(j) for j in jobs[2:]] == [("concurrency", NOW + LEASE)] * 3
    assert await limited.waiting("slow") == [f"{limited.queue}|{j}" for j in jobs[2:]]
    assert await limited.claim(["slow", 0, 2], now=NOW + 5) == []


async def test_a_finished_attempt_wakes_the_longest_waiting_job_which_is_then_claimed(
    limited: Limited,
) -> None:
    jobs = [limited.job(n) for n in range(4)]
    await limited.add("slow", {job_id: NOW - 1_000 + n for n, job_id in enumerate(jobs)})
    assert await limited.claim(["slow", 0, 2]) == jobs[:2]
    pubsub = limited.redis.pubsub()
    await pubsub.subscribe(Keys.wake_channel(limited.queue))
    await pubsub.get_message(timeout=1)  # the subscription's confirmation
    assert await limited.release("slow", jobs[0], 2, now=NOW + 50) == 1
    assert await limited.running("slow") == {jobs[1]: NOW + LEASE}
    assert await limited.score(jobs[2]) == NOW + 50  # due now
    assert await limited.throttle(jobs[2]) == ("concurrency", NOW + 50)
    assert await limited.score(jobs[3]) == NOW + LEASE  # still waiting
    message = await pubsub.get_message(timeout=1)
    assert message is not None and message["type"] == "message"
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert await limited.claim(["slow", 0, 2], now=NOW + 50) == [jobs[2]]
    assert await limited.waiting("slow") == [f"{limited.queue}|{jobs[3]}"]


async def test_release_skips_waiting_jobs_that_left_their_queue(limited: Limited) -> None:
    jobs = [limited.job(n) for n in range(4)]
    await limited.add("slow", {job_id: NOW - 1_000 + n for n, job_id in enumerate(jobs)})
    assert await limited.claim(["slow", 0, 1]) == jobs[:1]
    await limited.redis.zrem(limited.queue, jobs[1])  # cancelled while it waited
    assert await limited.release("slow", jobs[0], 1) == 1
    assert await limited.score(jobs[2]) == NOW and await limited.score(jobs[3]) == NOW + LEASE


async def test_places_of_a_dead_worker_free_themselves_when_their_lease_runs_out(limited: Limited) -> None:
    jobs = [limited.job(n) for n in range(3)]
    await limited.add("slow", {job_id: NOW - 1_000 + n for n, job_id in enumerate(jobs)})
    assert await limited.claim(["slow", 0, 1]) == jobs[:1]
    # nobody renewed job 0's place: one lease later job 1 (woken by its safety net) gets it
    assert await limited.claim(["slow", 0, 1], now=NOW + LEASE) == [jobs[1]]
    assert await limited.running("slow") == {jobs[1]: NOW + 2 * LEASE}


async def test_both_limits_together_take_a_rate_slot_only_when_a_place_is_free(limited: Limited) -> None:
    jobs = [limited.job(n) for n in range(3)]
    await limited.add("both", {job_id: NOW - 1_000 + n for n, job_id in enumerate(jobs)})
    assert await limited.claim(["both", 100, 1]) == jobs[:1]
    assert await limited.throttle(jobs[1]) == ("concurrency", NOW + LEASE)
    await limited.release("both", jobs[0], 1, now=NOW + 10)
    # a place is free but the rate's next slot is NOW + 100
    assert await limited.claim(["both", 100, 1], now=NOW + 10) == []
    assert await limited.throttle(jobs[1]) == ("rate", NOW + 100)
    assert await limited.claim(["both", 100, 1], now=NOW + 100) == [jobs[1]]


async def test_parked_jobs_do_not_hide_due_jobs_behind_them(limited: Limited) -> None:
    # 250 throttled jobs first, then unlimited ones: paging must not skip past the free jobs
    await limited.add("hook", {limited.job(n): NOW - 10_000 + n for n in range(250)})
    await limited.add("free", {limited.job(n): NOW - 9_000 + n for n in range(250, 260)})
    claimed = await limited.claim(["hook", 1_000, 0], scan=300)
    assert claimed == [limited.job(0)] + [limited.job(n) for n in range(250, 260)]


class Nothing(TaskInput):
    pass


@task(rate_limit="10/s")
async def paced(ctx: JobContext, data: Nothing) -> None:
    pass


@task(max_concurrency=2)
async def capped(ctx: JobContext, data: Nothing) -> None:
    pass


@task()
async def unlimited(ctx: JobContext, data: Nothing) -> None:
    pass


def test_worker_limits_tell_the_claim_script_and_hold_only_concurrency_places() -> None:
    registry = TaskRegistry([paced, capped, unlimited])
    limits = WorkerLimits.of(registry, Keys("p"))
    assert limits.claim_args() == [
        "p:job:",
        *("paced", 100.0, 0, "p:limit:paced:rate", "p:limit:paced:slots"),
        *("p:limit:paced:running", "p:limit:paced:waiting"),
        *("capped", 0, 2, "p:limit:capped:rate", "p:limit:capped:slots"),
        *("p:limit:capped:running", "p:limit:capped:waiting"),
    ]
    limits.hold("job-1", "paced")
    limits.hold("job-2", "capped")
    limits.hold("job-3", "unlimited")
    assert limits.held == {"job-2": "capped"}
    assert limits.release_call("job-1", NOW) is None
    assert limits.release_call("job-2", NOW) == (
        ["p:limit:capped:running", "p:limit:capped:waiting"],
        ["job-2", NOW, 2, "p:job:", ":wake"],
    )
    assert limits.held == {}
    assert WorkerLimits.of(TaskRegistry([]), Keys("p")).claim_args() == []
