"""FINISH_SCRIPT does what ARQ 0.28's own `Worker.finish_job` transaction does, plus our transition,
in one script: each case runs both on separate fakeredis servers seeded alike and compares them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

import fakeredis
import pytest
from arq.worker import Worker
from fakeredis.aioredis import FakeAsyncRedisConnection
from redis.asyncio import ConnectionPool, Redis

from arq_jobs._arq import ABORT_SET
from arq_jobs._config import Settings
from arq_jobs._jobs.records import ATTEMPT, FINISHED_AT, STARTED_AT, WORKER
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.transitions import Phase, Transition
from arq_jobs._keys import Keys
from arq_jobs._scripts.batch import ScriptBatch
from arq_jobs._worker.finish import FINISH_SCRIPT, finish_call

JOB = "job-1"
QUEUE = "unit:queue:default"
ENQUEUED_MS = 1_800_000_000_000
STARTED_MS = ENQUEUED_MS + 2_000
FINISHED_MS = ENQUEUED_MS + 5_000

SUCCEEDED = Transition(
    JOB,
    JobState.SUCCEEDED,
    Phase.SUCCEEDED,
    FINISHED_MS,
    fields={FINISHED_AT: FINISHED_MS},
    extra={"s": True, "r": {"value": [1, 2]}, "ft": FINISHED_MS},
)
PUT_BACK = Transition(JOB, JobState.PENDING, Phase.QUEUED, FINISHED_MS)


@dataclass(frozen=True)
class Finish:
    """The arguments ARQ's run_job gives finish_job."""

    finish: bool
    result_data: bytes | None = None
    result_timeout_s: float | None = None
    keep_result_forever: bool = False
    incr_score: int | None = None
    keep_in_progress: float | None = None


@dataclass(frozen=True)
class ArqWorker:
    """What `Worker.finish_job` reads of its worker."""

    pool: Redis
    queue_name: str


@dataclass(frozen=True)
class Pair:
    ours: Redis
    arqs: Redis


async def fake_redis() -> tuple[Redis, ConnectionPool]:
    pool = ConnectionPool(connection_class=FakeAsyncRedisConnection, server=fakeredis.FakeServer())
    return Redis(connection_pool=pool), pool


async def seed(redis: Redis, settings: Settings) -> None:
    """A job that ran: ARQ's keys (as enqueue and claim left them), one more queued and one aborted
    job, and our record in phase `running` with its events and indexes."""
    await redis.set(Keys.arq_job(JOB), b"job data", px=600_000)
    await redis.set(Keys.arq_retry(JOB), b"1", px=88_400_000)
    await redis.set(Keys.arq_in_progress(JOB), b"1", px=10_000)
    await redis.zadd(QUEUE, {JOB: ENQUEUED_MS, "job-2": ENQUEUED_MS + 1})
    await redis.zadd(ABORT_SET, {JOB: STARTED_MS, "job-3": STARTED_MS})
    keys = Keys(settings.key_prefix)
    record = {"task": "noop", "queue": "default", "enqueued_at": ENQUEUED_MS, "max_attempts": 3}
    await redis.hset(keys.record(JOB), mapping=record)  # type: ignore[arg-type]
    await redis.pexpire(keys.record(JOB), 3_600_000)
    await Transition(JOB, JobState.PENDING, Phase.QUEUED, ENQUEUED_MS, created=True).apply(redis, settings)
    fields: dict[str, str | int] = {ATTEMPT: 1, STARTED_AT: STARTED_MS, WORKER: "test:1"}
    await Transition(JOB, JobState.RUNNING, Phase.RUNNING, STARTED_MS, fields=fields).apply(redis, settings)


@pytest.fixture
async def pair(settings: Settings) -> AsyncIterator[Pair]:
    (ours, our_pool), (arqs, arq_pool) = await fake_redis(), await fake_redis()
    for redis in (ours, arqs):
        await seed(redis, settings)
    yield Pair(ours, arqs)
    for redis, pool in ((ours, our_pool), (arqs, arq_pool)):
        await redis.aclose()
        await pool.disconnect()


async def snapshot(redis: Redis) -> dict[str, tuple[str, Any, int]]:
    """Every key: its type, its value (a stream's entries without their time-based ids), its PTTL."""
    state: dict[str, tuple[str, Any, int]] = {}
    for raw in sorted(await redis.keys("*")):
        key = raw.decode()
        kind = (await redis.type(key)).decode()
        value: Any
        if kind == "string":
            value = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = [entry for _, entry in await redis.xrange(key)]
        else:
            raise AssertionError(f"unexpected {kind} at {key}")
        state[key] = (kind, value, await redis.pttl(key))
    return state


def assert_same(ours: dict[str, tuple[str, Any, int]], arqs: dict[str, tuple[str, Any, int]]) -> None:
    assert sorted(ours) == sorted(arqs)
    for key, (kind, value, ttl) in ours.items():
        their_kind, their_value, their_ttl = arqs[key]
        assert (kind, value) == (their_kind, their_value), key
        if ttl < 0 or their_ttl < 0:
            assert ttl == their_ttl, key
        else:  # both expire, at (nearly) the same time: the servers' clocks move between calls
            assert abs(ttl - their_ttl) < 1_000, (key, ttl, their_ttl)


async def finish_both(
    pair: Pair, settings: Settings, args: Finish, transition: Transition | None
) -> dict[str, tuple[str, Any, int]]:
    """FINISH_SCRIPT (sent as the worker sends it, through a ScriptBatch) on `pair.ours`; ARQ's
    finish_job then Transition.apply on `pair.arqs`. Asserts both end alike; answers our state."""
    keys, argv = finish_call(settings, QUEUE, JOB, transition=transition, **asdict(args))
    assert await ScriptBatch(pair.ours).call(FINISH_SCRIPT, keys, argv) == 1
    await Worker.finish_job(ArqWorker(pair.arqs, QUEUE), JOB, **asdict(args))  # type: ignore[arg-type]
    if transition is not None:
        assert await transition.apply(pair.arqs, settings)
    ours = await snapshot(pair.ours)
    assert_same(ours, await snapshot(pair.arqs))
    return ours


def events(state: dict[str, tuple[str, Any, int]]) -> list[bytes]:
    return [entry[b"event"] for entry in state["unit:events:job-1"][1]]


async def test_success_stores_the_result_cleans_up_and_enters_succeeded(
    pair: Pair, settings: Settings
) -> None:
    args = Finish(finish=True, result_data=b"the result", result_timeout_s=60)
    state = await finish_both(pair, settings, args, SUCCEEDED)
    kind, value, ttl = state["arq:result:job-1"]
    assert (kind, value) == ("string", b"the result") and 59_000 < ttl <= 60_000
    for gone in ("arq:job:job-1", "arq:retry:job-1", "arq:in-progress:job-1"):
        assert gone not in state
    assert state[QUEUE][1] == [(b"job-2", ENQUEUED_MS + 1)]  # only the other job is left
    assert state[ABORT_SET][1] == [(b"job-3", STARTED_MS)]
    record = state["unit:job:job-1"][1]
    assert record[b"phase"] == b"succeeded" and record[b"finished_at"] == str(FINISHED_MS).encode()
    assert events(state) == [b"pending", b"running", b"succeeded"]
    assert state["unit:index:phase:succeeded"][1] == [(b"job-1", ENQUEUED_MS)]
    assert "unit:index:phase:running" not in state  # its only entry moved to `succeeded`


async def test_a_result_kept_forever_has_no_ttl(pair: Pair, settings: Settings) -> None:
    args = Finish(finish=True, result_data=b"r", result_timeout_s=60, keep_result_forever=True)
    state = await finish_both(pair, settings, args, SUCCEEDED)
    assert state["arq:result:job-1"] == ("string", b"r", -1)


async def test_a_result_without_timeout_has_no_ttl(pair: Pair, settings: Settings) -> None:
    state = await finish_both(pair, settings, Finish(finish=True, result_data=b"r"), SUCCEEDED)
    assert state["arq:result:job-1"] == ("string", b"r", -1)


@pytest.mark.parametrize("result_data", [None, b""])
async def test_no_result_data_stores_no_result(
    pair: Pair, settings: Settings, result_data: bytes | None
) -> None:
    args = Finish(finish=True, result_data=result_data, result_timeout_s=60)
    state = await finish_both(pair, settings, args, SUCCEEDED)
    assert "arq:result:job-1" not in state and "arq:job:job-1" not in state
    assert state[QUEUE][1] == [(b"job-2", ENQUEUED_MS + 1)]


async def test_not_finished_with_a_score_increment_defers_the_job(pair: Pair, settings: Settings) -> None:
    state = await finish_both(pair, settings, Finish(finish=False, incr_score=5_000), None)
    assert state[QUEUE][1] == [(b"job-2", ENQUEUED_MS + 1), (b"job-1", ENQUEUED_MS + 5_000)]
    assert state["arq:job:job-1"][1] == b"job data" and state["arq:retry:job-1"][1] == b"1"
    assert "arq:in-progress:job-1" not in state and "arq:result:job-1" not in state
    assert state[ABORT_SET][1] == [(b"job-1", STARTED_MS), (b"job-3", STARTED_MS)]


@pytest.mark.parametrize("incr_score", [None, 0])
async def test_not_finished_without_increment_leaves_the_queue_alone(
    pair: Pair, settings: Settings, incr_score: int | None
) -> None:
    state = await finish_both(pair, settings, Finish(finish=False, incr_score=incr_score), PUT_BACK)
    assert state[QUEUE][1] == [(b"job-1", ENQUEUED_MS), (b"job-2", ENQUEUED_MS + 1)]
    assert "arq:in-progress:job-1" not in state
    assert events(state) == [b"pending", b"running", b"pending"]
    assert state["unit:job:job-1"][1][b"phase"] == b"queued"


async def test_keep_in_progress_sets_the_lease_instead_of_deleting_it(pair: Pair, settings: Settings) -> None:
    state = await finish_both(pair, settings, Finish(finish=False, keep_in_progress=30.0), PUT_BACK)
    kind, value, ttl = state["arq:in-progress:job-1"]
    assert (kind, value) == ("string", b"1") and 29_000 < ttl <= 30_000
    assert state[QUEUE][1] == [(b"job-1", ENQUEUED_MS), (b"job-2", ENQUEUED_MS + 1)]


async def test_keep_in_progress_on_a_finished_job(pair: Pair, settings: Settings) -> None:
    args = Finish(finish=True, result_data=b"r", result_timeout_s=60, keep_in_progress=0.5)
    state = await finish_both(pair, settings, args, SUCCEEDED)
    assert 0 < state["arq:in-progress:job-1"][2] <= 500
    assert "arq:job:job-1" not in state


async def test_keep_in_progress_of_zero_ends_the_lease(pair: Pair, settings: Settings) -> None:
    state = await finish_both(pair, settings, Finish(finish=True, keep_in_progress=0), None)
    assert "arq:in-progress:job-1" not in state


async def test_without_a_transition_the_record_is_untouched(pair: Pair, settings: Settings) -> None:
    before = await snapshot(pair.ours)
    args = Finish(finish=True, result_data=b"r", result_timeout_s=60)
    state = await finish_both(pair, settings, args, None)
    ours = {key: entry for key, entry in state.items() if key.startswith("unit:")}
    assert ours.keys() == {key for key in before if key.startswith("unit:")}
    assert ours["unit:job:job-1"][1] == before["unit:job:job-1"][1]
    assert events(state) == [b"pending", b"running"]
    assert "arq:result:job-1" in state and "arq:job:job-1" not in state


async def test_a_transition_of_a_job_without_record_writes_nothing_of_ours(
    pair: Pair, settings: Settings
) -> None:
    for redis in (pair.ours, pair.arqs):
        await redis.delete("unit:job:job-1")
    args = Finish(finish=True, result_data=b"r", result_timeout_s=60)
    keys, argv = finish_call(settings, QUEUE, JOB, transition=SUCCEEDED, **asdict(args))
    assert await ScriptBatch(pair.ours).call(FINISH_SCRIPT, keys, argv) == 1
    state = await snapshot(pair.ours)
    assert "unit:job:job-1" not in state and "unit:index:phase:succeeded" not in state
    assert events(state) == [b"pending", b"running"]
    assert state["arq:result:job-1"][1] == b"r"  # ARQ's part is done all the same
