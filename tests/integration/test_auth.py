"""Authentication over real HTTP: the app under uvicorn (`python -m app`) with JOBS_AUTH=keys, a real
worker, keys made and revoked with the real `arq-jobs keys` command. Every route answers 401 without
a key, 403 with a key lacking its scope, and 2xx with it; keys see only their own jobs; a revoked key
is refused within a second; the API refuses to start open (JOBS_AUTH=off) on a non-loopback address
or with a short admin token."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ROOT, Service, http_ok, service_env, start_api, start_worker, terminal, wait_for_status

ARQ_JOBS = str(Path(sys.executable).with_name("arq-jobs"))
ADMIN_TOKEN = secrets.token_urlsafe(32)


@dataclass
class Deployment:
    base: str
    env: dict[str, str]

    def create_key(self, name: str, *scopes: str) -> str:
        args = [ARQ_JOBS, "keys", "create", name, *[f"--scope={s}" for s in scopes], "--json"]
        done = subprocess.run(args, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        created: dict[str, Any] = json.loads(done.stdout)
        assert created["name"] == name and created["scopes"] == sorted(scopes)
        return str(created["key"])

    def revoke_key(self, name: str) -> None:
        done = subprocess.run(
            [ARQ_JOBS, "keys", "revoke", name],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (done.returncode, done.stdout) == (0, f"key {name!r} revoked\n"), done.stderr


@pytest.fixture(scope="module")
def deployment(
    redis_url: str, key_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    prefix = f"{key_prefix}-auth"
    env = service_env(redis_url, prefix, JOBS_AUTH="keys", JOBS_ADMIN_TOKEN=ADMIN_TOKEN)
    log_dir = tmp_path_factory.mktemp("auth")
    api, base = start_api(env, log_dir)
    worker: Service | None = None
    try:
        api.wait_until(http_ok(f"{base}/health/ready"))
        worker, _ = start_worker(redis_url, prefix, log_dir, "worker", JOBS_AUTH="keys")
        yield Deployment(base, env)
    finally:
        if worker is not None:
            worker.stop()
        api.stop()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_each_route_needs_a_key_and_its_scope(deployment: Deployment) -> None:
    every_scope = [
        "jobs:enqueue",
        "jobs:read",
        "jobs:cancel",
        "workflows:write",
        "dead-letters:read",
        "dead-letters:write",
        "metrics:read",
    ]
    everything = deployment.create_key("everything", *every_scope)  # all but admin: owns what it makes
    async with httpx.AsyncClient(base_url=deployment.base, timeout=10) as http:
        # what the routes act on, made by the admin key
        ran = (await http.post("/jobs/noop", json={"value": 1}, headers=auth(everything))).json()
        waiting = (
            await http.post("/jobs/noop", json={}, params={"delay": 3600}, headers=auth(everything))
        ).json()
        failed = [
            (await http.post("/jobs/fail", json={"permanent": True}, headers=auth(everything))).json()
            for _ in range(2)
        ]
        admin_http = httpx.AsyncClient(base_url=deployment.base, timeout=10, headers=auth(everything))
        async with admin_http:
            await wait_for_status(admin_http, f"/jobs/{ran['job_id']}", terminal)
            for job in failed:
                await wait_for_status(admin_http, f"/jobs/{job['job_id']}", terminal)
        held_flow = {"type": "chain", "steps": [{"task": "noop", "queue": "lifecycle"}]}

        async def workflow_id() -> str:
            answer = await http.post("/workflows", json=held_flow, headers=auth(everything))
            assert answer.status_code == 202, answer.text
            return str(answer.json()["workflow_id"])

        first_flow, second_flow = await workflow_id(), await workflow_id()
        routes: list[tuple[str, str, str, dict[str, Any] | None, int]] = [
            # the held workflows' steps wait on `lifecycle`, which no worker serves: starved, by design
            ("GET", "/health/workers", "metrics:read", None, 503),
            ("GET", "/jobs", "jobs:read", None, 200),
            ("POST", "/jobs/noop", "jobs:enqueue", {"value": 2}, 202),
            ("POST", "/jobs/noop", "jobs:enqueue:noop", {"value": 3}, 202),
            ("GET", f"/jobs/{ran['job_id']}", "jobs:read", None, 200),
            ("GET", f"/jobs/{ran['job_id']}/events", "jobs:read", None, 200),
            ("DELETE", f"/jobs/{waiting['job_id']}", "jobs:cancel", None, 200),
            ("POST", "/workflows", "workflows:write", held_flow, 202),
            ("GET", f"/workflows/{first_flow}", "jobs:read", None, 200),
            ("DELETE", f"/workflows/{second_flow}", "workflows:write", None, 200),
            ("GET", "/dead-letters", "dead-letters:read", None, 200),
            ("GET", f"/dead-letters/{failed[0]['job_id']}", "dead-letters:read", None, 200),
            ("POST", f"/dead-letters/{failed[0]['job_id']}/retry", "dead-letters:write", None, 202),
            ("DELETE", f"/dead-letters/{failed[1]['job_id']}", "dead-letters:write", None, 204),
            ("GET", "/metrics", "metrics:read", None, 200),
            ("GET", "/queues", "metrics:read", None, 200),
            ("GET", "/workers", "metrics:read", None, 200),
            ("GET", "/tasks", "jobs:read", None, 200),
            ("GET", "/schedules", "metrics:read", None, 200),
        ]
        for n, (method, path, scope, body, expected) in enumerate(routes):
            anonymous = await http.request(method, path, json=body)
            assert (anonymous.status_code, anonymous.headers["www-authenticate"]) == (401, "Bearer"), path
            assert anonymous.json() == {
                "error": "unauthorized",
                "message": "this route needs an API key: send `Authorization: Bearer <key>`",
            }
            lacking = deployment.create_key(
                f"lacks-{n}", "jobs:cancel" if scope != "jobs:cancel" else "jobs:read"
            )
            refused = await http.request(method, path, json=body, headers=auth(lacking))
            needed = "jobs:enqueue:noop" if path == "/jobs/noop" else scope
            if path == "/workflows":
                needed = "workflows:write"
            assert refused.status_code == 403, (path, refused.text)
            assert refused.json() == {
                "error": "forbidden",
                "message": f"key 'lacks-{n}' lacks scope {needed!r}",
                "scope": needed,
            }
            holder = deployment.create_key(
                f"holds-{n}", scope, *(["jobs:enqueue:noop"] if path == "/workflows" else [])
            )
            if path.count("/") > 1 and path != "/jobs/noop":
                holder = everything  # acting on a job, workflow or dead letter: its owner's key
            allowed = await http.request(method, path, json=body, headers=auth(holder))
            assert allowed.status_code == expected, (method, path, allowed.text)
        for probe in ("/health/live", "/health/ready"):
            assert (await http.get(probe)).status_code == 200


async def test_the_dashboard_takes_an_admin_key_as_the_basic_password(deployment: Deployment) -> None:
    reader = deployment.create_key("dash-reader", "jobs:read")
    async with httpx.AsyncClient(base_url=deployment.base, timeout=10) as http:
        challenge = await http.get("/dashboard/")
        assert (challenge.status_code, challenge.headers["www-authenticate"]) == (
            401,
            'Basic realm="arq-jobs"',
        )
        basic = "Basic " + base64.b64encode(f"ops:{reader}".encode()).decode()
        assert (await http.get("/dashboard/", headers={"Authorization": basic})).status_code == 403
        token = "Basic " + base64.b64encode(f"ops:{ADMIN_TOKEN}".encode()).decode()
        assert (await http.get("/dashboard/", headers={"Authorization": token})).status_code == 200


async def test_keys_see_only_their_own_jobs(deployment: Deployment) -> None:
    alice = deployment.create_key("alice", "jobs:enqueue", "jobs:read", "jobs:cancel")
    bob = deployment.create_key("bob", "jobs:enqueue", "jobs:read", "jobs:cancel")
    async with httpx.AsyncClient(base_url=deployment.base, timeout=10) as http:
        idem = {"Idempotency-Key": "same-key"}
        mine = await http.post(
            "/jobs/noop", json={"value": "a"}, params={"delay": 600}, headers={**idem, **auth(alice)}
        )
        theirs = await http.post(
            "/jobs/noop", json={"value": "b"}, params={"delay": 600}, headers={**idem, **auth(bob)}
        )
        assert (mine.status_code, theirs.status_code) == (202, 202)
        job_id = mine.json()["job_id"]
        assert job_id != theirs.json()["job_id"]
        assert (await http.get(f"/jobs/{job_id}", headers=auth(alice))).json()["owner"] == "alice"
        for method in ("GET", "DELETE"):
            hidden = await http.request(method, f"/jobs/{job_id}", headers=auth(bob))
            assert hidden.status_code == 404
            assert hidden.json()["error"] == "job_not_found"
        listed = (await http.get("/jobs", headers=auth(bob))).json()
        assert [item["job_id"] for item in listed["items"]] == [theirs.json()["job_id"]]
        assert (await http.get(f"/jobs/{job_id}", headers=auth(alice))).json()["status"] == "scheduled"


async def test_a_revoked_key_is_refused_within_a_second(deployment: Deployment) -> None:
    key = deployment.create_key("short-lived", "jobs:read")
    async with httpx.AsyncClient(base_url=deployment.base, timeout=10) as http:
        assert (await http.get("/jobs", headers=auth(key))).status_code == 200
        deployment.revoke_key("short-lived")
        revoked_at = time.monotonic()
        while (await http.get("/jobs", headers=auth(key))).status_code == 200:
            assert time.monotonic() - revoked_at < 1.5, "still accepted 1.5 s after revoking"
            await asyncio.sleep(0.05)
        answer = await http.get("/jobs", headers=auth(key))
        assert answer.json() == {"error": "unauthorized", "message": "unknown, revoked or expired API key"}


@pytest.mark.parametrize(
    ("extra", "refusal"),
    [
        ({"JOBS_AUTH": "off", "JOBS_API_HOST": "0.0.0.0"}, "refusing to serve on 0.0.0.0 with JOBS_AUTH=off"),
        ({"JOBS_ADMIN_TOKEN": "too-short"}, "JOBS_ADMIN_TOKEN: Value error, must be at least 32 characters"),
    ],
)
def test_the_api_refuses_to_start_unsafe(
    redis_url: str, key_prefix: str, extra: dict[str, str], refusal: str
) -> None:
    env = service_env(redis_url, f"{key_prefix}-unsafe", **extra)
    done = subprocess.run(
        [sys.executable, "-m", "app"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert refusal in done.stderr
