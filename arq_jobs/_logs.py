"""Structured logging shared by the API and the workers: structlog over stdlib logging, one format.

Our modules may log with `logging.getLogger(__name__)` (%-style args) or with `get_logger(__name__)`
(an event name plus keyword fields); arq, uvicorn and httpx log through stdlib logging. Every line goes
through the one handler on the root logger and comes out in the same format (JSON or console) with
the context bound by `bind_job`.

Our own structlog events skip stdlib logging (a LogRecord, a handler, a formatter): they are rendered
by structlog's processors and written to the same stream, which makes a job's two lines about three
times cheaper. ARQ's per-job lines are dropped before ARQ's logger builds a record for them
(`arq_jobs._arq.quiet_job_lines`, in the worker).
"""

from __future__ import annotations

import logging
import sys
import threading
from contextlib import AbstractContextManager
from typing import Any, Literal, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from arq_jobs import _arq

LogFormat = Literal["auto", "json", "console"]

# Loggers whose own handlers (the arq CLI's, uvicorn's default config) would print lines a second time.
PROPAGATING_LOGGERS = ("arq", "uvicorn", "uvicorn.error", "uvicorn.access")

_JSON_FIRST_KEYS = ("timestamp", "level", "logger", "event")


class DropArqJobLines(logging.Filter):
    """Drops arq.worker's per-job start/finish/failure records (matched on the format string): each
    job's state transitions are logged by our runner instead, with the job's fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in _arq.PER_JOB_LOG_FORMATS


_write_lock = threading.Lock()


class LineWriter:
    """structlog's logger for our own events: writes each rendered line to `stream` (the current
    stderr when None), as the root handler does for stdlib lines."""

    def __init__(self, name: str | None, stream: TextIO | None) -> None:
        self.name = name
        self._stream = stream

    def msg(self, message: str) -> None:
        out = sys.stderr if self._stream is None else self._stream
        with _write_lock:
            out.write(message + "\n")
            out.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class LineWriterFactory:
    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream

    def __call__(self, *args: Any) -> LineWriter:
        return LineWriter(args[0] if args and isinstance(args[0], str) else None, self.stream)


def _add_logger_name(logger: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict["logger"] = getattr(logger, "name", None)
    return event_dict


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time of each line (as logging's last resort does)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no stream (pythonw) or a closed one
        return False


def _orjson_dumps(value: object, **_: object) -> str:
    """JSON for a log line: orjson (about 10 µs a line faster than json.dumps on the hot path)."""
    return orjson.dumps(value, default=repr).decode()


def _json_keys_first(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """timestamp, level, logger, event first; then the bound context and keyword fields."""
    ordered = {key: event_dict.pop(key) for key in _JSON_FIRST_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


def configure_logging(level: str, fmt: LogFormat = "auto", *, stream: TextIO | None = None) -> None:
    """Send every log line of the process to `stream` (default: stderr) at `level` in one format.

    `json`: one JSON object per line (timestamp, level, logger, event, bound context, fields;
    a traceback is the `exception` field); `console`: structlog's human-readable lines; `auto`:
    console when the stream is a terminal, else JSON. Calling it again replaces the previous set-up.

    The arq CLI installs its own handler on the `arq` logger after importing the settings module;
    it is removed here (uvicorn's too) so that those lines are not printed twice in two formats.
    """
    out = sys.stderr if stream is None else stream
    tty = _is_tty(out)
    if fmt == "auto":
        fmt = "console" if tty else "json"

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: list[Processor]
    if fmt == "json":
        renderer = [
            structlog.processors.format_exc_info,
            _json_keys_first,
            structlog.processors.JSONRenderer(serializer=_orjson_dumps),
        ]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=tty)]
    rendering: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer]

    handler: logging.Handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=rendering))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            *renderer,
        ],
        context_class=dict,
        logger_factory=LineWriterFactory(stream),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        # Not cached, so that a later configure_logging (or structlog.reset_defaults) reaches loggers
        # made at import time; the cost is one small object per call.
        cache_logger_on_first_use=False,
    )

    for name in PROPAGATING_LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
    logging.getLogger("arq").setLevel(level)

    arq_worker = logging.getLogger(_arq.LOGGER_NAME)
    for old_filter in list(arq_worker.filters):
        if isinstance(old_filter, DropArqJobLines):
            arq_worker.removeFilter(old_filter)
    arq_worker.addFilter(DropArqJobLines())

    # One INFO line per webhook request is hot-path noise: keep httpx's warnings and errors only.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> Any:
    """A structlog logger named `name` (use `__name__`): `log.info("job.succeeded", duration_ms=12)`.

    Until configure_logging runs (the core used as a library, a script), lines go to stdlib logging
    like any library's (silent below WARNING by default), not to structlog's default of stdout."""
    if not structlog.is_configured():
        structlog.configure(
            processors=[structlog.contextvars.merge_contextvars, structlog.stdlib.render_to_log_kwargs],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=False,
        )
    return structlog.get_logger(name)


def bind_job(job_id: str, task: str, attempt: int, queue: str) -> AbstractContextManager[None]:
    """Inside the `with` block every line (stdlib or structlog) carries job_id, task, attempt and queue.

    Contextvars: ARQ runs each job in its own asyncio task, so one job's fields never reach another's.
    """
    return structlog.contextvars.bound_contextvars(job_id=job_id, task=task, attempt=attempt, queue=queue)
