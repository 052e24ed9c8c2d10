"""The sizes of a benchmark run: the defaults, and the smoke mode's tiny ones."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

WORKLOADS = ("drain", "sleep", "latency", "http", "http-batch", "polling", "memory", "scaling")
HTTP_RATES = (250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2500, 3000, 3500, 4000, 5000, 6000)


@dataclass(frozen=True)
class Options:
    runs: int = 3
    jobs: int = 20_000
    sleep_jobs: int = 5_000
    concurrencies: tuple[int, ...] = (32, 128)
    rate: float = 200.0
    duration_s: float = 20.0
    http_rates: tuple[int, ...] = HTTP_RATES
    http_step_s: float = 3.0
    http_refine: int = 2
    http_half_s: float = 10.0
    poll_jobs: int = 5_000
    poll_clients: int = 20
    poll_interval_s: float = 0.05
    poll_concurrency: int = 128
    batch_size: int = 100
    batch_s: float = 5.0
    batch_connections: int = 8
    batch_requests: int | None = None  # stop after this many batches (smoke: a few)
    memory_jobs: int = 3_000
    memory_settle_s: float = 5.0
    scaling_http_s: float = 5.0
    scaling_connections: int = 32
    smoke: bool = False
    max_wait_s: float | None = None

    @classmethod
    def smoke_sizes(cls) -> Options:
        """A few hundred jobs and seconds per workload: checks the harness works, measures nothing."""
        return cls(
            runs=1,
            jobs=200,
            sleep_jobs=200,
            duration_s=2.0,
            http_rates=(100, 200),
            http_step_s=1.0,
            http_half_s=1.0,
            poll_jobs=200,
            batch_s=2.0,
            batch_requests=5,
            memory_jobs=200,
            memory_settle_s=0.5,
            scaling_http_s=0.5,
            smoke=True,
        )

    def with_(self, **changes: Any) -> Options:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def timeout_s(self, jobs: int) -> float:
        """How long a run may take to finish `jobs` before it is failed (20 jobs/s, plus a minute)."""
        return self.max_wait_s if self.max_wait_s is not None else 60 + jobs / 20

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
