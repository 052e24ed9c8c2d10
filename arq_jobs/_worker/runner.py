"""Runs registered tasks under ARQ: one ARQ function per task, wrapping each attempt with our
bookkeeping and our delivery guarantees.

Per attempt the wrapper
1. records the start (attempt, time, worker) and shortens ARQ's in-progress key to the lease, in one
   script call that also reads whether the job was cancelled meanwhile (`Runtime.begin`);
2. gives up at once on a job whose earlier attempts used up `max_attempts` (the last one's worker
   died): dead letter, `WorkerLostError`;
3. decrypts the stored input's secrets (arq_jobs._secrets) and validates it, runs the task under
   its hard time limit (`asyncio.timeout`) with the soft limit signalled through `ctx.soft_limit`,
   while `Runtime` renews the lease every second;
4. on success returns the JSON-able result (ARQ stores it); on failure asks the task's RetryPolicy
   (about the task's own exception): retry → mark `retrying` and raise ARQ's `Retry` with a jittered
   backoff; else → dead letter and re-raise (ARQ stores the error); cancelled → mark `cancelled`,
   raise `JobCancelledError`; cancelled by a worker shutdown → give the attempt back and let ARQ
   re-queue the job. A failure whose text quotes a secret value of the input is recorded, raised and
   logged as its `scrub_exception` stand-in, the values as `"***"`.

Each of these writes waits out a Redis outage (`RedisHealth.hold`): an attempt that ends while Redis
is away keeps its outcome, written when Redis answers again. One given up (after `outage_hold_s`)
leaves the job in its queue (ARQ's `Retry`): it runs again, never ends recorded as failed by the outage.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson
from arq.worker import Function, Retry, func

from arq_jobs import _arq
from arq_jobs._clock import now_ms
from arq_jobs._deadletters import FailureReason
from arq_jobs._errors import JobCancelledError, TaskError, TimeLimitExceeded, WorkerLostError
from arq_jobs._jobs.records import CANCEL_REQUESTED, FINISHED_AT
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.transitions import AttemptTimes, Phase, Transition
from arq_jobs._keys import Keys
from arq_jobs._logs import bind_job, get_logger
from arq_jobs._scripts.run import run_script
from arq_jobs._scripts.script import load_script
from arq_jobs._secrets import SecretsKey, scrub_exception, secret_values, unseal
from arq_jobs._serializer import dumps
from arq_jobs._tasks.context import JobContext, Resources
from arq_jobs._tasks.registry import Task, TaskRegistry
from arq_jobs._tracing import attempt_span
from arq_jobs._worker.context import REGISTRY_KEY, get_resources, get_runtime
from arq_jobs._worker.outage import OutageGaveUp
from arq_jobs._worker.outcomes import dead_letter, exception_error, mark_cancelled, schedule_retry
from arq_jobs._worker.runtime import Runtime
from arq_jobs._workflows.steps import WorkflowStep, workflow_step

log = get_logger(__name__)

# ARQ's own time limit is only a backstop behind ours (which decides retries): far enough behind that
# ours always fires first, even when a blocked event loop delivers both late (beyond the longest lease,
# a blocked loop has lost its lease anyway)
ARQ_TIMEOUT_MARGIN_S = 300.0


async def give_back_attempt(resources: Resources, job_id: str) -> None:
    """Undo ARQ's count of an attempt the worker's shutdown interrupted (if the counter still exists:
    a DECR would otherwise create one without a TTL), and show the job pending again."""
    keys = resources.keys
    back = Transition(job_id, JobState.PENDING, Phase.QUEUED, now_ms())
    script_keys = GIVE_BACK_SCRIPT.keys(
        retry=Keys.arq_retry(job_id), record=keys.record(job_id), events=keys.events(job_id)
    )
    args = GIVE_BACK_SCRIPT.args(transition=back.args(resources.settings))
    await run_script(resources.redis, GIVE_BACK_SCRIPT, script_keys, args)


GIVE_BACK_SCRIPT = load_script("give-back-3.lua")


async def run_attempt(
    task: Task[Any, Any],
    resources: Resources,
    runtime: Runtime,
    job_id: str,
    attempt: int,
    payload: Any,
    due_ms: int | None = None,
    *,
    registry: TaskRegistry,
) -> Any:
    """Run one attempt of `job_id` (ARQ's try number `attempt`; `due_ms`: when it was due to run;
    `registry`: the worker's tasks, which a workflow step's next steps are enqueued with)."""
    queue = resources.settings.queue_name  # the pool's: where the job was taken from
    with bind_job(job_id, task.name, attempt, queue):
        runtime.limits.hold(job_id, task.name)  # given back when ARQ finishes the job
        if attempt > task.max_attempts:
            await give_up(task, runtime, job_id, attempt, payload)
        hard = task.timeout_for(resources.settings)
        begun = await runtime.begin(job_id, attempt, hard)
        step = workflow_step(runtime, registry, begun.workflow)
        if begun.cancelled or (step is not None and await runtime.health.hold(step.cancelled)):
            await runtime.health.hold(lambda: mark_cancelled(resources, job_id))
            log.info("job.cancelled", before_start=True)
            raise JobCancelledError("cancelled before this attempt started")
        started = begun.started_ms
        wait_ms = max(0, started - (due_ms or started))
        runtime.attempt_started(task.name, queue, wait_ms)
        log.info("job.running", wait_ms=wait_ms)
        clock = time.monotonic()
        outcome: str | None = "failed"
        details: dict[str, Any] = {}
        try:
            with attempt_span(begun.trace, task=task.name, queue=queue, job_id=job_id, attempt=attempt):
                ran = AttemptClock(started, wait_ms)
                output = await attempt_body(
                    task, resources, runtime, job_id, attempt, payload, hard, ran, step
                )
            outcome = "succeeded"
            return output
        except JobCancelledError:
            outcome = "cancelled"
            raise
        except Retry as retry:
            outcome = "retried"
            details = {"retry_in_s": _arq.retry_defer_s(retry), "error_type": _cause(retry)}
            raise
        except asyncio.CancelledError:
            outcome = None  # put back in its queue by the worker's shutdown
            raise
        except Exception as error:
            details = {"error_type": type(error).__name__}
            raise
        finally:
            duration_s = time.monotonic() - clock
            runtime.attempt_ended(task.name, queue, outcome, duration_s)
            log.info(f"job.{ENTERED[outcome]}", duration_ms=round(duration_s * 1000, 1), **details)


def _cause(error: BaseException) -> str | None:
    return type(error.__cause__).__name__ if error.__cause__ is not None else None


# the state a job enters when an attempt ends with each outcome (None: re-queued at shutdown)
ENTERED = {
    "succeeded": "succeeded",
    "failed": "failed",
    "retried": "retrying",
    "cancelled": "cancelled",
    None: "pending",
}


async def give_up(
    task: Task[Any, Any], runtime: Runtime, job_id: str, attempt: int, payload: Any
) -> NoReturn:
    """The try after the last allowed attempt (whose worker died): record nothing of it, dead-letter
    the job (or end it cancelled, if that was asked meanwhile)."""
    resources = runtime.resources
    if await resources.redis.hexists(resources.keys.record(job_id), CANCEL_REQUESTED):  # type: ignore[misc]
        await mark_cancelled(resources, job_id)
        log.info("job.cancelled", before_start=True)
        raise JobCancelledError("cancelled before this attempt started")
    lost = WorkerLostError(f"attempt {attempt - 1} of {task.max_attempts} did not finish: its worker stopped")
    await dead_letter(
        runtime,
        job_id,
        task=task.name,
        payload=payload,
        error=exception_error(lost),
        reason=FailureReason.EXHAUSTED,
        attempts=attempt - 1,
    )
    log.info("job.failed", reason=FailureReason.EXHAUSTED, error_type=type(lost).__name__)
    raise lost


async def attempt_body(
    task: Task[Any, Any],
    resources: Resources,
    runtime: Runtime,
    job_id: str,
    attempt: int,
    payload: Any,
    hard: float,
    ran: AttemptClock,
    step: WorkflowStep | None = None,
) -> Any:
    """The attempt after its start was recorded (`ran`): run the task under its limits, then record how
    it ended (result, retry, dead letter, cancel) with how long it waited and ran; a workflow `step`
    advances its workflow first."""
    soft = task.soft_timeout_for(resources.settings)
    ctx = JobContext(job_id, task.name, attempt, resources, soft_timeout_s=soft)
    limit = asyncio.timeout(hard)
    running = runtime.track(job_id)
    soft_timer = asyncio.get_running_loop().call_later(soft, ctx.soft_limit.set)
    failure: BaseException | None = None
    opened: Any = None  # the input with its secrets decrypted
    try:
        opened = unseal(task, payload, SecretsKey.of(resources.settings))
        data = task.parse_input(opened)
        async with limit:
            result = await task(ctx, data)
    except asyncio.CancelledError as error:
        if running.cancel_requested:
            pass  # handled below, even if the task swallowed the CancelledError
        elif runtime.shutting_down(job_id):
            # ARQ cancels running jobs at shutdown and re-queues them; this attempt does not count
            runtime.untrack(job_id)
            await asyncio.shield(give_back_attempt(resources, job_id))
            raise
        elif limit.expired():  # the hard limit, delivered late (a blocked event loop)
            failure = TimeLimitExceeded(hard)
        else:  # the task's own code let a CancelledError out: a failure like any other
            failure = TaskError(f"the task raised CancelledError without being cancelled ({error!r})")
    except Exception as error:
        failure = TimeLimitExceeded(hard) if isinstance(error, TimeoutError) and limit.expired() else error
    finally:
        soft_timer.cancel()
        runtime.untrack(job_id)
    if running.cancel_requested:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            current.uncancel()
        times = ran.times()
        await runtime.health.hold(lambda: mark_cancelled(resources, job_id, times))
        raise JobCancelledError("cancelled while running") from None
    unstorable = False
    if failure is None:
        try:  # the result as it is stored: JSON, which cannot carry every value (ints beyond 64 bits)
            output = task.dump_result(result)
            stored = orjson.Fragment(dumps(output))  # encoded once: the `succeeded` event carries it
        except Exception as error:  # the same result every time: no retry
            failure, unstorable = error, True
    if failure is None and step is not None:
        failure = await step.succeeded(output, runtime.health)
    if failure is None:
        finished = now_ms()
        await runtime.settle(
            Transition(
                job_id,
                JobState.SUCCEEDED,
                Phase.SUCCEEDED,
                finished,
                fields={FINISHED_AT: finished},
                extra={"s": True, "r": stored, "ft": finished},
                times=ran.times(finished),
            )
        )
        return output
    # what is stored, raised and logged; the policy decides on `failure` itself
    shown = scrub_exception(failure, secret_values(task, opened))
    times = ran.times()
    if not unstorable and task.retry.should_retry(failure, attempt):
        retry = await runtime.health.hold(
            lambda: schedule_retry(resources, task, job_id, attempt, failure, shown=shown, times=times)
        )
        raise retry from shown
    transient = not unstorable and task.retry.is_transient(failure)
    reason = FailureReason.EXHAUSTED if transient else FailureReason.PERMANENT
    await runtime.health.hold(
        lambda: dead_letter(
            runtime,
            job_id,
            task=task.name,
            payload=payload,
            error=exception_error(shown),
            reason=reason,
            attempts=attempt,
            times=times,
        )
    )
    raise shown


@dataclass(frozen=True, slots=True)
class AttemptClock:
    """When an attempt started (ms, as recorded) and how long it had waited to start after it was due."""

    started_ms: int
    wait_ms: int

    def times(self, now: int | None = None) -> AttemptTimes:
        """The attempt's times if it ends now (or at `now`)."""
        return AttemptTimes(self.wait_ms, (now_ms() if now is None else now) - self.started_ms)


def arq_function(task: Task[Any, Any]) -> Function:
    """The ARQ function that runs `task`."""

    async def run(ctx: dict[str, Any], payload: Any) -> Any:
        try:
            return await run_attempt(
                task,
                get_resources(ctx),
                get_runtime(ctx),
                ctx["job_id"],
                ctx["job_try"],
                payload,
                ctx.get("score"),
                registry=ctx[REGISTRY_KEY],
            )
        except OutageGaveUp as gave_up:  # its start or end went unrecorded: the job stays queued
            log.error("job.unrecorded", reason=str(gave_up), then="it runs again")
            raise Retry() from gave_up

    run.__qualname__ = run.__name__ = f"run_{task.name}"
    timeout = (task.timeout_s + ARQ_TIMEOUT_MARGIN_S) if task.timeout_s else None  # else job_timeout
    # ARQ's max_tries only backs ours up: the attempt after the last one reaches run_attempt, which
    # dead-letters it with the reason
    return func(run, name=task.name, timeout=timeout, max_tries=task.max_attempts + 1)


def arq_functions(registry: TaskRegistry) -> list[Function]:
    return [arq_function(task) for task in registry]
