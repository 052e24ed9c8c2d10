"""The devserver's restart policy: backoff 1 s doubling to 30 s, reset after 60 s up."""

from __future__ import annotations

import signal
import sys

import pytest

from devserver.supervise import Backoff, Supervised, describe_exit


def test_delay_doubles_from_one_second_up_to_thirty() -> None:
    policy = Backoff()
    assert [policy.delay_s(attempt) for attempt in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_quick_exits_raise_the_attempt_and_a_long_uptime_resets_it() -> None:
    policy = Backoff()
    assert policy.next_attempt(0, uptime_s=0.5) == 1
    assert policy.next_attempt(3, uptime_s=59.9) == 4
    assert policy.next_attempt(6, uptime_s=60) == 1
    assert policy.next_attempt(6, uptime_s=3600) == 1


def test_custom_policy() -> None:
    policy = Backoff(first_s=0.5, max_s=3, stable_s=10)
    assert [policy.delay_s(attempt) for attempt in range(1, 6)] == [0.5, 1, 2, 3, 3]
    assert (policy.next_attempt(4, uptime_s=9), policy.next_attempt(4, uptime_s=10)) == (5, 1)


@pytest.mark.parametrize(
    ("returncode", "text"),
    [
        (0, "exited with code 0"),
        (1, "exited with code 1"),
        (-signal.SIGKILL, "was killed by SIGKILL"),
        (-signal.SIGSEGV, "was killed by SIGSEGV"),
        (-200, "was killed by signal 200"),
    ],
)
def test_describe_exit(returncode: int, text: str) -> None:
    assert describe_exit(returncode) == text


def test_supervised_reports_an_exit_once_and_schedules_the_restart() -> None:
    child = Supervised("worker of queue q", [sys.executable, "-c", "raise SystemExit(3)"], {}, Backoff())
    child.start()
    assert child.process is not None
    child.process.wait(timeout=10)
    started_at = child.started_at

    assert child.exited() == 3
    assert child.schedule_restart(now=started_at + 5) == 1
    assert child.exited() is None  # reported once: a restart is pending
    assert (child.restart_due(started_at + 5.9), child.restart_due(started_at + 6)) == (False, True)

    child.start()  # a second quick exit doubles the delay
    assert child.process is not None
    child.process.wait(timeout=10)
    assert (child.exited(), child.schedule_restart(now=child.started_at + 1)) == (3, 2)
    assert child.attempt == 2
