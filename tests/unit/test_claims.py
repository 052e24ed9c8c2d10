"""CLAIM_SCRIPT (one script claims a batch of due jobs) and poll_iteration (ARQ's poll loop body
around it), on fakeredis and, where fakeredis is not exact enough, on the real Redis (database 12)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest
from arq.connections import ArqRedis
from arq.worker import Worker
from fakeredis.aioredis import FakeAsyncRedisConnection
from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from arq_jobs._arq import IN_PROGRESS_PREFIX
from arq_jobs._clock import now_ms
from arq_jobs._scripts.run import run_script
from arq_jobs._worker import claims as claims_module
from arq_jobs._worker.claims import CLAIM_SCRIPT, poll_iteration
from arq_jobs._worker.outage import RedisHealth
from arq_jobs._worker.wakeup import Wakeup
from devserver.redis_server import is_reachable

from .conftest import MakeWorker

REAL_REDIS_URL = "redis://127.0.0.1:6379/12"
NOW = 1_800_000_000_000  # a fixed "now" (ms) for the script's own clock argument


@dataclass(frozen=True)
class Claim:
    more: bool
    jobs: list[tuple[str, int]]

    @property
    def ids(self) -> list[str]:
        return [job_id for job_id, _ in self.jobs]


def parse(answer: list[Any]) -> Claim:
    """CLAIM_SCRIPT's answer {more, id1, score1, ...} as (more, [(id, score), ...])."""
    more, *rest = answer
    pairs = [(rest[i].decode(), int(float(rest[i + 1]))) for i in range(0, len(rest), 2)]
    return Claim(more == 1, pairs)


@dataclass(frozen=True)
class Queue:
    """An ARQ queue of our own: its key, and job ids that no other test (or person) uses."""

    redis: Redis
    key: str
    tag: str

    def job(self, n: int) -> str:
        return f"{self.tag}-{n:04}"

    async def add(self, scores: dict[str, int]) -> None:
        await self.redis.zadd(self.key, scores)  # type: ignore[arg-type]

    async def lease(self, job_id: str, px: int = 60_000) -> None:
        await self.redis.set(IN_PROGRESS_PREFIX + job_id, b"1", px=px)

    async def pttl(self, job_id: str) -> int:
        return int(await self.redis.pttl(IN_PROGRESS_PREFIX + job_id))

    async def claim(self, *, want: int, scan: int = 100, lease_ms: int = 10_000, now: int = NOW) -> Claim:
        args = CLAIM_SCRIPT.args(
            now=now, lease_ms=lease_ms, want=want, scan=scan, in_progress_prefix=IN_PROGRESS_PREFIX, limits=[]
        )
        return parse(await run_script(self.redis, CLAIM_SCRIPT, CLAIM_SCRIPT.keys(queue=self.key), args))

    async def leased(self) -> set[str]:
        found = self.redis.scan_iter(match=f"{IN_PROGRESS_PREFIX}{self.tag}-*", count=1000)
        return {key.decode().removeprefix(IN_PROGRESS_PREFIX) async for key in found}


async def real_queue() -> AsyncIterator[Queue]:
    if not is_reachable(REAL_REDIS_URL):
        pytest.skip("no Redis on 127.0.0.1:6379")
    redis = Redis.from_url(REAL_REDIS_URL)
    tag = f"unit-claims-{uuid.uuid4().hex[:12]}"
    queue = Queue(redis, f"{tag}:queue:default", tag)
    try:
        yield queue
    finally:  # only this test's keys: its queue and its jobs' leases
        leases = [IN_PROGRESS_PREFIX + job_id for job_id in await queue.leased()]
        await redis.delete(queue.key, *leases)
        await redis.aclose()


@pytest.fixture(params=["fakeredis", "redis"])
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[Queue]:
    """The script's semantics, on both: fakeredis runs it under the worker's unit tests, Redis in
    production."""
    if request.param == "redis":
        async for real in real_queue():
            yield real
        return
    pool = ConnectionPool(connection_class=FakeAsyncRedisConnection, server=fakeredis.FakeServer())
    redis = Redis(connection_pool=pool)
    yield Queue(redis, "unit:queue:default", "job")
    await redis.aclose()
    await pool.disconnect()


@pytest.fixture
async def redis_queue() -> AsyncIterator[Queue]:
    """The real Redis: exact TTLs (fakeredis' PSETEX rounds expiry times to the second) and truly
    concurrent clients."""
    async for real in real_queue():
        yield real


async def test_claims_due_jobs_in_score_order_with_their_scores(queue: Queue) -> None:
    await queue.add({queue.job(3): NOW - 100, queue.job(1): NOW - 3_000, queue.job(2): NOW - 2_000})
    claim = await queue.claim(want=10)
    assert claim == Claim(
        False, [(queue.job(1), NOW - 3_000), (queue.job(2), NOW - 2_000), (queue.job(3), NOW - 100)]
    )
    assert await queue.leased() == {queue.job(1), queue.job(2), queue.job(3)}
    # claimed jobs stay in ARQ's queue until they finish: the next claim finds nothing to take
    assert await queue.redis.zcard(queue.key) == 3
    assert await queue.claim(want=10) == Claim(False, [])


async def test_skips_jobs_whose_in_progress_key_exists(queue: Queue) -> None:
    await queue.add({queue.job(n): NOW - 1_000 + n for n in range(5)})
    await queue.lease(queue.job(0))
    await queue.lease(queue.job(3))
    claim = await queue.claim(want=10)
    assert claim.ids == [queue.job(1), queue.job(2), queue.job(4)]
    assert not claim.more


async def test_does_not_claim_jobs_not_yet_due(queue: Queue) -> None:
    await queue.add({queue.job(1): NOW, queue.job(2): NOW + 1, queue.job(3): NOW + 60_000})
    claim = await queue.claim(want=10)
    assert claim == Claim(False, [(queue.job(1), NOW)])  # due at exactly now: due
    assert await queue.leased() == {queue.job(1)}
    # once their time has come they are claimed
    assert (await queue.claim(want=10, now=NOW + 60_000)).ids == [queue.job(2), queue.job(3)]


async def test_claims_at_most_want_and_says_more_are_due(queue: Queue) -> None:
    await queue.add({queue.job(n): NOW - 1_000 + n for n in range(5)})
    first = await queue.claim(want=2)
    assert first == Claim(True, [(queue.job(0), NOW - 1_000), (queue.job(1), NOW - 999)])
    assert await queue.leased() == {queue.job(0), queue.job(1)}
    second = await queue.claim(want=2)
    assert second == Claim(True, [(queue.job(2), NOW - 998), (queue.job(3), NOW - 997)])
    third = await queue.claim(want=2)
    assert third == Claim(False, [(queue.job(4), NOW - 996)])


async def test_more_is_zero_when_every_due_job_was_claimed(queue: Queue) -> None:
    await queue.add({queue.job(n): NOW - 1_000 + n for n in range(3)})
    assert await queue.claim(want=3) == Claim(False, [(queue.job(n), NOW - 1_000 + n) for n in range(3)])


async def test_more_is_zero_when_the_rest_is_running_or_not_due(queue: Queue) -> None:
    await queue.add({queue.job(n): NOW - 1_000 + n for n in range(4)})
    await queue.add({queue.job(9): NOW + 1_000})
    await queue.lease(queue.job(2))
    await queue.lease(queue.job(3))
    assert await queue.claim(want=2) == Claim(False, [(queue.job(0), NOW - 1_000), (queue.job(1), NOW - 999)])


async def test_looks_at_no_more_than_scan_entries(queue: Queue) -> None:
    await queue.add({queue.job(n): NOW - 1_000 + n for n in range(5)})
    for n in range(3):
        await queue.lease(queue.job(n))
    # the first three entries are running: within `scan` there is nothing to claim, maybe beyond
    assert await queue.claim(want=10, scan=3) == Claim(True, [])
    assert await queue.claim(want=10, scan=4) == Claim(True, [(queue.job(3), NOW - 997)])
    assert await queue.claim(want=10, scan=10) == Claim(False, [(queue.job(4), NOW - 996)])


async def test_pages_through_more_than_two_hundred_entries(queue: Queue) -> None:
    await queue.add({queue.job(n): NOW - 10_000 + n for n in range(450)})
    for n in range(420):
        await queue.lease(queue.job(n))
    claim = await queue.claim(want=10, scan=1_000)
    assert claim.ids == [queue.job(n) for n in range(420, 430)]
    assert claim.more


async def test_scan_limit_holds_when_it_is_not_a_multiple_of_the_page(queue: Queue) -> None:
    # pages are 200 entries: with scan=250 the script must still stop after the 250th entry
    await queue.add({queue.job(n): NOW - 10_000 + n for n in range(300)})
    for n in range(250):
        await queue.lease(queue.job(n))
    claim = await queue.claim(want=10, scan=250)
    assert claim == Claim(True, [])


async def test_lease_gets_the_given_ttl(redis_queue: Queue) -> None:
    queue = redis_queue
    await queue.add({queue.job(1): NOW - 2, queue.job(2): NOW - 1})
    await queue.lease(queue.job(1), px=60_000)
    claim = await queue.claim(want=10, lease_ms=5_000)
    assert claim.ids == [queue.job(2)]
    assert 4_000 < await queue.pttl(queue.job(2)) <= 5_000
    assert 55_000 < await queue.pttl(queue.job(1)) <= 60_000  # someone else's lease is left alone


async def test_concurrent_claims_never_take_one_job_twice(redis_queue: Queue) -> None:
    queue = redis_queue
    jobs = [queue.job(n) for n in range(1_000)]
    await queue.add({job_id: NOW - 100_000 + n for n, job_id in enumerate(jobs)})
    one, two = await asyncio.gather(queue.claim(want=600, scan=2_000), queue.claim(want=600, scan=2_000))
    assert set(one.ids).isdisjoint(two.ids)
    assert sorted(one.ids + two.ids) == jobs
    assert sorted([len(one.jobs), len(two.jobs)]) == [400, 600]
    assert sorted([one.more, two.more]) == [False, True]
    assert await queue.leased() == set(jobs)


async def test_many_concurrent_small_claims_take_each_job_exactly_once(redis_queue: Queue) -> None:
    queue = redis_queue
    jobs = [queue.job(n) for n in range(500)]
    await queue.add({job_id: NOW - 100_000 + n for n, job_id in enumerate(jobs)})
    taken: list[str] = []
    while len(taken) < len(jobs):
        claims = await asyncio.gather(*(queue.claim(want=37, scan=1_000) for _ in range(8)))
        taken += [job_id for claim in claims for job_id in claim.ids]
    assert len(taken) == len(set(taken)) == len(jobs)
    assert set(taken) == set(jobs)


# poll_iteration, on a real arq Worker over fakeredis whose run_job is a stand-in


class Runs:
    """A stand-in for Worker.run_job: records the jobs started, each runs until released."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.fail: set[str] = set()

    async def run_job(self, job_id: str, score: int) -> None:
        self.started.append((job_id, score))
        await self.gates.setdefault(job_id, asyncio.Event()).wait()
        if job_id in self.fail:
            raise RuntimeError(f"run_job of {job_id} broke")

    def release(self, *job_ids: str) -> None:
        for job_id in job_ids:
            self.gates.setdefault(job_id, asyncio.Event()).set()


@dataclass
class Polling:
    worker: Worker
    wakeup: Wakeup
    runs: Runs
    beats: list[int]

    async def iterate(self) -> None:
        await poll_iteration(self.worker, self.wakeup)()
        await asyncio.sleep(0)  # the run_job tasks it created take their first step

    async def finish(self, *job_ids: str) -> None:
        """Let these jobs' run_job end, and their done callbacks run."""
        self.runs.release(*job_ids)
        tasks = [self.worker.tasks[job_id] for job_id in job_ids]
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)


@pytest.fixture
async def polling(
    make_worker: MakeWorker, arq_redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Polling]:
    worker = make_worker(max_jobs=3)
    worker.in_progress_timeout_s = 10  # what adopt() sets: the lease
    runs = Runs()
    monkeypatch.setattr(worker, "run_job", runs.run_job)
    beats: list[int] = []
    heart_beat = worker.heart_beat

    async def counted_heart_beat() -> None:
        beats.append(len(beats) + 1)
        await heart_beat()

    monkeypatch.setattr(worker, "heart_beat", counted_heart_beat)
    polling = Polling(worker, Wakeup(arq_redis, "unused"), runs, beats)
    yield polling
    runs.release(*worker.tasks)
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)


async def add_jobs(redis: ArqRedis, queue: str, scores: dict[str, int]) -> None:
    await redis.zadd(queue, scores)  # type: ignore[arg-type]


async def test_poll_iteration_starts_exactly_the_claimed_jobs_within_free_slots(
    polling: Polling, arq_redis: ArqRedis
) -> None:
    worker, runs = polling.worker, polling.runs
    now = now_ms()
    due = {f"job-{n}": now - 10_000 + n for n in range(1, 6)}
    await add_jobs(arq_redis, worker.queue_name, {**due, "job-0": now - 20_000, "later": now + 60_000})
    await arq_redis.set(IN_PROGRESS_PREFIX + "job-0", b"1", px=60_000)  # running elsewhere

    await polling.iterate()
    assert runs.started == [(f"job-{n}", due[f"job-{n}"]) for n in (1, 2, 3)]  # max_jobs=3
    assert worker.job_counter == 3 and set(worker.tasks) == {"job-1", "job-2", "job-3"}
    for n in (1, 2, 3):
        # the lease is in_progress_timeout_s (fakeredis' PSETEX counts from the start of the second)
        assert 8_000 < await arq_redis.pttl(IN_PROGRESS_PREFIX + f"job-{n}") <= 10_000
    assert polling.wakeup.backlog  # job-4 and job-5 are due and wait for a slot
    assert polling.beats == [1]
    assert await arq_redis.exists(worker.health_check_key) == 1  # ARQ's health check was written

    await polling.iterate()  # no free slot: nothing is claimed
    assert len(runs.started) == 3 and worker.job_counter == 3
    assert await arq_redis.exists(IN_PROGRESS_PREFIX + "job-4") == 0
    assert polling.beats == [1, 2]

    await polling.finish("job-1")
    assert worker.job_counter == 2
    assert polling.wakeup.event.is_set()  # a slot freed while jobs wait: poll now
    await polling.iterate()
    assert "job-1" not in worker.tasks  # reaped
    assert runs.started[3:] == [("job-4", due["job-4"])]
    assert polling.wakeup.backlog

    await polling.finish("job-2", "job-3")
    assert worker.job_counter == 1
    await polling.iterate()
    assert runs.started[4:] == [("job-5", due["job-5"])]  # one due job left for two free slots
    assert set(worker.tasks) == {"job-4", "job-5"}
    assert not polling.wakeup.backlog
    assert polling.beats == [1, 2, 3, 4]


async def test_poll_iteration_claims_only_the_free_slots(polling: Polling, arq_redis: ArqRedis) -> None:
    worker = polling.worker
    now = now_ms()
    await add_jobs(arq_redis, worker.queue_name, {"job-1": now - 100, "job-2": now - 99})
    await polling.iterate()
    assert worker.job_counter == 2 and not polling.wakeup.backlog
    await add_jobs(arq_redis, worker.queue_name, {f"job-{n}": now - 50 + n for n in range(3, 6)})
    await polling.iterate()  # one slot free for three due jobs
    assert [job_id for job_id, _ in polling.runs.started] == ["job-1", "job-2", "job-3"]
    assert worker.job_counter == 3
    assert await arq_redis.exists(IN_PROGRESS_PREFIX + "job-4") == 0


async def test_poll_iteration_does_not_claim_when_jobs_may_not_be_picked(
    polling: Polling, arq_redis: ArqRedis
) -> None:
    worker = polling.worker
    await add_jobs(arq_redis, worker.queue_name, {"job-1": now_ms() - 1})
    worker.allow_pick_jobs = False  # ARQ sets this when it is shutting down
    await polling.iterate()
    assert polling.runs.started == [] and polling.beats == [1]
    assert await arq_redis.exists(IN_PROGRESS_PREFIX + "job-1") == 0


async def test_poll_iteration_logs_an_error_of_run_job_itself_and_goes_on(
    polling: Polling, arq_redis: ArqRedis, caplog: pytest.LogCaptureFixture
) -> None:
    worker = polling.worker
    await add_jobs(arq_redis, worker.queue_name, {"job-1": now_ms() - 1})
    await polling.iterate()
    polling.runs.fail.add("job-1")
    await polling.finish("job-1")
    await add_jobs(arq_redis, worker.queue_name, {"job-2": now_ms() - 1})
    with caplog.at_level("ERROR", logger="arq_jobs._worker.claims"):
        await polling.iterate()  # ARQ would raise here and end the worker with every job it runs
    assert worker.tasks.keys() == {"job-2"} and worker.job_counter == 1
    (record,) = [r for r in caplog.records if r.name == "arq_jobs._worker.claims"]
    assert record.getMessage() == "run_job of job job-1 failed"
    assert record.exc_info is not None and str(record.exc_info[1]) == "run_job of job-1 broke"


async def test_a_freed_slot_wakes_the_poll_for_a_job_enqueued_while_every_slot_was_busy(
    make_worker: MakeWorker, arq_redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = make_worker(max_jobs=1)
    runs = Runs()
    monkeypatch.setattr(worker, "run_job", runs.run_job)
    polling = Polling(worker, Wakeup(arq_redis, "unused"), runs, [])
    await add_jobs(arq_redis, worker.queue_name, {"job-1": now_ms() - 1})
    await polling.iterate()
    assert runs.started[0][0] == "job-1" and not polling.wakeup.backlog
    # job-2 is enqueued while job-1 runs; its wake-up message makes the worker poll, with no free slot
    await add_jobs(arq_redis, worker.queue_name, {"job-2": now_ms() - 1})
    await polling.iterate()
    await polling.finish("job-1")
    # job-2 is due and the slot is free: waiting for the next regular poll (poll_delay) is what the
    # wake-up is there to avoid
    assert polling.wakeup.event.is_set()


async def test_poll_iteration_rides_out_a_redis_outage(
    polling: Polling, arq_redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker, runs = polling.worker, polling.runs
    health = RedisHealth(first_s=0.01, max_s=0.02)
    iteration = poll_iteration(worker, polling.wakeup, (), health)
    await add_jobs(arq_redis, worker.queue_name, {"job-1": now_ms() - 100})
    real_script = run_script

    async def refused(*args: Any) -> Any:
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(claims_module, "run_script", refused)
    await iteration()  # ARQ's Worker.main would end the worker with this error
    await iteration()
    assert not health.up and runs.started == [] and worker.job_counter == 0
    monkeypatch.setattr(claims_module, "run_script", real_script)
    await iteration()
    await asyncio.sleep(0)
    assert health.up
    assert runs.started == [("job-1", await arq_redis.zscore(worker.queue_name, "job-1"))]


async def test_a_job_claimed_again_while_it_runs_here_is_not_started_twice(
    polling: Polling, arq_redis: ArqRedis
) -> None:
    worker, runs = polling.worker, polling.runs
    await add_jobs(arq_redis, worker.queue_name, {"job-1": now_ms() - 100})
    await polling.iterate()
    first = worker.tasks["job-1"]
    await arq_redis.delete(IN_PROGRESS_PREFIX + "job-1")  # its lease lapsed during an outage
    await polling.iterate()
    assert [job_id for job_id, _ in runs.started] == ["job-1"]
    assert worker.tasks["job-1"] is first and worker.job_counter == 1
    assert await arq_redis.exists(IN_PROGRESS_PREFIX + "job-1") == 1  # leased again, for this attempt
