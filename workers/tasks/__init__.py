"""The reference deployment's tasks, one module per domain. Every `@task` defined in a module here is
registered (`JOBS_TASK_PACKAGES=workers.tasks`, the default): adding a task is adding (or editing) one
file in this package."""
