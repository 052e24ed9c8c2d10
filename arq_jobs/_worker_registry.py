"""The worker registry: each worker's heartbeat in Redis, and who is alive.

A worker writes its `WorkerBeat` (JSON, `<prefix>:worker:<id>`) and scores its id in
`<prefix>:workers` with the time, every `heartbeat_s`. It counts as alive until 3 beats are missed;
after that, or once it stopped cleanly, it is listed as stale / stopped for `worker_history_s`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from arq_jobs._clock import ms_to_datetime
from arq_jobs._config import Settings
from arq_jobs._keys import Keys
from arq_jobs._scripts.run import run_script
from arq_jobs._scripts.script import load_script

MISSED_BEATS = 3

ALIVE_SCRIPT = load_script("alive-beats-1.lua")

WorkerState = Literal["alive", "stale", "stopped"]


class WorkerTotals(BaseModel):
    """Attempts a worker ended since it started, by outcome."""

    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0


class WorkerBeat(BaseModel):
    """What a worker reports about itself at each heartbeat."""

    worker_id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    started_at: datetime
    running: int = Field(description="Jobs it runs now.")
    running_jobs: list[str] = Field(description="Ids of the jobs it runs now.")
    totals: WorkerTotals
    registry_version: str = Field(description="Fingerprint of the task registry it runs.")
    tasks: dict[str, str] | None = Field(
        default=None,
        description="The tasks it serves, each with the fingerprint of its input schema (null from a "
        "worker too old to say).",
    )
    version: str = Field(description="Version of this package it runs.")
    stopped: bool = False


class WorkerInfo(WorkerBeat):
    """A worker as GET /workers shows it."""

    state: WorkerState
    last_seen: datetime
    last_seen_age_s: float


class WorkerRegistry:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.keys = Keys(settings.key_prefix)
        self.history_ms = settings.worker_history_s * 1000
        self.alive_ms = round(settings.heartbeat_s * MISSED_BEATS * 1000)

    def beat(self, pipe: Pipeline, beat: WorkerBeat, now_ms: int) -> None:
        """Queue a heartbeat's commands on a pipeline."""
        pipe.set(self.keys.worker(beat.worker_id), beat.model_dump_json(), px=self.history_ms)
        pipe.zadd(self.keys.workers(), {beat.worker_id: now_ms})
        pipe.zremrangebyscore(self.keys.workers(), "-inf", f"({now_ms - self.history_ms}")
        pipe.pexpire(self.keys.workers(), self.history_ms)

    async def workers(self, now_ms: int) -> list[WorkerInfo]:
        """Alive workers first, then stale and stopped ones seen within the history, newest first."""
        entries: Sequence[tuple[bytes, float]] = await self.redis.zrevrangebyscore(
            self.keys.workers(), "+inf", now_ms - self.history_ms, withscores=True
        )
        if not entries:
            return []
        values = await self.redis.mget([self.keys.worker(m.decode()) for m, _ in entries])
        found: list[WorkerInfo] = []
        for (_, score), raw in zip(entries, values, strict=True):
            if raw is None:
                continue
            try:
                beat = WorkerBeat.model_validate_json(raw)
            except ValidationError:
                continue
            seen = int(score)
            state: WorkerState = (
                "stopped" if beat.stopped else "alive" if now_ms - seen <= self.alive_ms else "stale"
            )
            last_seen = ms_to_datetime(seen)
            assert last_seen is not None
            found.append(
                WorkerInfo(
                    **beat.model_dump(),
                    state=state,
                    last_seen=last_seen,
                    last_seen_age_s=round(max(0, now_ms - seen) / 1000, 3),
                )
            )
        found.sort(key=lambda w: (w.state != "alive", -w.last_seen.timestamp()))
        return found

    async def alive(self, now_ms: int) -> list[WorkerInfo]:
        return [w for w in await self.workers(now_ms) if w.state == "alive"]

    async def alive_beats(self, now_ms: int) -> list[WorkerBeat]:
        """The heartbeats of the live workers, read in one round trip (for the version guard)."""
        raw = await run_script(
            self.redis,
            ALIVE_SCRIPT,
            ALIVE_SCRIPT.keys(workers=self.keys.workers()),
            ALIVE_SCRIPT.args(since=now_ms - self.alive_ms, worker_prefix=self.keys.worker("")),
        )
        found = []
        for value in raw:
            try:
                beat = WorkerBeat.model_validate_json(value)
            except ValidationError:  # expired meanwhile (''), or unreadable
                continue
            if not beat.stopped:
                found.append(beat)
        return found
