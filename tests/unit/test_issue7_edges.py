"""Edges of issue 7 without services: workflow specs that are wrong in odd ways (422 naming the path,
never a 500), odd workflow ids, cron ticks across DST checked against a brute-force reading of the
wall clock, schedules fired by a pool of another queue, and the bugs found around them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest
from arq.connections import ArqRedis

from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._keys import Keys
from arq_jobs._schedules import scheduler as scheduler_module
from arq_jobs._schedules.cron import Cron
from arq_jobs._schedules.views import ScheduleStore, fire, tick_job_id
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, TaskRegistry, load_registry, task
from arq_jobs._worker.context import SCHEDULER_KEY, shutdown, startup
from arq_jobs._worker.settings import worker_options
from tests.integration.tasks.edge_probes import edge_unjsonable
from tests.integration.tasks.workflow_steps import wf_add, wf_double, wf_total
from tests.shipped import registry as shipped

from .conftest import RunWorker, make_settings

QUEUES = ("high", "default", "low", "lifecycle")


class Note(TaskInput):
    note: str


@task(queue="low", schedule=Cron("0 3 * * *", name="low_nightly", input={"note": "low"}))
async def low_chore(ctx: JobContext, data: Note) -> str:
    """A chore of the `low` queue, at 03:00 every night."""
    return data.note


@task(schedule=Cron("0 4 * * *", name="default_nightly", input={"note": "default"}))
async def default_chore(ctx: JobContext, data: Note) -> str:
    """A chore of the default queue, at 04:00 every night."""
    return data.note


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry([*shipped, wf_add, wf_double, wf_total, edge_unjsonable, low_chore, default_chore])


@pytest.fixture
def settings() -> Settings:
    return make_settings(queues=QUEUES)


# ------------------------------------------------------------------------- workflow spec mistakes

ADD = {"task": "wf_add", "input": {"a": 2, "b": 3}}


def refused(message: str, path: str | None, **fields: Any) -> dict[str, Any]:
    return {"error": "invalid_workflow", "message": f"invalid workflow: {message}", "path": path, **fields}


SPEC_EDGES: list[tuple[str, Any, dict[str, Any]]] = [
    (
        "no type",
        {"steps": [ADD]},
        refused("type: `type` must be chain, group or chord, not None", "type"),
    ),
    (
        "type not a string",
        {"type": ["chain"], "steps": [ADD]},
        refused("type: `type` must be chain, group or chord, not ['chain']", "type"),
    ),
    (
        "steps not a list",
        {"type": "chain", "steps": {"0": ADD}},
        refused("steps: `steps` is a list of steps", "steps"),
    ),
    (
        "a key of no spec",
        {"type": "group", "steps": [ADD], "name": "nightly"},
        refused("unknown field 'name' (allowed: steps, type)", None),
    ),
    (
        "a callback on a chain",
        {"type": "chain", "steps": [ADD], "callback": {"task": "wf_total"}},
        refused("unknown field 'callback' (allowed: steps, type)", None),
    ),
    (
        "a chord's callback not an object",
        {"type": "chord", "steps": [ADD], "callback": None},
        refused("callback: a step is an object with `task` (and `input`, `queue`)", "callback"),
    ),
    (
        "a group as a chord's callback",
        {"type": "chord", "steps": [ADD], "callback": {"type": "group", "steps": [{"task": "wf_total"}]}},
        refused("callback: groups nest only in a chain, one level deep", "callback"),
    ),
    (
        "1,001 steps in a chain",  # over JOBS_MAX_WORKFLOW_STEPS (1000), counted before anything is read
        {"type": "chain", "steps": [ADD] + [{"task": "wf_double"}] * 1000},
        refused(
            "it has 1001 steps (group members and callbacks included), more than the 1000 a workflow may "
            "have (JOBS_MAX_WORKFLOW_STEPS)",
            None,
            steps=1001,
            limit=1000,
        ),
    ),
    (
        "1,001 members in a chain's group",
        {"type": "chain", "steps": [ADD, {"type": "group", "steps": [{"task": "wf_double"}] * 1001}]},
        refused(
            "it has 1002 steps (group members and callbacks included), more than the 1000 a workflow may "
            "have (JOBS_MAX_WORKFLOW_STEPS)",
            None,
            steps=1002,
            limit=1000,
        ),
    ),
    (
        "a group in a group workflow",
        {"type": "group", "steps": [{"type": "group", "steps": [ADD]}]},
        refused("steps[0]: groups nest only in a chain, one level deep", "steps[0]"),
    ),
    (
        "a chain in a chain",
        {"type": "chain", "steps": [ADD, {"type": "chain", "steps": [ADD]}]},
        refused("steps[1]: a chain's step is a task or a group, not a 'chain': only groups nest", "steps[1]"),
    ),
    (
        "a group with a queue",
        {"type": "chain", "steps": [{"type": "group", "steps": [ADD], "queue": "high"}]},
        refused("steps[0]: unknown field 'queue' (allowed: steps, type)", "steps[0]"),
    ),
    (
        "a step that is a string",
        {"type": "chain", "steps": ["wf_add"]},
        refused("steps[0]: a step is an object with `task` (and `input`, `queue`)", "steps[0]"),
    ),
    (
        "a task that is not a name",
        {"type": "chain", "steps": [{"task": {"name": "wf_add"}}]},
        refused("steps[0]: a step names its `task`", "steps[0]"),
    ),
    (
        "a queue that is not a name",
        {"type": "chain", "steps": [{**ADD, "queue": 5}]},
        refused("steps[0] (wf_add): `queue` is the name of a queue", "steps[0]", task="wf_add"),
    ),
    (
        "an input JSON cannot store",
        {"type": "chain", "steps": [{"task": "wf_add", "input": {"a": 2**70, "b": 1}}]},
        refused(
            "steps[0] (wf_add): its input cannot be stored as JSON as it is (a SecretStr, an excluded "
            "field, an integer beyond 64 bits?)",
            "steps[0]",
            task="wf_add",
        ),
    ),
    (
        "a member of a first group without its input",
        {"type": "chain", "steps": [{"type": "group", "steps": [{"task": "wf_add"}]}]},
        refused(
            "steps[0].steps[0] (wf_add): invalid input for task 'wf_add': a: Field required; b: Field required",
            "steps[0].steps[0]",
            task="wf_add",
            detail=[
                {"loc": ["a"], "msg": "Field required", "type": "missing"},
                {"loc": ["b"], "msg": "Field required", "type": "missing"},
            ],
        ),
    ),
]


@pytest.mark.parametrize(
    ("spec", "answer"),
    [(spec, answer) for _, spec, answer in SPEC_EDGES],
    ids=[name for name, *_ in SPEC_EDGES],
)
async def test_odd_specs_are_422_naming_the_path_and_store_nothing(
    client: httpx.AsyncClient, arq_redis: ArqRedis, spec: Any, answer: dict[str, Any]
) -> None:
    response = await client.post("/workflows", json=spec)
    assert (response.status_code, response.json()) == (422, answer)
    assert await arq_redis.keys("*") == []


@pytest.mark.parametrize("workflow_id", ["a:b:c", "*", "é", "a b", "\x00", "x" * 2000, "0" * 32 + ":0:0"])
async def test_odd_workflow_ids_are_404_naming_the_id(client: httpx.AsyncClient, workflow_id: str) -> None:
    url = f"/workflows/{quote(workflow_id, safe='')}"
    expected = {
        "error": "workflow_not_found",
        "message": f"no workflow with id {workflow_id!r} (unknown, or it has expired)",
        "workflow_id": workflow_id,
    }
    for response in (await client.get(url), await client.delete(url)):
        assert (response.status_code, response.json()) == (404, expected)


# ------------------------------------------------------------------------------------ cron and DST

# expressions with the wall times they match, written out by hand; `every_hour`: hour field `*`
WALL_RULES: list[tuple[str, Callable[[datetime], bool], bool]] = [
    ("*/10 * * * *", lambda w: w.minute % 10 == 0, True),
    ("0 * * * *", lambda w: w.minute == 0, True),
    ("30 2 * * *", lambda w: (w.hour, w.minute) == (2, 30), False),
    ("0 0 * * *", lambda w: (w.hour, w.minute) == (0, 0), False),
    ("*/15 1-3 * * *", lambda w: 1 <= w.hour <= 3 and w.minute % 15 == 0, False),
    ("45 23 * * *", lambda w: (w.hour, w.minute) == (23, 45), False),
]
# shifts at 01:00 UTC (Paris), 02:00 local (New York), midnight (Santiago), 02:45 (Chatham), and by
# 30 minutes (Lord Howe)
ZONES = ["Europe/Paris", "America/New_York", "America/Santiago", "Australia/Lord_Howe", "Pacific/Chatham"]


def transitions(zone: ZoneInfo, year: int) -> list[datetime]:
    """The UTC hours in `year` at which `zone`'s offset changes."""
    found = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    while moment.year == year:
        later = moment + timedelta(hours=1)
        if moment.astimezone(zone).utcoffset() != later.astimezone(zone).utcoffset():
            found.append(later)
        moment = later
    return found


def reference_ticks(
    zone: ZoneInfo, matches: Callable[[datetime], bool], every_hour: bool, start: datetime, end: datetime
) -> list[datetime]:
    """Every minute of real time in [start, end] whose wall time matches: a wall time that happens
    twice counts the second time only for every-hour schedules (the documented rule)."""
    ticks = []
    moment = start
    while moment <= end:
        local = moment.astimezone(zone)
        if matches(local.replace(tzinfo=None)) and (local.fold == 0 or every_hour):
            ticks.append(moment)
        moment += timedelta(minutes=1)
    return ticks


@pytest.mark.parametrize("name", ZONES)
def test_ticks_across_dst_changes_match_a_minute_by_minute_reading_of_the_wall_clock(name: str) -> None:
    zone = ZoneInfo(name)
    changes = transitions(zone, 2026)
    assert len(changes) == 2
    for change in changes:
        start, end = change - timedelta(hours=5), change + timedelta(hours=5)
        for expression, matches, every_hour in WALL_RULES:
            cron = Cron(expression, timezone=name)
            ticks = reference_ticks(
                zone, matches, every_hour, start - timedelta(hours=2), end + timedelta(days=1)
            )
            moment = start
            while moment < end:
                assert cron.next_after(moment) == next(t for t in ticks if t > moment), (expression, moment)
                window = [t for t in ticks if moment - timedelta(hours=2) <= t <= moment]
                latest = cron.latest_at_or_before(moment, not_before=moment - timedelta(hours=2))
                assert latest == (window[-1] if window else None), (expression, moment)
                moment += timedelta(minutes=7)


# ------------------------------------------------------------------------------------ schedules


async def test_a_worker_of_the_high_pool_fires_each_schedule_into_its_tasks_own_queue(
    arq_redis: ArqRedis, registry: TaskRegistry, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler_module.Scheduler, "start", lambda self: None)  # ticks fired by hand
    ctx = {**worker_options(settings, registry, queue="high")["ctx"], "redis": arq_redis}
    await startup(ctx)
    try:
        scheduler = ctx[SCHEDULER_KEY]
        night = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
        scheduler.plan(night)
        fired = await scheduler.fire_due(night + timedelta(hours=3))
    finally:
        await shutdown(ctx)
    assert sorted((s.name, tick.hour) for s, tick in fired) == [("default_nightly", 4), ("low_nightly", 3)]
    keys = Keys(settings.key_prefix)
    low_job = tick_job_id("low_nightly", int(datetime(2026, 3, 1, 3, tzinfo=UTC).timestamp()) * 1000, "unit")
    default_job = tick_job_id(
        "default_nightly", int(datetime(2026, 3, 1, 4, tzinfo=UTC).timestamp()) * 1000, "unit"
    )
    queued = {q: await arq_redis.zrange(keys.queue(q), 0, -1) for q in ("high", "default", "low")}
    assert queued == {"high": [], "default": [default_job.encode()], "low": [low_job.encode()]}
    client = JobClient(arq_redis, settings, registry)
    made = [await client.status(job_id) for job_id in (low_job, default_job)]
    assert [(s.queue, s.schedule, s.status.value) for s in made] == [
        ("low", "low_nightly", "pending"),
        ("default", "default_nightly", "pending"),
    ]


def test_an_unknown_name_in_the_disabled_schedules_stops_start_up_with_one_line() -> None:
    settings = make_settings(
        task_packages=("workers.tasks", "tests.integration.tasks"),
        queues=QUEUES,
        disabled_schedules=("every_secnod",),  # every_second, misspelt
    )
    with pytest.raises(SystemExit, match="JOBS_DISABLED_SCHEDULES.*'every_secnod'"):
        load_registry(settings)


async def test_two_deployments_on_one_redis_each_run_their_own_tick(
    arq_redis: ArqRedis, registry: TaskRegistry
) -> None:
    schedule = next(s for s in registry.schedules if s.name == "low_nightly")
    tick = datetime(2026, 3, 1, 3, tzinfo=UTC)
    made = []
    for prefix in ("staging", "production"):
        deployment = JobClient(arq_redis, make_settings(key_prefix=prefix), registry)
        await fire(deployment, schedule, tick)
        (last,) = await ScheduleStore(arq_redis, Keys(prefix)).last_runs([schedule.name])
        made.append(None if last is None else (await deployment.status(last.job_id)).status.value)
    assert made == ["pending", "pending"]


# --------------------------------------------------------------------- results JSON cannot carry


async def test_a_result_of_no_json_type_fails_the_job_into_the_dead_letters(
    job_client: JobClient, run_worker: RunWorker
) -> None:
    accepted = await job_client.enqueue(edge_unjsonable, edge_unjsonable.input_model(kind="object"))
    await run_worker(settings=make_settings(queues=QUEUES, queue_name="lifecycle"))
    status = await job_client.status(accepted.job_id)
    assert (status.status.value, status.dead_lettered, status.attempt) == ("failed", True, 1)
    letter = await job_client.dead_letters.get(accepted.job_id)
    assert (letter.task, letter.error.type) == ("edge_unjsonable", "PydanticSerializationError")
    assert (letter.reason, letter.attempts) == ("permanent_error", 1)  # the same result every time: no retry
