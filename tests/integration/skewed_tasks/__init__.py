"""An older version of the tasks, for the version-guard test: a worker started with
`JOBS_TASK_PACKAGES=tests.integration.skewed_tasks` runs `noop` with another input model and knows
no other task."""
