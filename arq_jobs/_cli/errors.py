"""Exit codes and the one-line errors of the CLI: every failure an operator can cause ends the
process with `error: <what was wrong>` on stderr and one of these codes (MEANINGS), never a
traceback."""

from __future__ import annotations

from enum import IntEnum

from arq_jobs._errors import ConflictError, JobsError, NotFoundError, UnknownTaskError
from arq_jobs._tasks.registry import TaskRegistry


class ExitCode(IntEnum):
    OK = 0
    JOB_FAILED = 1
    NOT_CONFIRMED = 1  # an alias: nothing was done
    USAGE = 2
    NOT_FOUND = 3
    INVALID_INPUT = 4
    REDIS_UNAVAILABLE = 5
    CONFLICT = 6
    SETTINGS = 7
    INTERRUPTED = 130


MEANINGS = {
    ExitCode.OK: "done",
    ExitCode.JOB_FAILED: ("the job or workflow failed or was cancelled (--wait), or --all was not confirmed"),
    ExitCode.USAGE: "usage error: unknown command or option, bad option value",
    ExitCode.NOT_FOUND: "not found: unknown task, job id, dead letter or workflow id",
    ExitCode.INVALID_INPUT: (
        "invalid input: --json (or a --json-lines line) not JSON or not valid for the task, bad delay or "
        "run time, unknown queue, a mistake in a workflow spec"
    ),
    ExitCode.REDIS_UNAVAILABLE: "Redis unreachable, or refusing the request",
    ExitCode.CONFLICT: "conflict: the job or workflow has already ended, or an idempotency key was reused",
    ExitCode.SETTINGS: "invalid settings (JOBS_* variables, JOBS_TASK_PACKAGES)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}


def exit_codes_help() -> str:
    """The exit codes, for --help."""
    return "Exit codes: " + "; ".join(f"{int(code)} {meaning}" for code, meaning in MEANINGS.items()) + "."


class CliError(Exception):
    """A failure to report as `error: <message>` with an exit code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def exit_code_for(error: JobsError) -> ExitCode:
    """The exit code of a core error (the CLI's counterpart of the API's status codes)."""
    if isinstance(error, NotFoundError):
        return ExitCode.NOT_FOUND
    if isinstance(error, ConflictError):
        return ExitCode.CONFLICT
    return ExitCode.INVALID_INPUT


def describe(error: JobsError, registry: TaskRegistry) -> str:
    """The core's message; an unknown task also lists the known ones."""
    if isinstance(error, UnknownTaskError):
        return f"{error} (known: {', '.join(task.name for task in registry)})"
    return str(error)
