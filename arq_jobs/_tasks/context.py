"""What a task receives: its job's identity, the worker's shared resources, and progress reporting."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from arq.connections import ArqRedis

from arq_jobs._config import Settings
from arq_jobs._errors import SoftTimeLimitExceeded
from arq_jobs._jobs.records import PROGRESS
from arq_jobs._jobs.transitions import PROGRESS_EVENT, Transition
from arq_jobs._keys import Keys
from arq_jobs._tasks.progress import Progress


@dataclass(frozen=True, slots=True)
class Resources:
    """Shared resources of one worker process, built in on_startup and closed in on_shutdown."""

    settings: Settings
    redis: ArqRedis
    http: httpx.AsyncClient
    worker_id: str
    shared: Mapping[str, Any] = field(default_factory=dict)  # the worker's ctx: what on_startup stored

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
        """The worker's shared HTTP client (timeouts set; refuses hosts inside the network with
        BlockedAddressError unless JOBS_WEBHOOK_ALLOWED_HOSTS opens them)."""
        return self.resources.http

    @property
    def redis(self) -> ArqRedis:
        return self.resources.redis

    @property
    def shared(self) -> Mapping[str, Any]:
        """What the worker's `on_startup` hooks stored on its context (`ctx["db"] = pool` there,
        `ctx.shared["db"]` here)."""
        return self.resources.shared

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
