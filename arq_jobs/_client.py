"""Enqueue jobs and read their status: the one client the API (and later the CLI) builds on."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from arq_jobs import _arq
from arq_jobs._clock import ms_to_datetime, now_ms
from arq_jobs._config import Settings, load_settings
from arq_jobs._connection import create_arq
from arq_jobs._deadletters import DeadLetterStore
from arq_jobs._deadletters import parse as parse_dead_letter
from arq_jobs._errors import (
    DeadLetterNotFoundError,
    IdempotencyConflictError,
    InvalidScheduleError,
    JobNotCancellableError,
    JobNotFoundError,
    QueueFullError,
    TaskInputError,
    UnknownQueueError,
    UnknownTaskError,
)
from arq_jobs._idempotency import IdempotencyClaim, fingerprint
from arq_jobs._jobs.details import JobDetails, parse_details
from arq_jobs._jobs.enqueue import ENQUEUE_SCRIPT, EnqueueWrite, if_stored
from arq_jobs._jobs.events import EventReader
from arq_jobs._jobs.listing import JobPage, list_jobs
from arq_jobs._jobs.records import JobRecord, record_ttl_ms
from arq_jobs._jobs.snapshots import read_snapshots
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus, build_status
from arq_jobs._jobs.transitions import Phase, Transition
from arq_jobs._keys import Keys
from arq_jobs._logs import get_logger
from arq_jobs._queues import QueueStats, queue_stats
from arq_jobs._replicas import AckedPipeline, ReplicaAck
from arq_jobs._scripts.batch import ScriptBatch
from arq_jobs._scripts.run import run_script
from arq_jobs._scripts.script import Arg, load_script
from arq_jobs._secrets import SecretsKey, fingerprint_inputs, seal, unseal
from arq_jobs._serializer import dumps, loads
from arq_jobs._tasks.registry import InputT, Task, TaskRegistry, load_registry, stored_payload
from arq_jobs._tracing import enqueue_span
from arq_jobs._version_guard import Skew, VersionGuard
from arq_jobs._worker_registry import WorkerInfo, WorkerRegistry
from arq_jobs._workflows.engine import Workflows

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Enqueued:
    """A job that was accepted: it is in Redis and will run. `replayed` when an Idempotency-Key
    matched an earlier request, which created this job (no new job was made)."""

    job_id: str
    task: str
    status: JobState
    scheduled_for: datetime | None
    replayed: bool = False
    retry_of: str | None = None


@dataclass(frozen=True, slots=True)
class PreparedJob:
    """Everything one enqueue writes, ready to be queued on a MULTI pipeline."""

    accepted: Enqueued
    payload: Any  # as validated, secrets in plaintext: never stored (`job` holds them sealed)
    queue: str
    run_at_ms: int
    job: bytes
    record: JobRecord
    expires_ms: int
    record_ttl_ms: int


def run_time_ms(
    now: int, delay: float | timedelta | None, run_at: datetime | None, max_ahead_s: int
) -> int | None:
    """When a delayed job should run, in epoch ms; None to run it now (no delay, or a time already
    past). Refuses both at once, a negative or non-finite delay, a naive run_at, and anything more
    than `max_ahead_s` ahead (JOBS_MAX_SCHEDULE_AHEAD_S)."""
    if delay is not None and run_at is not None:
        raise InvalidScheduleError("give either delay or run_at, not both", ["delay", "run_at"])
    if isinstance(delay, timedelta):
        delay = delay.total_seconds()
    if delay is not None:
        if not (math.isfinite(delay) and 0 <= delay <= max_ahead_s):
            raise InvalidScheduleError(
                f"delay must be a number of seconds from 0 to {max_ahead_s} (JOBS_MAX_SCHEDULE_AHEAD_S)",
                ["delay"],
            )
        at = now + round(delay * 1000)
    elif run_at is not None:
        if run_at.tzinfo is None or run_at.utcoffset() is None:
            raise InvalidScheduleError("run_at must include a timezone", ["run_at"])
        at = round(run_at.timestamp() * 1000)
        if at > now + max_ahead_s * 1000:
            raise InvalidScheduleError(
                f"run_at must be at most {max_ahead_s} seconds ahead (JOBS_MAX_SCHEDULE_AHEAD_S)", ["run_at"]
            )
    else:
        return None
    return at if at > now else None


class JobClient:
    """Enqueues typed jobs and reads their status, on the API's pooled ArqRedis."""

    def __init__(
        self,
        redis: ArqRedis,
        settings: Settings,
        registry: TaskRegistry,
        batch: ScriptBatch | None = None,
        guard: VersionGuard | bool = True,
        replica_ack: bool = True,
        back_pressure: bool = True,
    ) -> None:
        """`batch`: share one between the clients of one process (the API's requests) so that
        concurrent enqueues go to Redis together. `guard` (arq_jobs._version_guard), when
        `settings.version_guard` is on: a VersionGuard shared the same way, True for one of its own,
        False for none (a worker's client: its schedules and workflow steps are its own tasks).
        `replica_ack` False: never wait for `settings.redis_min_replicas_ack` replicas (a worker's
        client: what it writes is its own work, redone when lost). `back_pressure` False: enqueue
        whatever `settings.queue_max_pending` says (a worker's client: schedule ticks and later workflow
        steps are work already accepted, never to be refused)."""
        self.redis = redis
        self.settings = settings
        self.registry = registry
        self.keys = Keys(settings.key_prefix)
        self.batch = batch or ScriptBatch(redis)
        self.ack = ReplicaAck.of(settings) if replica_ack else None
        self.max_pending = settings.queue_max_pending if back_pressure else {}
        self.guard: VersionGuard | None = None
        if guard is not False and settings.version_guard:
            self.guard = guard if isinstance(guard, VersionGuard) else VersionGuard(self.worker_registry)

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, settings: Settings | None = None, *, task_packages: Sequence[str] | None = None
    ) -> AsyncIterator[JobClient]:
        """A client with a Redis pool of its own, for code outside the app and the workers (a script,
        another service): `async with JobClient.connect() as jobs: await jobs.enqueue(task, data)`.
        `settings` default to the `JOBS_*` environment, `task_packages` to `JOBS_TASK_PACKAGES`."""
        settings = (settings or load_settings()).with_task_packages(task_packages)
        redis = create_arq(settings)
        try:
            yield cls(redis, settings, load_registry(settings))
        finally:
            await redis.aclose()
            await redis.connection_pool.disconnect()

    async def enqueue(
        self,
        task: Task[InputT, Any],
        data: InputT,
        *,
        delay: float | timedelta | None = None,
        run_at: datetime | None = None,
        idempotency_key: str | None = None,
        queue: str | None = None,
        job_id: str | None = None,
        workflow: str | None = None,
        schedule: str | None = None,
        owner: str | None = None,
    ) -> Enqueued:
        """Put a job for `task` on its queue (or on `queue`, one of the settings' `queues`, else
        UnknownQueueError); it runs after `delay` seconds or at `run_at`.

        A given `job_id` is used only if no job has it: otherwise nothing is stored and the answer
        is that job, `replayed` (how schedules and workflows enqueue exactly once). `workflow` and
        `schedule` link the job to the workflow step or the schedule that made it; `owner` names the
        API key it is made for (its Idempotency-Keys are its own).

        With an `idempotency_key`, the first request makes the job and every later one with the same
        key and the same request (task, input, delay/run_at, queue) within `idempotency_ttl_s` gets
        that job back (`replayed`); the same key with another request raises IdempotencyConflictError.
        Concurrent identical requests still make exactly one job (WATCH/MULTI on the key).

        A queue already holding its JOBS_QUEUE_MAX_PENDING jobs waiting to start refuses the job with
        QueueFullError (checked inside the enqueue script), unless it is a `workflow` step (its workflow
        was let in when created) or this is a worker's client (`back_pressure=False`).
        """
        if job_id is not None and idempotency_key is not None:
            raise ValueError("give a job_id or an idempotency_key, not both")
        prepared = self._prepare(
            task,
            data,
            delay,
            run_at,
            queue=queue,
            job_id=job_id,
            workflow=workflow,
            schedule=schedule,
            owner=owner,
        )
        with enqueue_span(task.name, prepared.queue, prepared.accepted.job_id) as trace:
            if trace is not None:
                prepared = replace(prepared, record=replace(prepared.record, trace=trace))
            accepted = await self._store(
                task,
                prepared,
                delay,
                run_at,
                idempotency_key,
                only_new=job_id is not None,
                # a workflow's steps were all checked, and its queues' room, when it was created
                guarded=workflow is None,
                limited=workflow is None,
            )
        if not accepted.replayed:
            log.debug(f"job.{accepted.status}", job_id=accepted.job_id, task=task.name, queue=prepared.queue)
        return accepted

    async def _store(
        self,
        task: Task[Any, Any],
        prepared: PreparedJob,
        delay: float | timedelta | None,
        run_at: datetime | None,
        idempotency_key: str | None,
        *,
        only_new: bool = False,
        guarded: bool = True,
        limited: bool = True,
    ) -> Enqueued:
        """Store the job; with `guarded`, only if a live worker can run it (the version guard), which
        is asked only when a job is about to be made: an Idempotency-Key replay is answered anyway.
        With `limited`, QueueFullError when its queue is full (back-pressure): nothing is stored then,
        not even the Idempotency-Key's claim."""
        if idempotency_key is None:
            if guarded:
                await self.check_served(task, prepared.queue)
            write = self._enqueue_write(prepared, only_new=only_new, limited=limited)
            keys, args = write.call(self.settings)
            stored = await self.batch.call(ENQUEUE_SCRIPT, keys, args, self.ack)
            self._check_refused(prepared.queue, stored)
            return prepared.accepted if stored == 1 else replace(prepared.accepted, replayed=True)
        # the queue counts only when it is not the task's own: fingerprints stored before queues
        # could be chosen still match
        chosen = None if prepared.queue == task.queue_for(self.settings) else prepared.queue
        # from the plaintext payload (tokens differ each time), its secrets hashed with a key when set
        requests = [
            fingerprint(task.name, payload, delay, run_at, chosen)
            for payload in fingerprint_inputs(task, prepared.payload, self.secrets_key)
        ]
        request = requests[0]
        claim = IdempotencyClaim(
            idempotency_key, request, task.name, prepared.accepted.job_id, prepared.record.owner
        )
        key = self.keys.idempotency(claim.digest)
        while True:
            async with self.transaction() as pipe:
                await pipe.watch(key)
                earlier = IdempotencyClaim.parse(await pipe.get(key))
                if earlier is not None:
                    if earlier.fingerprint not in requests:
                        raise IdempotencyConflictError(idempotency_key, earlier.task, earlier.job_id)
                    await self.confirm_on_replicas(pipe, key)
                    return Enqueued(
                        earlier.job_id, earlier.task, prepared.accepted.status, None, replayed=True
                    )
                if guarded:
                    await self.check_served(task, prepared.queue)
                pipe.multi()  # type: ignore[no-untyped-call]
                self._write(pipe, prepared, limited=limited)
                # the claim only if the job was stored: a job refused for a full queue leaves none
                if_stored(
                    pipe,
                    self.keys.record(prepared.accepted.job_id),
                    set_key=key,
                    set_value=claim.to_json(),
                    set_ttl_ms=self.settings.idempotency_ttl_s * 1000,
                )
                try:
                    stored, _ = await pipe.execute()
                except WatchError:  # an identical request won the race: answer with its job
                    continue
                self._check_refused(prepared.queue, stored)
                self.check_replicas(pipe)
                return prepared.accepted

    def transaction(self) -> Pipeline:
        """A MULTI/EXEC pipeline for an enqueue, which waits for replicas after EXEC when the
        deployment asks for that (`check_replicas` after `execute()`)."""
        if self.ack is None:
            return self.redis.pipeline(transaction=True)
        return AckedPipeline(self.redis, self.ack)

    async def confirm_on_replicas(self, pipe: Pipeline, key: str) -> None:
        """With replicas required: RedisUnavailableError unless the claim a replay answers with (and so
        its job, written with it) is on them. WAIT covers the writes of its own connection, so this
        one writes first: the claim's expiry set again to what is left of it."""
        if self.ack is None:
            return
        left = await pipe.pttl(key)
        if left > 0:
            await pipe.pexpire(key, left)
        acked: int = await pipe.execute_command(*self.ack.command)  # type: ignore[assignment]
        error = self.ack.error(int(acked))
        if error is not None:
            raise error

    @staticmethod
    def check_replicas(pipe: Pipeline) -> None:
        """RedisUnavailableError when `pipe` (from `transaction()`) waited and too few replicas
        confirmed its writes."""
        if isinstance(pipe, AckedPipeline):
            pipe.check()

    def _prepare(
        self,
        task: Task[InputT, Any],
        data: InputT,
        delay: float | timedelta | None,
        run_at: datetime | None,
        retry_of: str | None = None,
        queue: str | None = None,
        job_id: str | None = None,
        workflow: str | None = None,
        schedule: str | None = None,
        owner: str | None = None,
    ) -> PreparedJob:
        if self.registry.get(task.name) is not task:
            raise UnknownTaskError(task.name)
        queue = self.queue_for(task, queue)
        if not isinstance(data, task.input_model):
            data = task.parse_input(data)
        now = now_ms()
        scheduled = run_time_ms(now, delay, run_at, self.settings.max_schedule_ahead_s)
        run_at_ms = now if scheduled is None else scheduled
        job_id = job_id or uuid.uuid4().hex
        record = JobRecord(
            task=task.name,
            queue=queue,
            enqueued_ms=now,
            scheduled_ms=scheduled,
            max_attempts=task.max_attempts,
            retry_of=retry_of,
            workflow=workflow,
            schedule=schedule,
            owner=owner,
        )
        payload = stored_payload(task, data)
        try:
            stored = seal(task, payload, self.secrets_key)
            job = _arq.serialize_job(task.name, (stored,), {}, None, now, serializer=dumps)
        except _arq.SerializationError as error:
            reason = f"cannot be stored as JSON ({error.__cause__ or error})"
            raise TaskInputError(task.name, [{"loc": [], "msg": reason, "type": "json_unstorable"}]) from None
        accepted = Enqueued(
            job_id,
            task.name,
            JobState.PENDING if scheduled is None else JobState.SCHEDULED,
            ms_to_datetime(scheduled),
            retry_of=retry_of,
        )
        expires_ms = run_at_ms - now + self.settings.job_expires_s * 1000
        return PreparedJob(
            accepted=accepted,
            payload=payload,
            queue=queue,
            run_at_ms=run_at_ms,
            job=job,
            record=record,
            expires_ms=expires_ms,
            record_ttl_ms=record_ttl_ms(
                expires_ms, task.timeout_for(self.settings), self.settings.result_ttl_s
            ),
        )

    async def check_served(self, task: Task[Any, Any], queue: str, path: str | None = None) -> None:
        """TaskNotServedError when live workers serve `queue` and none can run `task` (the version
        guard; a no-op when it is off). `path` names a workflow step."""
        if self.guard is not None:
            await self.guard.check(task, queue, path)

    def queue_for(self, task: Task[Any, Any], queue: str | None = None) -> str:
        """The queue a job of `task` goes to: `queue` if given, else the task's own; UnknownQueueError
        unless it is one of the settings' `queues`."""
        chosen = task.queue_for(self.settings) if queue is None else queue
        if chosen not in self.settings.queues:
            raise UnknownQueueError(chosen, self.settings.queues, task.name)
        return chosen

    def _write(self, pipe: Pipeline, job: PreparedJob, *, limited: bool = True) -> None:
        """Queue the script that stores `job` on a MULTI pipeline (EVAL: a script missing from the
        cache would fail inside the transaction); its answer says whether it did (`_check_refused`)."""
        keys, args = self._enqueue_write(job, limited=limited).call(self.settings)
        pipe.eval(ENQUEUE_SCRIPT.source, len(keys), *keys, *args)  # type: ignore[arg-type]

    def _enqueue_write(
        self, job: PreparedJob, *, only_new: bool = False, limited: bool = True
    ) -> EnqueueWrite:
        """ARQ's job key and queue entry, our record and its first transition: they appear together
        or not at all; with `limited`, only while the queue has room (JOBS_QUEUE_MAX_PENDING)."""
        max_pending = self.max_pending.get(job.queue, 0) if limited else 0
        job_id = job.accepted.job_id
        due_now = job.record.scheduled_ms is None
        event = JobState.PENDING if due_now else JobState.SCHEDULED
        return EnqueueWrite(
            job_id=job_id,
            queue_key=self.keys.queue(job.queue),
            job=job.job,
            expires_ms=job.expires_ms,
            run_at_ms=job.run_at_ms,
            record=job.record.to_hash(),
            record_ttl_ms=job.record_ttl_ms,
            entered=Transition(job_id, event, Phase.QUEUED, job.record.enqueued_ms, created=True),
            wake=due_now,
            only_new=only_new,
            max_pending=max_pending,
            waiting_key=self.waiting_key(job.queue) if max_pending else "",
        )

    def waiting_key(self, queue: str) -> str:
        """The index of `queue`'s jobs waiting to start (pending, scheduled, retrying): what
        back-pressure counts."""
        return self.keys.index("phase", f"{Phase.QUEUED}:queue:{queue}")

    def _check_refused(self, queue: str, stored: Any) -> None:
        """QueueFullError when the enqueue script refused the job: its queue held -`stored` jobs."""
        if isinstance(stored, int) and stored < 0:
            raise QueueFullError(queue, -stored, self.max_pending[queue])

    async def check_room(self, queue: str) -> None:
        """QueueFullError when `queue` already holds its JOBS_QUEUE_MAX_PENDING jobs waiting to start.
        A read, for a workflow's first stage: its jobs are then enqueued without a limit, so that a
        workflow starts whole or not at all (concurrent creations may overshoot by their first stages)."""
        limit = self.max_pending.get(queue)
        if limit:
            waiting = int(await self.redis.zcard(self.waiting_key(queue)))
            if waiting >= limit:
                raise QueueFullError(queue, waiting, limit)

    async def enqueue_payload(
        self,
        task_name: str,
        payload: Any,
        *,
        delay: float | timedelta | None = None,
        run_at: datetime | None = None,
        idempotency_key: str | None = None,
        queue: str | None = None,
    ) -> Enqueued:
        """Enqueue by task name with an unvalidated payload (dict or JSON-able data)."""
        task = self.registry.get(task_name)
        self.queue_for(task, queue)  # an unknown queue is refused before the payload is looked at
        return await self.enqueue(
            task,
            task.parse_input(payload),
            delay=delay,
            run_at=run_at,
            idempotency_key=idempotency_key,
            queue=queue,
        )

    async def status(self, job_id: str) -> JobStatus:
        """Everything known about a job; raises JobNotFoundError for an unknown or expired id."""
        status = (await self.statuses([job_id]))[0]
        if status is None:
            raise JobNotFoundError(job_id)
        return status

    async def statuses(self, job_ids: Sequence[str]) -> list[JobStatus | None]:
        """The status of each job (None for an unknown or expired id), read in one round trip."""
        # one consistent snapshot, even while ARQ finishes a job between our reads (arq_jobs._jobs.snapshots)
        snapshots = await read_snapshots(self.redis, self.keys, job_ids)
        now = now_ms()
        return [
            build_status(
                job_id,
                JobRecord.from_hash(snapshot.record),
                _read_result(snapshot.result),
                in_progress=snapshot.in_progress,
                queued=snapshot.queued,
                now_ms=now,
            )
            for job_id, snapshot in zip(job_ids, snapshots, strict=True)
        ]

    async def details(self, job_id: str) -> JobDetails:
        """The input a job was given and its error's traceback, as far as ARQ still keeps them."""
        raw_job, raw_result = await self.redis.mget([Keys.arq_job(job_id), Keys.arq_result(job_id)])
        return parse_details(raw_job, raw_result, self.registry)

    async def jobs(
        self,
        *,
        state: JobState | None = None,
        task: str | None = None,
        queue: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        owner: str | None = None,
    ) -> JobPage:
        """Jobs newest first (by run time) matching every filter given (`owner`: only that API key's
        jobs), `limit` after `cursor`."""
        return await list_jobs(
            self.redis,
            self.keys,
            self.statuses,
            state=state,
            task=task,
            queue=queue,
            limit=limit,
            cursor=cursor,
            owner=owner,
        )

    async def cancel(self, job_id: str, *, whole_workflow: bool = True) -> JobStatus:
        """Cancel a job. Waiting (pending, scheduled, retrying): removed from its queue at once, it
        never runs. Running: marked, and its worker stops it within about a second. Raises
        JobNotFoundError for an unknown id and JobNotCancellableError once it has ended. Unknown ids
        leave nothing behind (unlike ARQ's abort, which would abort a later job given that id).
        A workflow step's job cancels its workflow with it (its other unfinished steps too)."""
        current = await self.status(job_id)
        if current.is_terminal:
            raise JobNotCancellableError(job_id, current.status.value)
        queue = self.keys.queue(current.queue or self.settings.queue_name)
        keys, args = cancel_call(self.settings, job_id, queue, now_ms())
        outcome = await run_script(self.redis, CANCEL_SCRIPT, keys, args)
        if outcome == b"missing":
            raise JobNotFoundError(job_id)
        after = await self.status(job_id)
        if outcome == b"ended":
            raise JobNotCancellableError(job_id, after.status.value)
        if outcome == b"cancelled":
            log.info("job.cancelled", job_id=job_id, task=after.task, queue=after.queue, waiting=True)
        if whole_workflow and after.workflow_id is not None:
            await Workflows(self).stop(after.workflow_id)
            after = await self.status(job_id)
        return after

    @property
    def events(self) -> EventReader:
        return EventReader(self.redis, self.keys)

    @property
    def worker_registry(self) -> WorkerRegistry:
        return WorkerRegistry(self.redis, self.settings)

    async def workers(self) -> list[WorkerInfo]:
        """Live workers, then recently stale or stopped ones."""
        return await self.worker_registry.workers(now_ms())

    def skew(self, alive: Sequence[WorkerInfo]) -> Skew:
        """How the task code of the `alive` workers differs from this client's registry."""
        return Skew.of(self.registry, self.settings, (w for w in alive if w.state == "alive"))

    def queue_names(self, workers: Sequence[WorkerInfo] = ()) -> list[str]:
        """Every queue known: the configured ones in their order, then any other that a task names
        or a live worker serves (a worker started with other settings), sorted."""
        others = {task.queue_for(self.settings) for task in self.registry}
        others.update(q for w in workers if w.state == "alive" for q in w.queues)
        return [*self.settings.queues, *sorted(others.difference(self.settings.queues))]

    async def queues(self, alive: Sequence[WorkerInfo] | None = None) -> list[QueueStats]:
        """Counts by state of every known queue, with its live workers (`alive`: when already read)."""
        now = now_ms()
        if alive is None:
            alive = await self.worker_registry.alive(now)
        return [
            await queue_stats(self.redis, self.keys, name, now, sum(name in w.queues for w in alive))
            for name in self.queue_names(alive)
        ]

    @property
    def dead_letters(self) -> DeadLetterStore:
        """Dead letters, their inputs' secrets redacted."""
        return DeadLetterStore(self.redis, self.keys, self.settings.dead_letter_ttl_s, self.registry)

    @property
    def secrets_key(self) -> SecretsKey | None:
        """The JOBS_SECRETS_KEY keys that seal secret inputs (None: stored as given)."""
        return SecretsKey.of(self.settings)

    async def retry_dead_letter(self, job_id: str) -> Enqueued:
        """Enqueue a dead letter's task and input again, on the queue the failed job was on, as a new
        job that links back (`retry_of`), and remove the dead letter, in one transaction (two
        concurrent retries make one job). UnknownQueueError when that queue is no longer configured;
        QueueFullError (the dead letter kept) when it holds JOBS_QUEUE_MAX_PENDING waiting jobs."""
        key = self.keys.dead_letter(job_id)
        async with self.transaction() as pipe:
            await pipe.watch(key)
            letter = parse_dead_letter(await pipe.get(key))
            if letter is None:
                raise DeadLetterNotFoundError(job_id)
            task = self.registry.get(letter.task)
            data = task.parse_input(unseal(task, letter.input, self.secrets_key))  # sealed again
            prepared = self._prepare(
                task, data, None, None, retry_of=job_id, queue=letter.queue, owner=letter.owner
            )
            await self.check_served(task, prepared.queue)
            pipe.multi()  # type: ignore[no-untyped-call]
            self._write(pipe, prepared)
            # removed only if the retry was stored: a retry refused for a full queue keeps it
            self.dead_letters.remove_if_retried(pipe, letter, self.keys.record(prepared.accepted.job_id))
            try:
                stored, _ = await pipe.execute()
            except WatchError:  # retried or deleted meanwhile
                raise DeadLetterNotFoundError(job_id) from None
            self._check_refused(prepared.queue, stored)
            self.check_replicas(pipe)
        return prepared.accepted


CANCEL_SCRIPT = load_script("cancel-7.lua")


def cancel_call(settings: Settings, job_id: str, queue_key: str, now: int) -> tuple[list[str], list[Arg]]:
    """CANCEL_SCRIPT's KEYS and ARGV for cancelling `job_id` (waiting in `queue_key`) at `now`."""
    keys = Keys(settings.key_prefix)
    cancelled = Transition(job_id, JobState.CANCELLED, Phase.CANCELLED, now)
    script_keys = CANCEL_SCRIPT.keys(
        record=keys.record(job_id),
        result=Keys.arq_result(job_id),
        in_progress=Keys.arq_in_progress(job_id),
        arq_job=Keys.arq_job(job_id),
        retry=Keys.arq_retry(job_id),
        queue=queue_key,
        events=keys.events(job_id),
    )
    args = CANCEL_SCRIPT.args(
        now=now,
        job_id=job_id,
        record_ttl_ms=settings.result_ttl_s * 1000,
        transition=cancelled.args(settings),
    )
    return script_keys, args


def _read_result(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        result = loads(raw)
    except ValueError:
        return {"s": False, "r": "the stored result is not JSON; it was not read"}
    return result if isinstance(result, dict) else None
