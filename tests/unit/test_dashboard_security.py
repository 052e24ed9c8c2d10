"""The dashboard's guards: every non-GET request must come from the same origin or carry the CSRF
token (else 403), and read-only mode hides every action and refuses it with 403."""

from __future__ import annotations

import re

import httpx
import pytest
from arq.connections import ArqRedis

from arq_jobs._client import JobClient
from arq_jobs._dashboard.security import csrf_token
from arq_jobs._jobs.states import JobState
from arq_jobs._tasks.registry import TaskRegistry

from .conftest import RunWorker, make_settings
from .test_dashboard_pages import HTMX, REGISTRY, SAME_ORIGIN, Mix, dashboard_client, make_mix

ACTIONS = [
    "/dashboard/jobs/{id}/cancel",
    "/dashboard/jobs/{id}/retry",
    "/dashboard/jobs/cancel",
    "/dashboard/jobs/retry",
    "/dashboard/dead-letters/retry",
    "/dashboard/dead-letters/delete",
    "/dashboard/workflows/{id}/cancel",
]


@pytest.fixture
def registry() -> TaskRegistry:
    return REGISTRY


@pytest.fixture
async def mix(job_client: JobClient, run_worker: RunWorker) -> Mix:
    return await make_mix(job_client, run_worker)


def page_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "none"}],
    ids=["no-fetch-metadata", "cross-site", "same-site", "none"],
)
async def test_a_post_not_from_the_same_origin_and_without_token_is_403(
    client: httpx.AsyncClient, job_client: JobClient, mix: Mix, headers: dict[str, str]
) -> None:
    answer = await client.post(f"/dashboard/jobs/{mix.scheduled.job_id}/cancel", headers={**headers, **HTMX})
    assert answer.status_code == 403
    assert "same origin, or its CSRF token" in answer.text
    assert (await job_client.status(mix.scheduled.job_id)).status is JobState.SCHEDULED
    wrong = await client.post(
        f"/dashboard/jobs/{mix.scheduled.job_id}/cancel", headers={**headers, "X-CSRF-Token": "0" * 64}
    )
    assert wrong.status_code == 403


async def test_same_origin_or_the_pages_token_lets_an_action_through(
    client: httpx.AsyncClient, job_client: JobClient, mix: Mix
) -> None:
    page = (await client.get(f"/dashboard/jobs/{mix.scheduled.job_id}")).text
    token = page_token(page)
    assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in page

    by_header = await client.post(
        f"/dashboard/jobs/{mix.scheduled.job_id}/cancel",
        headers={"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": token},
    )
    assert by_header.status_code == 200
    by_form = await client.post(f"/dashboard/jobs/{mix.pending.job_id}/cancel", data={"csrf_token": token})
    assert by_form.status_code == 200
    ended = await client.post(f"/dashboard/jobs/{mix.pending.job_id}/cancel", headers=SAME_ORIGIN)
    assert ended.status_code == 409  # through the guard, refused by the core
    for job in (mix.scheduled, mix.pending):
        assert (await job_client.status(job.job_id)).status is JobState.CANCELLED


async def test_csrf_token_is_shared_by_processes_with_the_same_admin_token(arq_redis: ArqRedis) -> None:
    one = await csrf_token(make_settings(admin_token="s3cret" * 6), arq_redis)
    assert one == await csrf_token(make_settings(admin_token="s3cret" * 6), arq_redis)
    assert one != await csrf_token(make_settings(admin_token="other" * 7), arq_redis)
    assert one != await csrf_token(make_settings(), arq_redis)  # without a token: the Redis secret
    assert await arq_redis.keys("*") == [b"unit:dashboard:csrf-secret"]  # made for the last one only


async def test_without_admin_token_a_token_one_api_process_rendered_works_on_another(
    arq_redis: ArqRedis, job_client: JobClient, mix: Mix
) -> None:
    """Two apps on one Redis stand for two API processes (JOBS_API_WORKERS=2, or two hosts)."""
    async with dashboard_client(arq_redis) as one, dashboard_client(arq_redis) as other:
        token = page_token((await one.get(f"/dashboard/jobs/{mix.scheduled.job_id}")).text)
        assert page_token((await other.get("/dashboard/queues/default")).text) == token
        answer = await other.post(
            f"/dashboard/jobs/{mix.scheduled.job_id}/cancel",
            headers={"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": token},
        )
        assert answer.status_code == 200
    assert (await job_client.status(mix.scheduled.job_id)).status is JobState.CANCELLED
    stored = await arq_redis.get("unit:dashboard:csrf-secret")
    assert stored is not None and re.fullmatch(rb"[0-9a-f]{64}", stored)
    async with dashboard_client(arq_redis, key_prefix="elsewhere") as elsewhere:
        other_deployment = page_token((await elsewhere.get("/dashboard/queues/default")).text)
    assert other_deployment != token  # each deployment (key prefix) has its own secret


async def test_read_only_hides_every_action(
    arq_redis: ArqRedis, job_client: JobClient, run_worker: RunWorker
) -> None:
    mix = await make_mix(job_client, run_worker)
    async with dashboard_client(arq_redis, dashboard_read_only=True) as client:
        pages = [
            "/dashboard/",
            "/dashboard/queues/default",
            f"/dashboard/jobs/{mix.scheduled.job_id}",
            f"/dashboard/jobs/{mix.failed.job_id}",
            "/dashboard/dead-letters",
            "/dashboard/workers",
            "/dashboard/schedules",
        ]
        for path in pages:
            html = (await client.get(path)).text
            assert ">read-only</span>" in html, path
            assert "hx-post" not in html and "<button" not in html.replace(
                '<button type="submit" class="button">Filter', ""
            ), path
            assert "data-select" not in html, path
        queue = (await client.get("/dashboard/queues/default")).text
        assert mix.scheduled.job_id in queue  # the data is all there


async def test_read_only_refuses_every_action_with_403(
    arq_redis: ArqRedis, job_client: JobClient, run_worker: RunWorker
) -> None:
    mix = await make_mix(job_client, run_worker)
    async with dashboard_client(arq_redis, dashboard_read_only=True) as client:
        token = page_token((await client.get("/dashboard/queues/default")).text)
        for path in ACTIONS:
            answer = await client.post(
                path.format(id=mix.scheduled.job_id),
                headers={**SAME_ORIGIN, "X-CSRF-Token": token},
                data={"job_id": [mix.scheduled.job_id], "all": "1"},
            )
            assert answer.status_code == 403, path
            assert "the dashboard is read-only" in answer.text
    assert (await job_client.status(mix.scheduled.job_id)).status is JobState.SCHEDULED
    assert len((await job_client.dead_letters.page(limit=10, cursor=None, task=None, now_ms=0)).items) <= 1


async def test_every_answer_carries_the_security_headers(client: httpx.AsyncClient, mix: Mix) -> None:
    for answer in (
        await client.get("/dashboard/"),
        await client.get("/dashboard/jobs/unknown"),
        await client.post(f"/dashboard/jobs/{mix.scheduled.job_id}/cancel"),
    ):
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"
