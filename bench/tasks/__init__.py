"""Tasks only the benchmarks load (`JOBS_TASK_PACKAGES=workers.tasks,bench.tasks`)."""
