"""The devserver's child processes: how each is started, and how a worker that exits is restarted
(`arq-jobs worker`'s Backoff: 1 s, doubling up to 30 s; back to 1 s once it had stayed up 60 s)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

from arq_jobs._cli.worker import Backoff, describe_exit

__all__ = ["Backoff", "Supervised", "describe_exit", "spawn"]


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A session of its own: Ctrl-C reaches only the devserver, which stops children in order.
    return subprocess.Popen(command, env=env, start_new_session=True)


@dataclass
class Supervised:
    """One child process: its command, its environment, and whether (how) it is restarted."""

    name: str  # "the API", "worker of queue default"
    command: list[str]
    env: dict[str, str]
    policy: Backoff | None = None  # None: its exit stops the devserver
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
