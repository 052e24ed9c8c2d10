"""The dashboard's statistics over the ASGI app and fakeredis: the overview's and a queue's charts over
a chosen window (only the 15-minute one refreshing with the page), the per-task table, and the task
page (charts, failures by error type from real dead letters, limits, schedules, retry policy)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import httpx
import pytest
from arq.connections import ArqRedis

from arq_jobs._client import JobClient
from arq_jobs._clock import now_ms
from arq_jobs._config import Settings
from arq_jobs._errors import PermanentError
from arq_jobs._keys import Keys
from arq_jobs._schedules.cron import Cron
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskRegistry, task
from arq_jobs._tasks.retry import RetryPolicy
from arq_jobs._worker_registry import WorkerBeat, WorkerRegistry, WorkerTotals
from tests.shipped import registry as shipped
from workers.tasks.noop import NoopInput, noop

from .conftest import RunWorker
from .test_registry import In

HTMX = {"HX-Request": "true"}


class Refused(PermanentError):
    """A second error type for the failures table."""


@task(
    retry=RetryPolicy(
        max_attempts=4, base_s=0.5, factor=3, cap_s=60, retry_on=(TimeoutError,), fail_on=(KeyError,)
    ),
    rate_limit="5/s",
    max_concurrency=2,
    timeout_s=30,
    schedule=Cron("0 3 * * *", name="nightly_refusal", input={"n": 0}),
)
async def refuse(ctx: JobContext, data: In) -> None:
    """Fail for good, with one of two errors."""
    if data.n % 2:
        raise Refused(f"odd {data.n}")
    raise PermanentError(f"even {data.n}")


REGISTRY = TaskRegistry([*shipped, refuse])


@pytest.fixture
def registry() -> TaskRegistry:
    return REGISTRY


class Written:
    """Statistics written into fakeredis as the scripts lay them out (includes/stats.lua)."""

    def __init__(self, redis: ArqRedis, settings: Settings) -> None:
        self.redis = redis
        self.keys = Keys(settings.key_prefix)
        self.now_s = now_ms() // 1000
        self.minute = self.now_s - self.now_s % 60
        self.hour = self.now_s - self.now_s % 3600

    async def jobs(self, queue: str, task: str, minutes_ago: int = 0, **fields: int) -> None:
        minute = self.minute - 60 * minutes_ago
        hour = minute - minute % 3600
        for unit, start in (("m", minute), ("h", hour)):
            await self.redis.hincrby(self.keys.stats(unit, start, f"jobs:{queue}:{task}"), "succeeded", 0)
            for name, value in fields.items():
                await self.redis.hincrby(
                    self.keys.stats(unit, start, f"jobs:{queue}:{task}"), name.replace("_", ":"), value
                )
        await self.redis.zadd(self.keys.stats_scopes(), {f"{queue}:{task}": minute * 1000})

    async def depth(self, queue: str, minutes_ago: int = 0, **sums: int) -> None:
        minute = self.minute - 60 * minutes_ago
        await self.redis.hset(self.keys.stats("m", minute, f"depth:{queue}"), mapping=sums)


@pytest.fixture
async def written(arq_redis: ArqRedis, settings: Settings) -> Written:
    return Written(arq_redis, settings)


def chart(html: str, kind: str) -> str:
    """The first `<svg data-chart=kind>` of a page."""
    found = re.search(rf'<svg [^>]*data-chart="{kind}".*?</svg>', html, re.S)
    assert found, f"no {kind} chart"
    return found.group(0)


def point_titles(svg: str) -> list[str]:
    return re.findall(r'<g data-point="\d+" class="point"><title>([^<]*)</title>', svg)


def totals(svg: str) -> tuple[int, int]:
    """Succeeded and failed summed over a throughput chart's titles."""
    found = [re.search(r"· (\d+) succeeded · (\d+) failed", t) for t in point_titles(svg)]
    return sum(int(m.group(1)) for m in found if m), sum(int(m.group(2)) for m in found if m)


class Region(HTMLParser):
    """The charts inside and outside the page's live region (the part htmx refreshes)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.depth = 0  # of <div>s, inside the region
        self.inside: list[str] = []
        self.outside: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "div" and (self.depth or found.get("id") == "live"):
            self.depth += 1
        if tag == "svg":
            (self.inside if self.depth else self.outside).append(found["data-chart"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self.depth:
            self.depth -= 1


async def test_overview_charts_the_last_15_minutes_and_lists_tasks(
    client: httpx.AsyncClient, written: Written
) -> None:
    await written.jobs("default", "noop", succeeded=40, failed=2, run_10=30, run_250=12, wait_5=42)
    await written.jobs("default", "noop", minutes_ago=3, succeeded=5, run_10=5, wait_5=5)
    await written.jobs("default", "refuse", failed=3, retried=1, run_1=3, wait_2500=3)
    await written.depth("default", samples=2, pending=6, scheduled=2, running=4, retrying=0)
    html = (await client.get("/dashboard/")).text

    throughput = chart(html, "throughput")
    assert 'data-points="15"' in throughput
    titles = point_titles(throughput)
    assert len(titles) == 15
    assert titles[-1].endswith("· 40 succeeded · 5 failed · so far")
    assert re.search(r"· 5 succeeded · 0 failed$", titles[-4])
    depth = point_titles(chart(html, "depth"))
    assert depth[-1].endswith("· pending 3 · scheduled 1 · running 2 · retrying 0 · so far")
    assert "pending no sample" in depth[0]

    assert '<a href="/dashboard/?window=15m" data-window="15m" aria-current="true">15 min</a>' in html
    assert html.count('aria-current="true"') == 1
    # the table: busiest first, names linked to the task page
    rows = re.findall(r'<tr data-task="([^"]+)">', html)
    assert rows == ["noop", "refuse"]
    noop_row = re.search(r'<tr data-task="noop">.*?</tr>', html, re.S)
    assert noop_row
    cells = re.findall(r"<td[^>]*>(.*?)</td>", noop_row.group(0), re.S)
    assert cells == [
        '<a href="/dashboard/tasks/noop">noop</a>',
        "47",
        "4.3 %",
        "10 ms",
        "250 ms",
        "5 ms",
        "0",
        "0",
    ]


async def test_the_15_minute_charts_refresh_with_the_page_and_longer_windows_do_not(
    client: httpx.AsyncClient, written: Written
) -> None:
    await written.jobs("default", "noop", succeeded=1)
    page = (await client.get("/dashboard/")).text
    assert Region(page).inside == ["throughput", "depth"]  # inside the region that refreshes
    fragment = (await client.get("/dashboard/", headers=HTMX)).text
    assert fragment.lstrip().startswith('<div id="live"')
    assert 'data-chart="throughput" data-points="15"' in fragment

    hour = (await client.get("/dashboard/?window=1h")).text
    assert 'data-chart="throughput" data-points="60"' in hour
    assert (Region(hour).inside, Region(hour).outside) == ([], ["throughput", "depth"])  # drawn once
    assert '<a href="/dashboard/?window=1h" data-window="1h" aria-current="true">1 h</a>' in hour
    assert "drawn at page load" in hour
    refreshed = (await client.get("/dashboard/?window=1h", headers=HTMX)).text
    assert "data-chart" not in refreshed and 'data-count="pending"' in refreshed


@pytest.mark.parametrize(("window", "count"), [("24h", 24), ("7d", 168), ("30d", 120)])
async def test_longer_windows_read_the_hourly_statistics(
    client: httpx.AsyncClient, written: Written, window: str, count: int
) -> None:
    await written.jobs("default", "noop", succeeded=7, failed=1)
    html = (await client.get(f"/dashboard/?window={window}")).text
    throughput = chart(html, "throughput")
    assert f'data-points="{count}"' in throughput and len(point_titles(throughput)) == count
    assert totals(throughput) == (7, 1)
    assert "jobs per 6 h" in throughput if window == "30d" else "jobs per hour" in throughput


async def test_an_unknown_window_is_a_readable_422_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/dashboard/?window=2w")
    assert page.status_code == 422 and "query.window" in page.text


async def test_queue_page_charts_its_depth_and_wait_p95(client: httpx.AsyncClient, written: Written) -> None:
    await written.jobs("default", "noop", succeeded=4, wait_250=4, run_1=4)
    await written.jobs("high", "noop", succeeded=9, wait_30000=9, run_1=9)
    await written.depth("default", samples=1, pending=3, scheduled=0, running=1, retrying=2)
    await written.depth("high", samples=1, pending=50, scheduled=0, running=0, retrying=0)
    html = (await client.get("/dashboard/queues/default")).text
    depth = chart(html, "depth")
    assert 'data-points="60"' in depth  # the queue page's default window: 1 h
    assert point_titles(depth)[-1].endswith("pending 3 · scheduled 0 · running 1 · retrying 2 · so far")
    wait = point_titles(chart(html, "wait-time"))
    assert len(wait) == 60 and wait[-1].endswith("· p95 250 ms · so far")  # this queue's only
    assert '<a href="/dashboard/queues/default?window=1h" data-window="1h" aria-current="true">' in html
    assert '<a href="/dashboard/tasks/noop">noop</a>' in html  # the queue's tasks
    assert (Region(html).inside, Region(html).outside) == ([], ["depth", "wait-time"])
    assert "data-chart" not in (await client.get("/dashboard/queues/default", headers=HTMX)).text

    live = await client.get("/dashboard/queues/default?window=15m&state=pending", headers=HTMX)
    assert 'data-chart="depth" data-points="15"' in live.text
    assert 'href="/dashboard/queues/default?state=pending&amp;window=15m"' in live.text  # tabs keep it


async def test_task_page_shows_charts_failures_by_type_and_its_definition(
    client: httpx.AsyncClient, job_client: JobClient, run_worker: RunWorker
) -> None:
    for n in range(5):
        await job_client.enqueue(refuse, In(n=n))
    await run_worker()
    page = await client.get("/dashboard/tasks/refuse")
    assert page.status_code == 200
    html = page.text
    assert "<h1>Task <code>refuse</code></h1>" in html
    for kind in ("throughput", "failure-rate", "run-time", "wait-time"):
        assert len(point_titles(chart(html, kind))) == 60
    assert totals(chart(html, "throughput")) == (0, 5)
    assert point_titles(chart(html, "failure-rate"))[-1].endswith("· 100 % failed (5 of 5) · so far")
    assert re.search(r'data-total="ended"><span class="card-value">5</span>', html)

    failures = re.findall(
        r'<tr data-error-type="([^"]+)">\s*<td><strong>[^<]*</strong></td>\s*<td class="num">(\d+)</td>\s*'
        r'<td class="error-snippet"><span title="([^"]*)"',
        html,
    )
    assert failures == [("PermanentError", "3", "even 4"), ("Refused", "2", "odd 3")]
    assert "From its newest 5 dead letters" in html
    assert 'href="/dashboard/dead-letters?task=refuse" data-dead-letters-link' in html

    limits = re.search(r'data-section="limits">.*?</section>', html, re.S)
    assert limits
    assert "<code>5/s</code>" in limits.group(0) and "2 at once" in limits.group(0)
    assert "<dd>30 s</dd>" in limits.group(0) and "<dd>24 s</dd>" in limits.group(0)  # soft: 80 %
    assert '<a href="/dashboard/queues/default">default</a>' in limits.group(0)
    retry = re.search(r'data-section="retry">.*?</section>', html, re.S)
    assert retry
    assert "<dd>4</dd>" in retry.group(0)
    assert "up to 0.5 s × 3<sup>attempt − 1</sup>, capped at 60 s" in retry.group(0)
    assert "<code>TimeoutError</code>" in retry.group(0) and "<code>KeyError</code>" in retry.group(0)
    assert '<tr data-schedule="nightly_refusal">' in html and "<code>0 3 * * *</code>" in html


async def test_task_page_refreshes_only_on_the_15_minute_window(client: httpx.AsyncClient) -> None:
    hour = (await client.get("/dashboard/tasks/noop")).text
    assert '<div id="live" class="region" data-region hx-get' in hour  # no data-refresh
    assert "None: it runs only when enqueued." in hour and "No dead letters of this task." in hour
    live = (await client.get("/dashboard/tasks/noop?window=15m")).text
    assert '<div id="live" class="region" data-region data-refresh' in live
    fragment = (await client.get("/dashboard/tasks/noop?window=15m", headers=HTMX)).text
    assert 'data-chart="throughput" data-points="15"' in fragment and "<h1>" not in fragment


async def test_an_unknown_task_is_a_404_page_and_a_gone_one_keeps_its_statistics(
    client: httpx.AsyncClient, written: Written
) -> None:
    page = await client.get("/dashboard/tasks/nope")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "no task named &#39;nope&#39; is registered" in page.text

    await written.jobs("default", "retired_task", succeeded=2)
    gone = await client.get("/dashboard/tasks/retired_task")
    assert gone.status_code == 200 and "data-unregistered" in gone.text
    assert totals(chart(gone.text, "throughput")) == (2, 0)
    assert 'data-section="retry"' not in gone.text


async def test_task_names_link_to_the_task_page(
    client: httpx.AsyncClient, job_client: JobClient, run_worker: RunWorker
) -> None:
    done = await job_client.enqueue(noop, NoopInput(value=1))
    failed = await job_client.enqueue(refuse, In(n=1))
    await run_worker()
    link = '<a href="/dashboard/tasks/noop">noop</a>'
    assert link in (await client.get("/dashboard/queues/default")).text
    assert f"<dt>Task</dt><dd>{link}</dd>" in (await client.get(f"/dashboard/jobs/{done.job_id}")).text
    letters = (await client.get("/dashboard/dead-letters")).text
    assert '<td><a href="/dashboard/tasks/refuse">refuse</a></td>' in letters
    schedules = (await client.get("/dashboard/schedules")).text
    assert '<td><a href="/dashboard/tasks/refuse">refuse</a></td>' in schedules
    assert failed.job_id in letters


async def test_names_from_the_statistics_are_escaped(client: httpx.AsyncClient, written: Written) -> None:
    await written.jobs("default", '<b x="1">&', succeeded=1)
    html = (await client.get("/dashboard/")).text
    assert '<b x="1">' not in html
    assert '<tr data-task="&lt;b x=&#34;1&#34;&gt;&amp;">' in html
    assert 'href="/dashboard/tasks/%3Cb%20x%3D%221%22%3E%26">&lt;b x=&#34;1&#34;&gt;&amp;</a>' in html


async def test_a_live_workers_queue_unknown_here_has_its_page_and_charts(
    client: httpx.AsyncClient, arq_redis: ArqRedis, settings: Settings
) -> None:
    worker = WorkerBeat(
        worker_id="box:1:abc",
        host="box",
        pid=1,
        queues=["elsewhere"],
        concurrency=1,
        started_at=datetime.now(UTC),
        running=0,
        running_jobs=[],
        totals=WorkerTotals(),
        registry_version="0123456789ab",
        version="0.1.0",
    )
    async with arq_redis.pipeline(transaction=True) as pipe:
        WorkerRegistry(arq_redis, settings).beat(pipe, worker, now_ms())
        await pipe.execute()
    page = await client.get("/dashboard/queues/elsewhere")
    assert page.status_code == 200 and "<h1>Queue <code>elsewhere</code></h1>" in page.text
    assert page.text.count('data-chart="') == 2 and 'data-points="60"' in page.text  # 1 h, nothing in it
