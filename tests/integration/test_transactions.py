"""The worker's pool on a real Redis (arq_jobs._transactions, arq_jobs._connection.QuickCheck):
transactions begun in one loop iteration share one round trip and answer as redis-py's Pipeline does,
and a pooled connection the server closed is replaced, not handed out, by the quick check. Each test
names the redis-py internal it leans on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from arq_jobs._config import Settings
from arq_jobs._connection import QuickCheck, open_arq, redis_options
from arq_jobs._transactions import CoalescingArqRedis, TransactionBatch


@pytest.fixture
async def pool(redis_url: str) -> AsyncIterator[CoalescingArqRedis]:
    redis = open_arq(redis_options(Settings(redis_url=redis_url)), socket_timeout=5, coalesce=True)
    assert isinstance(redis, CoalescingArqRedis)
    yield redis
    await redis.aclose()


def key(name: str) -> str:
    return f"test-tx:{uuid.uuid4().hex}:{name}"


async def test_transactions_of_one_iteration_share_one_round_trip_and_answer_like_redis_py(
    pool: CoalescingArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    send = TransactionBatch._send

    async def counting(self: TransactionBatch, queued: list) -> None:  # type: ignore[type-arg]
        sent.append(len(queued))
        await send(self, queued)

    monkeypatch.setattr(TransactionBatch, "_send", counting)
    jobs = [key(f"job-{n}") for n in range(20)]
    for n, job in enumerate(jobs):
        await pool.set(job, f"data-{n}")

    async def run_job(job: str) -> list[object]:  # what ARQ's run_job sends (assumption 12 of _arq)
        async with pool.pipeline(transaction=True) as pipe:
            pipe.get(job)
            pipe.incr(job + ":retry")
            pipe.expire(job + ":retry", 88400)
            return await pipe.execute()  # type: ignore[no-any-return]

    answers = await asyncio.gather(*(run_job(job) for job in jobs))
    assert sent == [20]  # one batch, one write
    assert answers == [[f"data-{n}".encode(), 1, True] for n in range(20)]  # callbacks applied (EXPIRE: bool)
    await pool.delete(*jobs, *(job + ":retry" for job in jobs))


async def test_a_refused_command_raises_like_redis_py_or_stays_in_its_place(pool: CoalescingArqRedis) -> None:
    text = key("text")
    await pool.set(text, "not a number")
    async with pool.pipeline(transaction=True) as pipe:
        pipe.incr(text)
        pipe.get(text)
        with pytest.raises(ResponseError, match="not an integer"):
            await pipe.execute()
    async with pool.pipeline(transaction=True) as pipe:
        pipe.incr(text)
        pipe.get(text)
        refused, value = await pipe.execute(raise_on_error=False)
    assert isinstance(refused, ResponseError) and value == b"not a number"
    async with pool.pipeline(transaction=True) as pipe:  # a transaction Redis aborts (EXECABORT)
        pipe.execute_command("NO-SUCH-COMMAND")
        with pytest.raises(ResponseError, match="unknown command"):
            await pipe.execute()
    assert await pool.get(text) == b"not a number"  # the connection still answers in order
    await pool.delete(text)


async def test_a_watched_or_plain_pipeline_goes_its_own_way(pool: CoalescingArqRedis) -> None:
    counter = key("counter")
    async with pool.pipeline(transaction=True) as pipe:
        await pipe.watch(counter)
        pipe.multi()  # type: ignore[no-untyped-call]
        pipe.incr(counter)
        assert await pipe.execute() == [1]
    async with pool.pipeline(transaction=False) as pipe:
        pipe.incr(counter)
        pipe.get(counter)
        assert await pipe.execute() == [2, b"2"]
    await pool.delete(counter)


async def test_a_connection_the_server_closed_is_replaced_before_it_is_handed_out(
    pool: CoalescingArqRedis, redis_url: str
) -> None:
    pooled = pool.connection_pool
    assert isinstance(pooled, QuickCheck)
    my_id = await pool.client_id()  # the pool's one connection, now idle in it
    async with Redis.from_url(redis_url) as other:
        await other.client_kill_filter(_id=my_id)
    await asyncio.sleep(0.1)  # the loop sees the EOF on the idle connection's stream reader
    assert await pool.ping()  # reconnected by redis-py's full check, not failed
    assert await pool.client_id() != my_id
