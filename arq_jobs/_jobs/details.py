"""What an operator sees of a job beyond its status: the input it was given and its error's traceback,
read from ARQ's job key (while the job waits or runs) or its result key (once it ended)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, JsonValue

from arq_jobs._serializer import loads, read_exception


class JobDetails(BaseModel):
    input: JsonValue = Field(default=None, description="The task's input as stored.")
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


def parse_details(raw_job: bytes | None, raw_result: bytes | None) -> JobDetails:
    """Details from ARQ's job and result values (either may be missing or unreadable)."""
    job = _decode(raw_job)
    result = _decode(raw_result)
    args = next((found["a"] for found in (result, job) if found and isinstance(found.get("a"), list)), None)
    stored = read_exception(result.get("r")) if result and not result.get("s") else None
    return JobDetails(
        input=args[0] if args else None,
        input_kept=bool(args),
        traceback=stored.traceback if stored else None,
    )
