"""`arq-jobs worker`: N processes of one worker pool with one command, supervised.

Each process is a real `arq` worker, started as users start one (`python -m arq workers.WorkerSettings`),
with the supervisor's environment, in a session of its own: a terminal's Ctrl-C reaches the supervisor
only, which passes it on once. The supervisor

- restarts a process that exits while it is not stopping, after a backoff (1 s, doubling up to 30 s;
  back to 1 s once the process had run a minute), and logs why (`worker process 2 (pid 4711) was killed
  by SIGKILL; restarting in 1s`);
- on SIGTERM, SIGINT or SIGHUP passes the signal on to every process (SIGHUP as SIGTERM), each of which
  lets its running jobs finish for JOBS_SHUTDOWN_GRACE_S; waits for them up to `--stop-timeout`, SIGKILLs
  any still running, and exits 0 when every one stopped cleanly (1 otherwise).

Which pool: TARGET names a pool's settings class (`workers.HighWorkerSettings`,
`myproject.worker.WorkerSettings`) or a module offering one class per queue by name (`workers`, the
default, through `arq_jobs.worker.pool_class`); `--queue Q` picks Q's class from such a module
(`WorkerSettings` for JOBS_QUEUE_NAME, `<Q>WorkerSettings` for the others), and with a class checks
that the class serves Q.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType, ModuleType
from typing import Annotated

import typer

from arq_jobs._cli.errors import CliError, ExitCode
from arq_jobs._cli.session import fail
from arq_jobs._config import Settings, load_settings, pool_class_name
from arq_jobs._logs import configure_logging
from arq_jobs._worker.context import SETTINGS_KEY
from arq_jobs._worker.settings import PoolSettings

DEFAULT_TARGET = "workers"  # the reference deployment's pools
STOP_SIGNALS = {signal.SIGTERM: signal.SIGTERM, signal.SIGINT: signal.SIGINT, signal.SIGHUP: signal.SIGTERM}
STOP_MARGIN_S = 5  # beyond JOBS_SHUTDOWN_GRACE_S: the worker's own shutdown after its jobs
POLL_S = 0.1

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pool:
    """The pool the processes run: `arq <target>` serving `queue`."""

    target: str
    queue: str
    metrics_port: int  # its JOBS_WORKER_METRICS_PORT; 0: off


def resolve_pool(target: str | None, queue: str | None, settings: Settings) -> Pool:
    """The pool named by TARGET and --queue (see the module's docstring); a CliError says what is wrong."""
    target = target or DEFAULT_TARGET
    module = import_module(target)
    if module is not None:
        if queue is None:
            queue = settings.queue_name
        elif queue not in settings.queues:
            raise CliError(
                f"no queue named {queue!r} is configured; the queues are {', '.join(settings.queues)}",
                ExitCode.INVALID_INPUT,
            )
        name = "WorkerSettings" if queue == settings.queue_name else pool_class_name(queue)
        target = f"{target}.{name}"
    else:
        module_name, _, name = target.rpartition(".")
        module = import_module(module_name) if module_name else None
        if module is None:
            raise CliError(f"cannot import {target!r}: name a module or module.Class", ExitCode.USAGE)
    try:
        found = getattr(module, name)
    except AttributeError as error:
        raise CliError(f"{target}: {error}", ExitCode.USAGE) from None
    pool = pool_of(found)
    if pool is None:
        raise CliError(
            f"{target} is not a worker pool's settings class (made by arq_jobs.worker's "
            "worker_settings() or pool_class())",
            ExitCode.USAGE,
        )
    if queue is not None and pool.queue_name != queue:
        raise CliError(f"{target} serves queue {pool.queue_name!r}, not {queue!r}", ExitCode.INVALID_INPUT)
    return Pool(target, pool.queue_name, pool.worker_metrics_port)


def import_module(name: str) -> ModuleType | None:
    """The module `name`, or None when there is no such module (any other import error is a CliError)."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # as the arq command does: `workers` from the current directory
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and (name == error.name or name.startswith(error.name + ".")):
            return None
        raise CliError(f"cannot import {name!r}: {error}", ExitCode.USAGE) from None
    except (ImportError, SyntaxError) as error:
        raise CliError(f"cannot import {name!r}: {type(error).__name__}: {error}", ExitCode.USAGE) from None


def pool_of(found: object) -> Settings | None:
    """The settings of the pool `found` runs, when it is a class made by arq_jobs.worker."""
    if not (isinstance(found, type) and issubclass(found, PoolSettings)):
        return None
    settings = getattr(found, "ctx", {}).get(SETTINGS_KEY)
    return settings if isinstance(settings, Settings) else None


def child_command(pool: Pool) -> list[str]:
    return [sys.executable, "-m", "arq", pool.target]


def child_envs(pool: Pool, processes: int, base: dict[str, str]) -> list[dict[str, str]]:
    """Each process's environment: the supervisor's; with metrics on and several processes, process i
    (0-based) serves them on JOBS_WORKER_METRICS_PORT + i (they share this host)."""
    if not pool.metrics_port or processes == 1:
        return [dict(base) for _ in range(processes)]
    return [{**base, "JOBS_WORKER_METRICS_PORT": str(pool.metrics_port + i)} for i in range(processes)]


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before starting a process that exited on its own again."""

    first_s: float = 1
    max_s: float = 30
    stable_s: float = 60  # a process that ran this long starts over at first_s

    def next_attempt(self, attempt: int, uptime_s: float) -> int:
        return 1 if uptime_s >= self.stable_s else attempt + 1

    def delay_s(self, attempt: int) -> float:
        return float(min(self.max_s, self.first_s * 2 ** (attempt - 1)))


def describe_exit(returncode: int) -> str:
    """`exited with code 1` or `was killed by SIGKILL` (Popen gives a signal as -signum)."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"was killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"was killed by signal {-returncode}"


@dataclass
class Child:
    number: int  # 1..N, kept across restarts
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    attempt: int = 0
    restart_at: float | None = None  # set while waiting to start again


@dataclass
class Supervisor:
    command: list[str]
    envs: list[dict[str, str]]
    stop_timeout_s: float
    backoff: Backoff = Backoff()
    children: list[Child] = field(init=False)
    stop_signal: signal.Signals | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.children = [Child(number, env) for number, env in enumerate(self.envs, start=1)]

    def run(self) -> int:
        """Start the processes, keep them running until a stop signal, stop them; the exit code."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self.on_signal)
        for child in self.children:
            if self.stop_signal is None:
                self.start(child)
        while self.stop_signal is None:
            self.watch(time.monotonic())
            time.sleep(POLL_S)
        return self.stop(self.stop_signal)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_signal is None:
            self.stop_signal = signal.Signals(signum)

    def start(self, child: Child) -> None:
        again = child.process is not None
        child.process = subprocess.Popen(self.command, env=child.env, start_new_session=True)
        child.started_at = time.monotonic()
        child.restart_at = None
        log.info(
            "worker process %d %s (pid %d)",
            child.number,
            "restarted" if again else "started",
            child.process.pid,
        )

    def watch(self, now: float) -> None:
        """Start again the processes whose backoff is over; schedule a restart for those that exited."""
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self.start(child)
                continue
            assert child.process is not None
            returncode = child.process.poll()
            if returncode is None:
                continue
            child.attempt = self.backoff.next_attempt(child.attempt, now - child.started_at)
            delay = self.backoff.delay_s(child.attempt)
            child.restart_at = now + delay
            log.warning(
                "worker process %d (pid %d) %s; restarting in %gs",
                child.number,
                child.process.pid,
                describe_exit(returncode),
                delay,
            )

    def stop(self, signum: signal.Signals) -> int:
        """Pass the stop on to every running process, wait for them (SIGKILL after the stop timeout);
        0 when each stopped with exit code 0."""
        running = [
            child
            for child in self.children
            if child.process is not None and child.restart_at is None and child.process.poll() is None
        ]
        passed = STOP_SIGNALS[signum]
        log.info(
            "%s: stopping %d worker processes (%s; running jobs may finish, at most %gs)",
            signum.name,
            len(running),
            passed.name,
            self.stop_timeout_s,
        )
        for child in running:
            assert child.process is not None
            child.process.send_signal(passed)
        deadline = time.monotonic() + self.stop_timeout_s
        clean = True
        for child in running:
            assert child.process is not None
            try:
                returncode = child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
                log.error(
                    "worker process %d (pid %d) still ran after %gs: killed",
                    child.number,
                    child.process.pid,
                    self.stop_timeout_s,
                )
                clean = False
                continue
            if returncode != 0:
                log.error(
                    "worker process %d (pid %d) %s while stopping",
                    child.number,
                    child.process.pid,
                    describe_exit(returncode),
                )
                clean = False
        log.info("worker processes stopped%s", "" if clean else " (not all cleanly)")
        return 0 if clean else 1


Target = Annotated[
    str | None,
    typer.Argument(
        help=f"A pool's settings class (workers.HighWorkerSettings) or a module with one per queue "
        f"(default: {DEFAULT_TARGET}).",
        show_default=False,
        metavar="TARGET",
    ),
]


def command(
    target: Target = None,
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue",
            help="Run the pool of this queue (default JOBS_QUEUE_NAME); with a class, check it serves it.",
        ),
    ] = None,
    processes: Annotated[
        int, typer.Option("--processes", min=1, help="How many worker processes to run.")
    ] = 1,
    stop_timeout: Annotated[
        float | None,
        typer.Option(
            "--stop-timeout",
            min=0,
            help=f"On SIGTERM or Ctrl-C, how long to wait for the processes before SIGKILL "
            f"(default: JOBS_SHUTDOWN_GRACE_S + {STOP_MARGIN_S}).",
            metavar="S",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run N processes of one worker pool (each `python -m arq <pool>`), restart any that exits, and
    pass SIGTERM / Ctrl-C on to all of them."""
    try:
        settings = load_settings()
        pool = resolve_pool(target, queue, settings)
    except SystemExit as stop:  # the core's one-line "invalid settings: ..."
        raise fail(str(stop.code), ExitCode.SETTINGS) from None
    except CliError as error:
        raise fail(error.message, error.code) from None
    configure_logging(settings.log_level, settings.log_format)
    supervisor = Supervisor(
        child_command(pool),
        child_envs(pool, processes, dict(os.environ)),
        settings.shutdown_grace_s + STOP_MARGIN_S if stop_timeout is None else stop_timeout,
    )
    log.info(
        "running %d worker process%s of queue %s: python -m arq %s",
        processes,
        "" if processes == 1 else "es",
        pool.queue,
        pool.target,
    )
    raise typer.Exit(supervisor.run())
