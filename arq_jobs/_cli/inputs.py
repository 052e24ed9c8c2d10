"""Reading what the operator typed: the task payload (`--json`), run times, cursors and keys."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any

import typer

from arq_jobs._cli.errors import CliError, ExitCode
from arq_jobs._idempotency import KEY_PATTERN
from arq_jobs._jobs.paging import CURSOR_PATTERN


def refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed (JSON has no {name})")


def parse_payload(text: str, option: str = "--json") -> Any:
    """The task's input from JSON text; a mistake is named with its line and column."""
    try:
        return json.loads(text, parse_constant=refuse_constant)
    except json.JSONDecodeError as error:
        where = f"{error.msg} at line {error.lineno} column {error.colno}"
        raise CliError(f"{option} is not valid JSON: {where}", ExitCode.INVALID_INPUT) from None
    except ValueError as error:
        raise CliError(f"{option} is not valid JSON: {error}", ExitCode.INVALID_INPUT) from None


def parse_run_at(text: str | None) -> datetime | None:
    """An ISO-8601 time (the core refuses one without a timezone, naming run_at)."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise CliError(
            f"--run-at is not an ISO-8601 time: {text!r} (e.g. 2031-01-01T09:00:00Z)",
            ExitCode.INVALID_INPUT,
        ) from None


def check_cursor(value: str | None) -> str | None:
    """Typer callback: a cursor must be a `next_cursor` of an earlier page."""
    if value is not None and not re.fullmatch(CURSOR_PATTERN, value):
        raise typer.BadParameter("not a cursor from an earlier page (<ms>:<id>)")
    return value


CursorOption = Annotated[
    str | None, typer.Option("--cursor", help="next cursor of the previous page.", callback=check_cursor)
]


def check_idempotency_key(value: str | None) -> str | None:
    """Typer callback: 1-255 visible ASCII characters, no spaces (as the Idempotency-Key header)."""
    if value is not None and not re.fullmatch(KEY_PATTERN, value):
        raise typer.BadParameter("give 1-255 visible ASCII characters, no spaces")
    return value
