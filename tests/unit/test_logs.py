"""configure_logging: one format for stdlib and structlog lines, job context, arq's per-job lines dropped."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from arq_jobs._logs import DropArqJobLines, bind_job, configure_logging, get_logger

TOUCHED_LOGGERS = ("arq", "arq.worker", "httpx", "uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Logging is process-global: put back what configure_logging changes so no other test sees it."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved = {
        name: (list(lg.handlers), lg.level, lg.propagate, list(lg.filters))
        for name in TOUCHED_LOGGERS
        for lg in [logging.getLogger(name)]
    }
    yield
    root.handlers[:] = saved_root[0]
    root.setLevel(saved_root[1])
    for name, (handlers, level, propagate, filters) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate
        lg.filters[:] = filters
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def configured(level: str = "INFO") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level, "json", stream=stream)
    return stream


def test_a_stdlib_line_is_one_json_object_with_timestamp_level_logger_event() -> None:
    stream = configured()
    before = datetime.now(UTC)

    logging.getLogger("workers.sample").warning("lease renewal failed")

    assert stream.getvalue().count("\n") == 1
    [line] = json_lines(stream)
    assert list(line) == ["timestamp", "level", "logger", "event"]
    assert line["level"] == "warning"
    assert line["logger"] == "workers.sample"
    assert line["event"] == "lease renewal failed"
    assert line["timestamp"].endswith("Z")
    stamp = datetime.fromisoformat(line["timestamp"])
    assert stamp.tzinfo == UTC
    assert before <= stamp <= datetime.now(UTC)


def test_percent_args_are_interpolated() -> None:
    stream = configured()

    logging.getLogger("workers.sample").info("job %s (%s) dead-lettered after %d attempt(s)", "j1", "echo", 3)

    [line] = json_lines(stream)
    assert line["event"] == "job j1 (echo) dead-lettered after 3 attempt(s)"
    assert line["level"] == "info"


def test_structlog_lines_carry_their_keyword_fields() -> None:
    stream = configured()

    get_logger("arq_jobs._worker.runner").info("job.succeeded", duration_ms=12, result_bytes=40)
    get_logger("arq_jobs._worker.runner").warning("job %s late", "j1")

    first, second = json_lines(stream)
    assert {k: v for k, v in first.items() if k != "timestamp"} == {
        "level": "info",
        "logger": "arq_jobs._worker.runner",
        "event": "job.succeeded",
        "duration_ms": 12,
        "result_bytes": 40,
    }
    assert (second["level"], second["event"]) == ("warning", "job j1 late")


def test_bind_job_context_is_on_stdlib_and_structlog_lines_and_gone_after_the_block() -> None:
    stream = configured()
    job = {"job_id": "j1", "task": "echo", "attempt": 2, "queue": "default"}

    with bind_job("j1", "echo", 2, "default"):
        logging.getLogger("workers.sample").info("inside %s", "stdlib")
        get_logger("arq_jobs._worker.runner").info("job.started", delay_ms=5)
    logging.getLogger("workers.sample").info("outside")
    get_logger("arq_jobs._worker.runner").info("job.outside")

    stdlib_in, structlog_in, stdlib_out, structlog_out = json_lines(stream)
    assert stdlib_in["event"] == "inside stdlib"
    assert {k: stdlib_in[k] for k in job} == job
    assert structlog_in["event"] == "job.started"
    assert structlog_in["delay_ms"] == 5
    assert {k: structlog_in[k] for k in job} == job
    assert list(stdlib_out) == ["timestamp", "level", "logger", "event"]
    assert list(structlog_out) == ["timestamp", "level", "logger", "event"]


def test_nested_bind_job_restores_the_outer_job() -> None:
    stream = configured()

    with bind_job("outer", "echo", 1, "default"):
        with bind_job("inner", "sleep", 3, "slow"):
            logging.getLogger("x").info("a")
        logging.getLogger("x").info("b")

    inner, outer = json_lines(stream)
    assert (inner["job_id"], inner["task"], inner["attempt"], inner["queue"]) == ("inner", "sleep", 3, "slow")
    assert (outer["job_id"], outer["task"], outer["attempt"], outer["queue"]) == (
        "outer",
        "echo",
        1,
        "default",
    )


def test_an_exception_is_the_exception_field_of_one_json_line() -> None:
    stream = configured()

    try:
        raise ValueError("bad input")
    except ValueError:
        logging.getLogger("workers.sample").exception("could not dead-letter job %s", "j1")
        get_logger("arq_jobs._worker.runner").exception("job.crashed")

    text = stream.getvalue()
    assert text.count("\n") == 2
    stdlib_line, structlog_line = json_lines(stream)
    for line, event, logger in (
        (stdlib_line, "could not dead-letter job j1", "workers.sample"),
        (structlog_line, "job.crashed", "arq_jobs._worker.runner"),
    ):
        assert (line["level"], line["logger"], line["event"]) == ("error", logger, event)
        assert line["exception"].startswith("Traceback (most recent call last):\n")
        assert 'raise ValueError("bad input")' in line["exception"]
        assert line["exception"].endswith("ValueError: bad input")
        assert "exc_info" not in line


def test_arq_per_job_lines_are_dropped_and_its_other_lines_kept() -> None:
    stream = configured()
    arq = logging.getLogger("arq.worker")

    # ARQ 0.28's exact calls in Worker.run_job / main / record_health
    arq.info("Starting worker for %d functions: %s", 2, "echo, sleep")
    arq.info("%6.2fs → %s(%s)%s", 0.01, "j1:echo", "text='hi'", "")
    arq.info("%6.2fs → %s(%s)%s", 1.5, "j1:echo", "text='hi'", " try=2 delayed=1.50s")
    arq.info("%6.2fs ← %s ● %s", 0.02, "j1:echo", "'hi'")
    try:
        raise RuntimeError("boom")
    except RuntimeError as e:
        arq.exception(
            "%6.2fs ! %s failed, %s: %s", 0.03, "j2:echo", e.__class__.__name__, e, extra={"extra": None}
        )
    arq.warning("job %s expired", "j3")
    arq.info(
        "recording health: %s", "Jan-01 00:00:00 j_complete=1 j_failed=1 j_retried=0 j_ongoing=0 queued=0"
    )
    arq.info(
        "shutdown on %s ◆ %d jobs complete ◆ %d failed ◆ %d retries ◆ %d ongoing to cancel",
        "SIGTERM",
        1,
        1,
        0,
        0,
    )

    assert [(line["level"], line["logger"], line["event"]) for line in json_lines(stream)] == [
        ("info", "arq.worker", "Starting worker for 2 functions: echo, sleep"),
        ("warning", "arq.worker", "job j3 expired"),
        (
            "info",
            "arq.worker",
            "recording health: Jan-01 00:00:00 j_complete=1 j_failed=1 j_retried=0 j_ongoing=0 queued=0",
        ),
        (
            "info",
            "arq.worker",
            "shutdown on SIGTERM ◆ 1 jobs complete ◆ 1 failed ◆ 0 retries ◆ 0 ongoing to cancel",
        ),
    ]


def test_the_filter_matches_the_format_string_not_the_rendered_text() -> None:
    stream = configured()

    # Same text as a per-job start line, but not ARQ's format string: kept.
    logging.getLogger("arq.worker").info("  0.01s → j1:echo()")
    # ARQ's format string on another logger: the filter is on arq.worker only.
    logging.getLogger("workers.sample").info("%6.2fs ← %s ● %s", 0.02, "j1:echo", "'hi'")

    assert [line["event"] for line in json_lines(stream)] == [
        "  0.01s → j1:echo()",
        "  0.02s ← j1:echo ● 'hi'",
    ]


def test_configuring_twice_gives_one_line_per_call() -> None:
    configure_logging("INFO", "json", stream=io.StringIO())
    stream = configured()

    logging.getLogger("workers.sample").info("once")
    get_logger("arq_jobs._worker.runner").info("once.too")
    logging.getLogger("arq.worker").info("Starting worker for %d functions: %s", 1, "echo")

    assert [line["event"] for line in json_lines(stream)] == [
        "once",
        "once.too",
        "Starting worker for 1 functions: echo",
    ]
    assert len(logging.getLogger().handlers) == 1
    assert [type(f) for f in logging.getLogger("arq.worker").filters].count(DropArqJobLines) == 1


def test_handlers_of_arq_and_uvicorn_are_removed_so_their_lines_come_out_once() -> None:
    arq_cli_handler = logging.StreamHandler(io.StringIO())
    logging.getLogger("arq").addHandler(arq_cli_handler)
    logging.getLogger("arq").propagate = False
    logging.getLogger("uvicorn.access").addHandler(logging.StreamHandler(io.StringIO()))
    stream = configured()

    logging.getLogger("arq.worker").info("Starting worker for %d functions: %s", 1, "echo")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "GET", "/health/ready", "1.1", 200
    )
    logging.getLogger("uvicorn.error").info("Application startup complete.")

    assert logging.getLogger("arq").handlers == []
    assert logging.getLogger("arq").propagate is True
    assert logging.getLogger("uvicorn.access").handlers == []
    assert arq_cli_handler.stream.getvalue() == ""
    assert [(line["logger"], line["event"]) for line in json_lines(stream)] == [
        ("arq.worker", "Starting worker for 1 functions: echo"),
        ("uvicorn.access", '127.0.0.1:50000 - "GET /health/ready HTTP/1.1" 200'),
        ("uvicorn.error", "Application startup complete."),
    ]


def test_httpx_request_lines_are_dropped_but_its_warnings_kept() -> None:
    stream = configured("DEBUG")

    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s %d %s"', "POST", "http://hook", "HTTP/1.1", 200, "OK"
    )
    logging.getLogger("httpx").warning("odd response")

    assert logging.getLogger("httpx").level == logging.WARNING
    assert [(line["logger"], line["event"]) for line in json_lines(stream)] == [("httpx", "odd response")]


def test_level_drops_lower_lines_from_stdlib_and_structlog() -> None:
    stream = configured("WARNING")

    logging.getLogger("workers.sample").info("not shown")
    get_logger("arq_jobs._worker.runner").info("not.shown")
    logging.getLogger("arq.worker").info("Starting worker for %d functions: %s", 1, "echo")
    get_logger("arq_jobs._worker.runner").error("shown", job_id="j1")

    [line] = json_lines(stream)
    assert (line["level"], line["event"], line["job_id"]) == ("error", "shown", "j1")


def test_httpx_follows_a_level_above_warning() -> None:
    stream = configured("ERROR")

    logging.getLogger("httpx").warning("not shown")

    assert logging.getLogger("httpx").level == logging.ERROR
    assert stream.getvalue() == ""


def test_console_format_is_human_readable_not_json() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "console", stream=stream)

    with bind_job("j1", "echo", 2, "default"):
        logging.getLogger("workers.sample").info("lease renewed for %s", "j1")
        get_logger("arq_jobs._worker.runner").info("job.succeeded", duration_ms=12)

    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    for line in lines:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
        assert "\x1b[" not in line  # not a terminal: no colours
        assert "job_id=j1" in line and "task=echo" in line and "attempt=2" in line and "queue=default" in line
    assert "[info     ] lease renewed for j1" in lines[0]
    assert "[workers.sample]" in lines[0]
    assert "[info     ] job.succeeded" in lines[1]
    assert "duration_ms=12" in lines[1]


def test_auto_is_json_when_the_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "auto", stream=stream)

    logging.getLogger("workers.sample").info("hello")

    [line] = json_lines(stream)
    assert (line["level"], line["logger"], line["event"]) == ("info", "workers.sample", "hello")


def test_auto_is_coloured_console_on_a_terminal() -> None:
    stream = TtyStream()
    configure_logging("INFO", "auto", stream=stream)

    logging.getLogger("workers.sample").info("hello")

    text = stream.getvalue()
    assert text.count("\n") == 1
    assert "\x1b[" in text
    assert "hello" in text
    assert not text.startswith("{")


def test_without_a_stream_lines_go_to_the_current_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")

    logging.getLogger("workers.sample").info("to stderr")

    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = [json.loads(text) for text in captured.err.splitlines()]
    assert line["event"] == "to stderr"
