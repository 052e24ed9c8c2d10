"""Each Lua script of arq_jobs/_scripts/lua on its own, on the real Redis: called directly with
prepared keys, its answer and exactly the keys and fields it wrote.

Every key a test touches contains its own token (our keys are under `<token>:`, job ids start with
it, so ARQ's keys of those jobs contain it too); the fixture deletes them afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis

from arq_jobs._client import CANCEL_SCRIPT
from arq_jobs._config import Settings
from arq_jobs._jobs.enqueue import BATCH_SCRIPT, ENQUEUE_SCRIPT, IF_STORED_SCRIPT, JOB_ID_AT
from arq_jobs._jobs.snapshots import SNAPSHOT_SCRIPT
from arq_jobs._jobs.transitions import TRANSITION_SCRIPT, AttemptTimes, Phase, Transition, index_horizon_ms
from arq_jobs._keys import Keys
from arq_jobs._limits.worker import RELEASE_SCRIPT
from arq_jobs._queues import QUEUE_STATS_SCRIPT
from arq_jobs._schedules.views import RECORD_SCRIPT
from arq_jobs._scripts.run import run_script
from arq_jobs._scripts.script import Arg, Script, expand
from arq_jobs._stats.depth import RECORD_DEPTH_SCRIPT
from arq_jobs._stats.histogram import BOUNDS_MS, bucket
from arq_jobs._worker.claims import CLAIM_SCRIPT
from arq_jobs._worker.finish import FINISH_SCRIPT
from arq_jobs._worker.runner import GIVE_BACK_SCRIPT
from arq_jobs._worker.runtime import BEGIN_SCRIPT
from arq_jobs._worker_registry import ALIVE_SCRIPT
from arq_jobs._workflows.engine import ADVANCE_SCRIPT, CANCELLED_SCRIPT, MARK_SCRIPT

NOW = 1_800_000_000_000
HORIZON = (86_400 + 86_400 + 300 + 60) * 1000


@dataclass
class Space:
    """A Redis client, a token of our own and the key layout under it."""

    redis: Redis
    token: str
    settings: Settings

    @property
    def keys(self) -> Keys:
        return Keys(self.token)

    def job(self, n: int) -> str:
        return f"{self.token}-{n}"

    async def run(self, script: Script, keys: list[str], args: list[Arg]) -> Any:
        return await run_script(self.redis, script, keys, args)

    async def hash(self, key: str, fields: dict[str, Any], ttl_ms: int | None = None) -> None:
        await self.redis.hset(key, mapping=fields)
        if ttl_ms is not None:
            await self.redis.pexpire(key, ttl_ms)

    async def state(self) -> dict[str, Any]:
        """Every key with our token and its value: strings as str, hashes as dicts, sorted sets as
        {member: score}, streams as the list of their entries' fields."""
        found: dict[str, Any] = {}
        async for raw in self.redis.scan_iter(match=f"*{self.token}*", count=1000):
            key = raw.decode()
            kind = (await self.redis.type(key)).decode()
            if kind == "string":
                found[key] = (await self.redis.get(key)).decode()
            elif kind == "hash":
                found[key] = {k.decode(): v.decode() for k, v in (await self.redis.hgetall(key)).items()}
            elif kind == "zset":
                pairs = await self.redis.zrange(key, 0, -1, withscores=True)
                found[key] = {member.decode(): int(score) for member, score in pairs}
            elif kind == "stream":
                entries = await self.redis.xrange(key)
                found[key] = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]
            else:
                raise AssertionError(f"{key}: unexpected type {kind}")
        return found

    async def pttl(self, key: str) -> int:
        return int(await self.redis.pttl(key))

    async def published(self, channel: str, call: Awaitable[Any]) -> tuple[Any, list[bytes]]:
        """`call`'s answer and the messages published on `channel` while it ran."""
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(channel)
        try:
            assert (await pubsub.get_message(timeout=1))["type"] == "subscribe"  # type: ignore[index]
            answer = await call
            messages = []
            while (
                message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            ) is not None:
                messages.append(message["data"])
            return answer, messages
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]


@pytest.fixture
async def space(redis_url: str) -> AsyncIterator[Space]:
    token = f"scripts-{uuid.uuid4().hex[:10]}"
    redis = Redis.from_url(redis_url)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        redis_url=redis_url,
        key_prefix=token,
        job_expires_s=86_400,
        result_ttl_s=86_400,
        job_timeout_s=300,
        events_maxlen=100,
        stats_minutes_ttl_s=0,  # the statistics' own tests turn them on (`counting`)
        stats_hours_ttl_s=0,
    )
    assert index_horizon_ms(settings) == HORIZON
    try:
        yield Space(redis, token, settings)
    finally:
        found = [key async for key in redis.scan_iter(match=f"*{token}*", count=1000)]
        if found:
            await redis.delete(*found)
        await redis.aclose()


def near(ttl_ms: int, expected_ms: int) -> bool:
    return expected_ms - 2_000 < ttl_ms <= expected_ms


# --- transition-2.lua ----------------------------------------------------------------------------


async def test_transition_indexes_a_new_job_moves_it_between_phases_and_appends_its_events(
    space: Space,
) -> None:
    job, keys = space.job(1), space.keys
    record, events = keys.record(job), keys.events(job)
    await space.hash(record, {"task": "t", "queue": "q", "enqueued_at": NOW - 5, "gone": "x"}, ttl_ms=60_000)
    script_keys = TRANSITION_SCRIPT.keys(record=record, events=events)

    def args(
        event: str, phase: str, changes: list[Arg], *, created: str = "0", extra: str = "", keep: Arg = ""
    ) -> list[Arg]:
        return TRANSITION_SCRIPT.args(
            index_prefix=keys.index(""),
            retry_waits_prefix=keys.retry_waits(""),
            job_id=job,
            event=event,
            phase=phase,
            now=NOW,
            horizon=HORIZON,
            maxlen=100,
            extra=extra,
            created=created,
            keep=keep,
            events_keep=2_000,
            keep_count=0,
            stats_prefix=keys.stats_prefix(),
            stats_minutes_ttl=0,
            stats_hours_ttl=0,
            run_ms="",
            wait_ms="",
            changes=changes,
        )

    assert (
        await space.run(
            TRANSITION_SCRIPT, script_keys, args("pending", "queued", [2, "attempt", 0, "gone"], created="1")
        )
        == 1
    )
    pending = {"task": "t", "queue": "q", "enqueued_at": str(NOW - 5), "attempt": "0", "phase": "queued"}
    indexed = {job: NOW - 5}
    assert await space.state() == {
        record: pending,
        keys.index("all"): indexed,
        keys.index("queue", "q"): indexed,
        keys.index("task", "t"): indexed,
        keys.index("phase", "queued"): indexed,
        keys.index("phase", "queued:queue:q"): indexed,
        events: [{"event": "pending", "extra": "", **pending}],
    }
    assert await space.pttl(keys.index("phase", "queued")) == -1  # trimmed by one write in 16, no TTL
    assert near(await space.pttl(events), 60_000)

    assert (
        await space.run(TRANSITION_SCRIPT, script_keys, args("running", "running", [0], extra='{"n":1}')) == 1
    )
    assert (
        await space.run(
            TRANSITION_SCRIPT, script_keys, args("retrying", "queued", [2, "next_attempt_at", NOW + 500])
        )
        == 1
    )
    retrying = {**pending, "next_attempt_at": str(NOW + 500)}
    assert await space.state() == {
        record: retrying,
        keys.index("all"): indexed,
        keys.index("queue", "q"): indexed,
        keys.index("task", "t"): indexed,
        keys.index("phase", "queued"): indexed,
        keys.index("phase", "queued:queue:q"): indexed,
        keys.retry_waits("q"): {job: NOW + 500},
        events: [
            {"event": "pending", "extra": "", **pending},
            {"event": "running", "extra": '{"n":1}', **pending, "phase": "running"},
            {"event": "retrying", "extra": "", **retrying},
        ],
    }

    # an end: the outcome's retention for the record, the events' shorter one for the stream
    ended: list[Arg] = [2, "finished_at", NOW + 900]
    assert (
        await space.run(TRANSITION_SCRIPT, script_keys, args("succeeded", "succeeded", ended, keep=30_000))
        == 1
    )
    assert near(await space.pttl(record), 30_000) and near(await space.pttl(events), 2_000)
    assert not await space.redis.exists(keys.retry_waits("q"))  # it left the queued phase: not waiting


async def test_transition_of_a_job_without_a_record_writes_nothing(space: Space) -> None:
    job = space.job(1)
    script_keys = TRANSITION_SCRIPT.keys(record=space.keys.record(job), events=space.keys.events(job))
    args = Transition(job, "pending", Phase.QUEUED, NOW, created=True).args(space.settings)
    assert await space.run(TRANSITION_SCRIPT, script_keys, args) == 0
    assert await space.state() == {}


# --- enqueue-4.lua -------------------------------------------------------------------------------


async def test_enqueue_stores_job_queue_entry_record_and_first_event_and_wakes_the_queue(
    space: Space,
) -> None:
    job, keys = space.job(1), space.keys
    queue = keys.queue("q")
    script_keys = ENQUEUE_SCRIPT.keys(
        arq_job=Keys.arq_job(job), queue=queue, record=keys.record(job), events=keys.events(job)
    )
    args = ENQUEUE_SCRIPT.args(
        job_id=job,
        job=b"job-data",
        job_ttl_ms=90_000,
        run_at=NOW,
        record_ttl_ms=120_000,
        wake_channel=Keys.wake_channel(queue),
        only_new="1",
        max_pending=0,
        waiting="",
        transition=Transition(job, "pending", Phase.QUEUED, NOW, created=True).args(space.settings),
        record_fields=["task", "t", "queue", "q", "enqueued_at", NOW],
    )
    answer, woken = await space.published(
        Keys.wake_channel(queue), space.run(ENQUEUE_SCRIPT, script_keys, args)
    )
    assert (answer, woken) == (1, [b""])
    record = {"task": "t", "queue": "q", "enqueued_at": str(NOW), "phase": "queued"}
    stored = {
        Keys.arq_job(job): "job-data",
        queue: {job: NOW},
        keys.record(job): record,
        keys.index("all"): {job: NOW},
        keys.index("queue", "q"): {job: NOW},
        keys.index("task", "t"): {job: NOW},
        keys.index("phase", "queued"): {job: NOW},
        keys.index("phase", "queued:queue:q"): {job: NOW},
        keys.events(job): [{"event": "pending", "extra": "", **record}],
    }
    assert await space.state() == stored
    assert near(await space.pttl(Keys.arq_job(job)), 90_000)
    assert near(await space.pttl(keys.record(job)), 120_000)
    assert near(await space.pttl(keys.events(job)), 120_000)

    # only_new: a second enqueue under the id stores nothing and wakes nobody
    answer, woken = await space.published(
        Keys.wake_channel(queue), space.run(ENQUEUE_SCRIPT, script_keys, args)
    )
    assert (answer, woken) == (0, [])
    assert await space.state() == stored


def enqueue_call(space: Space, n: int, *, max_pending: int, run_at: int = NOW) -> tuple[list[str], list[Arg]]:
    """ENQUEUE_SCRIPT's keys and arguments for job `n` on queue `q`, `max_pending` its limit."""
    job, keys = space.job(n), space.keys
    script_keys = ENQUEUE_SCRIPT.keys(
        arq_job=Keys.arq_job(job), queue=keys.queue("q"), record=keys.record(job), events=keys.events(job)
    )
    args = ENQUEUE_SCRIPT.args(
        job_id=job,
        job=b"job-data",
        job_ttl_ms=90_000,
        run_at=run_at,
        record_ttl_ms=120_000,
        wake_channel="",
        only_new="0",
        max_pending=max_pending,
        waiting=keys.index("phase", "queued:queue:q") if max_pending else "",
        transition=Transition(job, "pending", Phase.QUEUED, NOW, created=True).args(space.settings),
        record_fields=["task", "t", "queue", "q", "enqueued_at", NOW],
    )
    return script_keys, args


async def test_enqueue_refuses_a_job_while_its_queue_holds_max_pending_waiting_jobs(space: Space) -> None:
    keys = space.keys
    waiting = keys.index("phase", "queued:queue:q")
    # a running job stays in ARQ's queue but has left the `queued` phase: it does not count
    await space.redis.zadd(keys.queue("q"), {space.job(0): NOW - 1})
    await space.redis.zadd(keys.index("phase", "running:queue:q"), {space.job(0): NOW - 1})
    assert [await space.run(ENQUEUE_SCRIPT, *enqueue_call(space, n, max_pending=2)) for n in (1, 2)] == [1, 1]
    assert await space.redis.zcard(waiting) == 2
    before = await space.state()
    # full: nothing is written, the answer is minus the jobs waiting (a scheduled one counts too)
    assert await space.run(ENQUEUE_SCRIPT, *enqueue_call(space, 3, max_pending=2, run_at=NOW + 60_000)) == -2
    assert await space.state() == before
    # no limit: nothing counted, stored whatever the queue holds
    assert await space.run(ENQUEUE_SCRIPT, *enqueue_call(space, 3, max_pending=0)) == 1
    assert await space.redis.zcard(waiting) == 3
    # a higher limit lets one more in
    assert await space.run(ENQUEUE_SCRIPT, *enqueue_call(space, 4, max_pending=4)) == 1
    assert await space.run(ENQUEUE_SCRIPT, *enqueue_call(space, 5, max_pending=4)) == -4


async def test_enqueue_back_pressure_holds_under_concurrent_enqueues(space: Space) -> None:
    answers = await asyncio.gather(
        *(space.run(ENQUEUE_SCRIPT, *enqueue_call(space, n, max_pending=5)) for n in range(20))
    )
    assert sorted(answers) == [-5] * 15 + [1] * 5
    assert await space.redis.zcard(space.keys.queue("q")) == 5


# --- enqueue-batch-1.lua -------------------------------------------------------------------------


def batch_call(
    space: Space, jobs: range, *, max_pending: int = 0, wake: bool = True
) -> tuple[list[str], list[Arg]]:
    """BATCH_SCRIPT's keys and arguments for `jobs` (job `n`'s data: `job-<n>`) of task `t` on queue
    `q`, as enqueue_call's, `max_pending` its limit."""
    keys = space.keys
    queue = keys.queue("q")
    entered = Transition(space.job(jobs[0]), "pending", Phase.QUEUED, NOW, created=True)
    transition = entered.args(space.settings)
    record: list[Arg] = ["task", "t", "queue", "q", "enqueued_at", NOW]
    each: list[Arg] = [item for n in jobs for item in (space.job(n), f"job-{n}".encode())]
    args = BATCH_SCRIPT.args(
        record_prefix=keys.record(""),
        events_prefix=keys.events(""),
        job_ttl_ms=90_000,
        run_at=NOW,
        record_ttl_ms=120_000,
        wake_channel=Keys.wake_channel(queue) if wake else "",
        max_pending=max_pending,
        waiting=keys.index("phase", "queued:queue:q") if max_pending else "",
        job_id_at=JOB_ID_AT,
        transition_size=len(transition),
        record_size=len(record),
        transition_record_and_jobs=[*transition, *record, *each],
    )
    return BATCH_SCRIPT.keys(queue=queue), args


async def test_enqueue_batch_stores_each_job_as_enqueue_does_and_wakes_the_queue_once(space: Space) -> None:
    keys, queue = space.keys, space.keys.queue("q")
    answer, woken = await space.published(
        Keys.wake_channel(queue), space.run(BATCH_SCRIPT, *batch_call(space, range(1, 4)))
    )
    assert (answer, woken) == (3, [b""])
    ids = [space.job(n) for n in range(1, 4)]
    record = {"task": "t", "queue": "q", "enqueued_at": str(NOW), "phase": "queued"}
    every = dict.fromkeys(ids, NOW)
    stored: dict[str, Any] = {
        queue: every,
        keys.index("all"): every,
        keys.index("queue", "q"): every,
        keys.index("task", "t"): every,
        keys.index("phase", "queued"): every,
        keys.index("phase", "queued:queue:q"): every,
    }
    for n, job in enumerate(ids, 1):
        stored[Keys.arq_job(job)] = f"job-{n}"
        stored[keys.record(job)] = record
        stored[keys.events(job)] = [{"event": "pending", "extra": "", **record}]
    assert await space.state() == stored
    for job in ids:
        assert near(await space.pttl(Keys.arq_job(job)), 90_000)
        assert near(await space.pttl(keys.record(job)), 120_000)
        assert near(await space.pttl(keys.events(job)), 120_000)

    # what enqueue-4.lua stores for one job of the same request is the same, but for its id
    assert await space.run(ENQUEUE_SCRIPT, *enqueue_call(space, 4, max_pending=0)) == 1
    single = await space.state()
    assert single[keys.record(space.job(4))] == record
    assert single[keys.events(space.job(4))] == stored[keys.events(ids[0])]
    assert single[queue] == {**every, space.job(4): NOW}


async def test_enqueue_batch_refuses_a_batch_that_would_take_its_queue_over_max_pending(space: Space) -> None:
    waiting = space.keys.index("phase", "queued:queue:q")
    assert [await space.run(ENQUEUE_SCRIPT, *enqueue_call(space, n, max_pending=5)) for n in (1, 2)] == [1, 1]
    before = await space.state()
    # 2 waiting + 4 > 5: nothing written, nobody woken, the answer is minus the jobs waiting
    call = batch_call(space, range(3, 7), max_pending=5)
    answer, woken = await space.published(
        Keys.wake_channel(space.keys.queue("q")), space.run(BATCH_SCRIPT, *call)
    )
    assert (answer, woken) == (-2, [])
    assert await space.state() == before
    # 2 + 3 = 5 fits exactly; then not even one more
    assert await space.run(BATCH_SCRIPT, *batch_call(space, range(3, 6), max_pending=5)) == 3
    assert await space.redis.zcard(waiting) == 5
    assert await space.run(BATCH_SCRIPT, *batch_call(space, range(6, 7), max_pending=5)) == -5
    # no limit: nothing counted
    assert await space.run(BATCH_SCRIPT, *batch_call(space, range(6, 8), wake=False)) == 2
    assert await space.redis.zcard(waiting) == 7


# --- if-job-stored-1.lua -------------------------------------------------------------------------


def if_stored_call(
    space: Space, *, set_key: str = "", del_key: str = "", member: str = "", indexes: list[str] | None = None
) -> tuple[list[str], list[Arg]]:
    """IF_STORED_SCRIPT's keys and arguments, after the enqueue of job 1."""
    script_keys = IF_STORED_SCRIPT.keys(record=space.keys.record(space.job(1)))
    args = IF_STORED_SCRIPT.args(
        set_key=set_key,
        set_value='{"job_id":"1"}',
        set_ttl_ms=60_000,
        del_key=del_key,
        member=member,
        indexes=indexes or [],
    )
    return script_keys, args


async def dead_letter(space: Space) -> tuple[str, list[str], dict[str, Any]]:
    """Job 2's dead letter, listed with job 3's in three indexes: its key, the indexes, the state."""
    keys, old = space.keys, space.job(2)
    letter = keys.dead_letter(old)
    indexes = [keys.dead_letters(), keys.dead_letters("t"), keys.dead_letters_of_queue("q")]
    await space.redis.set(letter, "{}")
    for index in indexes:
        await space.redis.zadd(index, {old: NOW, space.job(3): NOW})
    return letter, indexes, await space.state()


async def test_if_job_stored_sets_the_key_and_removes_the_member_when_the_job_was_stored(
    space: Space,
) -> None:
    record, claim = space.keys.record(space.job(1)), space.keys.idempotency(f"{space.token}-digest")
    await space.hash(record, {"task": "t"})
    assert await space.run(IF_STORED_SCRIPT, *if_stored_call(space, set_key=claim)) == 1
    assert await space.state() == {record: {"task": "t"}, claim: '{"job_id":"1"}'}
    assert near(await space.pttl(claim), 60_000)

    letter, indexes, _ = await dead_letter(space)
    call = if_stored_call(space, del_key=letter, member=space.job(2), indexes=indexes)
    assert await space.run(IF_STORED_SCRIPT, *call) == 1
    assert await space.state() == {record: {"task": "t"}, claim: '{"job_id":"1"}'} | {
        index: {space.job(3): NOW} for index in indexes
    }


async def test_if_job_stored_writes_nothing_when_the_job_was_not_stored(space: Space) -> None:
    claim = space.keys.idempotency(f"{space.token}-digest")
    letter, indexes, before = await dead_letter(space)
    # a refused enqueue: no record of job 1
    call = if_stored_call(space, set_key=claim, del_key=letter, member=space.job(2), indexes=indexes)
    assert await space.run(IF_STORED_SCRIPT, *call) == 0
    assert await space.state() == before
    assert claim not in before


# --- claim-1.lua ---------------------------------------------------------------------------------


async def test_claim_leases_due_jobs_nobody_holds_up_to_want(space: Space) -> None:
    queue = space.keys.queue("q")
    jobs = [space.job(n) for n in range(5)]
    scores = {jobs[0]: NOW - 30, jobs[1]: NOW - 20, jobs[2]: NOW - 10, jobs[3]: NOW - 5, jobs[4]: NOW + 1_000}
    await space.redis.zadd(queue, scores)
    await space.redis.set(Keys.arq_in_progress(jobs[1]), "held", px=60_000)

    def args(want: int) -> list[Arg]:
        return CLAIM_SCRIPT.args(
            now=NOW,
            lease_ms=5_000,
            want=want,
            scan=100,
            in_progress_prefix=Keys.arq_in_progress(""),
            limits=[],
        )

    answer = await space.run(CLAIM_SCRIPT, CLAIM_SCRIPT.keys(queue=queue), args(2))
    assert answer == [1, jobs[0].encode(), str(NOW - 30).encode(), jobs[2].encode(), str(NOW - 10).encode()]
    assert await space.state() == {
        queue: scores,
        Keys.arq_in_progress(jobs[0]): "1",
        Keys.arq_in_progress(jobs[1]): "held",
        Keys.arq_in_progress(jobs[2]): "1",
    }
    assert near(await space.pttl(Keys.arq_in_progress(jobs[0])), 5_000)

    answer = await space.run(CLAIM_SCRIPT, CLAIM_SCRIPT.keys(queue=queue), args(10))
    assert answer == [0, jobs[3].encode(), str(NOW - 5).encode()]
    assert (await space.state())[Keys.arq_in_progress(jobs[3])] == "1"


async def test_claim_parks_jobs_over_their_tasks_concurrency_and_rate(space: Space) -> None:
    keys = space.keys
    queue = keys.queue("q")
    capped, paced = [space.job(n) for n in (0, 1)], [space.job(n) for n in (2, 3)]
    await space.redis.zadd(
        queue, {capped[0]: NOW - 40, capped[1]: NOW - 30, paced[0]: NOW - 20, paced[1]: NOW - 10}
    )
    for job in capped:
        await space.hash(keys.record(job), {"task": "capped"})
    for job in paced:
        await space.hash(keys.record(job), {"task": "paced"})
    kinds = ("rate", "slots", "running", "waiting")
    limits: list[Arg] = [keys.record(""), "capped", 0, 1]
    limits += [keys.limit("capped", kind) for kind in kinds]
    limits += ["paced", 1_000, 0]
    limits += [keys.limit("paced", kind) for kind in kinds]
    args = CLAIM_SCRIPT.args(
        now=NOW, lease_ms=5_000, want=10, scan=100, in_progress_prefix=Keys.arq_in_progress(""), limits=limits
    )
    answer = await space.run(CLAIM_SCRIPT, CLAIM_SCRIPT.keys(queue=queue), args)
    assert answer == [
        0,
        capped[0].encode(),
        str(NOW - 40).encode(),
        paced[0].encode(),
        str(NOW - 20).encode(),
    ]
    assert await space.state() == {
        queue: {capped[0]: NOW - 40, paced[0]: NOW - 20, paced[1]: NOW + 1_000, capped[1]: NOW + 5_000},
        Keys.arq_in_progress(capped[0]): "1",
        Keys.arq_in_progress(paced[0]): "1",
        keys.record(capped[0]): {"task": "capped"},
        keys.record(capped[1]): {
            "task": "capped",
            "throttle": "concurrency",
            "throttled_until": str(NOW + 5_000),
        },
        keys.record(paced[0]): {"task": "paced"},
        keys.record(paced[1]): {"task": "paced", "throttle": "rate", "throttled_until": str(NOW + 1_000)},
        keys.limit("capped", "running"): {capped[0]: NOW + 5_000},
        keys.limit("capped", "waiting"): {f"{queue}|{capped[1]}": NOW - 30},
        keys.limit("paced", "rate"): str(NOW + 1_000),
        keys.limit("paced", "slots"): str(NOW + 1_000),
    }


# --- finish-8.lua --------------------------------------------------------------------------------


def finish_keys(space: Space, job: str, queue: str, abort: str | None = None) -> list[str]:
    """finish-8.lua's keys for `job`, taken from `queue` (`abort`: ARQ's abort set, a key of the space's)."""
    keys = space.keys
    return FINISH_SCRIPT.keys(
        in_progress=Keys.arq_in_progress(job),
        result=Keys.arq_result(job),
        retry=Keys.arq_retry(job),
        arq_job=Keys.arq_job(job),
        abort=abort or f"{space.token}:abort",
        queue=queue,
        record=keys.record(job),
        events=keys.events(job),
    )


def finished_args(job: str, transition: list[Arg]) -> list[Arg]:
    """finish-8.lua's arguments that end `job` with the result `result` kept 30 s, and `transition`."""
    return FINISH_SCRIPT.args(
        job_id=job,
        keep_in_progress_ms="",
        finish="1",
        result=b"result",
        result_ttl_ms=30_000,
        incr_score="",
        transition=transition,
    )


async def test_finish_stores_the_result_removes_arqs_keys_and_writes_the_transition(space: Space) -> None:
    job, other, keys = space.job(1), space.job(2), space.keys
    queue, abort = keys.queue("q"), f"{space.token}:abort"
    await space.redis.set(Keys.arq_in_progress(job), "1", px=60_000)
    await space.redis.set(Keys.arq_retry(job), "1")
    await space.redis.set(Keys.arq_job(job), "data")
    await space.redis.zadd(queue, {job: NOW - 10, other: NOW})
    await space.redis.zadd(abort, {job: NOW})
    running = {"task": "t", "queue": "q", "enqueued_at": str(NOW - 10), "phase": "running"}
    await space.hash(keys.record(job), running, ttl_ms=60_000)
    await space.redis.zadd(keys.index("phase", "running"), {job: NOW - 10})
    succeeded = Transition(
        job, "succeeded", Phase.SUCCEEDED, NOW, fields={"finished_at": NOW}, extra={"r": 1}
    )
    script_keys = finish_keys(space, job, queue, abort)
    args = finished_args(job, succeeded.args(space.settings))
    assert await space.run(FINISH_SCRIPT, script_keys, args) == 1
    record = {**running, "finished_at": str(NOW), "phase": "succeeded"}
    assert await space.state() == {
        Keys.arq_result(job): "result",
        queue: {other: NOW},
        keys.record(job): record,
        keys.index("phase", "succeeded"): {job: NOW - 10},
        keys.index("phase", "succeeded:queue:q"): {job: NOW - 10},
        keys.events(job): [{"event": "succeeded", "extra": '{"r":1}', **record}],
    }
    assert near(await space.pttl(Keys.arq_result(job)), 30_000)


async def test_finish_without_finishing_keeps_the_lease_and_moves_the_job_later(space: Space) -> None:
    job, keys = space.job(1), space.keys
    queue = keys.queue("q")
    await space.redis.set(Keys.arq_in_progress(job), "1", px=60_000)
    await space.redis.zadd(queue, {job: NOW})
    await space.hash(keys.record(job), {"task": "t"})
    script_keys = finish_keys(space, job, queue)
    args = FINISH_SCRIPT.args(
        job_id=job,
        keep_in_progress_ms=2_000,
        finish="0",
        result="",
        result_ttl_ms="",
        incr_score=500,
        transition=[],
    )
    assert await space.run(FINISH_SCRIPT, script_keys, args) == 1
    assert await space.state() == {
        Keys.arq_in_progress(job): "1",
        queue: {job: NOW + 500},
        keys.record(job): {"task": "t"},
    }
    assert near(await space.pttl(Keys.arq_in_progress(job)), 2_000)


# --- release-place-2.lua -------------------------------------------------------------------------


async def test_release_place_frees_places_and_wakes_waiting_jobs_still_queued(space: Space) -> None:
    keys = space.keys
    queue = keys.queue("q")
    done, expired, gone, waiting, later = (space.job(n) for n in range(5))
    running, held = keys.limit("capped", "running"), keys.limit("capped", "waiting")
    await space.redis.zadd(running, {done: NOW + 5_000, expired: NOW - 1})
    await space.redis.zadd(
        held, {f"{queue}|{gone}": NOW - 30, f"{queue}|{waiting}": NOW - 20, f"{queue}|{later}": NOW - 10}
    )
    await space.redis.zadd(queue, {waiting: NOW + 5_000, later: NOW + 5_000})
    await space.hash(keys.record(waiting), {"throttle": "concurrency", "throttled_until": NOW + 5_000})
    script_keys = RELEASE_SCRIPT.keys(running=running, waiting=held)
    args = RELEASE_SCRIPT.args(
        job_id=done, now=NOW, max_running=1, record_prefix=keys.record(""), wake_suffix=Keys.wake_channel("")
    )
    answer, woken = await space.published(
        Keys.wake_channel(queue), space.run(RELEASE_SCRIPT, script_keys, args)
    )
    assert (answer, woken) == (1, [b""])
    assert await space.state() == {
        held: {f"{queue}|{later}": NOW - 10},
        queue: {waiting: NOW, later: NOW + 5_000},
        keys.record(waiting): {"throttle": "concurrency", "throttled_until": str(NOW)},
    }


# --- queue-stats-7.lua ---------------------------------------------------------------------------


async def test_queue_stats_counts_each_state_and_finds_the_oldest_pending_job(space: Space) -> None:
    keys = space.keys
    phase = {p.value: keys.index("phase", f"{p.value}:queue:q") for p in Phase}
    retrying, scheduled, pending, was_retrying = (space.job(n) for n in range(4))
    await space.redis.zadd(
        phase["queued"],
        {retrying: NOW - 100, scheduled: NOW + 1_000, pending: NOW - 50, was_retrying: NOW - 10},
    )
    await space.redis.zadd(keys.retry_waits("q"), {retrying: NOW + 500, was_retrying: NOW - 1})
    await space.redis.zadd(phase["running"], {space.job(10): NOW})
    await space.redis.zadd(phase["succeeded"], {space.job(11): NOW, space.job(12): NOW})
    await space.redis.zadd(phase["failed"], {space.job(13): NOW})
    await space.redis.zadd(
        keys.dead_letters_of_queue("q"), {space.job(13): NOW, space.job(14): NOW, space.job(15): NOW}
    )
    before = await space.state()
    script_keys = QUEUE_STATS_SCRIPT.keys(
        **phase, retry_waits=keys.retry_waits("q"), dead_letters=keys.dead_letters_of_queue("q")
    )
    answer = await space.run(QUEUE_STATS_SCRIPT, script_keys, QUEUE_STATS_SCRIPT.args(now=NOW))
    assert answer == [2, 1, 1, 1, 2, 1, 0, 3, NOW - 50]
    assert await space.state() == before


async def test_queue_stats_of_an_empty_queue(space: Space) -> None:
    keys = space.keys
    phase = {p.value: keys.index("phase", f"{p.value}:queue:q") for p in Phase}
    script_keys = QUEUE_STATS_SCRIPT.keys(
        **phase, retry_waits=keys.retry_waits("q"), dead_letters=keys.dead_letters_of_queue("q")
    )
    answer = await space.run(QUEUE_STATS_SCRIPT, script_keys, QUEUE_STATS_SCRIPT.args(now=NOW))
    assert answer == [0, 0, 0, 0, 0, 0, 0, 0, -1]


# --- record-tick-1.lua ---------------------------------------------------------------------------


async def test_record_tick_never_moves_the_last_run_back(space: Space) -> None:
    key = space.keys.schedule("nightly")
    script_keys = RECORD_SCRIPT.keys(schedule=key)

    async def record(tick: int, job_id: str) -> int:
        return int(await space.run(RECORD_SCRIPT, script_keys, RECORD_SCRIPT.args(tick=tick, job_id=job_id)))

    assert await record(NOW, "job-a") == 1
    assert await record(NOW - 1_000, "job-old") == 0
    assert await record(NOW, "job-same") == 0
    assert await space.state() == {key: {"tick": str(NOW), "job_id": "job-a"}}
    assert await record(NOW + 1_000, "job-b") == 1
    assert await space.state() == {key: {"tick": str(NOW + 1_000), "job_id": "job-b"}}


# --- includes/stats.lua (through the transition and finish-8.lua), record-depth-1.lua --------------

MINUTE_S = NOW // 60_000 * 60  # the minute and the hour holding NOW, epoch seconds
HOUR_S = NOW // 3_600_000 * 3600
DAY_MS, WEEK_MS = 86_400_000, 7 * 86_400_000


def counting(space: Space) -> Settings:
    """The space's settings with statistics kept a day by the minute and a week by the hour."""
    return space.settings.model_copy(update={"stats_minutes_ttl_s": 86_400, "stats_hours_ttl_s": 7 * 86_400})


def expires_in(unit_start_s: int, unit_s: int, ttl_ms: int) -> int:
    """The PTTL a unit's hash has now: it expires `ttl_ms` after its unit ends (NOW is in the future);
    read the clock before the PTTL, which can then only be lower."""
    return (unit_start_s + unit_s) * 1000 + ttl_ms - int(time.time() * 1000)


async def test_the_lua_buckets_are_the_python_buckets(space: Space) -> None:
    values = [0, *BOUNDS_MS, *(bound + 1 for bound in BOUNDS_MS), 10**9]
    source = expand(
        "--!include includes/stats.lua\nlocal out = {}\n"
        "for i, v in ipairs(ARGV) do out[i] = tostring(stats_bucket(v)) end\nreturn out"
    )
    answer = await space.redis.eval(source, 0, *(str(value) for value in values))  # type: ignore[misc]
    assert [label.decode() for label in answer] == [bucket(value) for value in values]
    assert bucket(0) == "1" and bucket(250) == "250" and bucket(251) == "500" and bucket(10**9) == "inf"


async def test_an_ending_attempt_is_counted_with_its_times_in_the_minute_and_the_hour_of_its_task(
    space: Space,
) -> None:
    job, keys = space.job(1), space.keys
    queue = keys.queue("q")
    await space.redis.set(Keys.arq_in_progress(job), "1", px=60_000)
    await space.redis.zadd(queue, {job: NOW - 10})
    running = {"task": "t", "queue": "q", "enqueued_at": str(NOW - 10), "phase": "running"}
    await space.hash(keys.record(job), running, ttl_ms=60_000)
    succeeded = Transition(
        job, "succeeded", Phase.SUCCEEDED, NOW, fields={"finished_at": NOW}, times=AttemptTimes(7, 260)
    )
    script_keys = finish_keys(space, job, queue)
    args = finished_args(job, succeeded.args(counting(space)))
    assert await space.run(FINISH_SCRIPT, script_keys, args) == 1
    minute, hour = keys.stats("m", MINUTE_S, "jobs:q:t"), keys.stats("h", HOUR_S, "jobs:q:t")
    counted = {"succeeded": "1", "run:500": "1", "wait:10": "1"}
    state = await space.state()
    assert {key: state[key] for key in state if ":stats:" in key} == {
        minute: counted,
        hour: counted,
        keys.stats_scopes(): {"q:t": NOW},
    }
    expected = expires_in(MINUTE_S, 60, DAY_MS), expires_in(HOUR_S, 3600, WEEK_MS)  # read before the PTTLs
    assert near(await space.pttl(minute), expected[0]) and near(await space.pttl(hour), expected[1])

    # written again (a write retried after an outage): the job is in its phase already, nothing counts
    await space.run(FINISH_SCRIPT, script_keys, args)
    assert await space.redis.hgetall(minute) == {b"succeeded": b"1", b"run:500": b"1", b"wait:10": b"1"}


async def test_each_counted_event_adds_its_counter_and_others_add_nothing(space: Space) -> None:
    keys, settings = space.keys, counting(space)
    record = {"task": "t", "queue": "q", "enqueued_at": str(NOW - 10)}

    async def apply(n: int, phase_before: str, transition: Transition) -> None:
        await space.hash(keys.record(space.job(n)), {**record, "phase": phase_before}, ttl_ms=60_000)
        script_keys = TRANSITION_SCRIPT.keys(
            record=keys.record(space.job(n)), events=keys.events(space.job(n))
        )
        assert await space.run(TRANSITION_SCRIPT, script_keys, transition.args(settings)) == 1

    times = AttemptTimes(wait_ms=0, run_ms=4_000_000)
    await apply(1, "running", Transition(space.job(1), "retrying", Phase.QUEUED, NOW, times=times))
    failed: dict[str, str | int] = {"dead_lettered": "1", "finished_at": NOW}
    await apply(
        2, "running", Transition(space.job(2), "failed", Phase.FAILED, NOW, fields=failed, times=times)
    )
    await apply(3, "queued", Transition(space.job(3), "failed", Phase.FAILED, NOW))  # refused: never ran
    await apply(4, "queued", Transition(space.job(4), "cancelled", Phase.CANCELLED, NOW))
    await apply(5, "queued", Transition(space.job(5), "running", Phase.RUNNING, NOW))  # not an end
    await apply(6, "running", Transition(space.job(6), "progress", None, NOW))
    await apply(7, "running", Transition(space.job(7), "pending", Phase.QUEUED, NOW))  # given back
    assert await space.redis.hgetall(keys.stats("m", MINUTE_S, "jobs:q:t")) == {
        b"retried": b"1",
        b"failed": b"2",
        b"dead_lettered": b"1",
        b"cancelled": b"1",
        b"run:inf": b"2",
        b"wait:1": b"2",
    }


async def test_record_depth_samples_each_tick_once_into_the_minute_and_the_hour(space: Space) -> None:
    keys, settings = space.keys, counting(space)
    sampled = keys.stats_sampled("q")

    async def sample(tick: int, now: int, depth: list[int]) -> int:
        args = RECORD_DEPTH_SCRIPT.args(
            stats_prefix=keys.stats_prefix(),
            queue="q",
            tick=tick,
            now=now,
            stats_minutes_ttl=settings.stats_minutes_ttl_s * 1000,
            stats_hours_ttl=settings.stats_hours_ttl_s * 1000,
            ttl_ms=15_000,
            depth=depth,
        )
        return int(await space.run(RECORD_DEPTH_SCRIPT, RECORD_DEPTH_SCRIPT.keys(sampled=sampled), args))

    tick = NOW // 5_000
    assert await sample(tick, NOW, [4, 1, 2, 0]) == 1
    assert await sample(tick, NOW + 1, [9, 9, 9, 9]) == 0  # another worker, the same tick
    assert await sample(tick - 1, NOW + 2, [9, 9, 9, 9]) == 0  # a slow worker's older tick
    assert await sample(tick + 1, NOW + 5_000, [2, 1, 0, 3]) == 1
    depth = {"samples": "2", "pending": "6", "scheduled": "2", "running": "2", "retrying": "3"}
    minute = keys.stats("m", MINUTE_S, "depth:q")
    assert await space.state() == {
        sampled: str(tick + 1),
        minute: depth,  # NOW + 5 s is in NOW's minute
        keys.stats("h", HOUR_S, "depth:q"): depth,
    }
    assert near(await space.pttl(sampled), 15_000)
    expected = expires_in(MINUTE_S, 60, DAY_MS)  # the clock read before the PTTL
    assert near(await space.pttl(minute), expected)


# --- advance-workflow-1.lua ----------------------------------------------------------------------


async def test_advance_workflow_counts_results_once_and_tells_one_finisher_per_stage(space: Space) -> None:
    key = space.keys.workflow(space.token)
    workflow = {"spec": '{"s":1}', "stages": 2, "ttl": 60_000, "size:0": 2, "size:1": 1}
    await space.hash(key, workflow, ttl_ms=1_000)
    script_keys = ADVANCE_SCRIPT.keys(workflow=key)

    async def advance(stage: int, index: int, result: str) -> list[Any]:
        args = ADVANCE_SCRIPT.args(stage=stage, index=index, result=result)
        return list(await space.run(ADVANCE_SCRIPT, script_keys, args))

    assert await advance(0, 0, '"a"') == [0]
    assert near(await space.pttl(key), 60_000)  # a new result renews the TTL
    assert await advance(0, 0, '"again"') == [0]  # counted once, the first result kept
    assert await advance(0, 1, '"b"') == [1, b'{"s":1}', b'"a"', b'"b"']
    stored = {k: str(v) for k, v in workflow.items()} | {"r:0:0": '"a"', "r:0:1": '"b"', "done:0": "2"}
    assert await space.state() == {key: stored}

    await space.redis.hset(key, "enq:1", "1")
    assert await advance(0, 1, '"b"') == [0]  # a re-run: the next stage is enqueued already
    assert await advance(1, 0, '"c"') == [2]
    assert await advance(1, 0, '"c"') == [0]
    assert await space.state() == {key: stored | {"enq:1": "1", "r:1:0": '"c"', "done:1": "1"}}


async def test_advance_workflow_stops_at_a_cancelled_workflow_and_ignores_a_missing_one(space: Space) -> None:
    key = space.keys.workflow(space.token)
    await space.hash(key, {"spec": "{}", "stages": 2, "ttl": 60_000, "size:0": 1, "cancelled": NOW})
    args = ADVANCE_SCRIPT.args(stage=0, index=0, result='"a"')
    assert list(await space.run(ADVANCE_SCRIPT, ADVANCE_SCRIPT.keys(workflow=key), args)) == [0]
    assert (await space.state())[key]["done:0"] == "1"
    missing = space.keys.workflow(f"{space.token}-missing")
    assert list(await space.run(ADVANCE_SCRIPT, ADVANCE_SCRIPT.keys(workflow=missing), args)) == [0]
    assert missing not in await space.state()


# --- mark-workflow-1.lua -------------------------------------------------------------------------


async def test_mark_workflow_sets_a_field_and_renews_the_ttl(space: Space) -> None:
    key = space.keys.workflow(space.token)
    script_keys = MARK_SCRIPT.keys(workflow=key)

    async def mark(field: str, value: Arg, only_new: str) -> int:
        args = MARK_SCRIPT.args(field=field, value=value, only_new=only_new)
        return int(await space.run(MARK_SCRIPT, script_keys, args))

    assert await mark("cancelled", NOW, "1") == 0  # no such workflow: nothing is created
    assert await space.state() == {}
    await space.hash(key, {"ttl": 60_000}, ttl_ms=1_000)
    assert await mark("cancelled", NOW, "1") == 1
    assert near(await space.pttl(key), 60_000)
    assert await mark("cancelled", NOW + 1, "1") == 0
    assert await mark("enq:0", 1, "0") == 1
    assert await mark("enq:0", 2, "0") == 1
    assert await space.state() == {key: {"ttl": "60000", "cancelled": str(NOW), "enq:0": "2"}}


# --- workflow-cancelled-1.lua --------------------------------------------------------------------


async def test_workflow_cancelled_reads_the_flag(space: Space) -> None:
    key = space.keys.workflow(space.token)
    script_keys = CANCELLED_SCRIPT.keys(workflow=key)
    assert await space.run(CANCELLED_SCRIPT, script_keys, CANCELLED_SCRIPT.args()) == 0
    await space.hash(key, {"ttl": 60_000})
    assert await space.run(CANCELLED_SCRIPT, script_keys, CANCELLED_SCRIPT.args()) == 0
    await space.hash(key, {"cancelled": NOW})
    assert await space.run(CANCELLED_SCRIPT, script_keys, CANCELLED_SCRIPT.args()) == 1
    assert await space.state() == {key: {"ttl": "60000", "cancelled": str(NOW)}}


# --- cancel-7.lua --------------------------------------------------------------------------------


def cancel_keys(space: Space, job: str) -> list[str]:
    return CANCEL_SCRIPT.keys(
        record=space.keys.record(job),
        result=Keys.arq_result(job),
        in_progress=Keys.arq_in_progress(job),
        arq_job=Keys.arq_job(job),
        retry=Keys.arq_retry(job),
        queue=space.keys.queue("q"),
        events=space.keys.events(job),
    )


def cancel_args(space: Space, job: str) -> list[Arg]:
    cancelled = Transition(job, "cancelled", Phase.CANCELLED, NOW)
    return CANCEL_SCRIPT.args(now=NOW, job_id=job, transition=cancelled.args(space.settings))


async def test_cancel_takes_a_waiting_job_off_its_queue_and_marks_it_cancelled(space: Space) -> None:
    job, keys = space.job(1), space.keys
    retrying = {
        "task": "t",
        "queue": "q",
        "enqueued_at": str(NOW - 10),
        "phase": "queued",
        "state": "retrying",
        "next_attempt_at": str(NOW + 500),
    }
    await space.hash(keys.record(job), retrying, ttl_ms=60_000)
    await space.redis.zadd(keys.index("phase", "queued"), {job: NOW - 10})
    await space.redis.zadd(keys.retry_waits("q"), {job: NOW + 500})
    await space.redis.zadd(keys.queue("q"), {job: NOW + 500})
    await space.redis.set(Keys.arq_job(job), "data")
    await space.redis.set(Keys.arq_retry(job), "1")
    await space.redis.set(Keys.arq_in_progress(job), "1")  # the failed attempt's lease, being released

    assert await space.run(CANCEL_SCRIPT, cancel_keys(space, job), cancel_args(space, job)) == b"cancelled"
    record = {key: value for key, value in retrying.items() if key != "next_attempt_at"}
    record |= {
        "state": "cancelled",
        "finished_at": str(NOW),
        "cancel_requested": str(NOW),
        "phase": "cancelled",
    }
    assert await space.state() == {
        Keys.arq_in_progress(job): "1",
        keys.record(job): record,
        keys.index("phase", "cancelled"): {job: NOW - 10},
        keys.index("phase", "cancelled:queue:q"): {job: NOW - 10},
        keys.events(job): [{"event": "cancelled", "extra": "", **record}],
    }
    assert near(await space.pttl(keys.record(job)), space.settings.keep_s(False) * 1000)
    assert await space.run(CANCEL_SCRIPT, cancel_keys(space, job), cancel_args(space, job)) == b"ended"


async def test_cancel_flags_a_running_job_and_refuses_ended_or_unknown_ones(space: Space) -> None:
    running, ended, unknown, lost = (space.job(n) for n in range(4))
    keys = space.keys
    await space.hash(keys.record(running), {"task": "t"})
    await space.redis.set(Keys.arq_in_progress(running), "1")
    await space.hash(keys.record(ended), {"task": "t"})
    await space.redis.set(Keys.arq_result(ended), "result")
    await space.hash(keys.record(lost), {"task": "t"})  # a record, but ARQ's job key is gone
    before = await space.state()
    assert (
        await space.run(CANCEL_SCRIPT, cancel_keys(space, running), cancel_args(space, running)) == b"running"
    )
    assert await space.run(CANCEL_SCRIPT, cancel_keys(space, ended), cancel_args(space, ended)) == b"ended"
    assert (
        await space.run(CANCEL_SCRIPT, cancel_keys(space, unknown), cancel_args(space, unknown)) == b"missing"
    )
    assert await space.run(CANCEL_SCRIPT, cancel_keys(space, lost), cancel_args(space, lost)) == b"missing"
    assert await space.state() == before | {keys.record(running): {"task": "t", "cancel_requested": str(NOW)}}


# --- begin-attempt-4.lua -------------------------------------------------------------------------


def begin_call(space: Space, job: str) -> tuple[list[str], list[Arg]]:
    keys = space.keys
    running = Transition(
        job,
        "running",
        Phase.RUNNING,
        NOW,
        fields={"attempt": 2, "started_at": NOW, "worker": "w1"},
        drop=("state", "next_attempt_at"),
    )
    script_keys = BEGIN_SCRIPT.keys(
        in_progress=Keys.arq_in_progress(job),
        arq_job=Keys.arq_job(job),
        record=keys.record(job),
        events=keys.events(job),
    )
    args = BEGIN_SCRIPT.args(
        lease_ms=5_000, job_ttl_ms=90_000, record_ttl_ms=120_000, transition=running.args(space.settings)
    )
    return script_keys, args


async def test_begin_attempt_takes_the_lease_and_records_the_start(space: Space) -> None:
    job, keys = space.job(1), space.keys
    queued = {
        "task": "t",
        "queue": "q",
        "enqueued_at": str(NOW - 10),
        "phase": "queued",
        "trace": "00-abc",
        "workflow": "w:0:1",
        "state": "retrying",
        "next_attempt_at": str(NOW - 1),
    }
    await space.hash(keys.record(job), queued, ttl_ms=1_000)
    await space.redis.zadd(keys.index("phase", "queued"), {job: NOW - 10})
    await space.redis.set(Keys.arq_job(job), "data", px=1_000)
    await space.redis.set(Keys.arq_in_progress(job), "1", px=60_000)
    assert await space.run(BEGIN_SCRIPT, *begin_call(space, job)) == [0, b"00-abc", b"w:0:1"]
    record = {key: value for key, value in queued.items() if key not in ("state", "next_attempt_at")}
    record |= {"attempt": "2", "started_at": str(NOW), "worker": "w1", "phase": "running"}
    assert await space.state() == {
        Keys.arq_job(job): "data",
        Keys.arq_in_progress(job): "1",
        keys.record(job): record,
        keys.index("phase", "running"): {job: NOW - 10},
        keys.index("phase", "running:queue:q"): {job: NOW - 10},
        keys.events(job): [{"event": "running", "extra": "", **record}],
    }
    assert near(await space.pttl(Keys.arq_in_progress(job)), 5_000)
    assert near(await space.pttl(Keys.arq_job(job)), 90_000)
    assert near(await space.pttl(keys.record(job)), 120_000)


async def test_begin_attempt_of_a_cancelled_job_writes_nothing(space: Space) -> None:
    job, keys = space.job(1), space.keys
    await space.hash(keys.record(job), {"task": "t", "cancel_requested": NOW})
    await space.redis.set(Keys.arq_in_progress(job), "1", px=60_000)
    before = await space.state()
    assert await space.run(BEGIN_SCRIPT, *begin_call(space, job)) == [1]
    assert await space.state() == before
    assert await space.pttl(Keys.arq_in_progress(job)) > 50_000


# --- give-back-3.lua -----------------------------------------------------------------------------


async def test_give_back_undoes_arqs_count_and_shows_the_job_pending(space: Space) -> None:
    job, fresh, unknown = space.job(1), space.job(2), space.job(3)
    keys = space.keys
    running = {"task": "t", "queue": "q", "enqueued_at": str(NOW - 10), "phase": "running"}
    for one in (job, fresh):
        await space.hash(keys.record(one), running)
    await space.redis.zadd(keys.index("phase", "running"), {job: NOW - 10, fresh: NOW - 10})
    await space.redis.set(Keys.arq_retry(job), "2")

    async def give_back(one: str) -> int:
        script_keys = GIVE_BACK_SCRIPT.keys(
            retry=Keys.arq_retry(one), record=keys.record(one), events=keys.events(one)
        )
        back = Transition(one, "pending", Phase.QUEUED, NOW)
        return int(
            await space.run(
                GIVE_BACK_SCRIPT, script_keys, GIVE_BACK_SCRIPT.args(transition=back.args(space.settings))
            )
        )

    assert list(await asyncio.gather(give_back(job), give_back(fresh), give_back(unknown))) == [1, 1, 0]
    pending = {**running, "phase": "queued"}
    assert await space.state() == {
        Keys.arq_retry(job): "1",  # no counter is created for `fresh`
        keys.record(job): pending,
        keys.record(fresh): pending,
        keys.index("phase", "queued"): {job: NOW - 10, fresh: NOW - 10},
        keys.index("phase", "queued:queue:q"): {job: NOW - 10, fresh: NOW - 10},
        keys.events(job): [{"event": "pending", "extra": "", **pending}],
        keys.events(fresh): [{"event": "pending", "extra": "", **pending}],
    }


# --- alive-beats-1.lua ---------------------------------------------------------------------------


async def test_alive_beats_reads_the_heartbeats_of_recent_workers(space: Space) -> None:
    keys = space.keys
    await space.redis.zadd(
        keys.workers(), {"old": NOW - 10_000, "gone": NOW - 2_000, "w2": NOW, "w1": NOW - 1_000}
    )
    await space.redis.set(keys.worker("old"), '{"id":"old"}')
    await space.redis.set(keys.worker("w1"), '{"id":"w1"}')
    await space.redis.set(keys.worker("w2"), '{"id":"w2"}')
    before = await space.state()
    args = ALIVE_SCRIPT.args(since=NOW - 5_000, worker_prefix=keys.worker(""))
    answer = await space.run(ALIVE_SCRIPT, ALIVE_SCRIPT.keys(workers=keys.workers()), args)
    assert answer == [b"", b'{"id":"w1"}', b'{"id":"w2"}']
    assert await space.state() == before


# --- job-snapshots-0.lua -------------------------------------------------------------------------


async def test_job_snapshots_reads_each_jobs_record_result_and_arq_keys_at_once(space: Space) -> None:
    keys = space.keys
    running, done, unknown = space.job(1), space.job(2), space.job(3)
    await space.hash(keys.record(running), {"task": "t", "phase": "running"})
    await space.redis.set(Keys.arq_job(running), b"job")
    await space.redis.set(Keys.arq_in_progress(running), b"1")
    await space.hash(keys.record(done), {"task": "t", "phase": "succeeded"})
    await space.redis.set(Keys.arq_result(done), b"result")
    before = await space.state()
    args = SNAPSHOT_SCRIPT.args(record_prefix=keys.record(""), job_ids=[running, done, unknown])
    answer = await space.run(SNAPSHOT_SCRIPT, [], args)
    assert answer == [
        [[b"task", b"t", b"phase", b"running"], None, 1, 1],
        [[b"task", b"t", b"phase", b"succeeded"], b"result", 0, 0],
        [[], None, 0, 0],
    ]
    assert await space.state() == before
