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
from arq_jobs._jobs.enqueue import BATCH_SCRIPT, ENQUEUE_SCRIPT, BatchWrite, EnqueueWrite, if_stored
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
from arq_jobs._scripts.script import Arg, Script, load_script
from arq_jobs._secrets import SecretsKey, fingerprint_inputs, seal, unseal
from arq_jobs._serializer import dumps, loads
from arq_jobs._stats.reader import Stats, read_stats
from arq_jobs._stats.reader import scopes as stats_scopes
from arq_jobs._stats.window import Window
from arq_jobs._tasks.registry import (
    InputT,
    Task,
    TaskRegistry,
    load_registry,
    of_input,
    stored_payload,
    stored_payloads,
)
from arq_jobs._tracing import enqueue_span
from arq_jobs._version_guard import Skew, VersionGuard
from arq_jobs._worker_registry import WorkerInfo, WorkerRegistry
from arq_jobs._workflows.engine import Workflows

log = get_logger(__name__)

MAX_BATCH_JOBS = 1000  # the most jobs one enqueue_many (one POST /jobs/{task}/batch) makes


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


@dataclass(frozen=True, slots=True)
class Plan:
    """What the jobs of one enqueue share (one job, or a batch): their record at enqueue (task, queue,
    times, owner, links), when they are due and how long their keys live."""

    record: JobRecord
    run_at_ms: int
    expires_ms: int
    record_ttl_ms: int

    def accepted(self, job_id: str) -> Enqueued:
        scheduled = self.record.scheduled_ms
        return Enqueued(
            job_id,
            self.record.task,
            JobState.PENDING if scheduled is None else JobState.SCHEDULED,
            ms_to_datetime(scheduled),
            retry_of=self.record.retry_of,
        )

    def prepared(self, job_id: str, payload: Any, job: bytes) -> PreparedJob:
        """One job of the plan, with its id, validated payload and serialized job."""
        return PreparedJob(
            accepted=self.accepted(job_id),
            payload=payload,
            queue=self.record.queue,
            run_at_ms=self.run_at_ms,
            job=job,
            record=self.record,
            expires_ms=self.expires_ms,
            record_ttl_ms=self.record_ttl_ms,
        )


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

    async def enqueue_many(
        self,
        task: Task[InputT, Any],
        items: Sequence[InputT],
        *,
        delay: float | timedelta | None = None,
        run_at: datetime | None = None,
        idempotency_key: str | None = None,
        queue: str | None = None,
        owner: str | None = None,
        max_item_bytes: int | None = None,
    ) -> list[Enqueued]:
        """Put a job of `task` on its queue (or on `queue`) for each of `items`, in order, in one
        script call: every job is stored or none is. `items`: 1 to MAX_BATCH_JOBS inputs, instances of
        the task's input model or data to validate against it; `delay`, `run_at` and `owner` as for
        one job, the same for all.

        Every input is checked before anything is written: TaskInputError lists each mistake, its
        `loc` starting with the input's index; `max_item_bytes` refuses an input longer than that as
        stored JSON (the batch route passes the body limit of the task's single enqueue).

        An `idempotency_key` covers the whole batch: a repeat of the same request (the inputs in
        order, delay/run_at, queue) within `idempotency_ttl_s` gets the first one's jobs back
        (`replayed`); another request with the key raises IdempotencyConflictError. Back-pressure
        counts the batch whole: QueueFullError, and nothing stored, unless its queue has room for all
        of it (JOBS_QUEUE_MAX_PENDING). The version guard is asked once."""
        count = len(items)
        if not 1 <= count <= MAX_BATCH_JOBS:
            reason = f"a batch has 1 to {MAX_BATCH_JOBS} inputs, not {count}"
            raise TaskInputError(task.name, [{"loc": [], "msg": reason, "type": "batch_size"}])
        plan = self._plan(task, delay, run_at, queue, owner=owner)
        if not all(isinstance(item, task.input_model) for item in items):
            items = task.parse_inputs(items)
        payloads, jobs = self._batch_data(task, items, plan.record.enqueued_ms, max_item_bytes)
        ids = [job_id for job_id, _ in jobs]
        first = plan.prepared(ids[0], payloads[0], jobs[0][1])
        earlier = None
        with enqueue_span(task.name, first.queue, ids[0], count) as trace:
            if trace is not None:
                first = replace(first, record=replace(first.record, trace=trace))
            call = BatchWrite(self._enqueue_write(first), jobs).call(self.settings)
            if idempotency_key is None:
                await self.check_served(task, first.queue)
                stored = await self.batch.call(BATCH_SCRIPT, *call, self.ack, alone=True)
                self._check_refused(first.queue, stored, count)
            else:
                requests = self._fingerprints(task, payloads, delay, run_at, first.queue, batch=True)
                claim = IdempotencyClaim(
                    idempotency_key, requests[0], task.name, ids[0], owner, job_ids=tuple(ids)
                )
                earlier = await self._store_claimed(
                    task, first.queue, claim, requests, BATCH_SCRIPT, call, batch=count
                )
        if earlier is not None:
            status = first.accepted.status
            return [Enqueued(job_id, earlier.task, status, None, replayed=True) for job_id in earlier.job_ids]
        status, scheduled_for = first.accepted.status, first.accepted.scheduled_for
        log.debug(f"jobs.{status}", task=task.name, queue=first.queue, jobs=count, first_job_id=ids[0])
        return [Enqueued(job_id, task.name, status, scheduled_for) for job_id in ids]

    def _batch_data(
        self, task: Task[InputT, Any], items: Sequence[InputT], now: int, max_item_bytes: int | None
    ) -> tuple[list[Any], list[tuple[str, bytes]]]:
        """Each input's stored payload, and a new job id with its serialized job; TaskInputError naming
        every bad input by its index."""
        key = self.secrets_key
        payloads = stored_payloads(task, items)
        jobs: list[tuple[str, bytes]] = []
        errors: list[dict[str, Any]] = []
        for index, payload in enumerate(payloads):
            try:
                job = self._job_data(task, payload, now, key)
            except TaskInputError as error:
                errors += of_input(index, error)
                continue
            # the serialized job holds the payload (sealed): only a long one is measured on its own
            if max_item_bytes is not None and len(job) > max_item_bytes:
                size = len(dumps(payload))
                if size > max_item_bytes:
                    reason = f"the input is {size} bytes as JSON, more than one job's {max_item_bytes}"
                    errors.append({"loc": [index], "msg": reason, "type": "too_large"})
            jobs.append((uuid.uuid4().hex, job))
        if errors:
            raise TaskInputError(task.name, errors)
        return payloads, jobs

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
        requests = self._fingerprints(task, [prepared.payload], delay, run_at, prepared.queue)
        claim = IdempotencyClaim(
            idempotency_key, requests[0], task.name, prepared.accepted.job_id, prepared.record.owner
        )
        call = self._enqueue_write(prepared, limited=limited).call(self.settings)
        earlier = await self._store_claimed(
            task, prepared.queue, claim, requests, ENQUEUE_SCRIPT, call, guarded=guarded
        )
        if earlier is None:
            return prepared.accepted
        return Enqueued(earlier.job_id, earlier.task, prepared.accepted.status, None, replayed=True)

    def _fingerprints(
        self,
        task: Task[Any, Any],
        payloads: Sequence[Any],
        delay: float | timedelta | None,
        run_at: datetime | None,
        queue: str,
        *,
        batch: bool = False,
    ) -> list[str]:
        """The fingerprints of an Idempotency-Key's request, the one to store first: of one job's
        payload, or (`batch`) of a batch's payloads in order. From the plaintext payloads (tokens differ
        each time), their secrets hashed with a key when set (one variant per key)."""
        # the queue counts only when it is not the task's own: fingerprints stored before queues
        # could be chosen still match
        chosen = None if queue == task.queue_for(self.settings) else queue
        variants = [fingerprint_inputs(task, payload, self.secrets_key) for payload in payloads]
        inputs = [list(variant) for variant in zip(*variants, strict=True)] if batch else variants[0]
        return [fingerprint(task.name, given, delay, run_at, chosen, batch=batch) for given in inputs]

    async def _store_claimed(
        self,
        task: Task[Any, Any],
        queue: str,
        claim: IdempotencyClaim,
        requests: Sequence[str],
        script: Script,
        call: tuple[list[str], list[Arg]],
        *,
        guarded: bool = True,
        batch: int = 1,
    ) -> IdempotencyClaim | None:
        """Run `script` with `call`'s keys and arguments (an enqueue of `batch` jobs to `queue`, the first
        one's id `claim.job_id`) and store `claim` with it, in one transaction; None when done. When the key
        already holds a claim for one of `requests` (fingerprints), nothing is written and that earlier
        claim is the answer; for another request, IdempotencyConflictError. Concurrent identical
        requests store once (WATCH on the key). With `guarded`, the version guard is asked first."""
        key = self.keys.idempotency(claim.digest)
        keys, args = call
        while True:
            async with self.transaction() as pipe:
                await pipe.watch(key)
                earlier = IdempotencyClaim.parse(await pipe.get(key))
                if earlier is not None:
                    if earlier.fingerprint not in requests:
                        raise IdempotencyConflictError(claim.key, earlier.task, earlier.job_id)
                    await self.confirm_on_replicas(pipe, key)
                    return earlier
                if guarded:
                    await self.check_served(task, queue)
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.eval(script.source, len(keys), *keys, *args)  # type: ignore[arg-type]
                # the claim only if the jobs were stored: jobs refused for a full queue leave none
                if_stored(
                    pipe,
                    self.keys.record(claim.job_id),
                    set_key=key,
                    set_value=claim.to_json(),
                    set_ttl_ms=self.settings.idempotency_ttl_s * 1000,
                )
                try:
                    stored, _ = await pipe.execute()
                except WatchError:  # an identical request won the race: answer with its job
                    continue
                self._check_refused(queue, stored, batch)
                self.check_replicas(pipe)
                return None

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
        plan = self._plan(
            task, delay, run_at, queue, retry_of=retry_of, workflow=workflow, schedule=schedule, owner=owner
        )
        if not isinstance(data, task.input_model):
            data = task.parse_input(data)
        payload = stored_payload(task, data)
        job = self._job_data(task, payload, plan.record.enqueued_ms, self.secrets_key)
        return plan.prepared(job_id or uuid.uuid4().hex, payload, job)

    def _plan(
        self,
        task: Task[Any, Any],
        delay: float | timedelta | None,
        run_at: datetime | None,
        queue: str | None,
        *,
        retry_of: str | None = None,
        workflow: str | None = None,
        schedule: str | None = None,
        owner: str | None = None,
    ) -> Plan:
        """What the jobs of one enqueue share (one job's, or a batch's); UnknownTaskError,
        UnknownQueueError and InvalidScheduleError before any input is looked at."""
        if self.registry.get(task.name) is not task:
            raise UnknownTaskError(task.name)
        queue = self.queue_for(task, queue)
        now = now_ms()
        scheduled = run_time_ms(now, delay, run_at, self.settings.max_schedule_ahead_s)
        run_at_ms = now if scheduled is None else scheduled
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
        expires_ms = run_at_ms - now + self.settings.job_expires_s * 1000
        return Plan(
            record=record,
            run_at_ms=run_at_ms,
            expires_ms=expires_ms,
            record_ttl_ms=record_ttl_ms(
                expires_ms, task.timeout_for(self.settings), self.settings.longest_keep_s
            ),
        )

    @staticmethod
    def _job_data(task: Task[Any, Any], payload: Any, now: int, key: SecretsKey | None) -> bytes:
        """The job key's value for `payload` (ARQ's JobDef, its secrets sealed with `key`);
        TaskInputError when JSON cannot carry it."""
        try:
            stored = seal(task, payload, key)
            return _arq.serialize_job(task.name, (stored,), {}, None, now, serializer=dumps)
        except _arq.SerializationError as error:
            reason = f"cannot be stored as JSON ({error.__cause__ or error})"
            raise TaskInputError(task.name, [{"loc": [], "msg": reason, "type": "json_unstorable"}]) from None

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

    def _check_refused(self, queue: str, stored: Any, batch: int = 1) -> None:
        """QueueFullError when the enqueue script refused the job (or a `batch` of jobs): its queue
        held -`stored` jobs."""
        if isinstance(stored, int) and stored < 0:
            raise QueueFullError(queue, -stored, self.max_pending[queue], batch)

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

    async def stats(
        self, window: Window | str = Window.HOUR_1, *, task: str | None = None, queue: str | None = None
    ) -> Stats:
        """How jobs went over `window` (15m, 1h, 24h, 7d, 30d: a series and a per-task table, see
        arq_jobs._stats), of one task and/or queue if given. UnknownTaskError / UnknownQueueError for a
        name that is not known here (registered, configured, served by a live worker) and has no
        statistics; ValueError for another window."""
        window = Window(window)
        known = await stats_scopes(self.redis, self.keys)
        if task is not None and task not in self.registry and all(t != task for _, t in known):
            raise UnknownTaskError(task)
        names = self.queue_names()
        if queue is not None and queue not in names and all(q != queue for q, _ in known):
            names = self.queue_names(await self.worker_registry.alive(now_ms()))
            if queue not in names:
                raise UnknownQueueError(queue, names)
        return await read_stats(
            self.redis, self.settings, window, now_ms(), queues=names, task=task, queue=queue, known=known
        )

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
