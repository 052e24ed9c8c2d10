"""The dashboard's actions over the ASGI app and fakeredis: cancel and retry jobs one by one or as a
selection, retry and delete dead letters; each answers with a readable flash, never a 500."""

from __future__ import annotations

import re

import httpx
import pytest
from arq.connections import ArqRedis

from arq_jobs._client import JobClient
from arq_jobs._clock import now_ms
from arq_jobs._errors import DeadLetterNotFoundError
from arq_jobs._jobs.states import JobState
from arq_jobs._tasks.registry import TaskRegistry
from workers.tasks.noop import NoopInput, noop

from .conftest import RunWorker
from .test_dashboard_pages import HTMX, REGISTRY, SAME_ORIGIN, Mix, make_mix, refuses
from .test_registry import In

ACT = {**SAME_ORIGIN, **HTMX}


@pytest.fixture
def registry() -> TaskRegistry:
    return REGISTRY


@pytest.fixture
async def mix(job_client: JobClient, run_worker: RunWorker) -> Mix:
    return await make_mix(job_client, run_worker)


def flash_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace(" ×", "").strip()


async def test_cancel_a_waiting_job(client: httpx.AsyncClient, job_client: JobClient, mix: Mix) -> None:
    answer = await client.post(f"/dashboard/jobs/{mix.scheduled.job_id}/cancel", headers=ACT)
    assert answer.status_code == 200
    assert answer.headers["hx-trigger"] == "dashboard:acted"
    assert 'class="flash flash-success"' in answer.text
    assert f"Job {mix.scheduled.job_id} cancelled: it will not run." in answer.text
    assert (await job_client.status(mix.scheduled.job_id)).status is JobState.CANCELLED


async def test_cancel_an_ended_job_is_a_readable_409(client: httpx.AsyncClient, mix: Mix) -> None:
    answer = await client.post(f"/dashboard/jobs/{mix.succeeded.job_id}/cancel", headers=ACT)
    assert answer.status_code == 409
    assert "hx-trigger" not in answer.headers
    assert 'class="flash flash-error"' in answer.text
    assert "has already ended (succeeded)" in answer.text
    missing = await client.post("/dashboard/jobs/nope/cancel", headers=ACT)
    assert missing.status_code == 404 and "no job with id &#39;nope&#39;" in missing.text


async def test_without_javascript_an_action_answers_a_page_that_links_back(
    client: httpx.AsyncClient, job_client: JobClient, mix: Mix
) -> None:
    back = "/dashboard/queues/default?state=scheduled"
    answer = await client.post(
        f"/dashboard/jobs/{mix.scheduled.job_id}/cancel", headers=SAME_ORIGIN, data={"next": back}
    )
    assert answer.status_code == 200 and answer.text.startswith("<!doctype html>")
    assert "cancelled: it will not run" in answer.text
    assert '<a href="/dashboard/queues/default?state=scheduled">« Back</a>' in answer.text
    # never back to another site
    elsewhere = await client.post(
        f"/dashboard/jobs/{mix.pending.job_id}/cancel", headers=SAME_ORIGIN, data={"next": "//evil.example/x"}
    )
    assert '<a href="/dashboard/">« Back</a>' in elsewhere.text


async def test_cancel_a_selection_names_the_jobs_it_could_not_cancel(
    client: httpx.AsyncClient, job_client: JobClient, mix: Mix
) -> None:
    selection = [mix.scheduled.job_id, mix.pending.job_id, mix.succeeded.job_id, mix.pending.job_id]
    answer = await client.post("/dashboard/jobs/cancel", headers=ACT, data={"job_id": selection})
    assert answer.status_code == 200
    assert 'class="flash flash-warning"' in answer.text
    text = flash_text(answer.text)
    assert text.startswith("Cancelled 2 jobs. 1 could not be:")
    assert f"job {mix.succeeded.job_id} has already ended (succeeded)" in text
    for job_id in (mix.scheduled.job_id, mix.pending.job_id):
        assert (await job_client.status(job_id)).status is JobState.CANCELLED

    nothing = await client.post("/dashboard/jobs/cancel", headers=ACT)
    assert nothing.status_code == 422 and "Select at least one job first." in nothing.text
    ended = await client.post("/dashboard/jobs/cancel", headers=ACT, data={"job_id": [mix.succeeded.job_id]})
    assert ended.status_code == 409 and "Nothing cancelled:" in flash_text(ended.text)


async def test_retry_a_failed_job_from_its_dead_letter(
    client: httpx.AsyncClient, job_client: JobClient, mix: Mix
) -> None:
    answer = await client.post(f"/dashboard/jobs/{mix.failed.job_id}/retry", headers=ACT)
    assert answer.status_code == 200
    new_id = re.search(rf"Job {mix.failed.job_id} retried as new job (\w+)\.", answer.text)
    assert new_id is not None
    retried = await job_client.status(new_id.group(1))
    assert (retried.task, retried.retry_of, retried.status) == (
        "refuses",
        mix.failed.job_id,
        JobState.PENDING,
    )
    with pytest.raises(DeadLetterNotFoundError):
        await job_client.dead_letters.get(mix.failed.job_id)

    again = await client.post(f"/dashboard/jobs/{mix.failed.job_id}/retry", headers=ACT)
    assert again.status_code == 404 and "no dead letter for job id" in again.text


async def test_retry_a_selection_of_jobs(client: httpx.AsyncClient, job_client: JobClient, mix: Mix) -> None:
    answer = await client.post(
        "/dashboard/jobs/retry", headers=ACT, data={"job_id": [mix.failed.job_id, mix.succeeded.job_id]}
    )
    assert answer.status_code == 200
    assert flash_text(answer.text).startswith("Retried 1 dead letter. 1 could not be:")
    assert f"no dead letter for job id &#39;{mix.succeeded.job_id}&#39;" in answer.text


@pytest.fixture
async def dead(job_client: JobClient, run_worker: RunWorker) -> list[str]:
    ids = [(await job_client.enqueue(refuses, In(n=n))).job_id for n in range(3)]
    ids.append((await job_client.enqueue(noop, NoopInput(value=1))).job_id)
    await run_worker()
    return ids[:3]


async def dead_letter_ids(job_client: JobClient, task: str | None = None) -> set[str]:
    page = await job_client.dead_letters.page(limit=100, cursor=None, task=task, now_ms=now_ms())
    return {letter.job_id for letter in page.items}


async def test_retry_and_delete_selected_dead_letters(
    client: httpx.AsyncClient, job_client: JobClient, dead: list[str]
) -> None:
    retried = await client.post("/dashboard/dead-letters/retry", headers=ACT, data={"job_id": dead[:1]})
    assert retried.status_code == 200 and flash_text(retried.text).startswith("Retried 1 dead letter.")
    deleted = await client.post("/dashboard/dead-letters/delete", headers=ACT, data={"job_id": dead[1:2]})
    assert deleted.status_code == 200 and flash_text(deleted.text) == "Deleted 1 dead letter."
    assert await dead_letter_ids(job_client) == {dead[2]}


async def test_retry_all_and_delete_all_dead_letters_of_a_task(
    client: httpx.AsyncClient, job_client: JobClient, arq_redis: ArqRedis, dead: list[str]
) -> None:
    none_of_noop = await client.post(
        "/dashboard/dead-letters/delete", headers=ACT, data={"all": "1", "task": "noop"}
    )
    assert none_of_noop.status_code == 200 and "There is no dead letter to act on." in none_of_noop.text
    assert await dead_letter_ids(job_client) == set(dead)

    retried = await client.post(
        "/dashboard/dead-letters/retry", headers=ACT, data={"all": "1", "task": "refuses"}
    )
    assert retried.status_code == 200 and flash_text(retried.text).startswith("Retried 3 dead letters.")
    assert await dead_letter_ids(job_client) == set()
    listed = await job_client.jobs(task="refuses", state=JobState.PENDING)
    assert {item.retry_of for item in listed.items} == set(dead)


async def test_delete_all_dead_letters(
    client: httpx.AsyncClient, job_client: JobClient, dead: list[str]
) -> None:
    answer = await client.post("/dashboard/dead-letters/delete", headers=ACT, data={"all": "1"})
    assert answer.status_code == 200 and flash_text(answer.text) == "Deleted 3 dead letters."
    assert await dead_letter_ids(job_client) == set()
