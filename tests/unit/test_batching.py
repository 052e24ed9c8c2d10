"""ScriptBatch: the script calls of one event-loop iteration go to Redis in one pipeline, each with
its own answer or error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest
from fakeredis.aioredis import FakeAsyncRedisConnection
from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import ConnectionError, ResponseError

from arq_jobs._scripts.batch import ScriptBatch
from arq_jobs._scripts.run import sha1

ECHO = "return {KEYS[1], ARGV[1]}"
INCR = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
PICKY = "if ARGV[1] == 'bad' then return redis.error_reply('refused ' .. KEYS[1]) end return ARGV[1]"


@dataclass
class Spied:
    """A fakeredis client of its own server, counting the pipelines it sends and their sizes."""

    redis: Redis
    server: fakeredis.FakeServer
    sent: list[int] = field(default_factory=list)


@pytest.fixture
async def spied(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Spied]:
    server = fakeredis.FakeServer()
    pool = ConnectionPool(connection_class=FakeAsyncRedisConnection, server=server)
    redis = Redis(connection_pool=pool)
    spied = Spied(redis, server)
    make_pipeline = redis.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make_pipeline(*args, **kwargs)
        execute = pipe.execute

        async def counted(*args: Any, **kwargs: Any) -> Any:
            spied.sent.append(len(pipe.command_stack))
            return await execute(*args, **kwargs)

        monkeypatch.setattr(pipe, "execute", counted)
        return pipe

    monkeypatch.setattr(redis, "pipeline", pipeline)
    for source in (ECHO, INCR, PICKY):
        await redis.script_load(source)
    yield spied
    await redis.aclose()
    await pool.disconnect()


async def test_calls_of_one_iteration_go_in_one_pipeline_each_with_its_answer(spied: Spied) -> None:
    batch = ScriptBatch(spied.redis)
    calls = [batch.call(ECHO, [f"key-{n}"], [n]) for n in range(10)]
    answers = await asyncio.gather(*calls)
    assert answers == [[f"key-{n}".encode(), str(n).encode()] for n in range(10)]
    assert spied.sent == [10]


async def test_calls_from_many_tasks_in_one_iteration_share_the_pipeline(spied: Spied) -> None:
    batch = ScriptBatch(spied.redis)

    async def add(amount: int) -> int:
        answer: int = await batch.call(INCR, ["counter"], [amount])
        return answer

    answers = await asyncio.gather(*(add(n) for n in (1, 10, 100)))
    assert answers == [1, 11, 111]  # in call order, each script atomic on its own
    assert spied.sent == [3]
    assert await spied.redis.get("counter") == b"111"


async def test_a_call_alone_goes_at_once_in_a_pipeline_of_its_own(spied: Spied) -> None:
    batch = ScriptBatch(spied.redis)
    calls = [batch.call(ECHO, [f"key-{n}"], [n]) for n in range(3)]
    alone = batch.call(ECHO, ["long"], ["one"], alone=True)
    calls += [batch.call(ECHO, [f"key-{n}"], [n]) for n in range(3, 5)]
    assert await alone == [b"long", b"one"]
    assert await asyncio.gather(*calls) == [[f"key-{n}".encode(), str(n).encode()] for n in range(5)]
    assert spied.sent == [1, 5]


async def test_calls_of_different_iterations_go_in_separate_pipelines(spied: Spied) -> None:
    batch = ScriptBatch(spied.redis)
    first = [batch.call(ECHO, ["a"], [1]), batch.call(ECHO, ["b"], [2]), batch.call(ECHO, ["c"], [3])]
    await asyncio.sleep(0)  # the loop moves on: the first batch is on its way
    second = [batch.call(ECHO, ["d"], [4]), batch.call(ECHO, ["e"], [5])]
    assert [answer[0] for answer in await asyncio.gather(*first, *second)] == [b"a", b"b", b"c", b"d", b"e"]
    assert spied.sent == [3, 2]
    assert await batch.call(ECHO, ["f"], [6]) == [b"f", b"6"]
    assert spied.sent == [3, 2, 1]


async def test_a_script_error_fails_only_its_own_call(spied: Spied) -> None:
    batch = ScriptBatch(spied.redis)
    calls = [
        batch.call(PICKY, ["one"], ["fine"]),
        batch.call(PICKY, ["two"], ["bad"]),
        batch.call("return redis.call('NO-SUCH-COMMAND')", [], []),
        batch.call(PICKY, ["four"], ["also fine"]),
    ]
    one, two, three, four = await asyncio.gather(*calls, return_exceptions=True)
    assert (one, four) == (b"fine", b"also fine")
    assert isinstance(two, ResponseError) and str(two) == "refused two"
    assert isinstance(three, ResponseError) and "NO-SUCH-COMMAND" in str(three).upper()
    assert spied.sent == [4]


async def test_scripts_redis_lost_are_run_again_from_source(spied: Spied) -> None:
    await spied.redis.script_flush()  # as after a restart of Redis: no script is cached
    batch = ScriptBatch(spied.redis)
    calls = [batch.call(INCR, ["counter"], [n]) for n in (1, 2, 3)] + [batch.call(ECHO, ["k"], ["v"])]
    assert await asyncio.gather(*calls) == [1, 3, 6, [b"k", b"v"]]
    assert await spied.redis.get("counter") == b"6"  # each ran exactly once
    assert await spied.redis.script_exists(sha1(INCR), sha1(ECHO)) == [True, True]
    assert await batch.call(INCR, ["counter"], [4]) == 10  # cached again: no fallback needed
    assert spied.sent == [4, 1]


async def test_a_script_never_loaded_is_run_from_source(spied: Spied) -> None:
    batch = ScriptBatch(spied.redis)
    fresh = "return 'fresh ' .. ARGV[1]"
    first, second = await asyncio.gather(batch.call(fresh, [], ["a"]), batch.call(ECHO, ["k"], ["b"]))
    assert (first, second) == (b"fresh a", [b"k", b"b"])


async def test_a_caller_cancelled_before_the_batch_is_sent_does_not_break_the_others(spied: Spied) -> None:
    batch = ScriptBatch(spied.redis)
    calls = [batch.call(ECHO, [f"key-{n}"], [n]) for n in range(3)]
    calls[1].cancel()
    assert await calls[0] == [b"key-0", b"0"]
    assert await calls[2] == [b"key-2", b"2"]
    assert calls[1].cancelled()
    assert spied.sent == [2]  # the cancelled call was dropped, not sent


async def test_a_cancelled_task_awaiting_its_call_does_not_break_the_others(spied: Spied) -> None:
    batch = ScriptBatch(spied.redis)

    async def echo(n: int) -> Any:
        return await batch.call(ECHO, [f"key-{n}"], [n])

    tasks = [asyncio.create_task(echo(n)) for n in range(3)]
    await asyncio.sleep(0)  # each task queued its call; the batch is sent in the next iteration
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert done[0] == [b"key-0", b"0"] and done[2] == [b"key-2", b"2"]
    assert isinstance(done[1], asyncio.CancelledError)
    assert spied.sent == [2]  # cancelled before the batch went out: dropped
    assert await batch.call(ECHO, ["after"], [1]) == [b"after", b"1"]  # the batch goes on working


async def test_a_connection_error_fails_every_call_of_its_batch(spied: Spied) -> None:
    batch = ScriptBatch(spied.redis)
    spied.server.connected = False
    calls = [batch.call(ECHO, [f"key-{n}"], [n]) for n in range(3)]
    errors = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(error, ConnectionError) for error in errors), errors
    spied.server.connected = True  # Redis is back: the next batch is answered
    assert await batch.call(ECHO, ["key"], ["v"]) == [b"key", b"v"]


async def test_drain_waits_for_the_calls_not_sent_yet(spied: Spied) -> None:
    batch = ScriptBatch(spied.redis)
    calls = [batch.call(INCR, ["counter"], [1]) for _ in range(5)]
    await batch.drain()
    assert all(call.done() for call in calls)
    assert await spied.redis.get("counter") == b"5"
    await batch.drain()  # nothing in flight: returns at once
