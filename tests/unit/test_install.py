"""`install(app)` in an app that already exists: its lifespan, handlers, 404s and OpenAPI stay its own."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from arq.connections import ArqRedis
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from arq_jobs import Settings
from arq_jobs._api import install as install_module
from arq_jobs._api.install import configured_handler, installation, mount
from arq_jobs._connection import create_arq
from arq_jobs._tasks.registry import TaskRegistry
from arq_jobs.fastapi import EnqueuedJob, JobsDep, install, serve
from workers.tasks.noop import NoopInput, noop

from .conftest import make_settings


class ShopError(Exception):
    pass


def shop_app(settings: Settings, registry: TaskRegistry, events: list[str], **options: Any) -> FastAPI:
    """A user's app: its own lifespan, exception handler, routes, title; then install()."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append("shop started")
        yield {"greeting": "hello from the shop"}
        events.append("shop stopped")

    app = FastAPI(title="Shop", lifespan=lifespan)

    @app.exception_handler(ShopError)
    async def on_shop_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"shop_problem": str(exc)}, status_code=418)

    @app.get("/greeting")
    async def greeting(request: Request) -> dict[str, str]:
        return {"greeting": request.state.greeting}

    @app.get("/broken")
    async def broken() -> None:
        raise ShopError("out of stock")

    @app.post("/orders", status_code=202)
    async def order(jobs: JobsDep, queue: str | None = None) -> EnqueuedJob:
        return await jobs.enqueue(noop, NoopInput(value="order"), queue=queue)

    @app.get("/orders/{order_id}")
    async def get_order(order_id: int) -> dict[str, int]:
        return {"order_id": order_id}

    mount(app, settings, registry, **options)
    return app


@asynccontextmanager
async def serving(app: FastAPI, arq: ArqRedis, events: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    """Run `app`'s lifespan with `arq` as its Redis, and a client whose requests carry its state."""

    def connect(settings: Settings) -> ArqRedis:
        events.append("jobs pool opened")
        return arq

    installation(app).connect = connect
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            await app({**scope, "state": dict(state or {})}, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    events.append("all stopped")


@pytest.fixture
def events() -> list[str]:
    return []


async def test_the_users_lifespan_runs_inside_ours_and_both_states_reach_routes(
    settings: Settings, registry: TaskRegistry, arq_redis: ArqRedis, events: list[str]
) -> None:
    app = shop_app(settings, registry, events, prefix="/jobs-api")
    async with serving(app, arq_redis, events) as client:
        assert events == ["jobs pool opened", "shop started"]
        assert (await client.get("/greeting")).json() == {"greeting": "hello from the shop"}
        assert (await client.post("/orders")).status_code == 202
    assert events == ["jobs pool opened", "shop started", "shop stopped", "all stopped"]


async def test_routes_answer_under_the_prefix_and_status_urls_carry_it(
    settings: Settings, registry: TaskRegistry, arq_redis: ArqRedis, events: list[str]
) -> None:
    app = shop_app(settings, registry, events, prefix="/jobs-api")
    async with serving(app, arq_redis, events) as client:
        accepted = await client.post("/jobs-api/jobs/noop", json={"value": 7})
        assert accepted.status_code == 202
        job_id = accepted.json()["job_id"]
        status_url = f"http://test/jobs-api/jobs/{job_id}"
        assert (accepted.json()["status_url"], accepted.headers["location"]) == (status_url, status_url)
        status = await client.get(status_url)
        assert (status.status_code, status.json()["status"], status.json()["task"]) == (
            200,
            "pending",
            "noop",
        )

        mine = await client.post("/orders")
        assert mine.json()["status_url"] == f"http://test/jobs-api/jobs/{mine.json()['job_id']}"

        assert (await client.get("/jobs-api/health/ready")).json() == {"status": "ok", "redis": "ok"}
        assert (await client.get("/jobs-api/tasks")).status_code == 200
        metrics = (await client.get("/jobs-api/metrics")).text
        assert 'http_requests_total{method="POST",route="/jobs-api/jobs/noop",status="202"} 1.0' in metrics, (
            metrics
        )
        dashboard = await client.get("/jobs-api/dashboard/")
        assert dashboard.status_code == 200 and 'href="/jobs-api/dashboard/' in dashboard.text
        # nothing is mounted outside the prefix
        for path in ("/jobs/noop", "/health/ready", "/metrics", "/dashboard/"):
            assert (await client.get(path)).json() == {"detail": "Not Found"}, path


async def test_the_users_dependencies_guard_every_route_install_adds(
    settings: Settings, registry: TaskRegistry, arq_redis: ArqRedis, events: list[str]
) -> None:
    async def staff_only(x_staff: str | None = Header(default=None)) -> None:
        if x_staff != "yes":
            raise HTTPException(401, "staff only")

    app = shop_app(settings, registry, events, dependencies=[Depends(staff_only)])
    async with serving(app, arq_redis, events) as client:
        for method, path in (
            ("POST", "/jobs/noop"),
            ("GET", "/jobs"),
            ("GET", "/queues"),
            ("GET", "/workers"),
            ("GET", "/dead-letters"),
            ("GET", "/health/ready"),
            ("GET", "/metrics"),
            ("GET", "/workflows/x"),
            ("GET", "/dashboard/"),
        ):
            refused = await client.request(method, path, json={})
            assert refused.status_code == 401, (method, path)
            allowed = await client.request(method, path, json={}, headers={"x-staff": "yes"})
            assert allowed.status_code != 401, (method, path)
        # the user's own routes are not behind them
        assert (await client.get("/orders/3")).json() == {"order_id": 3}


async def test_an_error_of_the_users_dependency_goes_to_the_users_handler(
    settings: Settings, registry: TaskRegistry, arq_redis: ArqRedis, events: list[str]
) -> None:
    class NotStaffError(Exception):
        pass

    async def staff_only(x_staff: str | None = Header(default=None)) -> None:
        if x_staff != "yes":
            raise NotStaffError("staff only")

    app = shop_app(settings, registry, events, prefix="/jobs-api", dependencies=[Depends(staff_only)])

    @app.exception_handler(NotStaffError)
    async def on_not_staff(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"shop_problem": str(exc)}, status_code=403)

    async with serving(app, arq_redis, events) as client:
        for path in ("/jobs-api/jobs/abc", "/jobs-api/health/live", "/jobs-api/dashboard/"):
            refused = await client.get(path)
            assert (refused.status_code, refused.json()) == (403, {"shop_problem": "staff only"}), path


async def test_an_unexpected_error_with_no_handler_of_the_users_is_a_json_500(
    settings: Settings, registry: TaskRegistry, arq_redis: ArqRedis, events: list[str]
) -> None:
    async def broken() -> None:
        raise LookupError("no such thing")

    app = shop_app(settings, registry, events, dependencies=[Depends(broken)])
    async with serving(app, arq_redis, events) as client:
        failed = await client.get("/jobs/abc")
    assert (failed.status_code, failed.json()) == (
        500,
        {"error": "internal_error", "message": "internal server error"},
    )


async def test_the_users_handlers_404s_validation_and_openapi_stay_theirs(
    settings: Settings, registry: TaskRegistry, arq_redis: ArqRedis, events: list[str]
) -> None:
    app = shop_app(settings, registry, events, prefix="/jobs-api")
    async with serving(app, arq_redis, events) as client:
        broken = await client.get("/broken")
        assert (broken.status_code, broken.json()) == (418, {"shop_problem": "out of stock"})
        missing = await client.get("/no-such-page")
        assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
        invalid = await client.get("/orders/abc")
        assert invalid.status_code == 422 and list(invalid.json()) == ["detail"]
        # ...while the job API answers its own errors its own way
        bad = await client.post("/jobs-api/jobs/noop", json={"value": 1}, params={"delay": -1})
        assert bad.status_code == 422 and bad.json()["error"] == "validation_error"
        unknown = await client.get("/jobs-api/jobs/nope")
        assert unknown.json() == {
            "error": "job_not_found",
            "message": "no job with id 'nope' (unknown, or its record has expired)",
            "job_id": "nope",
        }
        openapi = (await client.get("/openapi.json")).json()
    assert openapi["info"]["title"] == "Shop"
    assert {"/greeting", "/orders", "/jobs-api/jobs/noop", "/jobs-api/jobs/{job_id}"} <= set(openapi["paths"])


async def test_an_error_of_ours_in_the_users_route_is_answered_as_json(
    settings: Settings, registry: TaskRegistry, arq_redis: ArqRedis, events: list[str]
) -> None:
    app = shop_app(settings, registry, events)
    async with serving(app, arq_redis, events) as client:
        refused = await client.post("/orders", params={"queue": "urgent"})
    assert (refused.status_code, refused.json()["error"], refused.json()["queue"]) == (
        422,
        "unknown_queue",
        "urgent",
    )


async def test_redis_down_in_the_users_route_is_503(registry: TaskRegistry, events: list[str]) -> None:
    settings = make_settings(redis_timeout_s=0.5)  # 127.0.0.1:1: nothing listens
    app = shop_app(settings, registry, events)
    async with serving(app, create_arq(settings), events) as client:
        down = await client.post("/orders")
    assert (down.status_code, down.json()) == (
        503,
        {
            "error": "redis_unavailable",
            "message": "Redis is unreachable; the request was not completed. Try again shortly.",
        },
    )


def test_install_refuses_a_second_call_and_a_malformed_prefix(settings: Settings) -> None:
    app = FastAPI()
    install(app, settings=settings, task_packages=["workers.tasks"])
    assert sorted(t.name for t in installation(app).registry) == ["generate_report", "noop", "send_webhook"]
    with pytest.raises(RuntimeError, match="already installed"):
        install(app, settings=settings)
    for prefix in ("jobs", "/jobs/", "//jobs"):
        with pytest.raises(ValueError, match="must start with '/'"):
            install(FastAPI(), settings=settings, prefix=prefix)


async def test_install_after_the_app_started_is_refused_before_changing_anything(
    settings: Settings, registry: TaskRegistry, arq_redis: ArqRedis, events: list[str]
) -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> str:
        return "pong"

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/ping")).json() == "pong"
        routes = list(app.routes)
        with pytest.raises(RuntimeError, match="before the app starts"):
            mount(app, settings, registry)
        assert app.routes == routes and getattr(app.state, "arq_jobs_installation", None) is None


MADE: list[FastAPI] = []


def counted_app() -> FastAPI:
    """An app factory serve() is given by import string (`tests.unit.test_install:counted_app`)."""
    MADE.append(FastAPI())
    return MADE[-1]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What serve() hands uvicorn.run (which is not started); logging is left alone."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append({"app": app, **options}))
    monkeypatch.setattr(install_module, "configure_logging", lambda *args: None)
    MADE.clear()
    return calls


def test_serve_runs_one_process_of_an_app_object_as_before(served: list[dict[str, Any]]) -> None:
    app = FastAPI()
    serve(app, settings=make_settings())
    [call] = served
    assert (call["app"], call["workers"], call["factory"], call["log_config"]) == (app, 1, False, None)


def test_serve_runs_several_processes_of_an_import_string_each_set_up_to_log_as_ours(
    served: list[dict[str, Any]],
) -> None:
    settings = make_settings(api_workers=3, log_level="WARNING", log_format="json")
    serve("tests.unit.test_install:counted_app", settings=settings, factory=True)
    [call] = served
    assert (call["app"], call["workers"], call["factory"]) == ("tests.unit.test_install:counted_app", 3, True)
    assert len(MADE) == 1  # made once by serve itself, to stop at a mistake before any process starts
    assert call["log_config"] == {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"arq_jobs": {"()": configured_handler, "log_level": "WARNING", "log_format": "json"}},
        "root": {"handlers": ["arq_jobs"], "level": "WARNING"},
    }


def test_serve_refuses_several_processes_of_an_app_object_saying_to_pass_its_import_string(
    served: list[dict[str, Any]],
) -> None:
    with pytest.raises(SystemExit) as refused:
        serve(FastAPI(), settings=make_settings(api_workers=2))
    assert str(refused.value) == (
        "JOBS_API_WORKERS=2: each API process imports the app itself, so pass serve() the app's import "
        'string instead of the app: serve("myproject.main:app"), or serve("myproject.main:create_app", '
        "factory=True) for a function that makes it"
    )
    with pytest.raises(SystemExit) as unknown:
        serve("tests.unit.no_such_module:app", settings=make_settings(api_workers=2))
    assert str(unknown.value).startswith("cannot import the app: ")
    assert served == []


def test_api_workers_is_at_least_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_settings().api_workers == 1
    monkeypatch.setenv("JOBS_API_WORKERS", "4")
    assert Settings(_env_file=None).api_workers == 4  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="api_workers"):
        make_settings(api_workers=0)


def test_configured_handler_is_our_logging_in_the_process_that_applies_it() -> None:
    """What each of several API processes runs (uvicorn applies the dict in each)."""
    code = (
        "import logging, logging.config; from arq_jobs import Settings; "
        "from arq_jobs._api.install import process_logging; "
        "logging.config.dictConfig(process_logging(Settings(_env_file=None, log_format='json'))); "
        "logging.getLogger('uvicorn.error').info('Started server process [1]')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stderr)
    assert (line["level"], line["logger"], line["event"]) == (
        "info",
        "uvicorn.error",
        "Started server process [1]",
    )
