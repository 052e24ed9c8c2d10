"""Reports: a multi-step job that builds a sales report from generated rows and stores it in Redis."""

from __future__ import annotations

import asyncio
import random
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from arq_jobs import JobContext, TaskInput, task

REGIONS = ("north", "south", "east", "west", "central")
STEPS = 4


class ReportInput(TaskInput):
    rows: int = Field(default=10_000, ge=1, le=500_000, description="How many sales rows to generate.")
    seed: int = Field(default=0, description="Seed of the generated rows (same seed, same report).")
    step_delay_s: float = Field(default=0.2, ge=0, le=10, description="Pause between steps.")


class RegionTotals(BaseModel):
    count: int
    total: float
    mean: float


class Report(BaseModel):
    """The stored report."""

    report_id: str
    rows: int
    total: float
    mean: float
    p50: float
    p95: float
    regions: dict[str, RegionTotals]
    generated_at: datetime


class ReportResult(BaseModel):
    """A reference to the stored report, not the report itself."""

    report_id: str
    storage_key: str
    rows: int
    total: float
    expires_at: datetime


Row = tuple[str, float]


def generate_rows(count: int, seed: int) -> list[Row]:
    rng = random.Random(seed)
    return [(rng.choice(REGIONS), round(rng.lognormvariate(3, 1), 2)) for _ in range(count)]


def aggregate(rows: list[Row]) -> dict[str, RegionTotals]:
    counts: dict[str, int] = defaultdict(int)
    totals: dict[str, float] = defaultdict(float)
    for region, amount in rows:
        counts[region] += 1
        totals[region] += amount
    return {
        region: RegionTotals(
            count=counts[region],
            total=round(totals[region], 2),
            mean=round(totals[region] / counts[region], 2),
        )
        for region in sorted(counts)
    }


def summarize(report_id: str, rows: list[Row], regions: dict[str, RegionTotals]) -> Report:
    amounts = sorted(amount for _, amount in rows)
    cuts = statistics.quantiles(amounts, n=20, method="inclusive") if len(amounts) > 1 else amounts * 19
    total = round(sum(amounts), 2)
    return Report(
        report_id=report_id,
        rows=len(rows),
        total=total,
        mean=round(total / len(rows), 2),
        p50=round(cuts[9], 2),
        p95=round(cuts[18], 2),
        regions=regions,
        generated_at=datetime.now(UTC),
    )


@task(timeout_s=120)
async def generate_report(ctx: JobContext, data: ReportInput) -> ReportResult:
    """Generate sales rows, aggregate them by region, and store the report; reports progress."""
    await ctx.progress(0, STEPS, "starting")
    rows = await asyncio.to_thread(generate_rows, data.rows, data.seed)
    await ctx.progress(1, STEPS, f"generated {len(rows)} rows")
    await asyncio.sleep(data.step_delay_s)

    regions = await asyncio.to_thread(aggregate, rows)
    await ctx.progress(2, STEPS, f"aggregated {len(regions)} regions")
    await asyncio.sleep(data.step_delay_s)

    report = await asyncio.to_thread(summarize, ctx.job_id, rows, regions)
    await ctx.progress(3, STEPS, "computed totals and percentiles")
    await asyncio.sleep(data.step_delay_s)

    key = ctx.keys.report(ctx.job_id)
    ttl_s = ctx.resources.settings.result_ttl_s
    await ctx.redis.set(key, report.model_dump_json(), ex=ttl_s)
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl_s)
    await ctx.progress(STEPS, STEPS, "report stored")
    return ReportResult(
        report_id=ctx.job_id,
        storage_key=key,
        rows=report.rows,
        total=report.total,
        expires_at=expires_at,
    )
