"""Coalescing the Lua script calls made in one event-loop iteration into one pipeline.

A worker starts and finishes jobs in bursts: the jobs one poll claimed begin together, and short jobs
end together. Each such call is one atomic script; sending them one by one costs a socket write, a
wake-up of Redis and a read per call, which is most of a short job's cost. `ScriptBatch.call` queues
the call and sends everything queued during the current loop iteration in one non-transactional
pipeline: one write, one round trip, each script still atomic on its own.

A call may ask for replicas to confirm its writes (`ack`, arq_jobs._replicas): the pipeline then
ends with one WAIT on the same connection, and a short count fails exactly the calls that asked.

A long call (`alone`: a batch enqueue, milliseconds of Redis time) goes out at once on a pipeline of its
own: batched, it would hold up the short calls' answers and its own would wait for theirs, and concurrent
requests would move in lock step (all parsed, then all run, then all answered) instead of overlapping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from arq_jobs._replicas import ReplicaAck
from arq_jobs._scripts.run import run_script, source_and_sha
from arq_jobs._scripts.script import Arg, Script


@dataclass(frozen=True, slots=True)
class ScriptCall:
    script: Script | str
    keys: Sequence[str]
    args: Sequence[Arg]
    answer: asyncio.Future[Any]
    ack: ReplicaAck | None = None


class ScriptBatch:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._queued: list[ScriptCall] = []
        self._sending: set[asyncio.Task[None]] = set()

    def call(
        self,
        script: Script | str,
        keys: Sequence[str],
        args: Sequence[Arg],
        ack: ReplicaAck | None = None,
        *,
        alone: bool = False,
    ) -> asyncio.Future[Any]:
        """Run `script` with `keys` and `args` in the next batch (`alone`: now, in a batch of its own);
        the future gets its answer (or its error; with `ack`, RedisUnavailableError when too few
        replicas confirmed the batch's writes). A call whose future is cancelled before the batch goes
        out is dropped; once sent, cancelling does not take it back."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        call = ScriptCall(script, keys, args, answer, ack)
        if alone:
            self._start([call])
            return answer
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.append(call)
        return answer

    async def drain(self) -> None:
        """Wait for the batches in flight (at shutdown)."""
        while self._queued or self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
            await asyncio.sleep(0)

    def _flush(self) -> None:
        calls, self._queued = self._queued, []
        self._start(calls)

    def _start(self, calls: list[ScriptCall]) -> None:
        task = asyncio.get_running_loop().create_task(self._send(calls))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, calls: list[ScriptCall]) -> None:
        calls = [call for call in calls if not call.answer.done()]  # callers cancelled meanwhile
        if not calls:
            return
        ack = strictest(calls)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for call in calls:
                    pipe.evalsha(source_and_sha(call.script)[1], len(call.keys), *call.keys, *call.args)  # type: ignore[arg-type]
                if ack is not None:
                    pipe.execute_command(*ack.command)
                answers = await pipe.execute(raise_on_error=False)
        except BaseException as error:  # the connection failed: every call of the batch fails
            for call in calls:
                settle(call.answer, error=error)
            if isinstance(error, asyncio.CancelledError):
                raise
            return
        acked = answers.pop() if ack is not None else None
        for call, answer in zip(calls, answers, strict=True):
            if isinstance(answer, NoScriptError):  # Redis restarted or flushed its scripts
                try:
                    if call.ack is None:
                        answer = await run_script(self.redis, call.script, call.keys, call.args)
                    else:
                        answer = await run_acked(self.redis, call.script, call.keys, call.args, call.ack)
                except Exception as error:
                    answer = error
            elif call.ack is not None and not isinstance(answer, Exception):
                answer = call.ack.error(acked) or answer  # type: ignore[arg-type]
            if isinstance(answer, Exception):
                settle(call.answer, error=answer)
            else:
                settle(call.answer, answer)


def strictest(calls: Sequence[ScriptCall]) -> ReplicaAck | None:
    """One WAIT that satisfies every call of a batch that asked for one (None when none did)."""
    acks = [call.ack for call in calls if call.ack is not None]
    if not acks:
        return None
    return ReplicaAck(max(a.replicas for a in acks), max(a.timeout_ms for a in acks))


async def run_acked(
    redis: Redis, script: Script | str, keys: Sequence[str], args: Sequence[Arg], ack: ReplicaAck
) -> Any:
    """EVAL `script` and WAIT for `ack`'s replicas on one connection; its answer, or the error."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.eval(source_and_sha(script)[0], len(keys), *keys, *args)  # type: ignore[arg-type]
        pipe.execute_command(*ack.command)
        answer, acked = await pipe.execute(raise_on_error=False)
    if isinstance(answer, Exception):
        return answer
    return ack.error(acked) or answer


def settle(future: asyncio.Future[Any], answer: Any = None, *, error: BaseException | None = None) -> None:
    if future.done():  # its caller was cancelled
        return
    if isinstance(error, asyncio.CancelledError):
        future.cancel()
    elif error is not None:
        future.set_exception(error)
    else:
        future.set_result(answer)
