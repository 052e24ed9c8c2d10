from __future__ import annotations

import httpx
import pytest
from arq.connections import ArqRedis

from arq_jobs._config import Settings
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.progress import Progress
from workers.tasks.reports import Report, ReportInput, aggregate, generate_report, generate_rows, summarize

from .conftest import job_context


def test_aggregate_and_summarize_count_every_row() -> None:
    rows = [("north", 10.0), ("south", 5.0), ("north", 20.0), ("east", 1.0)]
    regions = aggregate(rows)
    assert {k: (v.count, v.total, v.mean) for k, v in regions.items()} == {
        "east": (1, 1.0, 1.0),
        "north": (2, 30.0, 15.0),
        "south": (1, 5.0, 5.0),
    }
    report = summarize("r1", rows, regions)
    assert (report.rows, report.total, report.mean) == (4, 36.0, 9.0)
    assert report.p50 == 7.5


def test_rows_are_reproducible_from_the_seed() -> None:
    assert generate_rows(50, seed=9) == generate_rows(50, seed=9)
    assert generate_rows(50, seed=9) != generate_rows(50, seed=10)


async def test_reports_each_step_and_returns_a_reference(
    arq_redis: ArqRedis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Progress] = []
    original = JobContext.progress

    async def spy(self: JobContext, step: int, total: int, message: str = "") -> Progress:
        progress = await original(self, step, total, message)
        seen.append(progress)
        return progress

    monkeypatch.setattr(JobContext, "progress", spy)
    # the job's record, as enqueue writes it (progress is written only to a job that has one)
    await arq_redis.hset(
        "unit:job:rep-1", mapping={"task": "generate_report", "queue": "q", "enqueued_at": 1}
    )
    async with httpx.AsyncClient() as http:
        ctx = job_context(arq_redis, settings, http, job_id="rep-1")
        result = await generate_report(ctx, ReportInput(rows=1000, seed=1, step_delay_s=0))

    assert [(p.step, p.total, p.percent) for p in seen] == [
        (0, 4, 0.0),
        (1, 4, 25.0),
        (2, 4, 50.0),
        (3, 4, 75.0),
        (4, 4, 100.0),
    ]
    assert seen[1].message == "generated 1000 rows"
    stored = await arq_redis.get("unit:report:rep-1")
    assert stored is not None
    report = Report.model_validate_json(stored)
    assert report.rows == 1000 and sum(r.count for r in report.regions.values()) == 1000
    assert (result.report_id, result.storage_key, result.rows, result.total) == (
        "rep-1",
        "unit:report:rep-1",
        1000,
        report.total,
    )
    assert await arq_redis.ttl("unit:report:rep-1") == settings.result_ttl_s
    last = await arq_redis.hget("unit:job:rep-1", "progress")
    assert last is not None and Progress.model_validate_json(last).percent == 100.0
    events = await arq_redis.xrange("unit:events:rep-1")
    assert [fields[b"event"] for _, fields in events] == [b"progress"] * 5
