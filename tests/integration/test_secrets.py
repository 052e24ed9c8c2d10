"""Secret inputs end to end: `send_webhook` with an Authorization header through the real API, a real
worker posting to the local webhook target, the CLI as a process, the dashboard and the raw Redis
values; and the devserver, which never prints a password."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import redis

from arq_jobs._keys import Keys
from devserver.redis_server import free_port

from .conftest import (
    ROOT,
    Lines,
    Service,
    WebhookTarget,
    delete_prefix,
    http_ok,
    service_env,
    start_api,
    start_devserver,
    start_worker,
    terminal,
    wait_for_status,
)
from .redis_servers import start_redis

SECRET = "s3cr3t-token-4f2a"
HEADER = f"Bearer {SECRET}"
KEY = base64.urlsafe_b64encode(b"integration-secrets-key-32bytes!").decode()
CLI = [sys.executable, "-m", "arq_jobs"]


@dataclass
class Stack:
    prefix: str
    env: dict[str, str]
    api: Service
    worker: Service
    base: str


@contextmanager
def stack(redis_url: str, key_prefix: str, log_dir: Path, **extra: str) -> Iterator[Stack]:
    """An API and a worker of their own, on a key prefix of their own (deleted afterwards)."""
    prefix = f"{key_prefix}-secrets-{uuid.uuid4().hex[:8]}"
    env = service_env(redis_url, prefix, **extra)
    api, base = start_api(env, log_dir)
    worker: Service | None = None
    try:
        api.wait_until(http_ok(f"{base}/health/ready"))
        worker, _ = start_worker(redis_url, prefix, log_dir, "worker", **extra)
        yield Stack(prefix, env, api, worker, base)
    finally:
        if worker is not None:
            worker.stop()
        api.stop()
        delete_prefix(redis_url, prefix)


def stored(client: redis.Redis, prefix: str, job_ids: list[str]) -> bytes:
    """Every value under `prefix` and ARQ's keys of `job_ids`, whatever their types, as one byte string."""
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    keys += [k for job_id in job_ids for k in (Keys.arq_job(job_id), Keys.arq_result(job_id))]
    found = []
    for key in keys:
        kind = cast(bytes, client.type(key)).decode()
        value: Any = None
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = client.smembers(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = client.xrange(key)
        found.append(repr((key, value)).encode())
    return b"\n".join(found)


@dataclass
class Seen:
    """The jobs of a scenario and everything the deployment showed of them."""

    succeeded: str
    failed: str
    outputs: dict[str, str]


async def scenario(deployment: Stack, target: WebhookTarget, tag: str) -> Seen:
    """A webhook that succeeds (enqueued twice with one Idempotency-Key) and one the target refuses
    (400: dead-lettered), both with a secret Authorization header; then every way of looking at them."""
    body = {"payload": {"tag": tag}, "headers": {"Authorization": HEADER, "X-Tag": tag}}
    outputs: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=deployment.base, timeout=10) as http:
        ok_body = {**body, "url": f"{target.url}/status/200/{tag}"}
        first = await http.post("/jobs/send_webhook", json=ok_body, headers={"Idempotency-Key": tag})
        again = await http.post("/jobs/send_webhook", json=ok_body, headers={"Idempotency-Key": tag})
        assert (first.status_code, again.status_code) == (202, 200), (first.text, again.text)
        assert again.json()["job_id"] == first.json()["job_id"]
        refused = await http.post(
            "/jobs/send_webhook", json={**body, "url": f"{target.url}/status/400/{tag}"}
        )
        assert refused.status_code == 202, refused.text
        succeeded, failed = first.json()["job_id"], refused.json()["job_id"]
        done = await wait_for_status(http, first.json()["status_url"], terminal)
        dead = await wait_for_status(http, refused.json()["status_url"], terminal)
        assert (done["status"], dead["status"], dead["dead_lettered"]) == ("succeeded", "failed", True)

        for path in (
            f"/jobs/{succeeded}",
            f"/jobs/{failed}",
            "/jobs?limit=500",
            f"/jobs/{succeeded}/events",
            f"/jobs/{failed}/events",
            "/dead-letters?limit=500",
            f"/dead-letters/{failed}",
            f"/dashboard/jobs/{succeeded}",
            f"/dashboard/jobs/{failed}",
            "/dashboard/dead-letters",
        ):
            answer = await http.get(path)
            assert answer.status_code == 200, (path, answer.text)
            outputs[path] = answer.text
    letter = json.loads(outputs[f"/dead-letters/{failed}"])
    assert letter["input"]["headers"] == {"Authorization": "***", "X-Tag": "***"}
    assert letter["input"]["url"] == f"{target.url}/status/400/{tag}"
    assert "event: succeeded" in outputs[f"/jobs/{succeeded}/events"]
    assert "&#34;Authorization&#34;: &#34;***&#34;" in outputs[f"/dashboard/jobs/{succeeded}"]

    for args in (
        ("status", succeeded, "--json"),
        ("dead", "show", failed, "--json"),
        ("dead", "list"),
        ("jobs",),
    ):
        ran = await asyncio.to_thread(
            subprocess.run,
            [*CLI, *args],
            cwd=ROOT,
            env=deployment.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 0, (args, ran.stdout, ran.stderr)
        outputs[" ".join(args)] = ran.stdout + ran.stderr
    shown = json.loads(outputs[f"dead show {failed} --json"])
    assert shown["input"]["headers"] == {"Authorization": "***", "X-Tag": "***"}

    # the worker sent the real header: it decrypted it for the task
    [received] = target.by_path(f"/status/200/{tag}")
    assert (received.headers["authorization"], received.headers["x-tag"]) == (HEADER, tag)
    assert [r.headers["authorization"] for r in target.by_path(f"/status/400/{tag}")] == [HEADER]
    outputs["api log"] = deployment.api.log()
    outputs["worker log"] = deployment.worker.log()
    return Seen(succeeded, failed, outputs)


async def test_with_a_key_secrets_are_encrypted_in_redis_and_shown_nowhere(
    redis_url: str,
    key_prefix: str,
    redis_client: redis.Redis,
    webhook_target: WebhookTarget,
    tmp_path: Path,
) -> None:
    with stack(redis_url, key_prefix, tmp_path, JOBS_SECRETS_KEY=KEY) as deployment:
        seen = await scenario(deployment, webhook_target, f"sealed-{uuid.uuid4().hex[:8]}")
        raw = stored(redis_client, deployment.prefix, [seen.succeeded, seen.failed])
    for where, text in seen.outputs.items():
        assert SECRET not in text, where
        assert KEY not in text, where
    assert seen.succeeded.encode() in raw and b"$secret" in raw
    assert SECRET.encode() not in raw


async def test_without_a_key_secrets_are_stored_as_given_and_still_shown_nowhere(
    redis_url: str,
    key_prefix: str,
    redis_client: redis.Redis,
    webhook_target: WebhookTarget,
    tmp_path: Path,
) -> None:
    with stack(redis_url, key_prefix, tmp_path) as deployment:
        seen = await scenario(deployment, webhook_target, f"plain-{uuid.uuid4().hex[:8]}")
        letter = cast(bytes | None, redis_client.get(Keys(deployment.prefix).dead_letter(seen.failed)))
        raw = stored(redis_client, deployment.prefix, [seen.succeeded, seen.failed])
    for where, text in seen.outputs.items():
        assert SECRET not in text, where
    # documented: without JOBS_SECRETS_KEY secret values are stored as given
    assert letter is not None and SECRET.encode() in letter
    assert b"$secret" not in raw


def test_the_devserver_prints_no_password(tmp_path: Path) -> None:
    password, sentinel_password = "redis-pw-7c1e", "sentinel-pw-93ad"
    admin_token = "admin-token-" + "x" * 32
    server = start_redis(tmp_path / "redis", "--requirepass", password)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBS_")}
    env |= {
        "JOBS_API_PORT": str(free_port()),
        "JOBS_REDIS_URL": f"redis://:{password}@127.0.0.1:{server.port}/0",
        "JOBS_REDIS_SENTINEL_PASSWORD": sentinel_password,
        "JOBS_ADMIN_TOKEN": admin_token,
        "JOBS_SECRETS_KEY": KEY,
        "JOBS_KEY_PREFIX": f"devpw-{uuid.uuid4().hex[:8]}",
    }
    process = start_devserver(env)
    lines = Lines(process)
    try:
        lines.until("API docs at", timeout_s=60)
        process.send_signal(signal.SIGINT)
        lines.rest(timeout_s=30)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        server.stop()
    output = "".join(lines.seen)
    assert f"devserver: Redis: redis://:***@127.0.0.1:{server.port}/0" in output
    assert "API docs at" in output and "stopping" in output
    for secret in (password, sentinel_password, admin_token, KEY):
        assert secret not in output, secret
