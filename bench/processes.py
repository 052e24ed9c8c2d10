"""Child processes of a benchmark run (workers, APIs, load generators): started with asyncio, output
to a log file, always stopped by the code that started them; their peak memory read from /proc.

Each child gets its own session, so a Ctrl-C in the terminal reaches only the harness, which then
stops its children itself (SIGTERM, then SIGKILL to the whole group): none is left behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

ROOT = Path(__file__).resolve().parent.parent
ARQ_CLI = str(Path(sys.executable).with_name("arq"))

_running: set[int] = set()


def peak_rss_mb(pid: int) -> float | None:
    """A process's peak resident set size so far (VmHWM), in MiB; its current RSS where /proc has no
    VmHWM; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.Error:
        return None


def _open_log(path: Path) -> IO[bytes]:
    return path.open("ab")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Child:
    """A running child process with its output in `log_path`."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    stdout: bytes = field(default=b"")

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def descendants(self) -> list[int]:
        """Its running children's pids, recursively (taskiq's CLI runs its worker in a child)."""
        try:
            return [child.pid for child in psutil.Process(self.pid).children(recursive=True)]
        except psutil.Error:
            return []

    def peak_rss_mb(self) -> float | None:
        """Its peak RSS plus each running descendant's (one process for ours and ARQ)."""
        own = peak_rss_mb(self.pid)
        if own is None:
            return None
        return own + sum(peak_rss_mb(pid) or 0.0 for pid in self.descendants())

    def cpu_s(self) -> float | None:
        """CPU time (user + system) the process and its running descendants have used so far; None
        once it is gone."""
        total = 0.0
        for pid in [self.pid, *self.descendants()]:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                if pid == self.pid:
                    return None
                continue
            total += float(times.user + times.system)
        return total

    def cpu_by_process(self) -> list[float]:
        """CPU seconds (user + system) of the process and of each running descendant, in that order."""
        found = []
        for pid in [self.pid, *self.descendants()]:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            found.append(round(float(times.user + times.system), 2))
        return found

    def log_tail(self) -> str:
        return _tail(self.log_path)

    def check_alive(self) -> None:
        if not self.running:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}; its log ends:\n{self.log_tail()}"
            )

    async def stop(self, timeout_s: float = 20) -> int:
        """SIGTERM; SIGKILL to its process group when it has not exited after `timeout_s`."""
        try:
            if self.running:
                self.process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(self.process.wait(), timeout_s)
                except TimeoutError:
                    kill_group(self.pid)
                    await self.process.wait()
        finally:
            _running.discard(self.pid)
        return self.process.returncode or 0


def track(pid: int) -> None:
    """Count a child started elsewhere among those `kill_leftovers` stops."""
    _running.add(pid)


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_leftovers() -> None:
    """SIGKILL every child still running (last resort when the harness is stopped abruptly)."""
    for pid in list(_running):
        kill_group(pid)
        _running.discard(pid)


async def start(
    name: str,
    command: Sequence[str],
    env: dict[str, str],
    log_dir: Path,
    *,
    capture_stdout: bool = False,
) -> Child:
    """Start `command` in the repository root; stdout (unless captured) and stderr go to
    `<log_dir>/<name>.log`."""
    log_path = log_dir / f"{name}.log"
    log = _open_log(log_path)
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else log,
            stderr=log,
            start_new_session=True,
        )
    finally:
        log.close()
    _running.add(process.pid)
    return Child(name, process, log_path)


def python_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def arq_command(settings: str, *args: str) -> list[str]:
    return [ARQ_CLI, settings, *args]
