"""The dashboard's workflow page and its cancel action over the ASGI app and fakeredis, with real step
jobs run by a real arq Worker: the steps with their jobs, states and results, the workflow's result or
error, the link from a step's job page, cancel (done, 409, 404, read-only), and the 404 page."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis

from arq_jobs._client import JobClient
from arq_jobs._jobs.states import JobState
from arq_jobs._tasks.registry import Task, TaskRegistry
from arq_jobs._workflows.engine import Workflows
from arq_jobs._workflows.spec import Workflow
from arq_jobs._workflows.status import WorkflowState, WorkflowStatus
from tests.integration.tasks.workflow_steps import wf_add, wf_double, wf_fail_always, wf_square, wf_total
from tests.shipped import registry as shipped

from .conftest import RunWorker, make_settings
from .test_dashboard_actions import ACT, flash_text
from .test_dashboard_pages import HTMX, SAME_ORIGIN

WORKFLOW_TASKS: list[Task[Any, Any]] = [wf_add, wf_double, wf_square, wf_total, wf_fail_always]
REGISTRY = TaskRegistry([*shipped, *WORKFLOW_TASKS])
ADD = {"task": "wf_add", "input": {"a": 2, "b": 3}}


@pytest.fixture
def registry() -> TaskRegistry:
    return REGISTRY


async def start(job_client: JobClient, spec: dict[str, Any]) -> str:
    return await Workflows(job_client).create(Workflow.from_json(spec, job_client.registry))


async def run_until_ended(job_client: JobClient, run_worker: RunWorker, workflow_id: str) -> WorkflowStatus:
    """Burst workers until the workflow has ended (a stage may be enqueued after a burst's last check)."""
    for _ in range(6):
        await run_worker()
        status = await Workflows(job_client).status(workflow_id)
        if status.is_terminal:
            return status
    raise AssertionError(f"the workflow did not end: {status}")


def step_rows(html: str) -> list[tuple[str, str, str, str]]:
    """Each step row: path, task, job cell (text), state."""
    found = re.findall(
        r'<tr data-step="([^"]+)">\s*<td><code>[^<]+</code></td>\s*<td>([^<]+)</td>\s*<td>(.*?)</td>\s*'
        r'<td><span class="badge badge-\w+">(\w+)</span></td>',
        html,
    )
    return [(path, task, re.sub(r"<[^>]+>", "", cell), state) for path, task, cell, state in found]


async def test_a_pending_chain_shows_each_step_and_offers_cancel(
    client: httpx.AsyncClient, job_client: JobClient
) -> None:
    workflow_id = await start(
        job_client,
        {
            "type": "chain",
            "steps": [
                ADD,
                {"task": "wf_double"},
                {"type": "group", "steps": [{"task": "wf_square"}, {"task": "wf_double"}]},
            ],
        },
    )
    status = await Workflows(job_client).status(workflow_id)
    page = await client.get(f"/dashboard/workflows/{workflow_id}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert f"<h1>Workflow <code>{workflow_id}</code></h1>" in html
    assert '<div class="job-head">\n  <span class="badge badge-pending">pending</span>' in html
    assert "chain of 4 steps, 0 succeeded" in html
    assert "<dt>Type</dt><dd>chain</dd>" in html
    first = status.steps[0].job_id
    assert step_rows(html) == [
        ("steps[0]", "wf_add", first[:8] + "…", "pending"),
        ("steps[1]", "wf_double", "not enqueued", "pending"),
        ("steps[2].steps[0]", "wf_square", "not enqueued", "pending"),
        ("steps[2].steps[1]", "wf_double", "not enqueued", "pending"),
    ]
    assert f'<a href="/dashboard/jobs/{first}" title="{first}">' in html
    for step in status.steps[1:]:
        assert f'href="/dashboard/jobs/{step.job_id}"' not in html  # no job yet: no link to a 404
    assert '<div id="live" class="region" data-region data-refresh' in html
    assert f'hx-post="/dashboard/workflows/{workflow_id}/cancel"' in html
    assert (
        f'hx-confirm="Cancel workflow {workflow_id}? No further step will start; running steps are stopped."'
        in html
    )
    assert "<h2>Result</h2>" not in html and "<h2>Error</h2>" not in html


async def test_a_succeeded_workflow_shows_results_and_no_actions(
    client: httpx.AsyncClient, job_client: JobClient, run_worker: RunWorker
) -> None:
    workflow_id = await start(
        job_client, {"type": "chain", "steps": [ADD, {"task": "wf_double"}, {"task": "wf_square"}]}
    )
    status = await run_until_ended(job_client, run_worker, workflow_id)
    assert status.status is WorkflowState.SUCCEEDED
    html = (await client.get(f"/dashboard/workflows/{workflow_id}")).text
    assert "chain of 3 steps, 3 succeeded" in html
    assert [(path, state) for path, _, _, state in step_rows(html)] == [
        ("steps[0]", "succeeded"),
        ("steps[1]", "succeeded"),
        ("steps[2]", "succeeded"),
    ]
    for step in status.steps:
        assert f'<a href="/dashboard/jobs/{step.job_id}" title="{step.job_id}">' in html
    outcomes = re.findall(r'<td class="step-outcome"><code title="[^"]*">([^<]*)</code></td>', html)
    assert outcomes == ["{&#34;n&#34;:5}", "{&#34;n&#34;:10}", "{&#34;n&#34;:100}"]
    assert '<h2>Result</h2>\n  <pre class="json">{\n  &#34;n&#34;: 100\n}</pre>' in html
    # ended: no live refresh, no cancel
    assert "data-region data-refresh" not in html and "hx-post" not in html


async def test_a_failed_workflow_names_the_failed_step_and_its_job(
    client: httpx.AsyncClient, job_client: JobClient, run_worker: RunWorker
) -> None:
    workflow_id = await start(
        job_client, {"type": "chain", "steps": [ADD, {"task": "wf_fail_always"}, {"task": "wf_double"}]}
    )
    status = await run_until_ended(job_client, run_worker, workflow_id)
    failed_job = status.steps[1].job_id
    html = (await client.get(f"/dashboard/workflows/{workflow_id}")).text
    assert '<span class="badge badge-failed">failed</span>' in html
    assert [(path, state) for path, _, _, state in step_rows(html)] == [
        ("steps[0]", "succeeded"),
        ("steps[1]", "failed"),
        ("steps[2]", "cancelled"),
    ]
    assert (
        '<span class="error-snippet" title="TaskError: cannot take 5"><strong>TaskError</strong> cannot take 5</span>'
        in html
    )
    assert (
        '<strong class="error-type">TaskError</strong>: '
        '<span class="error-message">step steps[1] (wf_fail_always) failed: cannot take 5</span>'
    ) in html
    assert "<dt>Step</dt><dd><code>steps[1]</code> (wf_fail_always)</dd>" in html
    assert (
        f'<dt>Job</dt><dd><a href="/dashboard/jobs/{failed_job}"><code>{failed_job}</code></a></dd>' in html
    )
    assert "<h2>Result</h2>" not in html and "hx-post" not in html


async def test_a_step_jobs_page_links_to_its_workflow(
    client: httpx.AsyncClient, job_client: JobClient
) -> None:
    workflow_id = await start(job_client, {"type": "group", "steps": [ADD, ADD]})
    step_job = (await Workflows(job_client).status(workflow_id)).steps[1].job_id
    html = (await client.get(f"/dashboard/jobs/{step_job}")).text
    link = f'<a href="/dashboard/workflows/{workflow_id}">'
    assert f"<dt>Workflow</dt><dd>{link}<code>{workflow_id}</code></a></dd>" in html
    assert f"› {link}workflow</a> › job</p>" in html  # and in the breadcrumbs
    plain = await job_client.enqueue(wf_add, wf_add.parse_input({"a": 1, "b": 1}))
    assert "<dt>Workflow</dt>" not in (await client.get(f"/dashboard/jobs/{plain.job_id}")).text


async def test_unknown_workflow_is_a_404_page_naming_it(client: httpx.AsyncClient) -> None:
    page = await client.get("/dashboard/workflows/no-such-workflow")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<title>Not Found · arq-jobs</title>" in page.text
    assert "no workflow with id &#39;no-such-workflow&#39; (unknown, or it has expired)" in page.text


async def test_htmx_refresh_of_the_workflow_page_gets_only_its_region(
    client: httpx.AsyncClient, job_client: JobClient
) -> None:
    workflow_id = await start(job_client, {"type": "group", "steps": [ADD]})
    fragment = await client.get(f"/dashboard/workflows/{workflow_id}", headers=HTMX)
    assert fragment.status_code == 200 and fragment.headers["vary"] == "HX-Request"
    assert fragment.text.startswith(
        f'<div id="live" class="region" data-region data-refresh hx-get="/dashboard/workflows/{workflow_id}"'
    )
    assert "<html" not in fragment.text


async def test_cancel_a_workflow(client: httpx.AsyncClient, job_client: JobClient) -> None:
    workflow_id = await start(job_client, {"type": "chain", "steps": [ADD, {"task": "wf_double"}]})
    answer = await client.post(f"/dashboard/workflows/{workflow_id}/cancel", headers=ACT)
    assert answer.status_code == 200
    assert answer.headers["hx-trigger"] == "dashboard:acted"
    assert 'class="flash flash-success"' in answer.text
    assert flash_text(answer.text) == (
        f"Workflow {workflow_id} cancelled: no further step starts, and running steps stop within about "
        "a second. open the workflow"
    )
    assert f'<a href="/dashboard/workflows/{workflow_id}">open the workflow</a>' in answer.text
    status = await Workflows(job_client).status(workflow_id)
    assert status.status is WorkflowState.CANCELLED
    assert [step.status for step in status.steps] == [JobState.CANCELLED, JobState.CANCELLED]

    again = await client.post(f"/dashboard/workflows/{workflow_id}/cancel", headers=ACT)
    assert again.status_code == 409 and "hx-trigger" not in again.headers
    assert 'class="flash flash-error"' in again.text
    assert (
        f"workflow {workflow_id} has already ended (cancelled); only unfinished workflows can be cancelled"
        in again.text
    )
    missing = await client.post("/dashboard/workflows/nope/cancel", headers=ACT)
    assert missing.status_code == 404
    assert "no workflow with id &#39;nope&#39; (unknown, or it has expired)" in missing.text


async def test_cancel_without_javascript_answers_a_page_that_links_back(
    client: httpx.AsyncClient, job_client: JobClient
) -> None:
    workflow_id = await start(job_client, {"type": "group", "steps": [ADD]})
    back = f"/dashboard/workflows/{workflow_id}"
    answer = await client.post(f"{back}/cancel", headers=SAME_ORIGIN, data={"next": back})
    assert answer.status_code == 200 and answer.text.startswith("<!doctype html>")
    assert f"Workflow {workflow_id} cancelled" in answer.text
    assert f'<a href="{back}">« Back</a>' in answer.text


async def test_read_only_shows_the_workflow_and_refuses_to_cancel_it(
    arq_redis: ArqRedis, job_client: JobClient
) -> None:
    from arq_jobs._api.deps import AppState, get_state
    from tests.apps import create_app

    workflow_id = await start(job_client, {"type": "group", "steps": [ADD]})
    settings = make_settings(dashboard_read_only=True)
    app = create_app(settings, REGISTRY)
    app.dependency_overrides[get_state] = lambda: AppState(settings, REGISTRY, arq_redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        html = (await client.get(f"/dashboard/workflows/{workflow_id}")).text
        assert ">read-only</span>" in html and "steps[0]" in html
        assert "hx-post" not in html and "<button" not in html
        refused = await client.post(f"/dashboard/workflows/{workflow_id}/cancel", headers=ACT)
        assert refused.status_code == 403 and "the dashboard is read-only" in refused.text
    assert (await Workflows(job_client).status(workflow_id)).status is WorkflowState.PENDING
