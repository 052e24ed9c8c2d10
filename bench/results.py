"""One measured run of one workload on one system, and the throughput read off job records."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.systems import JobTiming


@dataclass
class RunResult:
    workload: str
    system: str
    run: int
    metrics: dict[str, float | None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Throughput:
    """Jobs per second from the first job's start to the last job's finish, as recorded, counting the
    jobs that ran (a job a system ended without running it — SAQ's sweep — counts in neither)."""

    jobs: int
    succeeded: int
    seconds: float
    ran: int
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def jobs_per_s(self) -> float | None:
        return self.ran / self.seconds if self.seconds > 0 else None


def failures(timings: Sequence[JobTiming]) -> dict[str, int]:
    """The jobs that did not succeed, by the reason their system recorded ("no record": none)."""
    return dict(Counter(t.error or "no record" for t in timings if not t.succeeded))


def throughput(timings: Sequence[JobTiming]) -> Throughput:
    ran = [t for t in timings if t.started_ms is not None and t.finished_ms is not None]
    starts = [t.started_ms for t in ran if t.started_ms is not None]
    ends = [t.finished_ms for t in ran if t.finished_ms is not None]
    seconds = (max(ends) - min(starts)) / 1000 if starts and ends else 0.0
    succeeded = sum(t.succeeded for t in timings)
    return Throughput(len(timings), succeeded, seconds, len(ran), failures(timings))
