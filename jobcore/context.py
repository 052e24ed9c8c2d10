"""What a task receives: its job's identity, the worker's shared resources, and progress reporting."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx
from arq.connections import ArqRedis

from jobcore.config import Settings
from jobcore.errors import SoftTimeLimitExceeded
from jobcore.keys import Keys
from jobcore.progress import Progress
from jobcore.records import PROGRESS
from jobcore.transitions import PROGRESS_EVENT, Transition


@dataclass(frozen=True, slots=True)
class Resources:
    """Shared resources of one worker process, built in on_startup and closed in on_shutdown."""

    settings: Settings
    redis: ArqRedis
    http: httpx.AsyncClient
    worker_id: str

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.key_prefix)


@dataclass(frozen=True, slots=True)
class JobContext:
    """Handed to a task for one attempt of one job."""

    job_id: str
    task: str
    attempt: int
    resources: Resources
    soft_timeout_s: float | None = None
    soft_limit: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def soft_limit_reached(self) -> bool:
        """True once the attempt has run past its soft time limit: finish or clean up now, the hard
        limit stops it soon after."""
        return self.soft_limit.is_set()

    def check_soft_limit(self) -> None:
        """Raise SoftTimeLimitExceeded (catch it to clean up) once the soft limit has passed."""
        if self.soft_limit.is_set():
            raise SoftTimeLimitExceeded(self.soft_timeout_s or 0.0)

    @property
    def http(self) -> httpx.AsyncClient:
        """The worker's shared HTTP client (timeouts set)."""
        return self.resources.http

    @property
    def redis(self) -> ArqRedis:
        return self.resources.redis

    @property
    def keys(self) -> Keys:
        return self.resources.keys

    async def progress(self, step: int, total: int, message: str = "") -> Progress:
        """Record that the job is at `step` of `total`; visible at `GET /jobs/{id}` at once."""
        progress = Progress.at(step, total, message)
        update = Transition(
            self.job_id,
            PROGRESS_EVENT,
            now_ms=round(progress.updated_at.timestamp() * 1000),
            fields={PROGRESS: progress.model_dump_json()},
        )
        await update.apply(self.redis, self.resources.settings)
        return progress
