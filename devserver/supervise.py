"""The devserver's child processes: how each is started, and how a worker that exits is restarted
(1 s, doubling up to 30 s; back to 1 s once it had stayed up 60 s)."""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff before restarting a process that exited on its own."""

    first_s: float = 1
    max_s: float = 30
    stable_s: float = 60  # an uptime this long resets the backoff to `first_s`

    def next_attempt(self, attempt: int, uptime_s: float) -> int:
        """The restart attempt (1, 2, ...) after an exit, given the previous one and the uptime."""
        return 1 if uptime_s >= self.stable_s else attempt + 1

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait before restart attempt `attempt` (1-based)."""
        return float(min(self.max_s, self.first_s * 2 ** (attempt - 1)))


def describe_exit(returncode: int) -> str:
    """`exited with code 1` or `was killed by SIGKILL` (Popen gives a signal as -signum)."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"was killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"was killed by signal {-returncode}"


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A session of its own: Ctrl-C reaches only the devserver, which stops children in order.
    return subprocess.Popen(command, env=env, start_new_session=True)


@dataclass
class Supervised:
    """One child process: its command, its environment, and whether (how) it is restarted."""

    name: str  # "the API", "worker of queue default"
    command: list[str]
    env: dict[str, str]
    policy: RestartPolicy | None = None  # None: its exit stops the devserver
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    attempt: int = 0
    restart_at: float | None = None

    def start(self) -> None:
        self.process = spawn(self.command, self.env)
        self.started_at = time.monotonic()
        self.restart_at = None

    def exited(self) -> int | None:
        """The exit status when the process ended since the last check (None while it runs or
        when a restart is already pending)."""
        if self.process is None or self.restart_at is not None:
            return None
        return self.process.poll()

    def schedule_restart(self, now: float) -> float:
        """After an exit: when to start again; returns the delay in seconds."""
        assert self.policy is not None
        self.attempt = self.policy.next_attempt(self.attempt, now - self.started_at)
        delay = self.policy.delay_s(self.attempt)
        self.restart_at = now + delay
        return delay

    def restart_due(self, now: float) -> bool:
        return self.restart_at is not None and now >= self.restart_at
