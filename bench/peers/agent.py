"""The agent side of the harness ↔ peer protocol: one JSON request per line on stdin
(`{"id": 1, "op": "enqueue", "kind": "noop", "n": 1}`), one JSON reply per line on stdout
(`{"id": 1, "ok": ...}` or `{"id": 1, "error": "..."}`), requests served concurrently; EOF ends it."""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def serve(handlers: dict[str, Handler]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks: set[asyncio.Task[None]] = set()

    async def handle(request: dict[str, Any]) -> None:
        try:
            reply({"id": request["id"], "ok": await handlers[request["op"]](request)})
        except Exception as error:
            traceback.print_exc()
            reply({"id": request["id"], "error": f"{type(error).__name__}: {error}"})

    reply({"id": 0, "ok": "ready"})
    while line := await reader.readline():
        task = asyncio.create_task(handle(json.loads(line)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)


class Progress:
    """The jobs an agent enqueued, in order, and how many have ended so far: checked in batches from
    the oldest still pending, stopping at the first batch with one not ended yet."""

    def __init__(self, is_done: Callable[[list[str]], Awaitable[list[bool]]], batch: int = 100) -> None:
        self.ids: list[str] = []
        self.pending: list[str] = []
        self.is_done = is_done
        self.batch = batch

    def add(self, ids: list[str]) -> None:
        self.ids += ids
        self.pending += ids

    async def check(self, _: dict[str, Any]) -> dict[str, int]:
        while self.pending:
            chunk = self.pending[: self.batch]
            done = await self.is_done(chunk)
            still = [job_id for job_id, ended in zip(chunk, done, strict=True) if not ended]
            self.pending = still + self.pending[len(chunk) :]
            if still:
                break
        return {"total": len(self.ids), "done": len(self.ids) - len(self.pending)}

    async def ended(self, request: dict[str, Any]) -> int:
        """How many of the jobs `request["ids"]` names have ended."""
        await self.check(request)
        pending = set(self.pending)
        return sum(1 for job_id in request["ids"] if job_id not in pending)
