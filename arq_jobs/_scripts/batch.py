"""Coalescing the Lua script calls made in one event-loop iteration into one pipeline.

A worker starts and finishes jobs in bursts: the jobs one poll claimed begin together, and short jobs
end together. Each such call is one atomic script; sending them one by one costs a socket write, a
wake-up of Redis and a read per call, which is most of a short job's cost. `ScriptBatch.call` queues
the call and sends everything queued during the current loop iteration in one non-transactional
pipeline: one write, one round trip, each script still atomic on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from arq_jobs._scripts.run import run_script, source_and_sha
from arq_jobs._scripts.script import Arg, Script


@dataclass(frozen=True, slots=True)
class ScriptCall:
    script: Script | str
    keys: Sequence[str]
    args: Sequence[Arg]
    answer: asyncio.Future[Any]


class ScriptBatch:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._queued: list[ScriptCall] = []
        self._sending: set[asyncio.Task[None]] = set()

    def call(self, script: Script | str, keys: Sequence[str], args: Sequence[Arg]) -> asyncio.Future[Any]:
        """Run `script` with `keys` and `args` in the next batch; the future gets its answer (or its
        error). A call whose future is cancelled before the batch goes out is dropped; once sent,
        cancelling does not take it back."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.append(ScriptCall(script, keys, args, answer))
        return answer

    async def drain(self) -> None:
        """Wait for the batches in flight (at shutdown)."""
        while self._queued or self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
            await asyncio.sleep(0)

    def _flush(self) -> None:
        calls, self._queued = self._queued, []
        task = asyncio.get_running_loop().create_task(self._send(calls))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, calls: list[ScriptCall]) -> None:
        calls = [call for call in calls if not call.answer.done()]  # callers cancelled meanwhile
        if not calls:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for call in calls:
                    pipe.evalsha(source_and_sha(call.script)[1], len(call.keys), *call.keys, *call.args)  # type: ignore[arg-type]
                answers = await pipe.execute(raise_on_error=False)
        except BaseException as error:  # the connection failed: every call of the batch fails
            for call in calls:
                settle(call.answer, error=error)
            if isinstance(error, asyncio.CancelledError):
                raise
            return
        for call, answer in zip(calls, answers, strict=True):
            if isinstance(answer, NoScriptError):  # Redis restarted or flushed its scripts
                try:
                    answer = await run_script(self.redis, call.script, call.keys, call.args)
                except Exception as error:
                    answer = error
            if isinstance(answer, Exception):
                settle(call.answer, error=answer)
            else:
                settle(call.answer, answer)


def settle(future: asyncio.Future[Any], answer: Any = None, *, error: BaseException | None = None) -> None:
    if future.done():  # its caller was cancelled
        return
    if isinstance(error, asyncio.CancelledError):
        future.cancel()
    elif error is not None:
        future.set_exception(error)
    else:
        future.set_result(answer)
