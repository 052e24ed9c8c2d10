"""Tasks only the integration tests load (`JOBS_TASK_PACKAGES=workers.tasks,tests.integration.tasks`)."""
