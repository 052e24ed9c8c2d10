"""`arq-jobs worker`: which pool TARGET and --queue name, what each process is started with, the
restart backoff, and the stop (SIGKILL past the stop timeout). The real processes: see
tests/integration/test_cli_worker.py."""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from arq_jobs import _config as config
from arq_jobs._cli import worker
from arq_jobs._cli.errors import CliError, ExitCode
from arq_jobs._cli.main import app
from arq_jobs._cli.worker import Backoff, Pool, Supervisor, child_command, child_envs, resolve_pool
from arq_jobs._config import Settings
from arq_jobs._worker import settings as worker_settings
from tests.shipped import registry

from .conftest import make_settings


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The `workers` module's pools as if started with JOBS_QUEUES=high,default,low,bulk-email."""
    settings = make_settings(queues=("high", "default", "low", "bulk-email"), worker_metrics_port=9100)
    monkeypatch.setattr(worker_settings, "deployment", lambda: (settings, registry))
    monkeypatch.setattr(worker_settings, "_pools", {})
    return settings


@pytest.mark.parametrize(
    ("target", "queue", "expected"),
    [
        (None, None, Pool("workers.WorkerSettings", "default", 9100)),
        (None, "default", Pool("workers.WorkerSettings", "default", 9100)),
        (None, "high", Pool("workers.HighWorkerSettings", "high", 9100)),
        ("workers", "bulk-email", Pool("workers.BulkEmailWorkerSettings", "bulk-email", 9100)),
        ("workers.LowWorkerSettings", None, Pool("workers.LowWorkerSettings", "low", 9100)),
        ("workers.LowWorkerSettings", "low", Pool("workers.LowWorkerSettings", "low", 9100)),
    ],
)
def test_target_and_queue_pick_the_pool(
    configured: Settings, target: str | None, queue: str | None, expected: Pool
) -> None:
    assert resolve_pool(target, queue, configured) == expected


@pytest.mark.parametrize(
    ("target", "queue", "code", "message"),
    [
        (
            None,
            "urgent",
            ExitCode.INVALID_INPUT,
            "no queue named 'urgent' is configured; the queues are high, default, low, bulk-email",
        ),
        (
            "workers.HighWorkerSettings",
            "low",
            ExitCode.INVALID_INPUT,
            "workers.HighWorkerSettings serves queue 'high', not 'low'",
        ),
        (
            "workers.UrgentWorkerSettings",
            None,
            ExitCode.USAGE,
            "workers.UrgentWorkerSettings: UrgentWorkerSettings serves no queue of JOBS_QUEUES (high, default, "
            "low, bulk-email); the pools are HighWorkerSettings (high), WorkerSettings (default), "
            "LowWorkerSettings (low), BulkEmailWorkerSettings (bulk-email)",
        ),
        (
            "no_such_module",
            None,
            ExitCode.USAGE,
            "cannot import 'no_such_module': name a module or module.Class",
        ),
        (
            "no_such_module.WorkerSettings",
            None,
            ExitCode.USAGE,
            "cannot import 'no_such_module.WorkerSettings': name a module or module.Class",
        ),
        (
            "workers.tasks.noop.NoopInput",
            None,
            ExitCode.USAGE,
            "workers.tasks.noop.NoopInput is not a worker pool's settings class (made by arq_jobs.worker's "
            "worker_settings() or pool_class())",
        ),
    ],
)
def test_a_target_or_queue_that_names_no_pool_is_refused_with_one_line(
    configured: Settings, target: str | None, queue: str | None, code: ExitCode, message: str
) -> None:
    with pytest.raises(CliError) as refused:
        resolve_pool(target, queue, configured)
    assert (refused.value.code, refused.value.message) == (code, message)


def test_a_module_that_fails_to_import_is_named_with_its_error(
    configured: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_pools.py").write_text("import no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(CliError) as refused:
        resolve_pool("broken_pools.WorkerSettings", None, configured)
    assert (refused.value.code, refused.value.message) == (
        ExitCode.USAGE,
        "cannot import 'broken_pools.WorkerSettings': No module named 'no_such_dependency'",
    )


def test_each_process_is_python_m_arq_with_the_environment_and_its_own_metrics_port() -> None:
    pool = Pool("workers.HighWorkerSettings", "high", 9100)
    assert child_command(pool) == [sys.executable, "-m", "arq", "workers.HighWorkerSettings"]
    base = {"PATH": "/bin", "JOBS_WORKER_METRICS_PORT": "9100"}
    assert child_envs(pool, 1, base) == [base]
    assert [env["JOBS_WORKER_METRICS_PORT"] for env in child_envs(pool, 3, base)] == ["9100", "9101", "9102"]
    assert all(env["PATH"] == "/bin" for env in child_envs(pool, 3, base))
    off = Pool("workers.WorkerSettings", "default", 0)
    assert child_envs(off, 2, {"PATH": "/bin"}) == [{"PATH": "/bin"}, {"PATH": "/bin"}]


def test_backoff_doubles_to_30_s_and_starts_over_after_a_minute_up() -> None:
    backoff = Backoff()
    attempt, delays = 0, []
    for _ in range(7):
        attempt = backoff.next_attempt(attempt, uptime_s=0.5)
        delays.append(backoff.delay_s(attempt))
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.next_attempt(attempt, uptime_s=60) == 1


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Any:
    config.get_settings.cache_clear()
    yield monkeypatch
    config.get_settings.cache_clear()


def test_the_command_runs_the_supervisor_with_the_pools_command(
    configured: Settings, environment: pytest.MonkeyPatch
) -> None:
    made: list[Supervisor] = []

    def run(self: Supervisor) -> int:
        made.append(self)
        return 0

    environment.setattr(Supervisor, "run", run)
    environment.setattr(worker, "configure_logging", lambda *args: None)
    environment.setenv("JOBS_SHUTDOWN_GRACE_S", "3")
    result = CliRunner().invoke(app, ["worker", "--queue", "high", "--processes", "3"])
    assert result.exit_code == 0, result.output
    [supervisor] = made
    assert supervisor.command == [sys.executable, "-m", "arq", "workers.HighWorkerSettings"]
    assert [env["JOBS_WORKER_METRICS_PORT"] for env in supervisor.envs] == ["9100", "9101", "9102"]
    assert supervisor.stop_timeout_s == 3 + 5  # JOBS_SHUTDOWN_GRACE_S + the margin

    made.clear()
    result = CliRunner().invoke(app, ["worker", "workers.LowWorkerSettings", "--stop-timeout", "1.5"])
    assert result.exit_code == 0, result.output
    assert (made[0].command[-1], len(made[0].envs), made[0].stop_timeout_s) == (
        "workers.LowWorkerSettings",
        1,
        1.5,
    )


@pytest.mark.parametrize(
    ("args", "env", "code", "line"),
    [
        (
            ["--queue", "urgent"],
            {},
            ExitCode.INVALID_INPUT,
            "no queue named 'urgent' is configured; the queues are high, default, low",
        ),
        (
            [],
            {"JOBS_WORKER_CONCURRENCY": "0"},
            ExitCode.SETTINGS,
            "invalid settings: JOBS_WORKER_CONCURRENCY: Input should be greater than 0",
        ),
    ],
)
def test_the_command_refuses_with_one_line_and_its_exit_code(
    environment: pytest.MonkeyPatch, args: list[str], env: dict[str, str], code: ExitCode, line: str
) -> None:
    for name, value in env.items():
        environment.setenv(name, value)
    result = CliRunner().invoke(app, ["worker", *args])
    assert (result.exit_code, result.stderr, result.stdout) == (code, f"error: {line}\n", "")


def test_processes_must_be_at_least_one() -> None:
    result = CliRunner().invoke(app, ["worker", "--processes", "0"])
    assert result.exit_code == ExitCode.USAGE
    assert "--processes" in result.stderr


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_process_that_exits_is_started_again_after_its_backoff(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor(python("raise SystemExit(3)"), [{}], stop_timeout_s=1)
    [child] = supervisor.children
    caplog.set_level(logging.INFO, logger=worker.__name__)
    supervisor.start(child)
    assert child.process is not None
    first = child.process
    first.wait(timeout=10)
    supervisor.watch(now=100.0)
    assert (child.restart_at, child.process) == (101.0, first)
    supervisor.watch(now=100.5)
    assert child.process is first  # not yet
    supervisor.watch(now=101.0)
    assert child.process is not first and child.restart_at is None
    child.process.wait(timeout=10)
    assert [record.getMessage() for record in caplog.records] == [
        f"worker process 1 started (pid {first.pid})",
        f"worker process 1 (pid {first.pid}) exited with code 3; restarting in 1s",
        f"worker process 1 restarted (pid {child.process.pid})",
    ]


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + 10
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} not made"
        time.sleep(0.02)


def on_sigterm(action: str, ready: Path) -> list[str]:
    """A process that runs `action` on SIGTERM and touches `ready` once its handler is set."""
    return python(
        f"import signal, sys, time, pathlib; signal.signal(signal.SIGTERM, {action}); "
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    )


def test_stopping_kills_a_process_still_running_after_the_stop_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    supervisor = Supervisor(on_sigterm("signal.SIG_IGN", tmp_path / "ready"), [{}], stop_timeout_s=0.3)
    [child] = supervisor.children
    caplog.set_level(logging.INFO, logger=worker.__name__)
    supervisor.start(child)
    wait_for(tmp_path / "ready")
    started = time.monotonic()
    assert supervisor.stop(signal.SIGTERM) == 1
    assert time.monotonic() - started < 5
    assert child.process is not None and child.process.returncode == -signal.SIGKILL
    assert [record.getMessage() for record in caplog.records][-3:] == [
        "SIGTERM: stopping 1 worker processes (SIGTERM; running jobs may finish, at most 0.3s)",
        f"worker process 1 (pid {child.process.pid}) still ran after 0.3s: killed",
        "worker processes stopped (not all cleanly)",
    ]


def test_the_stop_is_clean_when_every_process_exits_with_0(tmp_path: Path) -> None:
    readies = [tmp_path / "one", tmp_path / "two"]
    clean = Supervisor(on_sigterm("lambda *_: sys.exit(0)", readies[0]), [{}], stop_timeout_s=5)
    failing = Supervisor(on_sigterm("lambda *_: sys.exit(2)", readies[1]), [{}], stop_timeout_s=5)
    for supervisor, ready in ((clean, readies[0]), (failing, readies[1])):
        supervisor.start(supervisor.children[0])
        wait_for(ready)
    assert clean.stop(signal.SIGTERM) == 0
    assert failing.stop(signal.SIGTERM) == 1
    assert [s.children[0].process.returncode for s in (clean, failing) if s.children[0].process] == [0, 2]
