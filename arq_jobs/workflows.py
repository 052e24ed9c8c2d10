"""Workflows: chains, groups and chords of task steps. A step is `some_task.step(data)` (only a
workflow's first step takes an input; each later one gets the previous result); `group(...)` runs
steps in parallel. Start one with `jobs.chain(...)`, `jobs.group(...)` or `jobs.chord(...)`; they
answer `WorkflowAccepted`, and `jobs.workflow(id)` a `WorkflowStatus`."""

from arq_jobs._tasks.registry import Step
from arq_jobs._workflows.spec import Group, group
from arq_jobs._workflows.status import WorkflowState, WorkflowStatus

__all__ = ["Group", "Step", "WorkflowState", "WorkflowStatus", "group"]
