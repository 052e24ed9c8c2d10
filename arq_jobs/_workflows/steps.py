"""A job that is a step of a workflow, seen from the worker running it: at an attempt's start, whether
its workflow was cancelled (then the job ends cancelled, like a cancelled job); when an attempt
succeeds, before its success is recorded, advancing the workflow (arq_jobs._workflows.engine) — in that order,
so a worker that dies in between leaves a job that runs again and advances it then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arq_jobs._client import JobClient
from arq_jobs._logs import get_logger
from arq_jobs._redis_errors import describe_redis_error
from arq_jobs._tasks.registry import TaskRegistry
from arq_jobs._worker.outage import REDIS_ERRORS, OutageGaveUp, RedisHealth
from arq_jobs._worker.runtime import Runtime
from arq_jobs._workflows.engine import Workflows
from arq_jobs._workflows.records import StepRef

log = get_logger(__name__)


def client_for(runtime: Runtime, registry: TaskRegistry) -> JobClient:
    """The worker's JobClient (built at startup with the deployment's settings), or one made now
    for a runtime built without it (tests)."""
    if runtime.client is None:
        resources = runtime.resources
        runtime.client = JobClient(
            resources.redis,
            resources.settings,
            registry,
            batch=runtime.batch,
            guard=False,
            replica_ack=False,
            back_pressure=False,
        )
    return runtime.client


@dataclass(frozen=True, slots=True)
class WorkflowStep:
    workflows: Workflows
    ref: StepRef

    async def cancelled(self) -> bool:
        """Whether the step's workflow was cancelled: the attempt must not run."""
        return await self.workflows.cancelled(self.ref)

    async def succeeded(self, output: Any, health: RedisHealth | None = None) -> Exception | None:
        """Advance the workflow with the step's `output` (through a Redis outage, held by the
        worker's `health`); the error when that failed, for the attempt to fail with: another
        attempt advances the workflow (it is idempotent)."""
        try:
            if health is None:
                await self.workflows.advance(self.ref, output)
            else:
                await health.hold(lambda: self.workflows.advance(self.ref, output))
        except OutageGaveUp:  # not the step's failure: the job runs again, and advances then
            raise
        except Exception as error:
            shown = describe_redis_error(error) if isinstance(error, REDIS_ERRORS) else repr(error)
            log.warning("workflow.advance_failed", workflow_id=self.ref.workflow_id, error=shown)
            return error
        return None


def workflow_step(runtime: Runtime, registry: TaskRegistry, ref: str | None) -> WorkflowStep | None:
    """The workflow step a job is (its record's `workflow` field), or None."""
    if ref is None:
        return None
    return WorkflowStep(Workflows(client_for(runtime, registry)), StepRef.parse(ref))
