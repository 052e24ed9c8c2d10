"""The attempts one worker process runs now: their leases and their cancel requests; and the
worker's heartbeat in the worker registry, its totals and metrics.

Every second the worker renews the lease of each attempt it runs (ARQ's in-progress key, given a TTL
of `lease_s` instead of ARQ's "longest time limit + 10 s") and reads their `cancel_requested` flags,
in one round trip. A worker that dies stops renewing: its jobs' leases run out within `lease_s` and
another worker claims them at its next poll. A flagged attempt's asyncio task is cancelled; the
runner turns that into a `cancelled` job. Beside the beat it samples its queue's depth for the
statistics every JOBS_STATS_SAMPLE_S (arq_jobs._stats.depth). While Redis is away the beat retries
on the outage's backoff (`arq_jobs._worker.outage`) and beats at once when any loop finds Redis back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass, field

from arq.worker import Worker

from arq_jobs import _arq
from arq_jobs._client import JobClient
from arq_jobs._clock import ms_to_datetime, now_ms
from arq_jobs._jobs.records import (
    ATTEMPT,
    CANCEL_REQUESTED,
    MARK,
    NEXT_ATTEMPT_AT,
    STARTED_AT,
    THROTTLE,
    THROTTLED_UNTIL,
    WORKER,
    record_ttl_ms,
)
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.transitions import Phase, Transition
from arq_jobs._keys import Keys
from arq_jobs._limits.worker import WorkerLimits
from arq_jobs._redis_errors import describe_redis_error
from arq_jobs._scripts.batch import ScriptBatch
from arq_jobs._scripts.script import load_script
from arq_jobs._stats.depth import DepthSampler
from arq_jobs._tasks.context import Resources
from arq_jobs._version import PACKAGE_VERSION
from arq_jobs._worker.metrics import WorkerMetrics
from arq_jobs._worker.outage import REDIS_ERRORS, RedisHealth
from arq_jobs._worker.wakeup import Wakeup
from arq_jobs._worker_registry import WorkerBeat, WorkerRegistry, WorkerTotals

log = logging.getLogger(__name__)

BEAT_INTERVAL_S = 1.0

BEGIN_SCRIPT = load_script("begin-attempt-4.lua")  # the start of an attempt in one command


@dataclass(frozen=True, slots=True)
class Begun:
    """What the start of an attempt found: whether the job was cancelled, its trace context, and
    which workflow step it is (`<workflow id>:<stage>:<index>`), if any."""

    cancelled: bool
    trace: str | None = None
    workflow: str | None = None
    started_ms: int = 0  # the attempt's start as recorded (`started_at`)


@dataclass(slots=True)
class RunningAttempt:
    job_id: str
    task: asyncio.Task[object]
    cancel_requested: bool = False


@dataclass
class Runtime:
    resources: Resources
    worker: Worker | None = None
    wakeup: Wakeup | None = None
    interval_s: float = BEAT_INTERVAL_S
    registry_version: str = ""
    tasks: dict[str, str] | None = None  # the tasks it serves → input fingerprints (computed once)
    running: dict[str, RunningAttempt] = field(default_factory=dict)
    finishing: dict[str, Transition] = field(default_factory=dict)
    totals: WorkerTotals = field(default_factory=WorkerTotals)
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    limits: WorkerLimits = field(default_factory=WorkerLimits.none)
    client: JobClient | None = None  # enqueues from the worker: schedules' ticks, workflows' steps
    started_ms: int = field(default_factory=now_ms)
    batch: ScriptBatch = field(init=False)
    health: RedisHealth = field(init=False)  # whether this process reaches Redis, as its loops find
    depth: DepthSampler = field(init=False)  # samples its queue's depth for the statistics
    _last_beat_ms: int = 0
    _loop_task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.batch = ScriptBatch(self.resources.redis)
        self.health = RedisHealth(hold_s=self.resources.settings.outage_hold_s)
        settings = self.resources.settings
        self.depth = DepthSampler(self.resources.redis, settings, settings.queue_name)
        self.metrics.watch(self.health)

    @property
    def registry(self) -> WorkerRegistry:
        return WorkerRegistry(self.resources.redis, self.resources.settings)

    def heartbeat(self, *, stopped: bool = False) -> WorkerBeat:
        """What this worker reports about itself now."""
        settings = self.resources.settings
        started = ms_to_datetime(self.started_ms)
        assert started is not None
        return WorkerBeat(
            worker_id=self.resources.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=[settings.queue_name],
            concurrency=settings.worker_concurrency,
            started_at=started,
            running=len(self.running),
            running_jobs=sorted(self.running),
            totals=self.totals.model_copy(),
            registry_version=self.registry_version,
            tasks=self.tasks,
            version=PACKAGE_VERSION,
            stopped=stopped,
        )

    def attempt_started(self, task: str, queue: str, wait_ms: int) -> None:
        """Count an attempt that started `wait_ms` after it was due."""
        self.metrics.started.labels(task, queue).inc()
        self.metrics.running.labels(task, queue).inc()
        self.metrics.wait.labels(task, queue).observe(wait_ms / 1000)

    def attempt_ended(self, task: str, queue: str, outcome: str | None, duration_s: float) -> None:
        """Count an attempt that ended: succeeded, failed, retried, cancelled; None when it was put
        back in its queue by a shutdown (not an outcome)."""
        self.metrics.running.labels(task, queue).dec()
        if outcome is None:
            return
        self.metrics.ended[outcome].labels(task, queue).inc()
        self.metrics.duration.labels(task, queue, outcome).observe(duration_s)
        setattr(self.totals, outcome, getattr(self.totals, outcome) + 1)

    @property
    def lease_ms(self) -> int:
        return round(self.resources.settings.lease_s * 1000)

    async def begin(self, job_id: str, attempt: int, timeout_s: float) -> Begun:
        """Record an attempt's start (clearing a retrying mark), take its lease, and keep the job's
        data alive past it (whatever was left of ARQ's enqueue-time expiry); `cancelled`, recording
        nothing, when the job was cancelled meanwhile (its attempt count stays that of attempts that
        ran)."""
        settings = self.resources.settings
        keys = self.resources.keys
        now = now_ms()
        running = Transition(
            job_id,
            JobState.RUNNING,
            Phase.RUNNING,
            now,
            fields={ATTEMPT: attempt, STARTED_AT: now, WORKER: self.resources.worker_id},
            drop=(MARK, NEXT_ATTEMPT_AT, THROTTLE, THROTTLED_UNTIL),
        )
        args = BEGIN_SCRIPT.args(
            lease_ms=self.lease_ms,
            job_ttl_ms=round((timeout_s + settings.job_expires_s) * 1000),
            record_ttl_ms=record_ttl_ms(0, timeout_s, settings.longest_keep_s),
            transition=running.args(settings),
        )
        script_keys = BEGIN_SCRIPT.keys(
            in_progress=Keys.arq_in_progress(job_id),
            arq_job=Keys.arq_job(job_id),
            record=keys.record(job_id),
            events=keys.events(job_id),
        )
        answer = await self.health.hold(lambda: self.batch.call(BEGIN_SCRIPT, script_keys, args))
        if answer[0] == 1:
            return Begun(cancelled=True)
        trace, workflow = (answer[1:] + [None, None])[:2]
        return Begun(
            cancelled=False,
            trace=trace.decode() if isinstance(trace, bytes) else None,
            workflow=workflow.decode() if isinstance(workflow, bytes) else None,
            started_ms=now,
        )

    async def settle(self, transition: Transition) -> None:
        """Write a finished attempt's transition: in the transaction where ARQ stores the result
        (`arq_jobs._worker.arq_worker`), so the event, the indexes and the result appear together; directly
        when the ARQ worker could not be adopted."""
        if self.worker is None:
            await transition.apply(self.resources.redis, self.resources.settings)
        else:
            self.finishing[transition.job_id] = transition

    def track(self, job_id: str) -> RunningAttempt:
        """Register the attempt running in the current asyncio task."""
        current = asyncio.current_task()
        assert current is not None, "track() runs inside the job's task"
        attempt = RunningAttempt(job_id, current)
        self.running[job_id] = attempt
        return attempt

    def shutting_down(self, job_id: str) -> bool:
        """Whether a CancelledError in `job_id`'s attempt comes from the worker stopping: ARQ then
        cancels the job's run_job task (its time limit cancels only the inner one). Without the
        Worker at hand: whether our own task was cancelled by anyone."""
        if self.worker is not None:
            parent = _arq.run_job_task(self.worker, job_id)
            return parent is not None and parent.cancelling() > 0
        current = asyncio.current_task()
        return current is not None and current.cancelling() > 0

    def untrack(self, job_id: str) -> None:
        self.running.pop(job_id, None)

    async def beat(self) -> None:
        """Renew every running attempt's lease, cancel those whose job was cancelled, and write the
        worker's heartbeat when it is due."""
        attempts = list(self.running.values())
        now = now_ms()
        due = now - self._last_beat_ms >= self.resources.settings.heartbeat_s * 1000 - 50
        if not attempts and not due:
            return
        keys = self.resources.keys
        async with self.resources.redis.pipeline(transaction=False) as pipe:
            for attempt in attempts:
                pipe.pexpire(Keys.arq_in_progress(attempt.job_id), self.lease_ms)
                pipe.hexists(keys.record(attempt.job_id), CANCEL_REQUESTED)
            self.limits.renew(pipe, now, self.lease_ms)
            if due:
                self.registry.beat(pipe, self.heartbeat(), now)
            replies = await pipe.execute()
        self.health.recovered()
        if due:
            self._last_beat_ms = now
        for attempt, flagged in zip(attempts, replies[1 : 2 * len(attempts) : 2], strict=True):
            if flagged and not attempt.cancel_requested and self.running.get(attempt.job_id) is attempt:
                log.info("job %s cancelled while running: stopping it", attempt.job_id)
                attempt.cancel_requested = True
                attempt.task.cancel()

    async def _run(self) -> None:
        while True:
            if self.health.up:
                await asyncio.sleep(self.interval_s)
            else:  # ends as soon as any loop finds Redis back: renew the leases at once
                await self.health.backoff()
            try:
                await self.beat()
            except REDIS_ERRORS as error:  # keep beating: leases last lease_s, Redis may come back
                self.health.failed(error)
            except Exception:  # never let the beat die: without it every lease runs out
                log.exception("lease renewal failed")
            now = now_ms()
            if self.health.up and self.depth.due(now):
                await self.sample_depth(now)

    async def sample_depth(self, now: int) -> None:
        """Sample the queue's depth for the statistics: a failure skips this tick (a warning), and is
        never taken for a Redis outage (the statistics are not worth pausing the jobs for)."""
        try:
            await self.depth.sample(now)
        except REDIS_ERRORS as error:
            log.warning("queue depth not sampled: %s", describe_redis_error(error))
        except Exception:
            log.exception("queue depth not sampled")

    async def start(self) -> None:
        """Register the worker (first heartbeat), serve its metrics if a port is set, start beating."""
        port = self.resources.settings.worker_metrics_port
        if port:
            self.metrics.serve(port)
        await self.beat()
        self._loop_task = asyncio.create_task(self._run(), name="jobs-lease-renewal")
        if self.wakeup is not None:
            self.wakeup.start()

    async def stop(self) -> None:
        if self.wakeup is not None:
            await self.wakeup.stop()
        await self.batch.drain()  # attempt starts and ends still on their way to Redis
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        self.metrics.close()
        try:  # listed as stopped (not stale) from now on
            async with self.resources.redis.pipeline(transaction=False) as pipe:
                self.registry.beat(pipe, self.heartbeat(stopped=True), now_ms())
                await pipe.execute()
        except REDIS_ERRORS as error:
            log.warning("could not record the worker's stop: %s", describe_redis_error(error))
