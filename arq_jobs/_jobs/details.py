"""What an operator sees of a job beyond its status: the input it was given and its error's traceback,
read from ARQ's job key (while the job waits or runs) or its result key (once it ended)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, JsonValue

from arq_jobs._secrets import redact_input
from arq_jobs._serializer import loads, read_exception

if TYPE_CHECKING:
    from arq_jobs._tasks.registry import TaskRegistry


class JobDetails(BaseModel):
    input: JsonValue = Field(
        default=None,
        description='The input as stored, its secret values "***" (all of it when the task is unknown).',
    )
    input_kept: bool = Field(
        description="False once ARQ keeps neither the job nor its result (cancelled while waiting, expired)."
    )
    traceback: str | None = Field(default=None, description="When failed: the error's traceback.")


def _decode(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parse_details(
    raw_job: bytes | None, raw_result: bytes | None, registry: TaskRegistry | None = None
) -> JobDetails:
    """Details from ARQ's job and result values (either may be missing or unreadable); with a
    `registry`, the input's secrets redacted (the whole input when it does not know the task)."""
    job = _decode(raw_job)
    result = _decode(raw_result)
    found = next((value for value in (result, job) if value and isinstance(value.get("a"), list)), None)
    args = found["a"] if found else None
    stored = read_exception(result.get("r")) if result and not result.get("s") else None
    given = args[0] if args else None
    if registry is not None and found is not None:
        task = found.get("f")
        given = redact_input(registry, task if isinstance(task, str) else None, given)
    return JobDetails(
        input=given,
        input_kept=bool(args),
        traceback=stored.traceback if stored else None,
    )
