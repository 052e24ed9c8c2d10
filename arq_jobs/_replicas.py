"""Waiting for replicas before a job counts as accepted (`JOBS_REDIS_MIN_REPLICAS_ACK`).

Redis replicates asynchronously: after a failover the old primary can take writes for a moment, and
they vanish when it rejoins as a replica. `WAIT <replicas> <timeout>` blocks until that many replicas
have every write this connection made (and, the replication stream being ordered, all writes before
them), so it must run on the connection that wrote, after the writes: at the end of a ScriptBatch's
pipeline, or after EXEC of a WATCH/MULTI transaction (inside MULTI it cannot block).

redis-py releases a transaction's connection inside `Pipeline.execute`, so `AckedPipeline` bends
it in one place. Assumption (tested in tests/integration/test_replicas.py): redis-py 5's
`Pipeline.execute` runs `self._execute_transaction(connection, commands, raise_on_error)` on the
connection it holds (the one WATCH used), and releases that connection only afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import Connection
from redis.exceptions import ResponseError

from arq_jobs._config import Settings
from arq_jobs._errors import RedisUnavailableError


@dataclass(frozen=True, slots=True)
class ReplicaAck:
    """How many replicas must have an enqueue's writes, and how long to wait for them."""

    replicas: int
    timeout_ms: int

    @classmethod
    def of(cls, settings: Settings) -> ReplicaAck | None:
        """The deployment's requirement; None when it is off (no WAIT is sent)."""
        if settings.redis_min_replicas_ack == 0:
            return None
        return cls(settings.redis_min_replicas_ack, settings.redis_replicas_ack_timeout_ms)

    @property
    def command(self) -> tuple[str, int, int]:
        return ("WAIT", self.replicas, self.timeout_ms)

    def error(self, acked: int | BaseException) -> RedisUnavailableError | None:
        """Why the writes do not count as accepted (`acked`: WAIT's answer, or its error); None when
        enough replicas have them."""
        if isinstance(acked, BaseException):
            return RedisUnavailableError(
                f"Redis could not confirm that the job reached {self.replicas} replica(s) ({acked}); "
                "it may still run: retry with the same Idempotency-Key"
            )
        if acked >= self.replicas:
            return None
        return RedisUnavailableError(
            f"Redis did not copy the job to {self.replicas} replica(s) within {self.timeout_ms} ms "
            f"({acked} confirmed); it may still run: retry with the same Idempotency-Key"
        )


class AckedPipeline(Pipeline):
    """A MULTI/EXEC pipeline (WATCH allowed) that sends `ack`'s WAIT on its connection right after
    EXEC; `check()` then raises RedisUnavailableError when too few replicas confirmed."""

    def __init__(self, redis: Redis, ack: ReplicaAck) -> None:
        super().__init__(redis.connection_pool, redis.response_callbacks, transaction=True, shard_hint=None)
        self.ack = ack
        self.acked: int | BaseException | None = None

    async def _execute_transaction(
        self, connection: Connection, commands: Any, raise_on_error: bool
    ) -> list[Any]:
        answers: list[Any] = await super()._execute_transaction(connection, commands, raise_on_error)
        try:
            await connection.send_command(*self.ack.command)
            self.acked = int(await connection.read_response())
        except ResponseError as error:
            self.acked = error
        except BaseException as error:  # lost or timed out: the connection is unusable
            self.acked = error
            await connection.disconnect()
            if not isinstance(error, Exception):
                raise
        return answers

    def check(self) -> None:
        """After `execute()`: RedisUnavailableError unless enough replicas confirmed."""
        error = self.ack.error(RuntimeError("no transaction ran") if self.acked is None else self.acked)
        if error is not None:
            raise error
