"""The version guard: live workers' task fingerprints in their heartbeats, the 409 task_not_served
refusal (HTTP, a user's route, workflows, dead-letter retries, the CLI), its per-process snapshot,
the setting that turns it off, and the skew shown by /health/workers and the dashboard."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from pydantic import BaseModel, Field, create_model

from arq_jobs._api.deps import AppState, get_state
from arq_jobs._cli.errors import ExitCode
from arq_jobs._client import JobClient
from arq_jobs._clock import now_ms
from arq_jobs._config import Settings
from arq_jobs._deadletters import DeadLetterStore
from arq_jobs._errors import TaskNotServedError
from arq_jobs._keys import Keys
from arq_jobs._tasks.registry import TaskInput, TaskRegistry, input_fingerprint
from arq_jobs._version_guard import VersionGuard
from arq_jobs._worker.context import RUNTIME_KEY
from arq_jobs._worker_registry import WorkerBeat, WorkerRegistry, WorkerTotals
from tests.apps import create_app
from tests.shipped import registry as shipped
from workers.tasks.noop import NoopInput, noop
from workers.tasks.reports import ReportInput, generate_report

from .conftest import Invoke, RunWorker, make_settings
from .test_cli import assert_error
from .test_dead_letters import add, letter
from .test_install import serving, shop_app

SHIPPED = shipped.input_fingerprints()
OTHER = "0123456789ab"  # an input-schema fingerprint no task here has
ADVICE = (
    "they run another version of the tasks, so the job was not queued. Deploy the same task code to "
    "the API and the workers (or set JOBS_VERSION_GUARD=false)"
)


async def live_worker(
    redis: ArqRedis,
    settings: Settings,
    name: str,
    tasks: dict[str, str] | None,
    *,
    queues: tuple[str, ...] = ("default",),
    age_s: float = 0,
    stopped: bool = False,
    registry_version: str = "aaaaaaaaaaaa",
) -> None:
    """Write the heartbeat of a worker serving `queues` with `tasks` (None: one too old to say)."""
    beat = WorkerBeat(
        worker_id=f"box:{name}",
        host="box",
        pid=1,
        queues=list(queues),
        concurrency=10,
        started_at=datetime.now(UTC),
        running=0,
        running_jobs=[],
        totals=WorkerTotals(),
        registry_version=registry_version,
        tasks=tasks,
        version="0.1.0",
        stopped=stopped,
    )
    async with redis.pipeline(transaction=True) as pipe:
        WorkerRegistry(redis, settings).beat(pipe, beat, now_ms() - round(age_s * 1000))
        await pipe.execute()


def without(name: str) -> dict[str, str]:
    return {task: fp for task, fp in SHIPPED.items() if task != name}


async def queued(redis: ArqRedis, queue: str = "default") -> int:
    return int(await redis.zcard(Keys("unit").queue(queue)))


# ---------------------------------------------------------------- the fingerprint


def model(**fields: Any) -> type[BaseModel]:
    built: type[BaseModel] = create_model("ReportInput", __base__=TaskInput, **fields)
    return built


def test_the_same_schema_has_the_same_fingerprint_and_a_changed_field_another() -> None:
    rows = model(rows=(int, Field(default=10, ge=1)))
    assert input_fingerprint(rows) == input_fingerprint(model(rows=(int, Field(default=10, ge=1))))
    assert len(input_fingerprint(rows)) == 12
    others = {
        input_fingerprint(model(rows=(str, Field(default="10")))),  # another type
        input_fingerprint(model(rows=(int, Field(default=10, ge=0)))),  # another constraint
        input_fingerprint(model(rows=(int, Field(default=10, ge=1)), title=(str, "x"))),  # a new field
        input_fingerprint(model(lines=(int, Field(default=10, ge=1)))),  # renamed
    }
    assert len(others) == 4 and input_fingerprint(rows) not in others


def test_documentation_does_not_change_the_fingerprint_but_a_field_named_title_does() -> None:
    rows = model(rows=(int, Field(default=10, ge=1)))
    documented = model(
        rows=(int, Field(default=10, ge=1, title="Rows", description="How many.", examples=[3]))
    )
    assert input_fingerprint(documented) == input_fingerprint(rows)
    assert input_fingerprint(
        model(rows=(int, Field(default=10, ge=1)), title=(str, "x"))
    ) != input_fingerprint(model(rows=(int, Field(default=10, ge=1)), other=(str, "x")))


def test_the_fingerprint_is_the_same_in_another_process() -> None:
    code = (
        "from workers.tasks.reports import ReportInput\n"
        "from arq_jobs._tasks.registry import input_fingerprint\n"
        "print(input_fingerprint(ReportInput))"
    )
    for seed in ("1", "2"):  # str hashes (and so set orders) differ between these processes
        found = subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        assert found.stdout.strip() == input_fingerprint(ReportInput) == generate_report.input_fingerprint


async def test_a_worker_reports_its_tasks_and_their_fingerprints(
    run_worker: RunWorker, job_client: JobClient
) -> None:
    await run_worker()
    (worker,) = await job_client.workers()
    assert worker.tasks == SHIPPED == {t.name: t.input_fingerprint for t in shipped}
    assert sorted(SHIPPED) == ["generate_report", "noop", "send_webhook"]


# ---------------------------------------------------------------- the refusal over HTTP


async def test_a_task_unknown_to_the_live_workers_is_409_and_nothing_is_queued(
    client: httpx.AsyncClient, arq_redis: ArqRedis, settings: Settings
) -> None:
    await live_worker(arq_redis, settings, "w1", without("noop"))
    response = await client.post("/jobs/noop", json={"value": 1})
    assert response.status_code == 409
    assert response.json() == {
        "error": "task_not_served",
        "message": f"task 'noop' is unknown to the 1 live worker(s) of queue 'default': {ADVICE}",
        "task": "noop",
        "queue": "default",
        "reason": "unknown_to_workers",
        "workers": 1,
        "api_input_schema": noop.input_fingerprint,
        "worker_input_schemas": [],
    }
    assert await queued(arq_redis) == 0
    # the tasks they serve are accepted
    assert (await client.post("/jobs/generate_report", json={})).status_code == 202


async def test_an_idempotent_replay_is_answered_with_its_job_whatever_the_workers_serve(
    client: httpx.AsyncClient, arq_redis: ArqRedis, settings: Settings
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = await client.post("/jobs/noop", json={"value": 1}, headers=headers)
    assert first.status_code == 202
    await live_worker(arq_redis, settings, "w1", without("noop"))
    replay = await client.post("/jobs/noop", json={"value": 1}, headers=headers)
    assert (replay.status_code, replay.json()["job_id"], replay.json()["idempotent_replay"]) == (
        200,
        first.json()["job_id"],
        True,
    )
    fresh = await client.post("/jobs/noop", json={"value": 1}, headers={"Idempotency-Key": "order-43"})
    assert (fresh.status_code, fresh.json()["error"]) == (409, "task_not_served")
    assert await queued(arq_redis) == 1


async def test_a_task_all_live_workers_run_with_another_schema_is_409(
    client: httpx.AsyncClient, arq_redis: ArqRedis, settings: Settings
) -> None:
    await live_worker(arq_redis, settings, "w1", {**SHIPPED, "noop": OTHER})
    await live_worker(arq_redis, settings, "w2", {**SHIPPED, "noop": "ba9876543210"})
    await live_worker(arq_redis, settings, "w3", without("noop"))
    response = await client.post("/jobs/noop", json={"value": 1})
    assert response.status_code == 409
    assert response.json() == {
        "error": "task_not_served",
        "message": (
            "the 3 live worker(s) of queue 'default' run task 'noop' with another input schema "
            f"(0123456789ab, ba9876543210; this API's: {noop.input_fingerprint}): {ADVICE}"
        ),
        "task": "noop",
        "queue": "default",
        "reason": "schema_mismatch",
        "workers": 3,
        "api_input_schema": noop.input_fingerprint,
        "worker_input_schemas": ["0123456789ab", "ba9876543210"],
    }
    assert await queued(arq_redis) == 0


async def test_one_live_worker_with_the_same_schema_is_enough(
    client: httpx.AsyncClient, arq_redis: ArqRedis, settings: Settings
) -> None:
    await live_worker(arq_redis, settings, "old", {**SHIPPED, "noop": OTHER})
    await live_worker(arq_redis, settings, "new", SHIPPED)
    assert (await client.post("/jobs/noop", json={"value": 1})).status_code == 202
    assert await queued(arq_redis) == 1


async def test_with_no_live_worker_on_the_queue_jobs_are_accepted(
    client: httpx.AsyncClient, arq_redis: ArqRedis, settings: Settings
) -> None:
    await live_worker(arq_redis, settings, "stale", without("noop"), age_s=60)  # 3 beats missed
    await live_worker(arq_redis, settings, "stopped", without("noop"), stopped=True)
    assert (await client.post("/jobs/noop", json={"value": 1})).status_code == 202
    assert sorted(w.state for w in await JobClient(arq_redis, settings, shipped).workers()) == [
        "stale",
        "stopped",
    ]
    assert await queued(arq_redis) == 1


async def test_live_workers_of_other_queues_only_refuse_nothing_on_this_one(
    client: httpx.AsyncClient, arq_redis: ArqRedis, settings: Settings
) -> None:
    await live_worker(arq_redis, settings, "w1", without("noop"), queues=("high",))
    assert (await client.post("/jobs/noop", json={"value": 1})).status_code == 202
    assert await queued(arq_redis, "default") == 1
    refused = await client.post("/jobs/noop", json={"value": 1}, params={"queue": "high"})
    assert (refused.status_code, refused.json()["reason"], refused.json()["queue"]) == (
        409,
        "unknown_to_workers",
        "high",
    )
    assert await queued(arq_redis, "high") == 0


async def test_a_live_worker_that_does_not_report_its_tasks_refuses_nothing(
    client: httpx.AsyncClient, arq_redis: ArqRedis, settings: Settings
) -> None:
    await live_worker(arq_redis, settings, "older", None)
    await live_worker(arq_redis, settings, "newer", without("noop"))
    assert (await client.post("/jobs/noop", json={"value": 1})).status_code == 202


async def test_turned_off_jobs_are_queued_whatever_the_workers_serve(arq_redis: ArqRedis) -> None:
    settings = make_settings(version_guard=False)
    await live_worker(arq_redis, settings, "w1", without("noop"))
    await live_worker(arq_redis, settings, "w2", {**SHIPPED, "generate_report": OTHER}, queues=("high",))
    app = create_app(settings, shipped)
    app.dependency_overrides[get_state] = lambda: AppState(settings, shipped, arq_redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        assert (await http.post("/jobs/noop", json={"value": 1})).status_code == 202
        assert (
            await http.post("/jobs/generate_report", json={}, params={"queue": "high"})
        ).status_code == 202
    assert JobClient(arq_redis, settings, shipped, guard=True).guard is None
    assert (await queued(arq_redis), await queued(arq_redis, "high")) == (1, 1)


def test_the_setting_reads_jobs_version_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).version_guard is True  # type: ignore[call-arg]
    monkeypatch.setenv("JOBS_VERSION_GUARD", "false")
    assert Settings(_env_file=None).version_guard is False  # type: ignore[call-arg]
    described = Settings.model_fields["version_guard"].description
    assert described is not None and "409 task_not_served" in described


# ---------------------------------------------------------------- every way in


async def test_a_users_route_with_jobs_dep_gets_the_409(
    settings: Settings, registry: TaskRegistry, arq_redis: ArqRedis
) -> None:
    events: list[str] = []
    await live_worker(arq_redis, settings, "w1", without("noop"))
    async with serving(shop_app(settings, registry, events), arq_redis, events) as http:
        response = await http.post("/orders")
        assert (response.status_code, response.json()["error"], response.json()["reason"]) == (
            409,
            "task_not_served",
            "unknown_to_workers",
        )
        assert (await http.post("/orders", params={"queue": "low"})).status_code == 202


async def test_a_workflow_with_a_step_no_live_worker_serves_is_409_and_stores_nothing(
    client: httpx.AsyncClient, arq_redis: ArqRedis, settings: Settings
) -> None:
    await live_worker(arq_redis, settings, "w1", without("generate_report"))
    spec = {"type": "chain", "steps": [{"task": "noop", "input": {"value": 1}}, {"task": "generate_report"}]}
    response = await client.post("/workflows", json=spec)
    assert response.status_code == 409
    assert response.json() == {
        "error": "task_not_served",
        "message": f"task 'generate_report' is unknown to the 1 live worker(s) of queue 'default': {ADVICE}",
        "task": "generate_report",
        "queue": "default",
        "reason": "unknown_to_workers",
        "workers": 1,
        "api_input_schema": generate_report.input_fingerprint,
        "worker_input_schemas": [],
        "path": "steps[1]",
    }
    assert await arq_redis.keys("unit:workflow:*") == []
    assert await queued(arq_redis) == 0
    await live_worker(arq_redis, settings, "w2", SHIPPED)
    assert (await client.post("/workflows", json=spec)).status_code == 202


async def test_retrying_a_dead_letter_is_refused_and_the_letter_kept(
    client: httpx.AsyncClient, arq_redis: ArqRedis, settings: Settings, job_client: JobClient
) -> None:
    store: DeadLetterStore = job_client.dead_letters
    await add(arq_redis, store, letter("old-job", now_ms() - 1_000))  # a noop job
    await live_worker(arq_redis, settings, "w1", {**SHIPPED, "noop": OTHER})
    response = await client.post("/dead-letters/old-job/retry")
    assert (response.status_code, response.json()["reason"], response.json()["task"]) == (
        409,
        "schema_mismatch",
        "noop",
    )
    assert (await client.get("/dead-letters/old-job")).status_code == 200
    assert await queued(arq_redis) == 0


async def test_the_cli_exits_with_the_conflict_code(
    invoke: Invoke,
    arq_redis: ArqRedis,
    settings: Settings,
) -> None:
    await live_worker(arq_redis, settings, "w1", without("noop"))
    assert_error(
        await invoke("enqueue", "noop"),
        ExitCode.CONFLICT,
        f"task 'noop' is unknown to the 1 live worker(s) of queue 'default': {ADVICE}",
    )
    assert await queued(arq_redis) == 0


async def test_a_workers_own_client_skips_the_guard(arq_redis: ArqRedis, settings: Settings) -> None:
    await live_worker(arq_redis, settings, "w1", without("noop"))
    with pytest.raises(TaskNotServedError):
        await JobClient(arq_redis, settings, shipped).enqueue(noop, NoopInput(value=1))
    worker_client = JobClient(arq_redis, settings, shipped, guard=False)
    assert worker_client.guard is None
    await worker_client.enqueue(noop, NoopInput(value=1))
    assert await queued(arq_redis) == 1


async def test_the_workers_runtime_client_has_no_guard(
    make_worker: Any, arq_redis: ArqRedis, settings: Settings
) -> None:
    worker = make_worker(burst=True)
    try:
        await worker.main()
        runtime = worker.ctx[RUNTIME_KEY]
        assert runtime.client is not None and runtime.client.guard is None
        assert runtime.tasks == SHIPPED
    finally:
        await worker.on_shutdown(worker.ctx)


# ---------------------------------------------------------------- one snapshot a second


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_snapshot_is_read_once_per_ttl_and_then_again(
    arq_redis: ArqRedis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    read = WorkerRegistry.alive_beats

    async def counted(self: WorkerRegistry, now: int) -> list[WorkerBeat]:
        reads.append(now)
        return await read(self, now)

    monkeypatch.setattr(WorkerRegistry, "alive_beats", counted)
    clock = Clock()
    guard = VersionGuard(WorkerRegistry(arq_redis, settings), ttl_s=1.0, clock=clock)
    await guard.check(noop, "default")  # no live worker yet
    await live_worker(arq_redis, settings, "w1", without("noop"))
    for _ in range(5):
        await guard.check(noop, "default")  # the snapshot without it is still used
    clock.now += 0.999
    await guard.check(noop, "default")
    assert len(reads) == 1
    clock.now += 0.001
    with pytest.raises(TaskNotServedError) as refused:
        await guard.check(noop, "default")
    assert refused.value.reason == "unknown_to_workers" and len(reads) == 2


async def test_the_apis_requests_share_one_snapshot(
    settings: Settings, registry: TaskRegistry, arq_redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    read = WorkerRegistry.alive_beats

    async def counted(self: WorkerRegistry, now: int) -> list[WorkerBeat]:
        reads.append(now)
        return await read(self, now)

    monkeypatch.setattr(WorkerRegistry, "alive_beats", counted)
    events: list[str] = []
    await live_worker(arq_redis, settings, "w1", SHIPPED)
    async with serving(shop_app(settings, registry, events), arq_redis, events) as http:
        for _ in range(5):
            assert (await http.post("/jobs/noop", json={"value": 1})).status_code == 202
        assert (await http.post("/orders")).status_code == 202
    assert len(reads) == 1


async def test_the_snapshot_reads_only_live_workers_in_one_round_trip(
    arq_redis: ArqRedis, settings: Settings
) -> None:
    await live_worker(arq_redis, settings, "alive", SHIPPED)
    await live_worker(arq_redis, settings, "stale", SHIPPED, age_s=60)
    await live_worker(arq_redis, settings, "stopped", SHIPPED, stopped=True)
    await arq_redis.zadd("unit:workers", {"expired": now_ms()})  # its heartbeat key is gone
    beats = await WorkerRegistry(arq_redis, settings).alive_beats(now_ms())
    assert [b.worker_id for b in beats] == ["box:alive"]


# ---------------------------------------------------------------- skew in /health/workers and the dashboard


async def test_health_workers_shows_the_skew_and_keeps_its_status_rules(
    client: httpx.AsyncClient, arq_redis: ArqRedis, settings: Settings
) -> None:
    await live_worker(
        arq_redis, settings, "w1", {"generate_report": SHIPPED["generate_report"], "noop": OTHER}
    )
    await live_worker(arq_redis, settings, "w2", SHIPPED, queues=("low",), registry_version=shipped.version)
    response = await client.get("/health/workers")
    assert response.status_code == 200
    skew = {
        "api_registry_version": shipped.version,
        "worker_registry_versions": sorted(["aaaaaaaaaaaa", shipped.version]),
        "tasks_unknown_to_workers": ["send_webhook"],
        "tasks_with_schema_mismatch": ["noop"],
        "version_guard": True,
    }
    assert response.json() == {
        "status": "ok",
        "starved_queues": [],
        "queues": [
            {"name": "high", "pending": 0, "workers": 0},
            {"name": "default", "pending": 0, "workers": 1},
            {"name": "low", "pending": 0, "workers": 1},
        ],
        "error": None,
        "message": None,
        "skew": skew,
    }
    # a pending job on a queue without a live worker: 503 as before, with the skew
    assert (await client.post("/jobs/noop", json={"value": 1}, params={"queue": "high"})).status_code == 202
    starved = await client.get("/health/workers")
    assert starved.status_code == 503
    assert (starved.json()["starved_queues"], starved.json()["skew"]) == (["high"], skew)


async def test_health_workers_without_skew(
    client: httpx.AsyncClient, arq_redis: ArqRedis, settings: Settings
) -> None:
    assert (await client.get("/health/workers")).json()["skew"] == {
        "api_registry_version": shipped.version,
        "worker_registry_versions": [],
        "tasks_unknown_to_workers": [],
        "tasks_with_schema_mismatch": [],
        "version_guard": True,
    }
    await live_worker(arq_redis, settings, "w1", SHIPPED, registry_version=shipped.version)
    body = (await client.get("/health/workers")).json()
    assert body["skew"]["worker_registry_versions"] == [shipped.version]
    assert body["skew"]["tasks_unknown_to_workers"] == body["skew"]["tasks_with_schema_mismatch"] == []


def skew_box(html: str) -> str | None:
    start = html.find("data-skew>")
    return None if start < 0 else " ".join(html[start : html.index("</div>", start)].split())


async def test_the_dashboard_overview_warns_of_skew(
    client: httpx.AsyncClient, arq_redis: ArqRedis, settings: Settings
) -> None:
    await live_worker(arq_redis, settings, "same", SHIPPED, registry_version=shipped.version)
    assert skew_box((await client.get("/dashboard/")).text) is None

    # other task code on the workers of other queues: the tasks (all on `default`) can still run
    await live_worker(arq_redis, settings, "w1", without("send_webhook") | {"noop": OTHER}, queues=("low",))
    versions = ", ".join(sorted(["aaaaaaaaaaaa", shipped.version]))
    assert skew_box((await client.get("/dashboard/")).text) == (
        "data-skew> <strong>Live workers run other task code than this API:</strong> task registry "
        f"{shipped.version} here, {versions} on the workers."
    )


REFUSED = (
    "New jobs of these tasks are refused (409 task_not_served) until API and workers run the same tasks."
)
QUEUED = "Their jobs are queued anyway (JOBS_VERSION_GUARD=false) and will fail on the workers."


@pytest.mark.parametrize(("guard", "consequence"), [(True, REFUSED), (False, QUEUED)])
async def test_the_dashboard_overview_names_the_tasks_the_workers_cannot_run(
    arq_redis: ArqRedis, registry: TaskRegistry, guard: bool, consequence: str
) -> None:
    settings = make_settings(version_guard=guard)
    await live_worker(arq_redis, settings, "w1", without("send_webhook") | {"noop": OTHER})
    app = create_app(settings, registry)
    app.dependency_overrides[get_state] = lambda: AppState(settings, registry, arq_redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        box = skew_box((await http.get("/dashboard/")).text)
    assert box == (
        "data-skew> <strong>Live workers run other task code than this API:</strong> task registry "
        f"{shipped.version} here, aaaaaaaaaaaa on the workers. Unknown to the workers of their queue: "
        "<span data-skew-unknown>send_webhook</span>. Another input schema on the workers of their "
        f"queue: <span data-skew-mismatch>noop</span>. {consequence}"
    )
