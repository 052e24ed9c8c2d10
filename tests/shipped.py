"""The reference deployment's tasks (`workers.tasks`) as a registry, for tests."""

from arq_jobs._tasks.registry import TaskRegistry

registry = TaskRegistry.discover("workers.tasks")
