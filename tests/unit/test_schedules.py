"""Schedules: registry names and checks, firing a tick once across schedulers, the last run, late
wake-ups, disabled schedules, the worker's start-up, and GET /schedules."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from structlog.testing import capture_logs

from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._keys import Keys
from arq_jobs._schedules import scheduler as scheduler_module
from arq_jobs._schedules.cron import Cron
from arq_jobs._schedules.scheduler import Scheduler
from arq_jobs._schedules.views import Fired, ScheduleStore, fire, tick_job_id
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import Schedule, Task, TaskInput, TaskRegistry, load_registry, task
from tests.apps import create_app

from .conftest import MakeWorker, make_settings

T0 = datetime(2025, 1, 1, 12, 0, 0, 500_000, tzinfo=UTC)


class Note(TaskInput):
    note: str


@task(schedule=Cron("* * * * * *", name="every_second", input={"note": "tick"}))
async def ping(ctx: JobContext, data: Note) -> str:
    """Answer the note."""
    return data.note


@task(
    queue="low",
    schedule=[
        Cron("0 3 * * *", input={"note": "a"}),
        Cron("0 9 * * mon-fri", timezone="Europe/Paris", input={"note": "b"}),
    ],
)
async def nightly(ctx: JobContext, data: Note) -> str:
    """Answer the note at night."""
    return data.note


async def echo(ctx: JobContext, data: Note) -> str:
    return data.note


def scheduled(name: str, *crons: Cron) -> Task[Note, str]:
    return task(name=name, schedule=list(crons))(echo)


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry([ping, nightly])


@pytest.fixture
def settings() -> Settings:
    return make_settings(disabled_schedules=("nightly-2",))


def schedule_named(registry: TaskRegistry, name: str) -> Schedule:
    return next(s for s in registry.schedules if s.name == name)


async def schedule_jobs(redis: ArqRedis) -> list[str]:
    found = [key.decode().removeprefix("unit:job:") async for key in redis.scan_iter("unit:job:cron-*")]
    return sorted(found)


def fired_events(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == "schedule.fired"]


def test_the_registry_names_each_schedule(registry: TaskRegistry) -> None:
    found = [(s.name, s.task.name, s.cron.expression, s.cron.timezone) for s in registry.schedules]
    assert found == [
        ("every_second", "ping", "* * * * * *", "UTC"),
        ("nightly-1", "nightly", "0 3 * * *", "UTC"),
        ("nightly-2", "nightly", "0 9 * * mon-fri", "Europe/Paris"),
    ]
    single = scheduled("lonely", Cron("@daily", input={"note": "x"}))
    assert [s.name for s in TaskRegistry([single]).schedules] == ["lonely"]
    registry.check_schedules()


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        (
            [
                scheduled("a", Cron("@daily", name="x", input={"note": ""})),
                scheduled("b", Cron("@daily", name="x", input={"note": ""})),
            ],
            "schedule 'x' is declared twice (by tasks 'a' and 'b')",
        ),
        (
            [
                scheduled(
                    "a",
                    Cron("@daily", name="x", input={"note": ""}),
                    Cron("@hourly", name="x", input={"note": ""}),
                )
            ],
            "schedule 'x' is declared twice (by task 'a')",
        ),
        (
            [
                scheduled("a", Cron("@daily", input={"note": ""})),
                scheduled("b", Cron("@daily", name="a", input={"note": ""})),
            ],
            "schedule 'a' is declared twice (by tasks 'a' and 'b')",
        ),
        (
            [scheduled("a", Cron("@daily", name="every day", input={"note": ""}))],
            "schedule 'every day' of task 'a': not a valid schedule name (use letters, digits, '_', '.', '-')",
        ),
        (
            [scheduled("a", Cron("@daily", input={"note": 5}))],
            "schedule 'a': invalid input for task 'a': note: Input should be a valid string",
        ),
        (
            [scheduled("a", Cron("@daily"), Cron("@hourly", input={"note": ""}))],
            "schedule 'a-1': invalid input for task 'a': note: Field required",
        ),
    ],
)
def test_the_registry_refuses_a_bad_schedule_naming_it(tasks: list[Task[Any, Any]], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        TaskRegistry(tasks).check_schedules()
    assert str(refused.value) == message
    with pytest.raises(ValueError) as refused:
        create_app(make_settings(), TaskRegistry(tasks))
    assert str(refused.value) == message


@pytest.fixture
def bad_schedule_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A task package whose one task's schedule gives an input its model refuses."""
    name = "schedule_probe_tasks"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "reports.py").write_text(
        "from pydantic import BaseModel\n"
        "from arq_jobs._schedules.cron import Cron\n"
        "from arq_jobs._tasks.registry import task\n\n\n"
        "class In(BaseModel):\n    rows: int\n\n\n"
        "@task(schedule=Cron('0 6 * * *', name='morning_report', input={'rows': 'many'}))\n"
        "async def report(ctx, data: In) -> int:\n    return data.rows\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


def test_a_bad_schedule_stops_start_up_with_one_line(bad_schedule_package: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        load_registry(make_settings(task_packages=(bad_schedule_package,)))
    assert stopped.value.code == (
        "invalid settings: schedule 'morning_report': invalid input for task 'report': rows: Input should be "
        "a valid integer, unable to parse string as an integer"
    )


def test_settings_read_the_schedule_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (make_settings().schedules_enabled, make_settings().disabled_schedules) == (True, ())
    monkeypatch.setenv("JOBS_SCHEDULES_ENABLED", "false")
    monkeypatch.setenv("JOBS_DISABLED_SCHEDULES", "every_second, nightly-2,")
    configured = make_settings()
    assert (configured.schedules_enabled, configured.disabled_schedules) == (
        False,
        ("every_second", "nightly-2"),
    )


async def test_two_schedulers_firing_the_same_tick_make_one_job(
    arq_redis: ArqRedis, settings: Settings, registry: TaskRegistry, job_client: JobClient
) -> None:
    every_second = schedule_named(registry, "every_second")
    schedulers = [Scheduler(JobClient(arq_redis, settings, registry), [every_second]) for _ in range(3)]
    for scheduler in schedulers:
        scheduler.plan(T0)
    with capture_logs() as logs:
        fired = await asyncio.gather(*(s.fire_due(T0 + timedelta(seconds=0.6)) for s in schedulers))
    tick = datetime(2025, 1, 1, 12, 0, 1, tzinfo=UTC)
    assert fired == [[(every_second, tick)]] * 3
    job_id = tick_job_id("every_second", int(tick.timestamp()) * 1000, "unit")
    assert await schedule_jobs(arq_redis) == [job_id]
    assert await arq_redis.zrange("unit:queue:default", 0, -1) == [job_id.encode()]
    status = await job_client.status(job_id)
    assert (status.task, status.schedule, status.status, status.queue) == (
        "ping",
        "every_second",
        "pending",
        "default",
    )
    assert (await job_client.details(job_id)).input == {"note": "tick"}
    store = ScheduleStore(arq_redis, Keys("unit"))
    assert await store.last_runs(["every_second", "nightly-1"]) == [
        Fired(int(tick.timestamp()) * 1000, job_id),
        None,
    ]
    assert fired_events(logs) == [
        {
            "event": "schedule.fired",
            "log_level": "info",
            "schedule": "every_second",
            "task": "ping",
            "job_id": job_id,
            "tick": "2025-01-01T12:00:01+00:00",
        }
    ]
    again = await fire(job_client, every_second, tick)
    assert (again.job_id, again.replayed) == (job_id, True)
    assert [s.due["every_second"] for s in schedulers] == [tick + timedelta(seconds=1)] * 3


async def test_a_late_wake_up_fires_only_the_latest_due_tick(
    arq_redis: ArqRedis, settings: Settings, registry: TaskRegistry
) -> None:
    every_second = schedule_named(registry, "every_second")
    scheduler = Scheduler(JobClient(arq_redis, settings, registry), [every_second])
    scheduler.plan(T0)
    with capture_logs() as logs:
        fired = await scheduler.fire_due(T0 + timedelta(seconds=10.2))
    latest = datetime(2025, 1, 1, 12, 0, 10, tzinfo=UTC)
    assert fired == [(every_second, latest)]
    assert await schedule_jobs(arq_redis) == [
        tick_job_id("every_second", int(latest.timestamp()) * 1000, "unit")
    ]
    assert scheduler.due["every_second"] == latest + timedelta(seconds=1)
    skipped = [e for e in logs if e["event"] == "schedule.ticks_skipped"]
    assert skipped == [
        {
            "event": "schedule.ticks_skipped",
            "log_level": "warning",
            "schedule": "every_second",
            "first_skipped": "2025-01-01T12:00:01+00:00",
            "fired": "2025-01-01T12:00:10+00:00",
        }
    ]


async def test_planning_reads_the_clock_not_the_last_run(
    arq_redis: ArqRedis, settings: Settings, registry: TaskRegistry
) -> None:
    every_second = schedule_named(registry, "every_second")
    before = Scheduler(JobClient(arq_redis, settings, registry), [every_second])
    before.plan(T0)
    await before.fire_due(T0 + timedelta(seconds=1))
    # a process that starts 100 s later begins at its own next tick: the 99 missed ones are not made
    after = Scheduler(JobClient(arq_redis, settings, registry), [every_second])
    after.plan(T0 + timedelta(seconds=100))
    assert after.due["every_second"] == datetime(2025, 1, 1, 12, 1, 41, tzinfo=UTC)
    assert await after.fire_due(T0 + timedelta(seconds=100.4)) == []
    assert await after.fire_due(T0 + timedelta(seconds=100.5)) == [
        (every_second, datetime(2025, 1, 1, 12, 1, 41, tzinfo=UTC))
    ]
    assert len(await schedule_jobs(arq_redis)) == 2


async def test_the_clock_going_back_plans_again_from_it(
    arq_redis: ArqRedis, settings: Settings, registry: TaskRegistry
) -> None:
    every_second = schedule_named(registry, "every_second")
    scheduler = Scheduler(JobClient(arq_redis, settings, registry), [every_second])
    scheduler.plan(T0)
    back = T0 - timedelta(hours=1)
    assert await scheduler.fire_due(back) == []
    assert scheduler.due["every_second"] == datetime(2025, 1, 1, 11, 0, 1, tzinfo=UTC)
    assert scheduler.sleep_s(back) == pytest.approx(0.5)
    assert await scheduler.fire_due(back + timedelta(seconds=0.5)) == [
        (every_second, datetime(2025, 1, 1, 11, 0, 1, tzinfo=UTC))
    ]


async def test_the_last_run_never_moves_back(arq_redis: ArqRedis) -> None:
    store = ScheduleStore(arq_redis, Keys("unit"))
    assert await store.record("nightly-1", Fired(2_000, "cron-nightly-1-2000")) is True
    assert await store.record("nightly-1", Fired(1_000, "cron-nightly-1-1000")) is False
    assert await store.record("nightly-1", Fired(2_000, "other")) is False
    assert await store.last_runs(["nightly-1"]) == [Fired(2_000, "cron-nightly-1-2000")]
    assert await store.record("nightly-1", Fired(3_000, "cron-nightly-1-3000")) is True
    assert await arq_redis.hgetall("unit:schedule:nightly-1") == {
        b"tick": b"3000",
        b"job_id": b"cron-nightly-1-3000",
    }


async def test_redis_down_is_logged_and_the_next_tick_is_planned(
    settings: Settings, registry: TaskRegistry
) -> None:
    every_second = schedule_named(registry, "every_second")
    down = ArqRedis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        scheduler = Scheduler(JobClient(down, settings, registry), [every_second])
        scheduler.plan(T0)
        with capture_logs() as logs:
            fired = await scheduler.fire_due(T0 + timedelta(seconds=1))
    finally:
        await down.aclose()
    tick = datetime(2025, 1, 1, 12, 0, 1, tzinfo=UTC)
    assert fired == [(every_second, tick)]
    assert scheduler.due["every_second"] == tick + timedelta(seconds=1)
    failures = [e for e in logs if e["event"] == "schedule.fire_failed"]
    assert [(e["log_level"], e["schedule"], e["tick"]) for e in failures] == [
        ("warning", "every_second", "2025-01-01T12:00:01+00:00")
    ]
    assert "ConnectionError" in failures[0]["error"]


def test_a_worker_fires_only_enabled_schedules_unless_turned_off(
    arq_redis: ArqRedis, registry: TaskRegistry
) -> None:
    def names(settings: Settings) -> list[str] | None:
        scheduler = Scheduler.for_worker(JobClient(arq_redis, settings, registry))
        return None if scheduler is None else [s.name for s in scheduler.schedules]

    assert names(make_settings()) == ["every_second", "nightly-1", "nightly-2"]
    assert names(make_settings(disabled_schedules=("nightly-2", "no_such_schedule"))) == [
        "every_second",
        "nightly-1",
    ]
    assert names(make_settings(disabled_schedules=("every_second", "nightly-1", "nightly-2"))) is None
    assert names(make_settings(schedules_enabled=False)) is None
    assert Scheduler.for_worker(JobClient(arq_redis, make_settings(), TaskRegistry([echo_task]))) is None


echo_task = task(name="echo")(echo)


async def test_the_worker_starts_its_scheduler_at_start_up_and_stops_it_at_shutdown(
    make_worker: MakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, list[str]]] = []

    def start(self: Scheduler) -> None:  # recorded, not run: no real ticks during the test
        calls.append(("start", [s.name for s in self.schedules]))

    async def stop(self: Scheduler) -> None:
        calls.append(("stop", [s.name for s in self.schedules]))

    monkeypatch.setattr(scheduler_module.Scheduler, "start", start)
    monkeypatch.setattr(scheduler_module.Scheduler, "stop", stop)
    for settings in (
        make_settings(disabled_schedules=("nightly-1",)),
        make_settings(schedules_enabled=False),
    ):
        worker = make_worker(settings, burst=True)
        try:
            await worker.main()
        finally:
            await worker.on_shutdown(worker.ctx)  # type: ignore[misc]
    names = ["every_second", "nightly-2"]
    assert calls == [("start", names), ("stop", names)]


async def test_get_schedules_lists_each_schedule_with_its_next_tick_and_last_run(
    client: httpx.AsyncClient,
    arq_redis: ArqRedis,
    registry: TaskRegistry,
    job_client: JobClient,
    make_worker: MakeWorker,
) -> None:
    tick = datetime(2025, 1, 1, 12, 0, 1, tzinfo=UTC)
    job_id = tick_job_id("every_second", int(tick.timestamp()) * 1000, "unit")
    await fire(job_client, schedule_named(registry, "every_second"), tick)

    async def listed() -> list[dict[str, Any]]:
        before = datetime.now(UTC)
        response = await client.get("/schedules")
        after = datetime.now(UTC)
        assert response.status_code == 200
        schedules: list[dict[str, Any]] = response.json()["schedules"]
        for entry in schedules:
            if entry["next_run_at"] is not None:
                cron = schedule_named(registry, entry["name"]).cron
                next_run = datetime.fromisoformat(entry["next_run_at"])
                assert next_run in {cron.next_after(before), cron.next_after(after)}
                entry["next_run_at"] = "<next tick>"
        return schedules

    def expected(last_run: dict[str, Any] | None) -> list[dict[str, Any]]:
        return [
            {
                "name": "every_second",
                "task": "ping",
                "cron": "* * * * * *",
                "timezone": "UTC",
                "queue": "default",
                "enabled": True,
                "next_run_at": "<next tick>",
                "last_run": last_run,
            },
            {
                "name": "nightly-1",
                "task": "nightly",
                "cron": "0 3 * * *",
                "timezone": "UTC",
                "queue": "low",
                "enabled": True,
                "next_run_at": "<next tick>",
                "last_run": None,
            },
            {
                "name": "nightly-2",
                "task": "nightly",
                "cron": "0 9 * * mon-fri",
                "timezone": "Europe/Paris",
                "queue": "low",
                "enabled": False,
                "next_run_at": None,
                "last_run": None,
            },
        ]

    last_run = {"job_id": job_id, "scheduled_for": "2025-01-01T12:00:01Z", "status": "pending"}
    assert await listed() == expected(last_run)

    worker = make_worker(make_settings(schedules_enabled=False), burst=True)
    try:
        await worker.main()
    finally:
        await worker.on_shutdown(worker.ctx)  # type: ignore[misc]
    assert await listed() == expected({**last_run, "status": "succeeded"})

    await arq_redis.delete(f"unit:job:{job_id}", Keys.arq_result(job_id))  # the job's record expired
    assert await listed() == expected({**last_run, "status": None})
