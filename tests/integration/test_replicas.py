"""JOBS_REDIS_MIN_REPLICAS_ACK against a real primary and replica started here (fakeredis has no
WAIT): the WAIT follows the writes on their own connection, a short count fails exactly the calls
that asked, and with the setting off no WAIT is sent at all."""

# mypy: disable-error-code="no-untyped-call,has-type,index"
from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import redis
from arq.connections import ArqRedis

from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._errors import RedisUnavailableError
from arq_jobs._replicas import AckedPipeline, ReplicaAck
from arq_jobs._scripts.batch import ScriptBatch
from tests.shipped import registry
from tests.unit.conftest import make_settings

from .redis_servers import RedisProcess, start_redis

INCR = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
ACK = ReplicaAck(replicas=1, timeout_ms=300)


@dataclass
class Pair:
    primary: RedisProcess
    replica: RedisProcess

    def admin(self, server: RedisProcess) -> redis.Redis:
        return redis.Redis(port=server.port, socket_timeout=10)

    def waits(self) -> int:
        """WAIT commands the primary has run since the last reset."""
        with self.admin(self.primary) as client:
            return int(client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))

    @contextlib.contextmanager
    def replica_stalled(self, seconds: float) -> Iterator[None]:
        """The replica process frozen for `seconds` (DEBUG SLEEP) during the block: still connected,
        acknowledging nothing."""

        def sleep() -> None:
            with self.admin(self.replica) as client:
                client.execute_command("DEBUG", "SLEEP", seconds)

        thread = threading.Thread(target=sleep)
        thread.start()
        time.sleep(0.1)  # the replica is asleep
        try:
            yield
        finally:
            thread.join()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    where = tmp_path_factory.mktemp("replicas")
    primary = start_redis(where / "primary")
    replica = start_redis(
        where / "replica", "--replicaof", "127.0.0.1", str(primary.port), "--enable-debug-command", "local"
    )
    pair = Pair(primary, replica)
    try:
        deadline = time.monotonic() + 15
        while pair.admin(primary).info("replication")["connected_slaves"] != 1:
            assert time.monotonic() < deadline, primary.log()
            time.sleep(0.1)
        with pair.admin(primary) as client:  # the replica past its first sync and acknowledging
            client.set("warm-up", 1)
            assert client.execute_command("WAIT", 1, 10_000) == 1
        yield pair
    finally:
        replica.stop()
        primary.stop()


@pytest.fixture
async def arq(pair: Pair) -> AsyncIterator[ArqRedis]:
    with pair.admin(pair.primary) as client:
        client.config_resetstat()
    arq = ArqRedis(port=pair.primary.port, socket_timeout=5)
    yield arq
    await arq.aclose()
    await arq.connection_pool.disconnect()


def settings_for(pair: Pair, **overrides: object) -> Settings:
    return make_settings(redis_url=f"redis://127.0.0.1:{pair.primary.port}/0", **overrides)


async def test_a_batch_waits_for_replicas_after_its_writes(pair: Pair, arq: ArqRedis) -> None:
    await arq.script_load(INCR)
    batch = ScriptBatch(arq)
    assert await asyncio.gather(*(batch.call(INCR, ["acked"], [1], ACK) for _ in range(3))) == [1, 2, 3]
    assert pair.waits() == 1  # one WAIT for the whole batch
    await arq.script_flush()  # a script Redis lost runs again from source, with a WAIT of its own
    assert await batch.call(INCR, ["acked"], [1], ACK) == 4
    assert pair.waits() == 3


async def test_a_short_count_fails_only_the_calls_that_asked(pair: Pair, arq: ArqRedis) -> None:
    await arq.script_load(INCR)
    batch = ScriptBatch(arq)
    with pair.replica_stalled(1.0):
        asked, plain = await asyncio.gather(
            batch.call(INCR, ["short"], [1], ACK), batch.call(INCR, ["short"], [10]), return_exceptions=True
        )
    assert isinstance(asked, RedisUnavailableError)
    assert str(asked) == (
        "Redis did not copy the job to 1 replica(s) within 300 ms (0 confirmed); it may still run: retry "
        "with the same Idempotency-Key"
    )
    assert plain == 11  # the same pipeline, not asking: answered
    assert await arq.get("short") == b"11"  # both writes were made; only the promise was refused
    # a WAIT on another connection would have counted the stalled replica at once: this one covered
    # the writes of its own connection
    assert pair.waits() == 1


async def test_with_the_setting_off_no_wait_is_sent(pair: Pair, arq: ArqRedis) -> None:
    client = JobClient(arq, settings_for(pair, key_prefix="acks-off"), registry)
    assert client.ack is None
    plain = await client.enqueue_payload("noop", {"value": 1})
    keyed = await client.enqueue_payload("noop", {"value": 2}, idempotency_key="off")
    assert await arq.exists(f"arq:job:{plain.job_id}", f"arq:job:{keyed.job_id}") == 2
    assert pair.waits() == 0


async def test_an_enqueue_is_accepted_only_once_a_replica_has_it(pair: Pair, arq: ArqRedis) -> None:
    client = JobClient(arq, settings_for(pair, key_prefix="acks-on", redis_min_replicas_ack=1), registry)
    assert client.ack == ReplicaAck(1, 1000)
    plain = await client.enqueue_payload("noop", {"value": 1})
    keyed = await client.enqueue_payload("noop", {"value": 2}, idempotency_key="on")
    assert pair.waits() == 2
    with pair.admin(pair.replica) as replica:  # already there: WAIT returned after the copy
        assert replica.exists(f"arq:job:{plain.job_id}", f"arq:job:{keyed.job_id}") == 2


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "idempotency-key"])
async def test_an_enqueue_no_replica_confirmed_is_refused(pair: Pair, arq: ArqRedis, keyed: bool) -> None:
    settings = settings_for(
        pair, key_prefix="acks-short", redis_min_replicas_ack=1, redis_replicas_ack_timeout_ms=200
    )
    client = JobClient(arq, settings, registry)
    key = f"short-{time.monotonic_ns()}" if keyed else None
    with pair.replica_stalled(1.0):
        with pytest.raises(RedisUnavailableError) as refused:
            await client.enqueue_payload("noop", {"value": 3}, idempotency_key=key)
        assert str(refused.value).startswith("Redis did not copy the job to 1 replica(s) within 200 ms")
        assert pair.waits() == 1
        if keyed:  # a replay is no promise either while no replica has the job
            with pytest.raises(RedisUnavailableError):
                await client.enqueue_payload("noop", {"value": 3}, idempotency_key=key)
            assert pair.waits() == 2
    if keyed:  # the job was stored: the retry the message asks for gets it back, once on a replica
        again = await client.enqueue_payload("noop", {"value": 3}, idempotency_key=key)
        assert again.replayed
        assert pair.waits() == 3


async def test_redis_py_runs_the_transaction_on_the_watched_connection(pair: Pair, arq: ArqRedis) -> None:
    """AckedPipeline's assumption: `Pipeline.execute` calls `_execute_transaction` with the
    connection WATCH used, before releasing it."""
    async with AckedPipeline(arq, ACK) as pipe:
        await pipe.watch("watched")
        watched_on = pipe.connection
        seen = []
        original = pipe._execute_transaction

        async def spy(connection, commands, raise_on_error):  # type: ignore[no-untyped-def]
            seen.append(connection)
            return await original(connection, commands, raise_on_error)

        pipe._execute_transaction = spy  # type: ignore[method-assign]
        pipe.multi()
        pipe.set("watched", 1)
        assert await pipe.execute() == [True]
        pipe.check()
    assert seen == [watched_on], (
        "redis-py no longer runs a transaction through _execute_transaction(conn, ...)"
    )
    assert pipe.acked == 1
