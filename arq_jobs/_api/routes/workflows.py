"""`POST /workflows` (a chain, group or chord of tasks, from a JSON spec), `GET /workflows/{id}` (its
state and each step's) and `DELETE /workflows/{id}` (cancel what has not finished)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from arq_jobs._api.auth import requires
from arq_jobs._api.deps import ApiJobsDep
from arq_jobs._api.errors import ApiRoute
from arq_jobs._api.schemas import AUTH_ERRORS, QUEUE_FULL, TOO_LARGE, ErrorBody, WorkflowAccepted
from arq_jobs._auth.scopes import JOBS_READ, WORKFLOWS_WRITE
from arq_jobs._workflows.spec import Workflow
from arq_jobs._workflows.status import WorkflowStatus

router = APIRouter(route_class=ApiRoute, prefix="/workflows", tags=["workflows"])

EXAMPLES: dict[str, Any] = {
    "chain": {
        "summary": "chain: each step's result is the next step's input",
        "value": {
            "type": "chain",
            "steps": [
                {"task": "noop", "input": {"value": 1}},
                {"task": "noop", "queue": "high"},
                {"type": "group", "steps": [{"task": "noop"}, {"task": "noop"}]},
            ],
        },
    },
    "group": {
        "summary": "group: steps in parallel, results in order",
        "value": {"type": "group", "steps": [{"task": "noop", "input": {"value": n}} for n in range(3)]},
    },
    "chord": {
        "summary": "chord: a group, then a callback given the list of results (tasks of your own)",
        "value": {
            "type": "chord",
            "steps": [{"task": "square", "input": {"n": n}} for n in range(3)],
            "callback": {"task": "total"},
        },
    },
}

SPEC_DESCRIPTION = (
    "`type`: `chain`, `group` or `chord`; `steps`: each `{task, input?, queue?}`, and in a chain a step may "
    'be `{"type": "group", "steps": [...]}`; a chord also has a `callback` step. Only the first stage\'s '
    "steps take an `input`; later ones get the previous step's result (a group's: the list of results)."
)


@router.post(
    "",
    status_code=202,
    response_model=WorkflowAccepted,
    dependencies=[requires(WORKFLOWS_WRITE)],
    responses={
        **AUTH_ERRORS,
        **TOO_LARGE,
        422: {
            "model": ErrorBody,
            "description": "A mistake in the spec (names the step by its path), or more steps than "
            "JOBS_MAX_WORKFLOW_STEPS",
        },
        **QUEUE_FULL,
        503: {"model": ErrorBody, "description": "Redis is unreachable"},
    },
)
async def create_workflow(
    spec: Annotated[dict[str, Any], Body(description=SPEC_DESCRIPTION, openapi_examples=EXAMPLES)],
    jobs: ApiJobsDep,
    response: Response,
) -> WorkflowAccepted:
    """Check the whole spec (tasks, inputs, queues, nesting) and, when it is right, enqueue the first
    stage. Answers 202 with the workflow's id and status URL; a mistake is 422 and enqueues nothing."""
    settings = jobs.client.settings
    accepted = await jobs.start_workflow(
        Workflow.from_json(spec, jobs.client.registry, settings.max_workflow_steps)
    )
    response.headers["Location"] = accepted.status_url
    return accepted


@router.get(
    "/{workflow_id}",
    name="get_workflow",
    response_model=WorkflowStatus,
    dependencies=[requires(JOBS_READ)],
    responses={**AUTH_ERRORS, 404: {"model": ErrorBody, "description": "Unknown workflow id"}},
)
async def get_workflow(workflow_id: str, jobs: ApiJobsDep) -> WorkflowStatus:
    """The workflow's state (pending, running, succeeded, failed, cancelled), its result or error, and
    each step's path, task, job id, state and result."""
    return await jobs.workflow(workflow_id)


@router.delete(
    "/{workflow_id}",
    name="cancel_workflow",
    response_model=WorkflowStatus,
    dependencies=[requires(WORKFLOWS_WRITE)],
    responses={
        **AUTH_ERRORS,
        404: {"model": ErrorBody, "description": "Unknown workflow id"},
        409: {"model": ErrorBody, "description": "The workflow has already ended"},
    },
)
async def cancel_workflow(workflow_id: str, jobs: ApiJobsDep) -> WorkflowStatus:
    """Cancel what has not finished: no further step starts, waiting steps are cancelled, running ones
    stop within about a second. Answers the workflow, now `cancelled`."""
    return await jobs.cancel_workflow(workflow_id)
