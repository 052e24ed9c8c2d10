"""Scopes an API key may hold, and `Principal`: the caller a request was authenticated as.

`admin` allows everything (every owner's jobs, the dashboard); `jobs:enqueue` allows enqueueing any
task, `jobs:enqueue:<task>` one task (also what each step of a workflow needs)."""

from __future__ import annotations

import re
from dataclasses import dataclass

ADMIN = "admin"
JOBS_ENQUEUE = "jobs:enqueue"
JOBS_READ = "jobs:read"
JOBS_CANCEL = "jobs:cancel"
WORKFLOWS_WRITE = "workflows:write"
DEAD_LETTERS_READ = "dead-letters:read"
DEAD_LETTERS_WRITE = "dead-letters:write"
METRICS_READ = "metrics:read"

SCOPES: dict[str, str] = {
    JOBS_ENQUEUE: "Enqueue jobs of any task (`jobs:enqueue:<task>`: of one task).",
    JOBS_READ: "Read the key's own jobs and workflows: status, listings, events; the tasks.",
    JOBS_CANCEL: "Cancel the key's own jobs.",
    WORKFLOWS_WRITE: "Start and cancel the key's own workflows (each step also needs its enqueue scope).",
    DEAD_LETTERS_READ: "Read the key's own dead letters.",
    DEAD_LETTERS_WRITE: "Retry and delete the key's own dead letters.",
    METRICS_READ: "Prometheus /metrics, statistics, queues, workers and schedules.",
    ADMIN: "Everything, every owner's jobs, and the dashboard.",
}

TASK_SCOPE = re.compile(r"^jobs:enqueue:[A-Za-z0-9_.-]{1,200}$")


def enqueue_scope(task: str) -> str:
    """The scope that allows enqueueing `task` alone."""
    return f"{JOBS_ENQUEUE}:{task}"


def check_scope(scope: str) -> str:
    """`scope` when it is one this package knows; ValueError naming the known ones otherwise."""
    if scope in SCOPES or TASK_SCOPE.fullmatch(scope):
        return scope
    known = ", ".join([*SCOPES, "jobs:enqueue:<task>"])
    raise ValueError(f"unknown scope {scope!r} (known: {known})")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request was authenticated as: a key's name (the owner of the jobs it makes) and scopes."""

    name: str
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.scopes

    def allows(self, scope: str) -> bool:
        """Whether this principal holds `scope` (or one that includes it)."""
        if self.is_admin or scope in self.scopes:
            return True
        return scope.startswith(f"{JOBS_ENQUEUE}:") and JOBS_ENQUEUE in self.scopes

    def owns(self, owner: str | None) -> bool:
        """Whether a job or workflow of `owner` is this principal's to see (admin: every one)."""
        return self.is_admin or owner == self.name


ADMIN_TOKEN = Principal("admin", frozenset({ADMIN}))
"""Who `JOBS_ADMIN_TOKEN` authenticates as."""
