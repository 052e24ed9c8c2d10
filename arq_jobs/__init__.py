"""arq-jobs: typed background jobs on ARQ for FastAPI apps.

The public API is what this module and `arq_jobs.fastapi`, `arq_jobs.worker`, `arq_jobs.workflows`
and `arq_jobs.testing` export (each lists it in `__all__`). Every other module is private (a leading
underscore): it may change in any release.

- Tasks: `task`, `TaskInput`, `JobContext`, `RetryPolicy`, `Cron`, and the errors a task raises to say
  how it failed (`TaskError`): `PermanentError` (do not retry), `TransientError` (retry, honouring
  `retry_after_s`); `TimeLimitExceeded`, `SoftTimeLimitExceeded` (`ctx.check_soft_limit()`).
- `Settings`: every `JOBS_*` setting; `JobClient`: enqueue and inspect jobs from any async code
  (`async with JobClient.connect() as jobs: ...`); `JobStatus` (what `GET /jobs/{id}` answers) and
  `JobState` (its `status`).
- Errors answered as JSON by the API: `JobsError` and its branches `NotFoundError`, `ConflictError`.
"""

from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._errors import (
    ConflictError,
    JobsError,
    NotFoundError,
    PermanentError,
    SoftTimeLimitExceeded,
    TaskError,
    TimeLimitExceeded,
    TransientError,
)
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus
from arq_jobs._schedules.cron import Cron
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, task
from arq_jobs._tasks.retry import RetryPolicy
from arq_jobs._version import PACKAGE_VERSION as __version__

__all__ = [
    "ConflictError",
    "Cron",
    "JobClient",
    "JobContext",
    "JobState",
    "JobStatus",
    "JobsError",
    "NotFoundError",
    "PermanentError",
    "RetryPolicy",
    "Settings",
    "SoftTimeLimitExceeded",
    "TaskError",
    "TaskInput",
    "TimeLimitExceeded",
    "TransientError",
    "__version__",
    "task",
]
