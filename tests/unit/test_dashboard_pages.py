"""The dashboard's pages over the ASGI app and fakeredis, with real jobs run by a real arq Worker:
what each page shows, its htmx fragment, the 404 page, and where it is mounted."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis

from arq_jobs._api.deps import AppState, get_state
from arq_jobs._client import Enqueued, JobClient
from arq_jobs._clock import now_ms
from arq_jobs._dashboard.formatting import iso
from arq_jobs._errors import PermanentError
from arq_jobs._jobs.records import THROTTLE, THROTTLED_UNTIL
from arq_jobs._keys import Keys
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskRegistry, task
from arq_jobs._tasks.retry import RetryPolicy
from arq_jobs._worker_registry import WorkerBeat, WorkerRegistry, WorkerTotals
from tests.apps import create_app
from tests.shipped import registry as shipped
from workers.tasks.noop import NoopInput, noop

from .conftest import RunWorker, make_settings
from .test_registry import In

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
HTMX = {"HX-Request": "true"}


@task(retry=RetryPolicy(max_attempts=2, base_s=0))
async def refuses(ctx: JobContext, data: In) -> None:
    """Fail for good."""
    raise PermanentError(f"refused {data.n}")


REGISTRY = TaskRegistry([*shipped, refuses])


@pytest.fixture
def registry() -> TaskRegistry:
    return REGISTRY


@asynccontextmanager
async def dashboard_client(arq_redis: ArqRedis, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app built with other settings (e.g. read-only), on the same fakeredis."""
    settings = make_settings(**overrides)
    app = create_app(settings, REGISTRY)
    app.dependency_overrides[get_state] = lambda: AppState(settings, REGISTRY, arq_redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


class Mix:
    """One job in each of: succeeded, failed (dead-lettered), scheduled, pending."""

    def __init__(self, succeeded: Enqueued, failed: Enqueued, scheduled: Enqueued, pending: Enqueued) -> None:
        self.succeeded = succeeded
        self.failed = failed
        self.scheduled = scheduled
        self.pending = pending


async def make_mix(job_client: JobClient, run_worker: RunWorker) -> Mix:
    succeeded = await job_client.enqueue(noop, NoopInput(value={"hello": "world"}))
    failed = await job_client.enqueue(refuses, In(n=7))
    await run_worker()
    # after the burst worker: it would wait for these
    scheduled = await job_client.enqueue(noop, NoopInput(value=2), delay=3600)
    pending = await job_client.enqueue(noop, NoopInput(value=3))
    return Mix(succeeded, failed, scheduled, pending)


@pytest.fixture
async def mix(job_client: JobClient, run_worker: RunWorker) -> Mix:
    return await make_mix(job_client, run_worker)


async def beat(arq_redis: ArqRedis, job_client: JobClient, *, running: list[str], age_s: float = 0) -> str:
    """Write a worker heartbeat `age_s` old, serving the default queue and running `running`."""
    now = now_ms() - round(age_s * 1000)
    worker = WorkerBeat(
        worker_id=f"box:{4242 + len(running)}:abc123",
        host="box",
        pid=4242 + len(running),
        queues=["default"],
        concurrency=10,
        started_at=datetime.now(UTC),
        running=len(running),
        running_jobs=running,
        totals=WorkerTotals(succeeded=5, failed=1),
        registry_version="0123456789ab",
        version="0.1.0",
    )
    async with arq_redis.pipeline(transaction=True) as pipe:
        WorkerRegistry(arq_redis, job_client.settings).beat(pipe, worker, now)
        await pipe.execute()
    return worker.worker_id


def rows(html: str) -> list[str]:
    """The job ids of a table's rows, in order."""
    return re.findall(r'<tr data-job-id="([^"]+)"', html)


async def test_overview_counts_jobs_by_state_and_lists_queues(client: httpx.AsyncClient, mix: Mix) -> None:
    page = await client.get("/dashboard/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    for state, count in {"pending": 1, "scheduled": 1, "succeeded": 1, "failed": 1, "running": 0}.items():
        assert re.search(rf'data-count="{state}"><span class="card-value">{count}</span>', html), state
    assert re.search(r'data-count="dead_letters"><span class="card-value">1</span>', html)
    assert '<tr data-queue="default" class="starved">' in html
    assert 'href="/dashboard/queues/default?state=pending">1</a>' in html


async def test_overview_warns_of_a_queue_with_pending_jobs_and_no_live_worker(
    client: httpx.AsyncClient, job_client: JobClient, arq_redis: ArqRedis
) -> None:
    await job_client.enqueue(noop, NoopInput(value=1))
    html = (await client.get("/dashboard/")).text
    assert 'data-starved="default"' in html and "No live worker for queue" in html
    assert "1 pending job," in html

    await beat(arq_redis, job_client, running=[])
    html = (await client.get("/dashboard/")).text
    assert "data-starved" not in html
    assert re.search(r'data-count="live_workers"><span class="card-value">1</span>', html)


async def test_queue_page_has_state_tabs_with_counts_and_filters_by_state(
    client: httpx.AsyncClient, mix: Mix
) -> None:
    html = (await client.get("/dashboard/queues/default")).text
    assert re.search(
        r'class="tab active" href="/dashboard/queues/default">all <span class="count">4</span>', html
    )
    assert re.search(r'data-tab="failed">failed <span class="count">1</span>', html)
    assert set(rows(html)) == {
        mix.succeeded.job_id,
        mix.failed.job_id,
        mix.scheduled.job_id,
        mix.pending.job_id,
    }

    failed = (await client.get("/dashboard/queues/default", params={"state": "failed"})).text
    assert rows(failed) == [mix.failed.job_id]
    assert "PermanentError" in failed and "refused 7" in failed
    # a failed, dead-lettered job can be retried; a waiting one cancelled
    assert f'hx-post="/dashboard/jobs/{mix.failed.job_id}/retry"' in failed
    scheduled = (await client.get("/dashboard/queues/default", params={"state": "scheduled"})).text
    assert rows(scheduled) == [mix.scheduled.job_id]
    assert f'hx-post="/dashboard/jobs/{mix.scheduled.job_id}/cancel"' in scheduled
    assert "runs <time" in scheduled and ">in 59 min</time>" in scheduled


async def test_queue_page_filters_by_task_and_pages_with_a_cursor(
    client: httpx.AsyncClient, mix: Mix
) -> None:
    only = (await client.get("/dashboard/queues/default", params={"task": "refuses"})).text
    assert rows(only) == [mix.failed.job_id]
    assert "<option selected>refuses</option>" in only

    seen: list[str] = []
    url: str | None = "/dashboard/queues/default?limit=1"
    while url:
        html = (await client.get(url)).text
        seen.extend(rows(html))
        found = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert sorted(seen) == sorted(
        [mix.succeeded.job_id, mix.failed.job_id, mix.scheduled.job_id, mix.pending.job_id]
    )
    assert len(seen) == 4


async def test_queue_page_of_an_unknown_queue_is_a_404_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/dashboard/queues/nowhere")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "no queue named &#39;nowhere&#39;" in page.text


async def test_job_page_of_a_succeeded_job_shows_fields_input_result_and_timeline(
    client: httpx.AsyncClient, mix: Mix
) -> None:
    page = await client.get(f"/dashboard/jobs/{mix.succeeded.job_id}")
    assert page.status_code == 200
    html = page.text
    assert '<span class="badge badge-succeeded">succeeded</span>' in html
    assert "<dt>Attempt</dt><dd>1 of 3</dd>" in html
    assert "&#34;hello&#34;: &#34;world&#34;" in html  # input and result, escaped
    assert html.count("&#34;hello&#34;") == 2
    timeline = re.findall(r'<span class="dot dot-(\w+)"></span>', html)
    assert timeline == ["pending", "running", "succeeded"]
    assert re.search(r'<time datetime="[0-9T:.-]+Z" title="[0-9T:.-]+Z">(just now|\d+ s ago)</time>', html)
    # ended: no live refresh, no actions
    assert "data-region data-refresh" not in html and "hx-post" not in html


async def test_job_page_of_a_failed_job_shows_error_traceback_and_retry(
    client: httpx.AsyncClient, mix: Mix
) -> None:
    html = (await client.get(f"/dashboard/jobs/{mix.failed.job_id}")).text
    assert (
        '<strong class="error-type">PermanentError</strong>: <span class="error-message">refused 7</span>'
        in html
    )
    assert '<pre class="traceback">Traceback (most recent call last)' in html
    assert "kept (permanent_error)" in html
    assert f'hx-post="/dashboard/jobs/{mix.failed.job_id}/retry"' in html
    assert "/cancel" not in html


async def test_job_page_of_a_waiting_job_refreshes_live_and_offers_cancel(
    client: httpx.AsyncClient, mix: Mix
) -> None:
    html = (await client.get(f"/dashboard/jobs/{mix.scheduled.job_id}")).text
    assert '<div id="live" class="region" data-region data-refresh' in html
    assert f'hx-get="/dashboard/jobs/{mix.scheduled.job_id}"' in html
    assert f'hx-post="/dashboard/jobs/{mix.scheduled.job_id}/cancel"' in html
    assert "due to run" in html and "&#34;value&#34;: 2" in html


async def test_job_page_of_a_throttled_job_says_which_limit_it_waits_for(
    client: httpx.AsyncClient, mix: Mix, arq_redis: ArqRedis
) -> None:
    record = Keys("unit").record(mix.pending.job_id)
    until = now_ms() + 90_000
    await arq_redis.hset(record, mapping={THROTTLE: "rate", THROTTLED_UNTIL: until})  # type: ignore[misc]
    html = (await client.get(f"/dashboard/jobs/{mix.pending.job_id}")).text
    moment = iso(datetime.fromtimestamp(until / 1000, tz=UTC))
    assert (
        '<p class="notice" data-throttled="rate"><strong>Throttled:</strong> waiting for its task\'s rate '
        f'limit, next try <time datetime="{moment}" title="{moment}">in 1 min</time></p>'
    ) in html
    queue = (await client.get("/dashboard/queues/default", params={"state": "pending"})).text
    assert 'title="waiting for its task\'s rate limit">throttled</span>' in queue

    await arq_redis.hset(record, THROTTLE, "concurrency")  # type: ignore[misc]
    html = (await client.get(f"/dashboard/jobs/{mix.pending.job_id}")).text
    assert "waiting for its task's concurrency limit, next try <time" in html
    # a job that is not throttled says nothing of limits, workflows or schedules
    plain = (await client.get(f"/dashboard/jobs/{mix.scheduled.job_id}")).text
    assert "Throttled" not in plain and "<dt>Workflow</dt>" not in plain and "<dt>Schedule</dt>" not in plain


async def test_job_page_without_record_shows_the_kept_dead_letter(
    client: httpx.AsyncClient, mix: Mix, arq_redis: ArqRedis
) -> None:
    await arq_redis.delete(Keys("unit").record(mix.failed.job_id))
    page = await client.get(f"/dashboard/jobs/{mix.failed.job_id}")
    assert page.status_code == 200
    assert "its record has expired; the dead letter is kept" in page.text
    assert "&#34;n&#34;: 7" in page.text and "refused 7" in page.text


async def test_unknown_job_is_a_404_page_not_a_trace(client: httpx.AsyncClient) -> None:
    page = await client.get("/dashboard/jobs/no-such-job")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "<title>Not Found · arq-jobs</title>" in page.text
    assert "no job with id &#39;no-such-job&#39;" in page.text
    assert "Traceback" not in page.text
    other = await client.get("/dashboard/no/such/page")
    assert other.status_code == 404 and "the dashboard has no page" in other.text


async def test_invalid_query_is_a_readable_422_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/dashboard/queues/default", params={"state": "nonsense"})
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "invalid request: query.state" in page.text


async def test_htmx_refresh_gets_only_the_live_region(client: httpx.AsyncClient, mix: Mix) -> None:
    for path in ["/dashboard/", "/dashboard/queues/default", f"/dashboard/jobs/{mix.pending.job_id}",
                 "/dashboard/dead-letters", "/dashboard/workers", "/dashboard/schedules"]:  # fmt: skip
        fragment = await client.get(path, headers=HTMX)
        assert fragment.status_code == 200, path
        assert fragment.text.startswith('<div id="live" class="region" data-region'), path
        assert "<html" not in fragment.text
        assert fragment.headers["vary"] == "HX-Request"
    whole = await client.get("/dashboard/workers")
    assert whole.text.startswith("<!doctype html>")


async def test_dead_letters_page_lists_filters_and_pages(
    client: httpx.AsyncClient, job_client: JobClient, run_worker: RunWorker
) -> None:
    ids = [(await job_client.enqueue(refuses, In(n=n))).job_id for n in range(3)]
    await run_worker()
    html = (await client.get("/dashboard/dead-letters")).text
    assert sorted(rows(html)) == sorted(ids)
    assert "permanent_error" in html and "refused 2" in html
    assert '<option value="refuses">' in html  # task names to filter by

    none = (await client.get("/dashboard/dead-letters", params={"task": "noop"})).text
    assert rows(none) == [] and "No dead letters of task noop." in none
    first = (await client.get("/dashboard/dead-letters", params={"limit": 2})).text
    assert rows(first) == rows(html)[:2]
    older = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert older is not None
    assert rows((await client.get(older.group(1).replace("&amp;", "&"))).text) == rows(html)[2:]


async def test_workers_page_shows_each_worker_and_the_jobs_it_runs(
    client: httpx.AsyncClient, job_client: JobClient, arq_redis: ArqRedis, mix: Mix
) -> None:
    alive = await beat(arq_redis, job_client, running=[mix.pending.job_id])
    stale = await beat(arq_redis, job_client, running=[], age_s=60)
    html = (await client.get("/dashboard/workers")).text
    assert f'<tr data-worker-id="{alive}" class="worker-alive">' in html
    assert f'<tr data-worker-id="{stale}" class="worker-stale">' in html
    assert "<code>box:4243</code>" in html and "1 / 10" in html
    assert f'href="/dashboard/jobs/{mix.pending.job_id}"' in html
    assert "5 succeeded · 1 failed" in html
    assert re.search(r">1 min ago</time>", html)


async def test_prefix_is_configurable_and_the_dashboard_can_be_turned_off(arq_redis: ArqRedis) -> None:
    async with dashboard_client(arq_redis, dashboard_prefix="/ops/board") as client:
        page = await client.get("/ops/board/")
        assert page.status_code == 200
        assert 'href="/ops/board/workers"' in page.text and "/ops/board/static/dashboard.css?v=" in page.text
        assert (await client.get("/ops/board")).headers["location"] == "/ops/board/"
        assert (await client.get("/dashboard/")).status_code == 404
    async with dashboard_client(arq_redis, dashboard_enabled=False) as client:
        assert (await client.get("/dashboard/")).status_code == 404
        assert (await client.get("/health/live")).status_code == 200


async def test_refresh_period_is_configurable_and_zero_turns_it_off(arq_redis: ArqRedis) -> None:
    async with dashboard_client(arq_redis, dashboard_refresh_s=2.5) as client:
        html = (await client.get("/dashboard/")).text
        assert 'data-refresh-s="2.5"' in html and "every 2.5 s" in html and "data-region data-refresh" in html
    async with dashboard_client(arq_redis, dashboard_refresh_s=0) as client:
        html = (await client.get("/dashboard/")).text
        assert 'id="live-toggle"' not in html and "data-region data-refresh" not in html


async def test_dashboard_is_not_in_the_openapi_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/dashboard")]
