"""arq-jobs: typed background jobs on ARQ for FastAPI apps.

The public API is what this module and `arq_jobs.fastapi`, `arq_jobs.worker`, `arq_jobs.workflows`
and `arq_jobs.testing` export (each lists it in `__all__`). Every other module is private (a leading
underscore): it may change in any release.

- Tasks: `task`, `TaskInput`, `JobContext`, `RetryPolicy`, `Cron`, `Secret` (`Annotated[str, Secret]`:
  an input value shown as "***" everywhere, encrypted at rest with JOBS_SECRETS_KEY), and the errors
  a task raises to say how it failed (`TaskError`): `PermanentError` (do not retry), `TransientError`
  (retry, honouring `retry_after_s`); `TimeLimitExceeded`, `SoftTimeLimitExceeded` (`ctx.check_soft_limit()`);
  `BlockedAddressError`, raised by `ctx.http` for a host inside the network (JOBS_WEBHOOK_ALLOWED_HOSTS).
- `Settings`: every `JOBS_*` setting; `JobClient`: enqueue and inspect jobs from any async code
  (`async with JobClient.connect() as jobs: ...`); `JobStatus` (what `GET /jobs/{id}` answers) and
  `JobState` (its `status`).
- Errors answered as JSON by the API: `JobsError` and its branches `NotFoundError`, `ConflictError`;
  `QueueFullError` (429) when a queue already holds its JOBS_QUEUE_MAX_PENDING waiting jobs (JobClient
  raises it too: try again after its `Retry-After`).

Importing this package keeps httpx's command-line client from loading (`arq_jobs._httpx_cli`, imported
first): in a process that imported arq_jobs before httpx, `httpx.main` is httpx's stand-in saying the
CLI is not installed. Nothing else changes; the `httpx` command itself is not affected.
"""

from arq_jobs import _httpx_cli  # noqa: F401  (first: before anything imports httpx)
from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._errors import (
    BlockedAddressError,
    ConflictError,
    JobsError,
    NotFoundError,
    PermanentError,
    QueueFullError,
    SoftTimeLimitExceeded,
    TaskError,
    TimeLimitExceeded,
    TransientError,
)
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus
from arq_jobs._schedules.cron import Cron
from arq_jobs._secrets import Secret
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, task
from arq_jobs._tasks.retry import RetryPolicy
from arq_jobs._version import PACKAGE_VERSION as __version__

__all__ = [
    "BlockedAddressError",
    "ConflictError",
    "Cron",
    "JobClient",
    "JobContext",
    "JobState",
    "JobStatus",
    "JobsError",
    "NotFoundError",
    "PermanentError",
    "QueueFullError",
    "RetryPolicy",
    "Secret",
    "Settings",
    "SoftTimeLimitExceeded",
    "TaskError",
    "TaskInput",
    "TimeLimitExceeded",
    "TransientError",
    "__version__",
    "task",
]
