"""The built wheel, installed the way a user installs it: a new virtual environment outside the
repository gets the locked runtime dependencies (`requirements.lock`), the arq-jobs wheel and the example
shop (examples/existing_app); that environment's uvicorn serves the shop and its `arq` runs the shop's
worker, from a directory where the repository's own packages cannot be imported.

`pytest tests/integration/test_packaging.py -s` prints the wheel's file listing (`pip show -f`).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from arq_jobs import __version__
from devserver.redis_server import free_port
from tests.integration.conftest import ROOT, Service, delete_prefix, http_ok, terminal, wait_for_status

EXAMPLE = ROOT / "examples" / "existing_app"
SETUP_TIMEOUT_S = 600  # builds two wheels and installs ~60 packages (from pip's cache after the first run)
SENDER = "receipts+packaging@shop.example"  # only the worker's environment names it
ADMIN_TOKEN = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

pytestmark = pytest.mark.timeout(SETUP_TIMEOUT_S + 120)


def pip_env() -> dict[str, str]:
    """The environment without this process's virtual environment or import path."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME") and not k.startswith("JOBS_")
    }


def run(command: list[str], cwd: Path, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `command`; fails with its output unless it exits 0."""
    done = subprocess.run(
        command, cwd=cwd, env=pip_env(), capture_output=True, text=True, timeout=timeout_s, check=False
    )
    assert done.returncode == 0, (
        f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done


def files_outside_arq_jobs(listing: str) -> list[str]:
    """The paths in `pip show -f`'s Files: section that are not arq_jobs' package, metadata or script."""
    _, found, section = listing.partition("\nFiles:\n")
    assert found, f"no Files: section in:\n{listing}"
    allowed = ("arq_jobs/", f"arq_jobs-{__version__}.dist-info/")
    return [
        path
        for path in (line.strip() for line in section.splitlines())
        if path and not path.startswith(allowed) and path != "../../../bin/arq-jobs"
    ]


@dataclass(frozen=True)
class Venv:
    path: Path
    workdir: Path  # outside the repository: nothing of it is importable from here
    listing: str  # `pip show -f arq-jobs`

    def bin(self, name: str) -> str:
        return str(self.path / "bin" / name)

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.bin("python"), "-c", code)

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        """`command` in the work directory; its exit code and output, whatever they are."""
        return subprocess.run(
            command,
            cwd=self.workdir,
            env=pip_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    base = tmp_path_factory.mktemp("packaging")
    assert ROOT not in base.parents, f"{base} is inside the repository"
    wheels, path, workdir = base / "wheels", base / "venv", base / "run"
    workdir.mkdir()
    # no build isolation when hatchling is installed here; otherwise pip fetches it from the index
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
    for project in (ROOT, EXAMPLE):
        run(
            [sys.executable, "-m", "pip", "wheel", str(project), "--no-deps", *isolation, "-w", str(wheels)],
            base,
        )
    run([sys.executable, "-m", "venv", str(path)], base, timeout_s=120)
    pip = [str(path / "bin" / "python"), "-m", "pip"]
    run([*pip, "install", "--require-hashes", "-r", str(ROOT / "requirements.lock")], base, SETUP_TIMEOUT_S)
    built = sorted(wheels.glob("*.whl"))
    assert [wheel.name for wheel in built] == [
        f"arq_jobs-{__version__}-py3-none-any.whl",
        "shop-1.0.0-py3-none-any.whl",
    ]
    run([*pip, "install", "--no-deps", *map(str, built)], base)
    run([*pip, "check"], base)  # requirements.lock holds every dependency of arq-jobs and the shop
    listing = run([*pip, "show", "-f", "arq-jobs"], base).stdout
    print(f"\npip show -f arq-jobs:\n{listing}")
    return Venv(path, workdir, listing)


def test_the_wheel_installs_only_the_arq_jobs_package(venv: Venv) -> None:
    assert files_outside_arq_jobs(venv.listing) == [], venv.listing
    # every file of the package ships: modules, templates, static files, Lua scripts, py.typed
    source = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "arq_jobs").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    installed = {
        line.strip()
        for line in venv.listing.splitlines()
        if line.startswith("  arq_jobs/") and "__pycache__" not in line
    }
    assert "arq_jobs/py.typed" in source
    assert (sorted(source - installed), sorted(installed - source)) == ([], []), venv.listing

    for repository_package in ("app", "workers", "devserver", "tests"):
        imported = venv.python(f"import {repository_package}")
        assert imported.returncode == 1, f"{repository_package} is importable: {imported.stdout}"
        assert f"No module named '{repository_package}'" in imported.stderr
    cli = venv.run(venv.bin("arq-jobs"), "--help")
    assert cli.returncode == 0, cli.stderr
    assert "Usage: arq-jobs" in cli.stdout
    where = venv.python("import arq_jobs, shop; print(arq_jobs.__file__); print(shop.__file__)")
    assert where.returncode == 0, where.stderr
    site_packages = next(venv.path.glob("lib/python3.*/site-packages"))
    assert where.stdout.split() == [
        str(site_packages / "arq_jobs" / "__init__.py"),
        str(site_packages / "shop" / "__init__.py"),
    ]


@dataclass(frozen=True)
class Shop:
    api: str
    prefix: str


@pytest.fixture(scope="module")
def shop(venv: Venv, redis_url: str, redis_client: redis.Redis) -> Iterator[Shop]:
    prefix = f"pkg-{uuid.uuid4().hex[:10]}"
    env = {
        **pip_env(),
        "PATH": f"{venv.path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "JOBS_REDIS_URL": redis_url,
        "JOBS_KEY_PREFIX": prefix,
        "JOBS_POLL_DELAY_S": "0.02",
        "JOBS_HEALTH_CHECK_INTERVAL_S": "1",
        "JOBS_SHUTDOWN_GRACE_S": "2",
        "JOBS_ADMIN_TOKEN": ADMIN_TOKEN,  # authentication is on, as installed: the clients send this key
    }
    port = free_port()
    api = Service(
        "shop-api",
        [venv.bin("uvicorn"), "shop.main:app", "--host", "127.0.0.1", "--port", str(port)],
        env,
        venv.workdir / "api.log",
        cwd=venv.workdir,
    )
    worker = Service(
        "shop-worker",
        [venv.bin("arq"), "shop.worker.WorkerSettings"],
        {**env, "SHOP_RECEIPTS_FROM": SENDER},
        venv.workdir / "worker.log",
        cwd=venv.workdir,
    )
    base = f"http://127.0.0.1:{port}"
    health_key = f"{prefix}:queue:default:health-check:{socket.gethostname()}"
    try:
        api.start()
        worker.start()
        api.wait_until(http_ok(f"{base}/jobs-api/health/ready"))
        worker.wait_until(lambda: bool(redis_client.exists(health_key)))
        yield Shop(base, prefix)
        # uvicorn ends a graceful shutdown by re-raising the signal it got
        assert (api.stop(), worker.stop()) == (-signal.SIGTERM, 0), f"{api.log()}\n{worker.log()}"
        assert "Application shutdown complete." in api.log()
    finally:
        for service in (api, worker):
            if hasattr(service, "process"):
                service.stop()
        delete_prefix(redis_url, prefix)


def receipt(order_id: str, to: str, total_cents: int, job_id: str) -> dict[str, object]:
    return {
        "order_id": order_id,
        "to": to,
        "total_cents": total_cents,
        "message_id": f"<{job_id}@shop.example>",
        "sent_by": SENDER,  # the mailer the worker's on_startup opened from its environment
    }


async def test_the_shops_route_enqueues_a_receipt_the_shops_worker_sends(shop: Shop) -> None:
    order = {"email": "ada@example.com", "lines": [{"sku": "mug", "quantity": 3, "unit_price_cents": 1200}]}
    async with httpx.AsyncClient(base_url=shop.api, timeout=10, headers=AUTH) as http:
        response = await http.post("/orders", json=order)
        assert response.status_code == 202, response.text
        accepted = response.json()
        job_id = accepted["receipt_job_id"]
        assert accepted["receipt_status_url"] == f"{shop.api}/jobs-api/jobs/{job_id}"

        status = await wait_for_status(http, accepted["receipt_status_url"], terminal)

        assert (status["task"], status["status"], status["attempt"]) == ("send_receipt", "succeeded", 1)
        assert status["result"] == receipt(accepted["order_id"], "ada@example.com", 3600, job_id)
        stored = (await http.get(f"/orders/{accepted['order_id']}")).json()
        assert (stored["total_cents"], stored["receipt_status"]) == (3600, "succeeded")


async def test_the_mounted_job_route_runs_the_shops_task(shop: Shop) -> None:
    body = {"order_id": "manual-7", "email": "bob@example.com", "total_cents": 999}
    async with httpx.AsyncClient(base_url=shop.api, timeout=10, headers=AUTH) as http:
        response = await http.post("/jobs-api/jobs/send_receipt", json=body)
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        assert response.headers["location"] == f"{shop.api}/jobs-api/jobs/{job_id}"

        status = await wait_for_status(http, response.headers["location"], terminal)

        assert (status["status"], status["attempt"]) == ("succeeded", 1)
        assert status["result"] == receipt("manual-7", "bob@example.com", 999, job_id)


async def test_the_dashboard_is_served_from_the_installed_package(shop: Shop) -> None:
    async with httpx.AsyncClient(base_url=shop.api, timeout=10, headers=AUTH) as http:
        page = await http.get("/jobs-api/dashboard/")
        stylesheet = await http.get("/jobs-api/dashboard/static/dashboard.css")

    assert page.status_code == 200, page.text
    assert "/jobs-api/dashboard/static/dashboard.css" in page.text
    assert stylesheet.status_code == 200
    assert stylesheet.headers["content-type"].startswith("text/css")
