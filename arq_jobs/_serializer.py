"""JSON (orjson) serialization for everything ARQ stores: never pickle, so nothing read from Redis
can run code. Exceptions are encoded as `{"__exception__": {"type", "message", "traceback"}}` so a
failed job keeps a readable error (ARQ's JSON path would store "unable to serialize result").
"""

from __future__ import annotations

import traceback
from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel

EXCEPTION_KEY = "__exception__"
MAX_TRACEBACK_CHARS = 8_000


def exception_message(exc: BaseException) -> str:
    """`str(exc)`, or for exceptions raised without one (timeouts, mostly) the first line of the
    exception class's docstring, so that a failed job never shows an empty message."""
    message = str(exc)
    if message:
        return message
    doc = (type(exc).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else type(exc).__name__


class TextException(Exception):
    """An exception given as text, standing in for another (arq_jobs._secrets.scrub_exception):
    `encode_exception` stores its `traceback_text` instead of formatting its own."""

    def __init__(self, message: str, traceback_text: str) -> None:
        super().__init__(message)
        self.traceback_text = traceback_text


def format_traceback(exc: BaseException) -> str:
    """The traceback text of `exc` (its causes and notes included), as `encode_exception` stores it."""
    if isinstance(exc, TextException):
        return exc.traceback_text
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def encode_exception(exc: BaseException) -> dict[str, Any]:
    """The readable form of an exception: its type, message and traceback text."""
    tb = format_traceback(exc)
    return {
        EXCEPTION_KEY: {
            "type": type(exc).__name__,
            "message": exception_message(exc),
            "traceback": tb[-MAX_TRACEBACK_CHARS:],
        }
    }


class StoredException(NamedTuple):
    type: str
    message: str
    traceback: str | None


def read_exception(value: Any) -> StoredException | None:
    """What `encode_exception` stored (after a JSON round trip); None for anything else."""
    encoded = value.get(EXCEPTION_KEY) if isinstance(value, dict) else None
    if not isinstance(encoded, dict):
        return None
    tb = encoded.get("traceback")
    return StoredException(
        type=str(encoded.get("type", "Exception")),
        message=str(encoded.get("message", "")),
        traceback=tb if isinstance(tb, str) else None,
    )


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, BaseException):
        return encode_exception(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot serialize {type(value).__name__} to JSON")


def dumps(value: Any) -> bytes:
    """Serialize to JSON bytes; used as ARQ's `job_serializer`."""
    return orjson.dumps(value, default=_default)


def loads(data: bytes | str) -> Any:
    """Parse JSON bytes; used as ARQ's `job_deserializer`."""
    return orjson.loads(data)
