"""A task's limits shared by every worker: a rate (`"10/s"`) and a maximum running at once.

The rate is enforced as GCRA with no burst (a start at most every `period / count`): an external
service sees the jobs evenly spread, never a burst, and never more than `count` in any `period`.
Both are checked inside the claim script (`arq_jobs._worker.claims`), so a job over its limit is never leased:
it waits in its queue without counting an attempt (see `arq_jobs._limits.worker`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
RATE_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `count` starts per `period_s` seconds, evenly spaced."""

    count: int
    period_s: int

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """`"10/s"`, `"100/m"`, `"1000/h"`, `"5/d"`, or with a number of units: `"3/10s"`."""
        match = RATE_PATTERN.match(text)
        if match is None:
            raise ValueError(
                f"rate limit {text!r}: write it as <count>/<unit>, unit s, m, h or d (e.g. '10/s')"
            )
        count, units, unit = int(match[1]), int(match[2] or 1), match[3]
        if count < 1 or units < 1:
            raise ValueError(f"rate limit {text!r}: count and period must be positive")
        return cls(count, units * UNITS_S[unit])

    @property
    def interval_ms(self) -> float:
        """The time between two starts."""
        return self.period_s * 1000 / self.count

    def __str__(self) -> str:
        unit = (
            next(u for u, s in UNITS_S.items() if s == self.period_s)
            if self.period_s in UNITS_S.values()
            else None
        )
        return f"{self.count}/{unit}" if unit else f"{self.count}/{self.period_s}s"


@dataclass(frozen=True, slots=True)
class TaskLimits:
    """A task's rate limit and its maximum of attempts running at once (None: no limit)."""

    rate: RateLimit | None = None
    max_concurrency: int | None = None

    def __post_init__(self) -> None:
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")

    def __bool__(self) -> bool:
        return self.rate is not None or self.max_concurrency is not None
