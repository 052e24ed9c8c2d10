"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against the real app under
uvicorn, a real worker and a real Redis. Each page loads with real data (and no script or CSP error);
a pending job is cancelled, a dead letter retried and a running workflow cancelled by clicking;
read-only mode hides and refuses actions; a cross-site POST is refused; live refresh keeps a
selection and pauses when asked; the charts of a known run (on a stack of its own) show its exact counts.

The screenshots in the README (docs/screenshots/) are taken here."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserType,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from .conftest import (
    ROOT,
    Service,
    WebhookTarget,
    delete_prefix,
    http_ok,
    service_env,
    start_api,
    start_worker,
)

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"
REFRESH_S = 1.0

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM)}


# pytest-playwright keeps one Playwright for the whole session; a live sync Playwright leaves its event
# loop marked running in this thread, which breaks the pytest-asyncio tests that run after this
# module. So Playwright, and what hangs on it, lives only as long as this module.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as started:
        yield started


@pytest.fixture(scope="module")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    browser: BrowserType = getattr(playwright, browser_name)
    return browser


@pytest.fixture(scope="module")
def browser(browser_type: BrowserType, browser_type_launch_args: dict[str, Any]) -> Iterator[Browser]:
    launched = browser_type.launch(**browser_type_launch_args)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def browser_context_args() -> dict[str, Any]:
    return {"viewport": {"width": 1440, "height": 900}}


@dataclass
class Stack:
    """An API (and a read-only one) and a worker on their own key prefix."""

    base: str
    read_only_base: str
    services: list[Service] = field(default_factory=list)

    @property
    def dashboard(self) -> str:
        return f"{self.base}/dashboard"

    def enqueue(self, task: str, body: dict[str, Any], **params: Any) -> str:
        response = httpx.post(f"{self.base}/jobs/{task}", json=body, params=params, timeout=10)
        assert response.status_code == 202, response.text
        job_id: str = response.json()["job_id"]
        return job_id

    def status(self, job_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.base}/jobs/{job_id}", timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_for(
        self, job_id: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 20
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        body = self.status(job_id)
        while not done(body):
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} not as expected in {timeout_s} s: {body}")
            time.sleep(0.1)
            body = self.status(job_id)
        return body


@contextmanager
def running_stack(
    redis_url: str, prefix: str, log_dir: Path, *, read_only: bool, **extra: str
) -> Iterator[Stack]:
    """An API (and, with `read_only`, a read-only one) and a worker on `prefix`; stopped and their keys
    deleted afterwards."""
    services: list[Service] = []
    try:
        api, base = start_api(service_env(redis_url, prefix, **extra), log_dir)
        services.append(api)
        read_only_base = base
        if read_only:
            env = service_env(redis_url, prefix, JOBS_DASHBOARD_READ_ONLY="true", **extra)
            read_only_api, read_only_base = start_api(env, log_dir, "api-read-only")
            services.append(read_only_api)
        for service, url in ((api, base), (services[-1], read_only_base)):
            service.wait_until(http_ok(f"{url}/health/ready"))
        worker, _ = start_worker(redis_url, prefix, log_dir, "worker", **extra)
        services.append(worker)
        yield Stack(base, read_only_base, services)
    finally:
        for service in services:
            service.stop()
        delete_prefix(redis_url, prefix)


@pytest.fixture(scope="module")
def stack(redis_url: str, key_prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    extra = {"JOBS_DASHBOARD_REFRESH_S": str(REFRESH_S), "JOBS_HEARTBEAT_S": "0.5"}
    prefix = f"{key_prefix}-dash-{uuid.uuid4().hex[:6]}"
    with running_stack(
        redis_url, prefix, tmp_path_factory.mktemp("dashboard"), read_only=True, **extra
    ) as found:
        yield found


@pytest.fixture
def errors(page: Page) -> Iterator[list[str]]:
    """Script errors and CSP violations of the page; the test fails if any occurred."""
    found: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # answers like 403/409 are logged by the browser as failed loads: expected in these tests
        if message.type == "error" and "Failed to load resource" not in message.text:
            found.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: found.append(str(error)))
    yield found
    assert found == []


def accept_dialogs(page: Page) -> list[str]:
    """Accept every confirmation; returns the messages asked."""
    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    return asked


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def rendered_at(page: Page) -> str:
    value = page.locator("#live").get_attribute("data-rendered-at")
    assert value is not None
    return value


def wait_for_refresh(page: Page, before: str, timeout_s: float = 5) -> None:
    page.wait_for_function(
        "before => document.getElementById('live').dataset.renderedAt !== before",
        arg=before,
        timeout=timeout_s * 1000,
    )


def test_overview_shows_counts_queues_and_warns_of_a_queue_without_worker(
    page: Page, stack: Stack, errors: list[str], webhook_target: WebhookTarget
) -> None:
    for n in range(3):
        stack.enqueue("noop", {"value": n})
    failed = stack.enqueue("fail", {"permanent": True})
    stack.enqueue("fail", {"permanent": False, "retry_after_s": 600})
    stack.enqueue("noop", {"value": "later"}, delay=3600)
    stack.enqueue("hold", {"seconds": 1})  # the lifecycle queue has no worker here
    stack.enqueue("generate_report", {"rows": 5000, "step_delay_s": 10})
    stack.wait_for(failed, lambda b: b["status"] == "failed")

    page.goto(f"{stack.dashboard}/")
    assert page.evaluate("typeof htmx") == "object"  # loaded, integrity hash accepted
    expect(page.locator('[data-starved="lifecycle"]')).to_contain_text("No live worker for queue lifecycle")
    expect(page.locator('tr[data-queue="lifecycle"]')).to_have_class("starved")
    expect(page.locator('[data-count="dead_letters"] .card-value')).not_to_have_text("0")
    expect(page.locator('[data-count="live_workers"] .card-value')).to_have_text("1")
    expect(page.locator('[data-count="succeeded"] .card-value')).not_to_have_text("0")
    expect(page.locator('tr[data-queue="default"] td').first).to_have_text("default")
    screenshot(page, "overview")

    page.locator('tr[data-queue="default"] a', has_text="default").click()
    expect(page).to_have_url(f"{stack.dashboard}/queues/default")


def test_queue_page_tabs_filter_and_page(page: Page, stack: Stack, errors: list[str]) -> None:
    ids = [stack.enqueue("noop", {"value": n}, delay=3600) for n in range(3)]
    page.goto(f"{stack.dashboard}/queues/default")
    expect(page.locator("nav.tabs .tab.active")).to_contain_text("all")
    for job_id in ids:
        expect(page.locator(f'tr[data-job-id="{job_id}"]')).to_be_visible()
    screenshot(page, "queue")

    page.locator('[data-tab="scheduled"]').click()
    expect(page.locator("nav.tabs .tab.active")).to_contain_text("scheduled")
    expect(page.locator("table.jobs tbody tr .badge").first).to_have_text("scheduled")
    page.select_option('select[name="limit"]', "25")
    page.select_option('select[name="task"]', "noop")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(f"{stack.dashboard}/queues/default?state=scheduled&task=noop&limit=25")
    rows = page.locator("table.jobs tbody tr[data-job-id]")
    assert rows.count() >= 3
    assert set(rows.locator("td:nth-child(3)").all_inner_texts()) == {"noop"}


def test_cancel_a_pending_job_by_clicking(page: Page, stack: Stack, errors: list[str]) -> None:
    job = stack.enqueue("hold", {"seconds": 1})  # pending: no worker serves lifecycle here
    stack.wait_for(job, lambda b: b["status"] == "pending")
    asked = accept_dialogs(page)
    page.goto(f"{stack.dashboard}/queues/lifecycle?state=pending")
    row = page.locator(f'tr[data-job-id="{job}"]')
    row.get_by_role("button", name="Cancel").click()
    expect(page.locator("#flash .flash-success")).to_contain_text(f"Job {job} cancelled: it will not run.")
    assert asked == [f"Cancel job {job}?"]
    assert stack.status(job)["status"] == "cancelled"
    expect(row).to_have_count(0)  # the pending tab refreshed after the action


def test_an_action_that_cannot_be_done_says_why(page: Page, stack: Stack, errors: list[str]) -> None:
    job = stack.enqueue("noop", {"value": 1}, delay=3600)
    accept_dialogs(page)
    page.goto(f"{stack.dashboard}/jobs/{job}")
    assert httpx.delete(f"{stack.base}/jobs/{job}", timeout=10).status_code == 200  # behind its back
    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator("#flash .flash-error")).to_contain_text(f"job {job} has already ended (cancelled)")
    page.locator("#flash [data-dismiss]").click()
    expect(page.locator("#flash .flash-error")).to_have_count(0)
    expect(page.locator("#live .job-head .badge").first).to_have_text("cancelled")


def test_job_page_is_live_while_the_job_runs_and_stops_when_it_ends(
    page: Page, stack: Stack, errors: list[str]
) -> None:
    job = stack.enqueue("generate_report", {"rows": 20000, "step_delay_s": 1.5})
    stack.wait_for(job, lambda b: b["status"] == "running" and (b["progress"] or {}).get("step", 0) >= 1)
    page.goto(f"{stack.dashboard}/jobs/{job}")
    expect(page.locator("#live .job-head .badge").first).to_have_text("running")
    expect(page.locator(".progress-message")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel job")).to_be_visible()
    screenshot(page, "job")

    # no reload: the region refreshes until the job has ended
    expect(page.locator("#live .job-head .badge").first).to_have_text("succeeded", timeout=15_000)
    expect(page.locator(".progress-message")).to_have_text("report stored")
    expect(page.locator("#live")).not_to_have_attribute("data-refresh", "")
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.wait_for_timeout(REFRESH_S * 2500)
    assert requests == []


def test_retry_a_dead_letter_by_clicking(
    page: Page, stack: Stack, errors: list[str], webhook_target: WebhookTarget
) -> None:
    tag = f"dash-{uuid.uuid4().hex[:6]}"
    job = stack.enqueue("send_webhook", {"url": f"{webhook_target.url}/switch/{tag}", "payload": {"n": 1}})
    assert stack.wait_for(job, lambda b: b["status"] == "failed")["dead_lettered"] is True
    stack.enqueue("fail", {"permanent": True})
    page.goto(f"{stack.dashboard}/dead-letters")
    expect(page.locator(f'tr[data-job-id="{job}"]')).to_contain_text("WebhookRejectedError")
    screenshot(page, "dead-letters")

    webhook_target.switches[tag] = 200  # the target works now: the retry succeeds
    asked = accept_dialogs(page)
    retry_selected = page.get_by_role("button", name="Retry selected")
    expect(retry_selected).to_be_disabled()
    page.locator(f'tr[data-job-id="{job}"] input[data-select]').check()
    expect(page.locator("[data-selected-count]")).to_have_text("1 selected")
    retry_selected.click()
    flash = page.locator("#flash .flash-success")
    expect(flash).to_contain_text("Retried 1 dead letter.")
    assert asked == ["Retry the selected dead letters as new jobs?"]
    expect(page.locator(f'tr[data-job-id="{job}"]')).to_have_count(0)

    new_job = flash.locator("a").inner_text()
    done = stack.wait_for(new_job, lambda b: b["is_terminal"])
    assert (done["status"], done["retry_of"], done["task"]) == ("succeeded", job, "send_webhook")
    flash.locator("a").click()
    expect(page.locator("#live .job-head .badge").first).to_have_text("succeeded")
    expect(page.locator(".fields")).to_contain_text(job)  # retry of


def test_workers_page_shows_the_worker_and_the_job_it_runs(
    page: Page, stack: Stack, errors: list[str]
) -> None:
    job = stack.enqueue("nap", {"seconds": 8})
    stack.wait_for(job, lambda b: b["status"] == "running")
    page.goto(f"{stack.dashboard}/workers")
    worker = page.locator("tr.worker-alive").first
    expect(worker.locator(".badge")).to_have_text("alive")
    expect(worker.locator(f'a[href$="/jobs/{job}"]')).to_be_visible(timeout=5_000)
    expect(worker).to_contain_text("default")
    screenshot(page, "workers")


def test_refresh_keeps_a_selection_and_pauses_when_asked(page: Page, stack: Stack, errors: list[str]) -> None:
    ids = [stack.enqueue("noop", {"value": n}, delay=3600) for n in range(2)]
    page.goto(f"{stack.dashboard}/queues/default?state=scheduled")
    box = page.locator(f'tr[data-job-id="{ids[0]}"] input[data-select]')
    box.check()
    for _ in range(2):
        wait_for_refresh(page, rendered_at(page))
        expect(box).to_be_checked()
        expect(page.locator("[data-selected-count]")).to_have_text("1 selected")
    expect(page.locator(f'tr[data-job-id="{ids[1]}"] input[data-select]')).not_to_be_checked()

    page.locator("#live-toggle").uncheck()  # paused by the toggle
    before = rendered_at(page)
    page.wait_for_timeout(REFRESH_S * 2500)
    assert rendered_at(page) == before
    page.locator("#live-toggle").check()
    wait_for_refresh(page, before)

    page.evaluate("Object.defineProperty(document, 'hidden', {configurable: true, get: () => true})")
    before = rendered_at(page)
    page.wait_for_timeout(REFRESH_S * 2500)
    assert rendered_at(page) == before  # paused while the tab is hidden
    page.evaluate("delete document.hidden")
    wait_for_refresh(page, before)
    expect(box).to_be_checked()


def test_read_only_mode_hides_and_refuses_actions(page: Page, stack: Stack, errors: list[str]) -> None:
    job = stack.enqueue("noop", {"value": 1}, delay=3600)
    page.goto(f"{stack.read_only_base}/dashboard/queues/default?state=scheduled")
    expect(page.locator(".badge-readonly")).to_have_text("read-only")
    expect(page.locator(f'tr[data-job-id="{job}"]')).to_be_visible()
    expect(page.locator("input[data-select]")).to_have_count(0)
    expect(page.locator("[hx-post]")).to_have_count(0)
    page.goto(f"{stack.read_only_base}/dashboard/jobs/{job}")
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)

    # a same-origin POST from the page itself, token and all: still 403
    answer = page.evaluate(
        """async (url) => {
            const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];
            const response = await fetch(url, {method: 'POST', headers: {'X-CSRF-Token': token}});
            return [response.status, await response.text()];
        }""",
        f"/dashboard/jobs/{job}/cancel",
    )
    assert answer[0] == 403 and "the dashboard is read-only" in answer[1]
    assert stack.status(job)["status"] == "scheduled"


class AttackerSite:
    """Another site (localhost, another port) whose page posts a form to the dashboard on load."""

    def __init__(self, target: str) -> None:
        page = (
            f'<form id="f" method="post" action="{target}"><input name="x" value="1"></form>'
            '<script>document.getElementById("f").submit()</script>'
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}/"
        Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_cross_site_post_is_refused(page: Page, stack: Stack) -> None:
    job = stack.enqueue("noop", {"value": 1}, delay=3600)
    attacker = AttackerSite(f"{stack.dashboard}/jobs/{job}/cancel")
    try:
        with page.expect_response(f"{stack.dashboard}/jobs/{job}/cancel") as posted:
            page.goto(attacker.url)
        assert posted.value.status == 403
        assert posted.value.request.all_headers().get("sec-fetch-site") == "cross-site"
        expect(page.locator("body")).to_contain_text("same origin, or its CSRF token")
    finally:
        attacker.close()
    assert stack.status(job)["status"] == "scheduled"
    # nor without a browser: no Sec-Fetch-Site: same-origin and no token
    bare = httpx.post(
        f"{stack.dashboard}/jobs/{job}/cancel", headers={"Sec-Fetch-Site": "cross-site"}, timeout=10
    )
    assert bare.status_code == 403
    assert stack.status(job)["status"] == "scheduled"


def test_workflow_page_from_a_step_cancels_it_and_schedules_page_lists_every_second(
    page: Page, stack: Stack, errors: list[str]
) -> None:
    spec = {
        "type": "chain",
        "steps": [
            {
                "type": "group",
                "steps": [
                    {"task": "wf_add", "input": {"a": 2, "b": 3}},
                    {"task": "wf_double", "input": {"n": 4, "delay_s": 30}},
                ],
            },
            {"task": "wf_total"},
        ],
    }
    created = httpx.post(f"{stack.base}/workflows", json=spec, timeout=10)
    assert created.status_code == 202, created.text
    workflow_id = created.json()["workflow_id"]
    steps = httpx.get(f"{stack.base}/workflows/{workflow_id}", timeout=10).json()["steps"]
    quick, slow, callback = (step["job_id"] for step in steps)
    stack.wait_for(quick, lambda b: b["status"] == "succeeded")
    stack.wait_for(slow, lambda b: b["status"] == "running")

    page.goto(f"{stack.dashboard}/jobs/{slow}")
    expect(page.locator(".fields")).to_contain_text(workflow_id)
    page.locator(".fields a", has_text=workflow_id).click()
    expect(page).to_have_url(f"{stack.dashboard}/workflows/{workflow_id}")
    expect(page.locator("#live .job-head .badge")).to_have_text("running")
    expect(page.locator('tr[data-step="steps[0].steps[0]"] .badge')).to_have_text("succeeded")
    expect(page.locator('tr[data-step="steps[0].steps[1]"] .badge')).to_have_text("running")
    expect(page.locator('tr[data-step="steps[1]"]')).to_contain_text("not enqueued")
    screenshot(page, "workflow")

    asked = accept_dialogs(page)
    page.get_by_role("button", name="Cancel workflow").click()
    expect(page.locator("#flash .flash-success")).to_contain_text(f"Workflow {workflow_id} cancelled")
    assert asked == [f"Cancel workflow {workflow_id}? No further step will start; running steps are stopped."]
    stack.wait_for(slow, lambda b: b["status"] == "cancelled", timeout_s=10)
    status = httpx.get(f"{stack.base}/workflows/{workflow_id}", timeout=10).json()
    assert (status["status"], [s["status"] for s in status["steps"]]) == (
        "cancelled",
        ["succeeded", "cancelled", "cancelled"],
    )
    assert httpx.get(f"{stack.base}/jobs/{callback}", timeout=10).status_code == 404  # never enqueued
    # the page refreshed after the action: it says so without a reload, and offers no cancel any more
    expect(page.locator("#live .job-head .badge")).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel workflow")).to_have_count(0)

    page.get_by_role("link", name="Schedules").click()
    expect(page).to_have_url(f"{stack.dashboard}/schedules")
    row = page.locator('tr[data-schedule="every_second"]')
    expect(row.locator("td").nth(1)).to_have_text("record_tick")
    expect(row.locator("td").nth(2)).to_have_text("* * * * * *")
    expect(row.locator(".badge")).to_have_text("disabled")
    expect(row).to_have_class("schedule-disabled")
    screenshot(page, "schedules")


@pytest.fixture(scope="module")
def quiet_stack(redis_url: str, key_prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """An API and a worker on a prefix of their own: statistics with only the jobs a test runs."""
    extra = {"JOBS_DASHBOARD_REFRESH_S": str(REFRESH_S), "JOBS_STATS_SAMPLE_S": "1"}
    prefix = f"{key_prefix}-charts-{uuid.uuid4().hex[:6]}"
    log_dir = tmp_path_factory.mktemp("dashboard-charts")
    with running_stack(redis_url, prefix, log_dir, read_only=False, **extra) as found:
        yield found


def bar_totals(page: Page, chart: str = "throughput") -> tuple[int, int]:
    """Succeeded and failed summed over the titles of a throughput chart's bars (a run may straddle
    a minute boundary)."""
    titles = page.locator(f'svg[data-chart="{chart}"] [data-point] > title').all_text_contents()
    found = [re.search(r"· (\d+) succeeded · (\d+) failed", title) for title in titles]
    assert all(found), titles
    return sum(int(m.group(1)) for m in found if m), sum(int(m.group(2)) for m in found if m)


def expect_points(page: Page, chart: str, count: int) -> None:
    svg = page.locator(f'svg[data-chart="{chart}"]')
    expect(svg).to_have_attribute("data-points", str(count))
    expect(svg.locator("[data-point]")).to_have_count(count)


def test_overview_and_task_page_chart_a_known_run(
    page: Page, quiet_stack: Stack, errors: list[str], webhook_target: WebhookTarget
) -> None:
    stack = quiet_stack
    ok = [
        stack.enqueue("send_webhook", {"url": f"{webhook_target.url}/status/200", "payload": {"n": n}})
        for n in range(6)
    ]
    refused = [
        stack.enqueue("send_webhook", {"url": f"{webhook_target.url}/status/404", "payload": {"n": n}})
        for n in range(2)
    ]
    for job in ok + refused:
        stack.wait_for(job, lambda b: b["is_terminal"])
    assert [stack.status(job)["status"] for job in refused] == ["failed", "failed"]

    page.goto(f"{stack.dashboard}/?window=15m")
    expect(page.locator('.window-picker a[aria-current="true"]')).to_have_text("15 min")
    expect_points(page, "throughput", 15)
    expect_points(page, "depth", 15)
    assert bar_totals(page) == (6, 2)
    last = page.locator('svg[data-chart="throughput"] [data-point="14"] > title').text_content() or ""
    assert re.fullmatch(r"\d\d:\d\d–\d\d:\d\d UTC · \d+ succeeded · \d+ failed · so far", last), last
    row = page.locator('tr[data-task="send_webhook"]')
    expect(row.locator("td").nth(1)).to_have_text("8")
    expect(row.locator("td").nth(2)).to_have_text("25.0 %")
    # the 15-minute view refreshes with the page's region, charts included
    wait_for_refresh(page, rendered_at(page))
    expect_points(page, "throughput", 15)
    assert bar_totals(page) == (6, 2)
    screenshot(page, "overview-charts")

    page.locator('.window-picker a[data-window="1h"]').click()
    expect(page).to_have_url(f"{stack.dashboard}/?window=1h")
    expect_points(page, "throughput", 60)
    expect_points(page, "depth", 60)
    assert bar_totals(page) == (6, 2)

    page.locator('tr[data-task="send_webhook"] a', has_text="send_webhook").click()
    expect(page).to_have_url(f"{stack.dashboard}/tasks/send_webhook")
    expect(page.locator("h1")).to_have_text("Task send_webhook")
    for chart in ("throughput", "failure-rate", "run-time", "wait-time"):
        expect_points(page, chart, 60)
    assert bar_totals(page) == (6, 2)
    rates = page.locator('svg[data-chart="failure-rate"] [data-point] > title').all_text_contents()
    assert sum(bool(re.search(r"% failed \(\d+ of \d+\)", rate)) for rate in rates) in (1, 2)
    failures = page.locator('tr[data-error-type="WebhookRejectedError"]')
    expect(failures.locator("td").nth(1)).to_have_text("2")
    expect(page.locator('[data-section="retry"]')).to_contain_text("Max attempts")
    screenshot(page, "task-page")

    page.locator("[data-dead-letters-link]").click()
    expect(page).to_have_url(f"{stack.dashboard}/dead-letters?task=send_webhook")
    for job in refused:
        expect(page.locator(f'tr[data-job-id="{job}"]')).to_be_visible()
