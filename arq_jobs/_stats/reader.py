"""Statistics read back over a window: a series of points (one per `resolution_s`) and a table per
task, summed from the minute or hour hashes the scripts wrote (`includes/stats.lua`).

The series always has `Window.points` points, oldest first, the last one the interval now running;
an interval with nothing written reads as zeros (depth: null). Counts are exact: each is the sum of
what the ending scripts added. Percentiles come from the histograms (`arq_jobs._stats.histogram`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from arq_jobs._clock import ms_to_datetime
from arq_jobs._config import Settings
from arq_jobs._keys import Keys
from arq_jobs._stats.histogram import RUN, WAIT, percentile
from arq_jobs._stats.window import DEPTH_SCOPE, JOBS_SCOPE, Window

# the counters of a `jobs:<queue>:<task>` hash (fields written by includes/transition.lua)
COUNTERS = ("succeeded", "failed", "retried", "cancelled", "dead_lettered")
# the sums of a `depth:<queue>` hash (one per sample; SAMPLES counts the samples)
DEPTHS = ("pending", "scheduled", "running", "retrying")
SAMPLES = "samples"


class StatsPoint(BaseModel):
    """One interval of the series."""

    t: datetime = Field(description="Start of the interval (UTC); it lasts `resolution_s`.")
    succeeded: int = Field(description="Jobs that succeeded in the interval.")
    failed: int = Field(description="Jobs that failed for good (after their last attempt, or at once).")
    retried: int = Field(description="Attempts that failed and left their job waiting for another one.")
    cancelled: int = Field(description="Jobs cancelled (waiting or running).")
    dead_lettered: int = Field(description="Jobs that went to the dead-letter store.")
    run_p50_ms: int | None = Field(description="Median run time of the attempts that ended (bucket bound).")
    run_p95_ms: int | None
    run_p99_ms: int | None
    wait_p50_ms: int | None = Field(description="Median wait (due → start) of those attempts (bucket bound).")
    wait_p95_ms: int | None
    wait_p99_ms: int | None
    pending: float | None = Field(
        description="Average sampled depth: jobs due and waiting for a worker (null: no sample, or a "
        "task's statistics, which have no depth)."
    )
    scheduled: float | None
    running: float | None
    retrying: float | None


class TaskStats(BaseModel):
    """One task over the whole window."""

    task: str
    count: int = Field(description="Jobs that ran to an end: succeeded + failed.")
    failure_rate: float | None = Field(description="failed / count (null when count is 0).")
    run_p50_ms: int | None
    run_p95_ms: int | None
    wait_p95_ms: int | None
    succeeded: int
    failed: int
    retried: int
    cancelled: int
    dead_lettered: int
    run_p99_ms: int | None
    wait_p50_ms: int | None
    wait_p99_ms: int | None


class Stats(BaseModel):
    """What `GET /stats` answers."""

    window: Window
    resolution_s: int = Field(description="Length of one point of `series`.")
    task: str | None = Field(description="The task the series is limited to, if any.")
    queue: str | None = Field(description="The queue the series and the table are limited to, if any.")
    series: list[StatsPoint] = Field(description="One point per `resolution_s`, oldest first.")
    tasks: list[TaskStats] = Field(description="Each task with jobs in the window, busiest first.")


def failure_rate(succeeded: int, failed: int) -> float | None:
    """The share of the jobs that ran to an end that failed; None when none did."""
    ended = succeeded + failed
    return failed / ended if ended else None


@dataclass
class Tally:
    """Counters and histograms summed over hashes."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    run: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    wait: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, fields: Mapping[str, int]) -> None:
        for name, value in fields.items():
            kind, _, label = name.partition(":")
            if kind == RUN and label:
                self.run[label] += value
            elif kind == WAIT and label:
                self.wait[label] += value
            elif name in self.counts:
                self.counts[name] += value

    def task_row(self, task: str) -> TaskStats:
        rate = failure_rate(self.counts["succeeded"], self.counts["failed"])
        return TaskStats(
            task=task,
            count=self.counts["succeeded"] + self.counts["failed"],
            failure_rate=None if rate is None else round(rate, 4),
            run_p50_ms=percentile(self.run, 50),
            run_p95_ms=percentile(self.run, 95),
            wait_p95_ms=percentile(self.wait, 95),
            run_p99_ms=percentile(self.run, 99),
            wait_p50_ms=percentile(self.wait, 50),
            wait_p99_ms=percentile(self.wait, 99),
            **self.counts,
        )


@dataclass
class Depth:
    """Depth samples of one interval, per queue."""

    queues: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, queue: str, fields: Mapping[str, int]) -> None:
        summed = self.queues.setdefault(queue, dict.fromkeys((SAMPLES, *DEPTHS), 0))
        for name in summed:
            summed[name] += fields.get(name, 0)

    def averages(self) -> dict[str, float | None]:
        """Each queue's average depth (its sums over its samples), added up over the queues; null
        when no queue was sampled."""
        sampled = [summed for summed in self.queues.values() if summed[SAMPLES]]
        if not sampled:
            return dict.fromkeys(DEPTHS)
        return {name: round(sum(q[name] / q[SAMPLES] for q in sampled), 1) for name in DEPTHS}


def _ints(raw: Mapping[bytes, bytes]) -> dict[str, int]:
    return {name.decode(): int(value) for name, value in raw.items()}


async def read_stats(
    redis: Redis,
    settings: Settings,
    window: Window,
    now_ms: int,
    *,
    queues: Sequence[str],
    task: str | None = None,
    queue: str | None = None,
    known: Mapping[tuple[str, str], int] | None = None,
) -> Stats:
    """The statistics of `window` up to `now_ms`, of one task and/or queue if given; `queues` are
    the queues whose depth is summed when no queue is given; `known`: `scopes()`, if read already."""
    keys = Keys(settings.key_prefix)
    resolution = window.resolution_s
    unit = window.unit
    last = now_ms // 1000 - now_ms // 1000 % resolution
    first = last - (window.points - 1) * resolution
    starts = range(first, last + resolution, unit.seconds)
    if known is None:
        known = await scopes(redis, keys)
    chosen = [
        (q, t)
        for (q, t), noted_ms in sorted(known.items())
        if noted_ms >= first * 1000 and (task is None or t == task) and (queue is None or q == queue)
    ]
    depth_queues = [] if task is not None else [queue] if queue is not None else list(queues)
    async with redis.pipeline(transaction=False) as pipe:
        for start in starts:
            for pair in chosen:
                pipe.hgetall(keys.stats(unit.name, start, f"{JOBS_SCOPE}{pair[0]}:{pair[1]}"))
            for name in depth_queues:
                pipe.hgetall(keys.stats(unit.name, start, f"{DEPTH_SCOPE}{name}"))
        replies = iter(await pipe.execute())
    points = [Tally() for _ in range(window.points)]
    depths = [Depth() for _ in range(window.points)]
    per_task: dict[str, Tally] = defaultdict(Tally)
    for start in starts:
        at = (start - first) // resolution
        for _queue, pair_task in chosen:
            fields = _ints(next(replies))
            points[at].add(fields)
            per_task[pair_task].add(fields)
        for name in depth_queues:
            depths[at].add(name, _ints(next(replies)))
    series = [
        _point(first + i * resolution, tally, depth)
        for i, (tally, depth) in enumerate(zip(points, depths, strict=True))
    ]
    rows = [tally.task_row(name) for name, tally in per_task.items()]
    rows = [row for row in rows if row.count or row.retried or row.cancelled]
    rows.sort(key=lambda row: (-(row.count + row.retried + row.cancelled), row.task))
    return Stats(window=window, resolution_s=resolution, task=task, queue=queue, series=series, tasks=rows)


def _point(start_s: int, tally: Tally, depth: Depth) -> StatsPoint:
    at = ms_to_datetime(start_s * 1000)
    assert at is not None
    return StatsPoint(
        t=at,
        run_p50_ms=percentile(tally.run, 50),
        run_p95_ms=percentile(tally.run, 95),
        run_p99_ms=percentile(tally.run, 99),
        wait_p50_ms=percentile(tally.wait, 50),
        wait_p95_ms=percentile(tally.wait, 95),
        wait_p99_ms=percentile(tally.wait, 99),
        **tally.counts,
        **depth.averages(),
    )


async def scopes(redis: Redis, keys: Keys) -> dict[tuple[str, str], int]:
    """The (queue, task) pairs with statistics, each with when it was last noted (ms)."""
    found = {}
    for member, score in await redis.zrange(keys.stats_scopes(), 0, -1, withscores=True):
        queue, _, task = member.decode().partition(":")  # a queue name has no ':'
        found[(queue, task)] = int(score)
    return found
