"""The worker runtime: `worker_settings()` makes the class the `arq` command runs.

```python
# myproject/worker.py
from arq_jobs.worker import worker_settings

WorkerSettings = worker_settings(task_packages=["myproject.tasks"])
```
then `arq myproject.worker.WorkerSettings`. One class per queue: `worker_settings(queue="high")`, or
`pool_class("HighWorkerSettings")` from a module `__getattr__` for every configured queue.
"""

from arq_jobs._worker.settings import pool_class, worker_settings

__all__ = ["pool_class", "worker_settings"]
