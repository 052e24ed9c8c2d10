"""The version guard: refuse a job that no live worker of its queue can run, instead of queueing one
that would be dead-lettered.

Each worker's heartbeat names the tasks it serves with their input-schema fingerprints
(`arq_jobs._tasks.registry.input_fingerprint`). When live workers serve a job's queue and none of
them knows its task (`unknown_to_workers`), or all run it with another input schema
(`schema_mismatch`), enqueueing raises TaskNotServedError. With no live worker on the queue (or one
too old to report its tasks) the job is accepted, as without the guard.

What the live workers serve is read at most once per `SNAPSHOT_TTL_S` per process (one round trip):
the hot path never reads Redis for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from arq_jobs._config import Settings
from arq_jobs._errors import TaskNotServedError
from arq_jobs._tasks.registry import Task, TaskRegistry
from arq_jobs._worker_registry import WorkerBeat, WorkerRegistry

SNAPSHOT_TTL_S = 1.0


@dataclass(frozen=True, slots=True)
class QueueTasks:
    """What the live workers of one queue serve: task name → the input fingerprints they run it with.
    `reported` is False when one of them is too old to say (then nothing is refused)."""

    workers: int
    reported: bool
    fingerprints: dict[str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class ServedTasks:
    """What the live workers serve, per queue."""

    queues: dict[str, QueueTasks]

    @classmethod
    def of(cls, workers: Iterable[WorkerBeat]) -> ServedTasks:
        """From the heartbeats of live workers."""
        by_queue: dict[str, list[WorkerBeat]] = {}
        for worker in workers:
            for queue in worker.queues:
                by_queue.setdefault(queue, []).append(worker)
        queues = {}
        for queue, beats in by_queue.items():
            fingerprints: dict[str, set[str]] = {}
            for beat in beats:
                for name, fingerprint in (beat.tasks or {}).items():
                    fingerprints.setdefault(name, set()).add(fingerprint)
            queues[queue] = QueueTasks(
                workers=len(beats),
                reported=all(beat.tasks is not None for beat in beats),
                fingerprints={name: frozenset(found) for name, found in fingerprints.items()},
            )
        return cls(queues)

    def refusal(
        self, task: str, fingerprint: str, queue: str, path: str | None = None
    ) -> TaskNotServedError | None:
        """Why no live worker of `queue` can run `task` with input schema `fingerprint`, or None
        when one can (or none serves the queue, or one does not report its tasks)."""
        served = self.queues.get(queue)
        if served is None or not served.reported:
            return None
        theirs = served.fingerprints.get(task, frozenset())
        if fingerprint in theirs:
            return None
        return TaskNotServedError(
            task,
            queue,
            "schema_mismatch" if theirs else "unknown_to_workers",
            workers=served.workers,
            api_input_schema=fingerprint,
            worker_input_schemas=sorted(theirs),
            path=path,
        )


class VersionGuard:
    """What the live workers serve, kept for `ttl_s` and then read again in one round trip; one per
    process (the API's requests share it)."""

    def __init__(
        self,
        workers: WorkerRegistry,
        ttl_s: float = SNAPSHOT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workers = workers
        self.ttl_s = ttl_s
        self.clock = clock
        self._served: ServedTasks | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def served(self) -> ServedTasks:
        """The snapshot, read again once it is `ttl_s` old (by one caller: the others wait for it)."""
        if self._served is not None and self.clock() < self._expires:
            return self._served
        async with self._lock:
            if self._served is None or self.clock() >= self._expires:
                now_ms = int(time.time() * 1000)
                self._served = ServedTasks.of(await self.workers.alive_beats(now_ms))
                self._expires = self.clock() + self.ttl_s
            return self._served

    async def check(self, task: Task[Any, Any], queue: str, path: str | None = None) -> None:
        """Raise TaskNotServedError when live workers serve `queue` and none can run `task`."""
        refusal = (await self.served()).refusal(task.name, task.input_fingerprint, queue, path)
        if refusal is not None:
            raise refusal


class Skew(BaseModel):
    """How the live workers' tasks differ from this API's (tasks checked on their own queue; one
    without a live worker there is not listed)."""

    api_registry_version: str = Field(description="Fingerprint of the API's task registry.")
    worker_registry_versions: list[str] = Field(description="Those the live workers run, sorted.")
    tasks_unknown_to_workers: list[str] = Field(
        description="Tasks whose queue has live workers, none of which serves them."
    )
    tasks_with_schema_mismatch: list[str] = Field(
        description="Tasks the live workers of their queue all run with another input schema."
    )
    version_guard: bool = Field(
        description="Whether new jobs of those tasks are refused (JOBS_VERSION_GUARD)."
    )

    @classmethod
    def of(cls, registry: TaskRegistry, settings: Settings, alive: Iterable[WorkerBeat]) -> Skew:
        alive = list(alive)
        served = ServedTasks.of(alive)
        unknown: list[str] = []
        mismatched: list[str] = []
        for task in sorted(registry, key=lambda t: t.name):
            refusal = served.refusal(task.name, task.input_fingerprint, task.queue_for(settings))
            if refusal is not None:
                (unknown if refusal.reason == "unknown_to_workers" else mismatched).append(task.name)
        return cls(
            api_registry_version=registry.version,
            worker_registry_versions=sorted({w.registry_version for w in alive}),
            tasks_unknown_to_workers=unknown,
            tasks_with_schema_mismatch=mismatched,
            version_guard=settings.version_guard,
        )

    @property
    def found(self) -> bool:
        """Whether any live worker runs other task code than the API."""
        return any(v != self.api_registry_version for v in self.worker_registry_versions) or bool(
            self.tasks_unknown_to_workers or self.tasks_with_schema_mismatch
        )
