"""The version guard with real processes: the API (`python -m app`) and a worker started as users
start it (`arq workers.WorkerSettings`) running an older version of the tasks — `noop` with another
input model, none of the API's other tasks. The API refuses their jobs with 409 task_not_served
(computing the same fingerprints as the worker process does), accepts jobs for a queue the worker
does not serve, and queues everything with JOBS_VERSION_GUARD=false."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from arq_jobs._tasks.registry import TaskRegistry, input_fingerprint
from tests.integration.skewed_tasks.noop import NoopInput as OldNoopInput
from workers.tasks.noop import NoopInput

from .conftest import TASK_PACKAGES, Service, delete_prefix, http_ok, service_env, start_api, start_worker

ADVICE = (
    "they run another version of the tasks, so the job was not queued. Deploy the same task code to "
    "the API and the workers (or set JOBS_VERSION_GUARD=false)"
)


@pytest.fixture
def prefix(redis_url: str, key_prefix: str) -> Iterator[str]:
    name = f"{key_prefix}-guard-{uuid.uuid4().hex[:8]}"
    yield name
    delete_prefix(redis_url, name)


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in reversed(started):
        service.stop()


def api(redis_url: str, prefix: str, log_dir: Path, services: list[Service], name: str, **env: str) -> str:
    service, base = start_api(service_env(redis_url, prefix, **env), log_dir, name)
    services.append(service)
    service.wait_until(http_ok(f"{base}/health/ready"))
    return base


async def test_jobs_the_live_workers_cannot_run_are_refused_until_the_guard_is_off(
    redis_url: str, prefix: str, tmp_path: Path, services: list[Service]
) -> None:
    guarded = api(redis_url, prefix, tmp_path, services, "api")
    worker, _ = start_worker(
        redis_url,
        prefix,
        tmp_path,
        "old-worker",
        JOBS_TASK_PACKAGES="tests.integration.skewed_tasks",
        JOBS_DISABLED_SCHEDULES="",  # the shipped settings name a schedule only the API's tasks have
    )
    services.append(worker)
    ours = TaskRegistry.discover_all(TASK_PACKAGES.split(","))
    theirs = TaskRegistry.discover("tests.integration.skewed_tasks")

    async with httpx.AsyncClient(base_url=guarded, timeout=10) as http:
        mismatch = await http.post("/jobs/noop", json={"value": 1})
        assert mismatch.status_code == 409, mismatch.text
        assert mismatch.json() == {
            "error": "task_not_served",
            "message": (
                "the 1 live worker(s) of queue 'default' run task 'noop' with another input schema "
                f"({input_fingerprint(OldNoopInput)}; this API's: {input_fingerprint(NoopInput)}): {ADVICE}"
            ),
            "task": "noop",
            "queue": "default",
            "reason": "schema_mismatch",
            "workers": 1,
            "api_input_schema": input_fingerprint(NoopInput),
            "worker_input_schemas": [input_fingerprint(OldNoopInput)],
        }
        unknown = await http.post("/jobs/nap", json={"seconds": 0})
        assert unknown.status_code == 409, unknown.text
        assert unknown.json() == {
            "error": "task_not_served",
            "message": f"task 'nap' is unknown to the 1 live worker(s) of queue 'default': {ADVICE}",
            "task": "nap",
            "queue": "default",
            "reason": "unknown_to_workers",
            "workers": 1,
            "api_input_schema": ours.get("nap").input_fingerprint,
            "worker_input_schemas": [],
        }

        health = await http.get("/health/workers")
        assert health.status_code == 200, health.text
        on_default = [t.name for t in sorted(ours, key=lambda t: t.name) if t.queue in (None, "default")]
        assert health.json()["skew"] == {
            "api_registry_version": ours.version,
            "worker_registry_versions": [theirs.version],
            "tasks_unknown_to_workers": [name for name in on_default if name != "noop"],
            "tasks_with_schema_mismatch": ["noop"],
            "version_guard": True,
        }
        # no live worker serves `lifecycle`: accepted as without the guard
        assert (await http.post("/jobs/hold", json={"seconds": 0})).status_code == 202
        assert (await http.get("/jobs", params={"queue": "default"})).json()["items"] == []

    unguarded = api(redis_url, prefix, tmp_path, services, "api-unguarded", JOBS_VERSION_GUARD="false")
    async with httpx.AsyncClient(base_url=unguarded, timeout=10) as http:
        accepted = await http.post("/jobs/nap", json={"seconds": 0})
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["task"] == "nap"
        assert (await http.get("/health/workers")).json()["skew"]["version_guard"] is False
