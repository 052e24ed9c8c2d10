"""Retry policy per task: how many attempts, how long to wait between them, which errors retry.

Waits use exponential backoff with full jitter: before attempt n+1 the job waits a uniformly random
time in [0, min(cap_s, base_s * factor ** (n - 1))], so many jobs failing together spread out
instead of retrying in lockstep. A `TransientError` carrying `retry_after_s` (an HTTP Retry-After)
waits exactly that long instead (at most MAX_RETRY_AFTER_S).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from arq_jobs._errors import PermanentError, TaskInputError, TransientError

MAX_RETRY_AFTER_S = 3600.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed attempt is retried and after how long.

    An error is permanent (the job fails at once) when it is a `PermanentError`, a `TaskInputError`
    or one of `fail_on`; it is retried when it is a `TransientError` (time limits included) or one of
    `retry_on`; anything else fails at once.
    """

    max_attempts: int = 3
    base_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 300.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    fail_on: tuple[type[BaseException], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_s < 0 or self.cap_s < 0 or self.factor < 1:
            raise ValueError("backoff needs base_s >= 0, cap_s >= 0 and factor >= 1")

    def is_transient(self, error: BaseException) -> bool:
        """Whether `error` is worth another attempt (attempts left aside)."""
        if isinstance(error, PermanentError | TaskInputError) or isinstance(error, self.fail_on):
            return False
        return isinstance(error, TransientError) or isinstance(error, self.retry_on)

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether the job gets another attempt after `attempt` failed with `error`."""
        return attempt < self.max_attempts and self.is_transient(error)

    def ceiling_s(self, attempt: int) -> float:
        """The longest backoff after failed attempt `attempt` (1-based)."""
        try:
            return float(min(self.cap_s, self.base_s * self.factor ** max(0, attempt - 1)))
        except OverflowError:  # a very late attempt: far past the cap
            return float(self.cap_s)

    def delay_s(self, attempt: int, error: BaseException, rng: random.Random | None = None) -> float:
        """How long to wait before the attempt after `attempt`."""
        retry_after = getattr(error, "retry_after_s", None)
        if isinstance(error, TransientError) and retry_after is not None:
            return float(min(MAX_RETRY_AFTER_S, max(0.0, retry_after)))
        return (rng or random).uniform(0.0, self.ceiling_s(attempt))


def qualified_name(kind: type[BaseException]) -> str:
    """How an exception class of a policy is shown: `httpx.TransportError`, or just `Exception` for
    builtins."""
    module = kind.__module__.split(".")[0]
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
