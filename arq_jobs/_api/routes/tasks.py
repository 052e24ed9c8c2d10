"""`GET /tasks`: the registered tasks with their schemas, queue and limits."""

from fastapi import APIRouter

from arq_jobs._api.auth import requires
from arq_jobs._api.deps import RegistryDep, SettingsDep
from arq_jobs._api.errors import ApiRoute
from arq_jobs._api.schemas import AUTH_ERRORS, RetryInfo, TaskInfo, TaskList
from arq_jobs._auth.scopes import JOBS_READ
from arq_jobs._tasks.retry import qualified_name

router = APIRouter(route_class=ApiRoute, tags=["tasks"])


@router.get("/tasks", dependencies=[requires(JOBS_READ)], responses=AUTH_ERRORS)
async def list_tasks(registry: RegistryDep, settings: SettingsDep) -> TaskList:
    """Every task this deployment runs."""
    return TaskList(
        tasks=[
            TaskInfo(
                name=task.name,
                description=task.description,
                queue=task.queue_for(settings),
                timeout_s=task.timeout_for(settings),
                soft_timeout_s=task.soft_timeout_for(settings),
                max_attempts=task.max_attempts,
                retry=RetryInfo(
                    base_s=task.retry.base_s,
                    factor=task.retry.factor,
                    cap_s=task.retry.cap_s,
                    retry_on=[qualified_name(e) for e in task.retry.retry_on],
                    fail_on=[qualified_name(e) for e in task.retry.fail_on],
                ),
                rate_limit=str(task.limits.rate) if task.limits.rate else None,
                max_concurrency=task.limits.max_concurrency,
                input_schema=task.input_model.model_json_schema(),
                result_schema=task.result_adapter.json_schema(),
            )
            for task in registry
        ]
    )
