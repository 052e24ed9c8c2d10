"""The FastAPI integration: `install(app)` adds the job API, dashboard, `/metrics` and health routes
to your app and runs the Redis pool in its lifespan; `JobsDep` hands your routes the `Jobs` facade.

```python
app = FastAPI(lifespan=your_lifespan)
install(app, prefix="/jobs-api", task_packages=["myproject.tasks"])


@app.post("/orders")
async def create_order(order: Order, jobs: JobsDep) -> EnqueuedJob:
    return await jobs.enqueue(send_receipt, ReceiptInput(order_id=order.id))
```

`APIRouter(route_class=JobsRoute)` gives routes of yours the API's JSON error answers;
`json_errors(app)` gives them to the whole app (unknown routes included). `requires(*scopes)` guards a
route of yours with the API's keys (`dependencies=[requires("jobs:read")]`); `JobsDep` in it then acts
as that key (the jobs it makes are the key's, it sees only the key's).
"""

from arq_jobs._api.auth import requires
from arq_jobs._api.deps import JobsDep
from arq_jobs._api.errors import JobsRoute, json_errors
from arq_jobs._api.install import install, serve
from arq_jobs._api.jobs import Jobs
from arq_jobs._api.schemas import EnqueuedBatch, EnqueuedJob, ErrorBody, WorkflowAccepted

__all__ = [
    "EnqueuedBatch",
    "EnqueuedJob",
    "ErrorBody",
    "Jobs",
    "JobsDep",
    "JobsRoute",
    "WorkflowAccepted",
    "install",
    "json_errors",
    "requires",
    "serve",
]
