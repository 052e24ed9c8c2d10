"""The project's exceptions. Core code raises these; `arq_jobs._api.errors` maps them to HTTP answers.

JobsError                        root: anything this project raises on purpose
├── NotFoundError                something named in the request does not exist
│   ├── UnknownTaskError         no task is registered under that name
│   ├── JobNotFoundError         no job (or an expired one) has that id
│   ├── DeadLetterNotFoundError  no dead letter has that job id
│   └── WorkflowNotFoundError    no workflow (or an expired one) has that id
├── ConflictError                the request clashes with the current state
│   ├── IdempotencyConflictError an Idempotency-Key was reused with another request
│   ├── JobNotCancellableError   the job has already ended
│   ├── WorkflowNotCancellableError  the workflow has already ended
│   └── TaskNotServedError       live workers serve the queue, and none can run the task (version skew)
├── InvalidScheduleError         delay / run_at given wrongly
├── InvalidWorkflowError         a workflow spec is wrong (names the step by its path)
├── UnknownQueueError            a job was sent to a queue that is not configured
├── TaskInputError               a payload does not validate against the task's input model
├── InvalidHostError             the request's Host is not one the API answers to (400)
├── AuthenticationError          no API key, or an unknown, revoked or expired one (401)
├── PermissionDeniedError        the key lacks the scope the route needs (403)
├── PayloadTooLargeError         a request body over the API's limit, or its task's (413)
├── QueueFullError               the job's queue already holds its limit of waiting jobs (429)
├── TooManyStreamsError          this API process already serves its limit of event streams (503)
├── RedisUnavailableError        Redis is unreachable, refused a command, or too few replicas confirmed a job
└── TaskError                    raised inside a job: the attempt fails with this error
    ├── PermanentError           retrying cannot help: the job fails at once
    │   ├── JobCancelledError    the job was cancelled while it ran
    │   └── BlockedAddressError  a request of the task was refused: its host is inside the network
    └── TransientError           another attempt may succeed (after `retry_after_s`, if given)
        ├── TimeLimitExceeded    the attempt ran into its task's hard time limit
        ├── SoftTimeLimitExceeded  raised by `ctx.check_soft_limit()` once the soft limit passed
        └── WorkerLostError      the worker running an attempt died; found by the next attempt

A task may raise any exception; its task's RetryPolicy decides whether it is retried.
"""

from __future__ import annotations

from typing import Any, Literal

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError
from redis.exceptions import TimeoutError as RedisTimeoutError


class JobsError(Exception):
    """Root of the project's exceptions; `code` is a stable machine-readable name."""

    code = "jobs_error"

    def details(self) -> dict[str, Any]:
        """Context that names what was wrong (task, job id, field), for error bodies."""
        return {}

    def headers(self) -> dict[str, str]:
        """HTTP headers its answer carries (e.g. `Retry-After`, `WWW-Authenticate`)."""
        return {}


class NotFoundError(JobsError):
    code = "not_found"


class UnknownTaskError(NotFoundError):
    code = "unknown_task"

    def __init__(self, task: str) -> None:
        super().__init__(f"no task named {task!r} is registered")
        self.task = task

    def details(self) -> dict[str, Any]:
        return {"task": self.task}


class JobNotFoundError(NotFoundError):
    code = "job_not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r} (unknown, or its record has expired)")
        self.job_id = job_id

    def details(self) -> dict[str, Any]:
        return {"job_id": self.job_id}


class DeadLetterNotFoundError(NotFoundError):
    code = "dead_letter_not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no dead letter for job id {job_id!r} (unknown, deleted, retried or expired)")
        self.job_id = job_id

    def details(self) -> dict[str, Any]:
        return {"job_id": self.job_id}


class WorkflowNotFoundError(NotFoundError):
    code = "workflow_not_found"

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"no workflow with id {workflow_id!r} (unknown, or it has expired)")
        self.workflow_id = workflow_id

    def details(self) -> dict[str, Any]:
        return {"workflow_id": self.workflow_id}


class ConflictError(JobsError):
    code = "conflict"


class IdempotencyConflictError(ConflictError):
    code = "idempotency_conflict"

    def __init__(self, key: str, task: str, job_id: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for a different request "
            f"(task {task!r}, job {job_id}); use a new key for a new request"
        )
        self.key = key
        self.task = task
        self.job_id = job_id

    def details(self) -> dict[str, Any]:
        return {"idempotency_key": self.key, "task": self.task, "job_id": self.job_id}


class JobNotCancellableError(ConflictError):
    code = "job_not_cancellable"

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"job {job_id} has already ended ({status}); only unfinished jobs can be cancelled")
        self.job_id = job_id
        self.status = status

    def details(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "status": self.status}


class WorkflowNotCancellableError(ConflictError):
    code = "workflow_not_cancellable"

    def __init__(self, workflow_id: str, status: str) -> None:
        super().__init__(
            f"workflow {workflow_id} has already ended ({status}); only unfinished workflows can be cancelled"
        )
        self.workflow_id = workflow_id
        self.status = status

    def details(self) -> dict[str, Any]:
        return {"workflow_id": self.workflow_id, "status": self.status}


class TaskNotServedError(ConflictError):
    """Live workers serve the job's queue and none of them can run its task: they do not know it
    (`unknown_to_workers`) or all run it with another input schema (`schema_mismatch`). Raised by the
    version guard instead of queueing a job that would be dead-lettered; `path` names a workflow step."""

    code = "task_not_served"

    def __init__(
        self,
        task: str,
        queue: str,
        reason: Literal["unknown_to_workers", "schema_mismatch"],
        *,
        workers: int,
        api_input_schema: str,
        worker_input_schemas: list[str],
        path: str | None = None,
    ) -> None:
        where = f"the {workers} live worker(s) of queue {queue!r}"
        if reason == "unknown_to_workers":
            problem = f"task {task!r} is unknown to {where}"
        else:
            theirs = ", ".join(worker_input_schemas)
            problem = (
                f"{where} run task {task!r} with another input schema ({theirs}; this API's: "
                f"{api_input_schema})"
            )
        super().__init__(
            f"{problem}: they run another version of the tasks, so the job was not queued. Deploy the "
            "same task code to the API and the workers (or set JOBS_VERSION_GUARD=false)"
        )
        self.task = task
        self.queue = queue
        self.reason = reason
        self.workers = workers
        self.api_input_schema = api_input_schema
        self.worker_input_schemas = worker_input_schemas
        self.path = path

    def details(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "task": self.task,
            "queue": self.queue,
            "reason": self.reason,
            "workers": self.workers,
            "api_input_schema": self.api_input_schema,
            "worker_input_schemas": self.worker_input_schemas,
        }
        if self.path is not None:
            found["path"] = self.path
        return found


class InvalidScheduleError(JobsError):
    code = "invalid_schedule"

    def __init__(self, message: str, fields: list[str]) -> None:
        super().__init__(message)
        self.fields = fields

    def details(self) -> dict[str, Any]:
        return {"fields": self.fields}


class InvalidWorkflowError(JobsError):
    """A workflow spec that cannot run: `path` names the step (`steps[1].steps[0]`, `callback`), `task`
    its task, `detail` the pydantic errors of a bad input; `context` adds what else names the problem
    (the unknown queue and the configured ones)."""

    code = "invalid_workflow"

    def __init__(
        self,
        problem: str,
        *,
        path: str | None = None,
        task: str | None = None,
        detail: list[dict[str, Any]] | None = None,
        **context: Any,
    ) -> None:
        where = "" if path is None else f"{path} ({task}): " if task else f"{path}: "
        super().__init__(f"invalid workflow: {where}{problem}")
        self.path = path
        self.task = task
        self.detail = detail
        self.context = context

    def details(self) -> dict[str, Any]:
        found: dict[str, Any] = {"path": self.path}
        if self.task is not None:
            found["task"] = self.task
        if self.detail is not None:
            found["detail"] = self.detail
        return {**found, **self.context}


class UnknownQueueError(JobsError):
    code = "unknown_queue"

    def __init__(self, queue: str, queues: tuple[str, ...] | list[str], task: str | None = None) -> None:
        super().__init__(f"no queue named {queue!r} is configured; the queues are {', '.join(queues)}")
        self.queue = queue
        self.queues = list(queues)
        self.task = task

    def details(self) -> dict[str, Any]:
        found: dict[str, Any] = {"queue": self.queue, "queues": self.queues}
        if self.task is not None:
            found["task"] = self.task
        return found


class TaskInputError(JobsError):
    code = "invalid_input"

    def __init__(self, task: str, errors: list[dict[str, Any]]) -> None:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in errors)
        super().__init__(f"invalid input for task {task!r}: {where}")
        self.task = task
        self.errors = errors

    def details(self) -> dict[str, Any]:
        return {"task": self.task, "detail": self.errors}


class InvalidHostError(JobsError):
    """The request's Host is not one the API answers to (400; JOBS_ALLOWED_HOSTS)."""

    code = "invalid_host"

    def __init__(self, host: str) -> None:
        super().__init__(f"host {host!r} is not served here (JOBS_ALLOWED_HOSTS)")
        self.host = host


class AuthenticationError(JobsError):
    """No credentials, or ones that are not a live key (401; the answer names the scheme to use)."""

    code = "unauthorized"

    def __init__(self, message: str, challenge: str = "Bearer") -> None:
        super().__init__(message)
        self.challenge = challenge

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge}


class PermissionDeniedError(JobsError):
    """The key is valid but lacks the scope the request needs (403)."""

    code = "forbidden"

    def __init__(self, key: str, scope: str) -> None:
        super().__init__(f"key {key!r} lacks scope {scope!r}")
        self.key = key
        self.scope = scope

    def details(self) -> dict[str, Any]:
        return {"scope": self.scope}


class PayloadTooLargeError(JobsError):
    """A request body over `limit` bytes (JOBS_MAX_REQUEST_BYTES, or the `max_input_bytes` of `task`, the
    task a route enqueues, or JOBS_MAX_BATCH_REQUEST_BYTES for a `batch`): refused before it is parsed
    (413)."""

    code = "payload_too_large"

    def __init__(self, limit: int, task: str | None = None, *, batch: bool = False) -> None:
        which = f"task {task!r} accepts (its max_input_bytes)" if task else "this API accepts"
        if batch:
            which = "a batch may have (JOBS_MAX_BATCH_REQUEST_BYTES)"
        super().__init__(f"the request body is larger than the {limit} bytes {which}; nothing was done")
        self.limit = limit
        self.task = task

    def details(self) -> dict[str, Any]:
        return {"limit": self.limit} if self.task is None else {"limit": self.limit, "task": self.task}


QUEUE_FULL_RETRY_AFTER_S = 5


class QueueFullError(JobsError):
    """Back-pressure (JOBS_QUEUE_MAX_PENDING): `queue` already holds `pending` jobs waiting to start
    (pending, scheduled or retrying; running ones do not count), `limit` or more, so the job was not
    queued (429); or, for a `batch` of jobs, `pending` plus the batch would be more than `limit`, so
    none of them was. `Retry-After` says when to try again: a few seconds, long enough for refused
    clients not to hammer the API, short enough for a draining queue (hundreds of jobs a second) to
    have room."""

    code = "queue_full"

    def __init__(self, queue: str, pending: int, limit: int, batch: int = 1) -> None:
        refused = f"already holds {pending} jobs waiting to start (its limit is {limit}): the job was"
        if batch != 1:
            refused = (
                f"holds {pending} jobs waiting to start and its limit is {limit}: a batch of {batch} does "
                "not fit, its jobs were"
            )
        super().__init__(f"queue {queue!r} {refused} not queued; try again in {QUEUE_FULL_RETRY_AFTER_S} s")
        self.queue = queue
        self.pending = pending
        self.limit = limit
        self.batch = batch

    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"queue": self.queue, "pending": self.pending, "limit": self.limit}
        if self.batch != 1:
            details["batch"] = self.batch
        return details

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)}


# a refused stream costs the API no Redis call, so a short wait is cheap; slots free as jobs end and
# clients leave. EventSource gives up on a non-200 answer: this is for clients that retry themselves
STREAMS_RETRY_AFTER_S = 5


class TooManyStreamsError(JobsError):
    """This API process already serves `limit` event streams (JOBS_SSE_MAX_STREAMS): the stream was not
    opened (503, with `Retry-After`); another API process may have room."""

    code = "too_many_streams"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"this API process already serves its limit of {limit} event streams (JOBS_SSE_MAX_STREAMS); "
            f"try again in {STREAMS_RETRY_AFTER_S} s"
        )
        self.limit = limit

    def details(self) -> dict[str, Any]:
        return {"limit": self.limit}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(STREAMS_RETRY_AFTER_S)}


class RedisUnavailableError(JobsError):
    """Redis did not answer or refused the command (out of memory, read-only replica): the request was
    not completed, and can be tried again. Given a message instead of the Redis error, says that."""

    code = "redis_unavailable"
    reason: str | None = None  # "out_of_memory" when Redis refused a write for want of memory

    def __init__(self, reason: Exception | str) -> None:
        if isinstance(reason, str):
            super().__init__(reason)
            return
        if isinstance(reason, OutOfMemoryError):
            self.reason = "out_of_memory"
            super().__init__(
                "Redis is out of memory (maxmemory): it refuses writes until memory is freed, so the request "
                "was not completed; reads still work. Try again later."
            )
            return
        if isinstance(reason, RedisConnectionError | RedisTimeoutError):
            problem = "Redis is unreachable"
        else:
            problem = f"Redis refused the request ({type(reason).__name__})"
        super().__init__(f"{problem}; the request was not completed. Try again shortly.")

    def details(self) -> dict[str, Any]:
        return {} if self.reason is None else {"reason": self.reason}


class TaskError(JobsError):
    """Raised by a task to fail its attempt with a clear message (retried per the task's policy)."""

    code = "task_error"


class PermanentError(TaskError):
    """Raised by a task when another attempt cannot succeed: the job fails without retrying."""

    code = "permanent_error"


class TransientError(TaskError):
    """Raised by a task when another attempt may succeed, optionally after `retry_after_s`."""

    code = "transient_error"

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TimeLimitExceeded(TransientError):
    """The attempt ran longer than its task's hard time limit and was stopped."""

    code = "time_limit_exceeded"

    def __init__(self, limit_s: float) -> None:
        super().__init__(f"the attempt ran longer than the hard time limit of {limit_s:g} s and was stopped")
        self.limit_s = limit_s


class SoftTimeLimitExceeded(TransientError):
    """The attempt passed its task's soft time limit (raised by `JobContext.check_soft_limit`)."""

    code = "soft_time_limit_exceeded"

    def __init__(self, limit_s: float) -> None:
        super().__init__(f"the attempt passed its soft time limit of {limit_s:g} s")
        self.limit_s = limit_s


class WorkerLostError(TransientError):
    """The worker running an attempt stopped (killed, crashed) before it finished."""

    code = "worker_lost"


class JobCancelledError(PermanentError):
    """The job was cancelled while it ran."""

    code = "job_cancelled"


class BlockedAddressError(PermanentError):
    """A request through the worker's shared HTTP client was refused before connecting: its host is, or
    resolves to, a loopback, private, link-local or otherwise internal `address` (see arq_jobs._netguard)
    that JOBS_WEBHOOK_ALLOWED_HOSTS does not open. Retrying cannot help."""

    code = "blocked_address"
    subject = "host"  # how the message names what was blocked ("webhook host" for send_webhook)

    def __init__(self, host: str, port: int, address: str, reason: str) -> None:
        what = reason if host == address else f"it resolves to {address} ({reason})"
        super().__init__(
            f"{self.subject} {host} is blocked: {what}; JOBS_WEBHOOK_ALLOWED_HOSTS opens exceptions"
        )
        self.host = host
        self.port = port
        self.address = address
        self.reason = reason

    def details(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "address": self.address, "reason": self.reason}
