"""The dashboard's schedules page over the ASGI app and fakeredis: each schedule's cron, timezone,
queue, whether it is enabled, its next tick, and the job its last tick made with that job's state;
and a tick's job page linking back to it. No worker runs here (its scheduler would fire the ticks):
ticks are fired as a worker fires them, with `arq_jobs._schedules.views.fire`."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from arq.connections import ArqRedis

from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._dashboard.formatting import iso
from arq_jobs._keys import Keys
from arq_jobs._schedules.cron import Cron
from arq_jobs._schedules.views import fire, tick_job_id
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, TaskRegistry, task
from tests.integration.tasks.scheduled import record_tick
from tests.shipped import registry as shipped

from .conftest import make_settings
from .test_dashboard_pages import HTMX, dashboard_client


class Cleanup(TaskInput):
    older_than_days: int


@task(queue="low", schedule=Cron("30 3 * * *", timezone="Europe/Paris", input={"older_than_days": 30}, name="nightly_cleanup"))  # fmt: skip
async def cleanup(ctx: JobContext, data: Cleanup) -> int:
    """Delete old exports."""
    return data.older_than_days


REGISTRY = TaskRegistry([*shipped, cleanup, record_tick])


@pytest.fixture
def registry() -> TaskRegistry:
    return REGISTRY


@pytest.fixture
def settings() -> Settings:
    return make_settings(disabled_schedules=("every_second",))


def row(html: str, name: str) -> list[str]:
    """The cells of a schedule's row, tags stripped."""
    found = re.search(rf'<tr id="schedule-{name}" data-schedule="{name}"[^>]*>(.*?)</tr>', html, re.S)
    assert found is not None, name
    cells = re.findall(r"<td>(.*?)</td>", found.group(1), re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip() for cell in cells]


async def test_schedules_page_lists_every_schedule_with_its_next_run(client: httpx.AsyncClient) -> None:
    cron = REGISTRY.schedules[0].cron
    before = cron.next_after(datetime.now(UTC))
    page = await client.get("/dashboard/schedules")
    after = cron.next_after(datetime.now(UTC))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<a href="/dashboard/schedules" aria-current="page">Schedules</a>' in html
    assert re.findall(r'<tr id="schedule-([^"]+)"', html) == ["nightly_cleanup", "every_second"]

    nightly = row(html, "nightly_cleanup")
    assert nightly[:6] == ["nightly_cleanup", "cleanup", "30 3 * * *", "Europe/Paris", "low", "enabled"]
    assert nightly[6].endswith(iso(before)) or nightly[6].endswith(iso(after))
    assert re.match(r"in \d+ (s|min|h) \d{4}-", nightly[6]), nightly[6]
    assert nightly[7:] == ["never", "—", "—"]
    assert '<a href="/dashboard/queues/low">low</a>' in html
    assert '<span class="badge badge-enabled">enabled</span>' in html

    assert row(html, "every_second") == [
        "every_second",
        "record_tick",
        "* * * * * *",
        "UTC",
        "default",
        "disabled",
        "—",
        "never",
        "—",
        "—",
    ]
    assert '<tr id="schedule-every_second" data-schedule="every_second" class="schedule-disabled">' in html
    assert '<div id="live" class="region" data-region data-refresh' in html  # refreshes like the others


async def test_last_run_links_its_job_with_its_state_until_the_record_expires(
    client: httpx.AsyncClient, job_client: JobClient, arq_redis: ArqRedis
) -> None:
    schedule = REGISTRY.schedules[0]
    tick = datetime(2026, 11, 30, 2, 30, tzinfo=UTC)
    job = await fire(job_client, schedule, tick)
    assert job.job_id == tick_job_id("nightly_cleanup", 1796005800000, "unit")

    html = (await client.get("/dashboard/schedules")).text
    cells = row(html, "nightly_cleanup")
    assert cells[8:] == [job.job_id, "pending"]
    assert cells[7].endswith("ago")
    assert f'<time datetime="{iso(tick)}" title="{iso(tick)}">' in html
    assert f'<a href="/dashboard/jobs/{job.job_id}"><code>{job.job_id}</code></a>' in html
    assert '<span class="badge badge-pending">pending</span>' in html

    job_page = (await client.get(f"/dashboard/jobs/{job.job_id}")).text
    assert (
        '<dt>Schedule</dt><dd><a href="/dashboard/schedules#schedule-nightly_cleanup">nightly_cleanup</a></dd>'
        in job_page
    )

    await arq_redis.delete(Keys("unit").record(job.job_id))
    html = (await client.get("/dashboard/schedules")).text
    assert row(html, "nightly_cleanup")[8:] == [job.job_id, "expired"]
    assert f'href="/dashboard/jobs/{job.job_id}"' not in html  # no link to a 404


async def test_htmx_refresh_of_the_schedules_page_gets_only_its_table(client: httpx.AsyncClient) -> None:
    fragment = await client.get("/dashboard/schedules", headers=HTMX)
    assert fragment.status_code == 200
    assert fragment.text.startswith(
        '<div id="live" class="region" data-region data-refresh hx-get="/dashboard/schedules"'
    )
    assert "<html" not in fragment.text and 'data-schedule="nightly_cleanup"' in fragment.text


async def test_without_schedules_the_page_says_how_to_declare_one(arq_redis: ArqRedis) -> None:
    async with dashboard_client(arq_redis) as client:  # the shipped tasks declare none
        html = (await client.get("/dashboard/schedules")).text
    assert "data-schedule=" not in html
    assert (
        'No task declares a schedule. Give one with <code>@task(schedule=Cron("0 3 * * *"))</code>.' in html
    )
