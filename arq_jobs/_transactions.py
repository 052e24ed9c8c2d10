"""One round trip for the MULTI/EXEC transactions begun in one event-loop iteration.

ARQ's `run_job` reads each job it starts in a transaction of its own (GET the job, INCR its try
counter, EXPIRE that: assumption 12 of `arq_jobs._arq`). A poll that starts 100 jobs then makes
100 round trips on 100 pooled connections, whose answers arrive one by one, so the jobs go on in
different loop iterations and their script calls cannot share a batch (`arq_jobs._scripts.batch`):
most of a short job's cost. The worker's pool (`CoalescingArqRedis`) makes pipelines that hand a
plain transaction (no WATCH) to one `TransactionBatch`, which sends every transaction queued in the
current iteration on one connection in one write, each still its own MULTI/EXEC, and answers each as
redis-py's `Pipeline._execute_transaction` does: response callbacks applied, the first error raised
(`raise_on_error`), a failed connection failing every transaction of the batch.

redis-py internals used (redis 5.3, tests/unit/test_transactions.py): a Pipeline's `command_stack`
of (args, options), `response_callbacks`, `raise_first_error`, `reset`, and a pooled connection's
`pack_commands`, `send_packed_command`, `read_response`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from redis.asyncio.client import Pipeline
from redis.client import EMPTY_RESPONSE
from redis.exceptions import ExecAbortError, ResponseError

from arq_jobs._scripts.batch import settle

Command = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Queued:
    commands: Sequence[Command]
    answer: asyncio.Future[list[Any]]


class TransactionBatch:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self._queued: list[Queued] = []
        self._sending: set[asyncio.Task[None]] = set()

    def submit(self, commands: Sequence[Command]) -> asyncio.Future[list[Any]]:
        """Run `commands` in MULTI/EXEC with the next batch; the future gets EXEC's raw answer (a
        command's error in its place), or the error that failed the transaction."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[Any]] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.append(Queued(commands, answer))
        return answer

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        task = asyncio.get_running_loop().create_task(self._send(queued))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, queued: list[Queued]) -> None:
        try:
            connection = await self.pool.get_connection()
        except BaseException as error:
            fail(queued, error)
            if isinstance(error, asyncio.CancelledError):
                raise
            return
        try:
            args: list[Command] = []
            for transaction in queued:
                args += [("MULTI",), *transaction.commands, ("EXEC",)]
            await connection.send_packed_command(connection.pack_commands(args))
            for transaction in queued:
                answer = await read_transaction(connection, len(transaction.commands))
                if isinstance(answer, BaseException):
                    settle(transaction.answer, error=answer)
                else:
                    settle(transaction.answer, answer)
        except BaseException as error:  # the connection is in an unknown state: drop it
            await connection.disconnect(nowait=True)
            fail(queued, error)
            if isinstance(error, asyncio.CancelledError):
                raise
        finally:
            await self.pool.release(connection)


async def read_transaction(connection: Any, size: int) -> list[Any] | BaseException:
    """The answers of one MULTI, `size` commands, EXEC, as `_execute_transaction` reads them: EXEC's
    list with each refused command's error in its place, or the error that aborted it."""
    errors: list[tuple[int, ResponseError]] = []
    try:
        await connection.read_response()  # MULTI's OK
    except ResponseError as error:
        errors.append((0, error))
    for n in range(size):
        try:
            await connection.read_response()  # QUEUED
        except ResponseError as error:
            errors.append((n, error))
    try:
        response = await connection.read_response()
    except ExecAbortError as aborted:
        return errors[0][1] if errors else aborted
    for n, refused in errors:
        response.insert(n, refused)
    if len(response) != size:
        return ResponseError("Wrong number of response items from pipeline execution")
    return list(response)


def fail(queued: list[Queued], error: BaseException) -> None:
    for transaction in queued:
        settle(transaction.answer, error=error)


class CoalescingPipeline(Pipeline):
    """A Pipeline whose plain transaction goes out with the others of its loop iteration."""

    batch: TransactionBatch

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = self.command_stack
        plain = self.is_transaction and not self.watching and not self.explicit_transaction
        if not plain or not stack or any(EMPTY_RESPONSE in options for _, options in stack):
            return await super().execute(raise_on_error)
        try:
            response = await self.batch.submit([args for args, _ in stack])
        finally:
            await self.reset()  # type: ignore[no-untyped-call]
        if raise_on_error:
            self.raise_first_error(stack, response)
        data = []
        for reply, (args, options) in zip(response, stack, strict=True):
            if not isinstance(reply, Exception) and args[0] in self.response_callbacks:
                named = {name: value for name, value in options.items() if name != "keys"}
                reply = self.response_callbacks[args[0]](reply, **named)
            data.append(reply)
        return data


class CoalescingArqRedis(ArqRedis):
    """An ArqRedis whose transactions share round trips (the worker's pool)."""

    _transactions: TransactionBatch | None = None

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        if self._transactions is None:
            self._transactions = TransactionBatch(self.connection_pool)
        pipe = CoalescingPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.batch = self._transactions
        return pipe
