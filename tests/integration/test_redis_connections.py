"""Production Redis set-ups, each started by the test itself (never the machine's shared Redis):
Sentinel failover, TLS (CA and client certificates, from the URL or from settings) and an ACL user
confined to the deployment's keys — for the API (`python -m app`), a worker (`arq
workers.WorkerSettings`) and the CLI (`python -m arq_jobs`) alike."""

# mypy: disable-error-code="no-untyped-call,union-attr,has-type"
from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from .conftest import ROOT, Service, http_ok, service_env, start_api, start_worker
from .redis_servers import redis_server, sentinel_deployment

CLI = [sys.executable, "-m", "arq_jobs"]


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def wait_terminal(
    http: httpx.Client, job_ids: list[str], timeout_s: float = 60, lost: set[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Each job's status once every one of them has ended; jobs unknown to the API go to `lost` when
    given (else they fail the test)."""
    deadline = time.monotonic() + timeout_s
    done: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and len(done) < len(job_ids):
        for job_id in job_ids:
            if job_id not in done:
                response = http.get(f"/jobs/{job_id}")
                if response.status_code == 503:  # Redis switching primaries: ask again
                    continue
                if lost is not None and response.status_code == 404:
                    lost.add(job_id)
                    done[job_id] = response.json()
                    continue
                assert response.status_code == 200, f"{job_id}: {response.status_code} {response.text}"
                if response.json()["is_terminal"]:
                    done[job_id] = response.json()
        time.sleep(0.1)
    missing = [job_id for job_id in job_ids if job_id not in done]
    assert not missing, f"{len(missing)} jobs not ended after {timeout_s}s, e.g. {missing[:3]}"
    return done


@pytest.fixture
def services() -> Iterator[list[Service]]:
    """Processes a test starts; all stopped at its end, also on failure."""
    started: list[Service] = []
    yield started
    for service in started:
        service.stop()


def start_stack(env: dict[str, str], log_dir: Path, services: list[Service]) -> str:
    """The API and one worker with `env`; the API's base URL once both are up."""
    worker, _ = start_worker(env["JOBS_REDIS_URL"], env["JOBS_KEY_PREFIX"], log_dir, "worker", **extra(env))
    services.append(worker)
    api, base = start_api(env, log_dir)
    services.append(api)
    api.wait_until(http_ok(f"{base}/health/ready"))
    return base


def extra(env: dict[str, str]) -> dict[str, str]:
    """The JOBS_REDIS_* variables of `env` but the URL (start_worker builds the rest itself)."""
    return {k: v for k, v in env.items() if k.startswith("JOBS_REDIS_") and k != "JOBS_REDIS_URL"}


def test_api_worker_and_cli_follow_a_sentinel_failover(tmp_path: Path, services: list[Service]) -> None:
    with sentinel_deployment(tmp_path / "redis") as redis_ha:
        first_primary = redis_ha.primary_port()
        env = service_env(
            "redis://unused.invalid:1/0",  # with Sentinels only the URL's database, login and TLS count
            f"ha-{uuid.uuid4().hex[:8]}",
            JOBS_REDIS_SENTINELS=redis_ha.sentinel_list,
            JOBS_REDIS_SENTINEL_MASTER=redis_ha.master,
            JOBS_REDIS_TIMEOUT_S="2",
            # replication is asynchronous: after the replica is promoted the old primary takes writes
            # for ~1.2 s until Sentinel demotes it, and they vanish; without this, ~55 accepted jobs
            # were lost in about half the runs
            JOBS_REDIS_MIN_REPLICAS_ACK="1",
        )
        base = start_stack(env, tmp_path, services)
        worker = services[0]
        statuses: list[tuple[float, int]] = []
        accepted: dict[str, float] = {}  # job id → when the API accepted it
        with httpx.Client(base_url=base, timeout=10) as http:
            for n in range(200):
                if n == 60:
                    assert redis_ha.ask("SENTINEL", "FAILOVER", redis_ha.master) == "OK"
                    failover_at = time.monotonic()
                response = http.post("/jobs/noop", json={"value": n})
                statuses.append((time.monotonic(), response.status_code))
                if response.status_code == 202:
                    accepted[response.json()["job_id"]] = time.monotonic()
                time.sleep(0.02)
            assert redis_ha.primary_port() == redis_ha.replica.port != first_primary
            lost: set[str] = set()
            ended = wait_terminal(http, list(accepted), lost=lost)

        refused = [at - failover_at for at, status in statuses if status == 503]
        lost_at = sorted(accepted[job_id] - failover_at for job_id in lost)
        print(
            f"\nfailover: {len(accepted)} accepted, {len(lost)} of them lost {lost_at}, {len(refused)} answered 503"
            + (f" from +{refused[0]:.2f}s to +{refused[-1]:.2f}s after SENTINEL FAILOVER" if refused else "")
        )
        assert {status for _, status in statuses} <= {202, 503}
        assert len(accepted) + len(refused) == 200
        # only around the switch: until a replica has the API's writes again, it refuses them. Its
        # pooled connections reach the old primary (without replicas) until Sentinel demotes it
        # (~10 s here), and the new primary has none until the old one resynced (diskless sync: 5 s)
        assert all(0 <= delay < 30 for delay in refused)
        assert [status for _, status in statuses[-20:]] == [202] * 20  # accepting again after it
        assert worker.process.poll() is None, worker.log()
        queues = run_cli(env, "queues", "--json")
        assert queues.returncode == 0, queues.stderr
        assert '"default"' in queues.stdout
        assert not lost, f"{len(lost)} accepted jobs lost, accepted {lost_at[0]:.2f}-{lost_at[-1]:.2f}s after"
        assert [body["status"] for body in ended.values()] == ["succeeded"] * len(accepted)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with the openssl CLI
    (the `cryptography` package is not installed here)."""
    where = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=where, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
            "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    (where / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr")  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", f"{name}.pem", *(["-extfile", "server.ext"] if name == "server" else []))  # fmt: skip
    return {name: where / name for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


@pytest.mark.parametrize("client_certificate", [False, True], ids=["ca-in-url", "client-cert-in-settings"])
def test_api_worker_and_cli_over_tls(
    tmp_path: Path, services: list[Service], certificates: dict[str, Path], client_certificate: bool
) -> None:
    tls = [
        "--tls-cert-file", str(certificates["server.pem"]),
        "--tls-key-file", str(certificates["server.key"]),
        "--tls-ca-cert-file", str(certificates["ca.pem"]),
        "--tls-auth-clients", "yes" if client_certificate else "no",
    ]  # fmt: skip
    with redis_server(tmp_path / "redis", *tls, tls=True) as server:
        prefix = f"tls-{uuid.uuid4().hex[:8]}"
        if client_certificate:
            env = service_env(
                f"rediss://127.0.0.1:{server.port}/0",
                prefix,
                JOBS_REDIS_SSL_CA_CERTS=str(certificates["ca.pem"]),
                JOBS_REDIS_SSL_CERTFILE=str(certificates["client.pem"]),
                JOBS_REDIS_SSL_KEYFILE=str(certificates["client.key"]),
                JOBS_REDIS_SSL_CERT_REQS="required",
            )
        else:
            url = f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={certificates['ca.pem']}&ssl_cert_reqs=required"
            env = service_env(url, prefix)
        base = start_stack(env, tmp_path, services)
        with httpx.Client(base_url=base, timeout=10) as http:
            job = http.post("/jobs/noop", json={"value": "over TLS"})
            assert job.status_code == 202, job.text
            (ended,) = wait_terminal(http, [job.json()["job_id"]]).values()
        assert (ended["status"], ended["result"]) == ("succeeded", {"value": "over TLS"})
        shown = run_cli(env, "status", ended["job_id"], "--json")
        assert shown.returncode == 0, shown.stderr
        assert '"succeeded"' in shown.stdout
        plain = redis.Redis(port=server.port, socket_timeout=2)
        with pytest.raises(redis.ConnectionError):  # the server speaks TLS only
            plain.ping()
        plain.close()


# the commands an ACL user of a deployment needs: the simple rule, and the tight one (every command of
# our Lua scripts and Python calls and of ARQ's, checked against INFO commandstats of the flow below)
SIMPLE_RULE = "+@all -@dangerous +info"
TIGHT_RULE = (
    "-@all +auth +hello +ping +select +info +dbsize"
    " +get +set +mget +psetex +del +exists +expire +pexpire +pexpireat +pttl +persist +incr +incrby +decr"
    " +hget +hset +hsetnx +hdel +hexists +hgetall +hmget +hincrby"
    " +zadd +zrem +zcard +zcount +zscore +zincrby +zpopmin +zrange +zrangebyscore +zrevrangebyscore"
    " +zremrangebyscore +xadd +xread +xrange +publish +subscribe +unsubscribe"
    " +multi +exec +discard +watch +unwatch +eval +evalsha +script|load"
)


@pytest.mark.parametrize("commands", [SIMPLE_RULE, TIGHT_RULE], ids=["simple-rule", "tight-rule"])
def test_api_worker_and_cli_as_an_acl_user_confined_to_the_deployment(
    tmp_path: Path, services: list[Service], commands: str
) -> None:
    with redis_server(tmp_path / "redis") as server:
        prefix = f"acl-{uuid.uuid4().hex[:8]}"
        admin = redis.Redis(port=server.port, decode_responses=True)
        admin.acl_setuser(
            "admin", enabled=True, passwords=["+adminpw"], keys=["*"], channels=["*"], commands=["+@all"]
        )
        admin.execute_command("AUTH", "admin", "adminpw")
        admin.execute_command(
            "ACL",
            "SETUSER",
            "jobs",
            "on",
            ">s3cr%t",
            f"~{prefix}:*",
            "~arq:*",
            f"&{prefix}:*",
            *commands.split(),
        )
        admin.execute_command("ACL", "SETUSER", "default", "off")
        admin.execute_command("CONFIG", "RESETSTAT")
        env = service_env(f"redis://jobs:s3cr%25t@127.0.0.1:{server.port}/0", prefix)
        base = start_stack(env, tmp_path, services)
        with httpx.Client(base_url=base, timeout=10) as http:
            ok = http.post("/jobs/noop", json={"value": 1}).json()["job_id"]
            retried = http.post("/jobs/fail", json={"permanent": False, "retry_after_s": 0.2}).json()[
                "job_id"
            ]
            dead = http.post("/jobs/fail", json={"permanent": True}).json()["job_id"]
            ended = wait_terminal(http, [ok, retried, dead])
            assert ended[ok]["status"] == "succeeded"
            assert (ended[retried]["status"], ended[retried]["attempt"]) == ("failed", 2)
            assert (ended[dead]["status"], ended[dead]["dead_lettered"]) == ("failed", True)
            assert http.get(f"/dead-letters/{dead}").status_code == 200
            overview = http.get("/dashboard/")
            assert overview.status_code == 200 and "default" in overview.text
        queues = run_cli(env, "queues", "--json")
        assert queues.returncode == 0, queues.stderr
        used = sorted(name.removeprefix("cmdstat_") for name in admin.info("commandstats"))
        print("\ncommands used:", " ".join(used))

        jobs = redis.Redis(port=server.port, username="jobs", password="s3cr%t")
        assert jobs.set(f"{prefix}:probe", 1)
        for forbidden in (lambda: jobs.set("other-app:key", 1), lambda: jobs.get("other-app:key")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                forbidden()
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=server.port).ping()  # the default user is off
        jobs.close()
        admin.close()
