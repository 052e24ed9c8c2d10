"""Authentication and scopes (`arq_jobs._api.auth`, `arq_jobs._auth`): every route but the health
probes needs a key when JOBS_AUTH=keys; 401 without one, 403 without the route's scope; a key sees
only its own jobs, workflows and dead letters; the dashboard needs an `admin` key (Bearer or Basic);
JOBS_AUTH=off serves loopback clients only; the Host must be allowed; the OpenAPI document names the
bearer scheme, each operation's scope and short operation ids."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError

from arq_jobs._api.auth import authorize, basic_password, is_loopback, requires
from arq_jobs._api.deps import AppState, get_state
from arq_jobs._api.errors import ApiRoute
from arq_jobs._api.install import mount
from arq_jobs._auth.keys import KeyStore
from arq_jobs._auth.scopes import Principal, check_scope
from arq_jobs._keys import Keys
from tests.apps import create_app
from tests.shipped import registry as shipped

from .conftest import make_settings

ADMIN_TOKEN = "a" * 40
OPEN_ROUTES = {"health_live", "health_ready"}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def keyed_app(arq_redis: ArqRedis, **overrides: Any) -> FastAPI:
    settings = make_settings(auth="keys", admin_token=ADMIN_TOKEN, **overrides)
    app = create_app(settings, shipped)
    state = AppState(settings, shipped, arq_redis)  # one key cache for the app, as in the lifespan
    app.dependency_overrides[get_state] = lambda: state
    return app


@asynccontextmanager
async def client_of(
    app: FastAPI, client: tuple[str, int] = ("127.0.0.1", 50000)
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def make_key(arq_redis: ArqRedis, name: str, *scopes: str, expires_in_s: int | None = None) -> str:
    _, secret = await KeyStore(arq_redis, Keys("unit")).create(name, scopes, expires_in_s)
    return secret


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def api_routes(app: FastAPI) -> list[ApiRoute]:
    """The routes install() added (FastAPI keeps included routes inside the router they came from)."""
    found = [context.original_route for context in iter_route_contexts(app.routes)]
    return [route for route in found if isinstance(route, ApiRoute)]


def guarded_routes(app: FastAPI) -> list[ApiRoute]:
    return [r for r in api_routes(app) if r.name not in OPEN_ROUTES]


def declared_scopes(route: APIRoute) -> list[str] | None:
    """The scopes of the route's `authorize` dependency; None when it has none."""
    for dependency in route.dependant.dependencies:
        if dependency.call is authorize:
            return list(dependency.own_oauth_scopes or [])
    return None


def test_every_api_route_but_the_health_probes_declares_the_guard(arq_redis: ArqRedis) -> None:
    app = keyed_app(arq_redis)
    routes = guarded_routes(app)
    assert len(routes) >= 20
    unguarded = [r.name for r in routes if declared_scopes(r) is None]
    assert unguarded == []
    probes = [r for r in api_routes(app) if r.name in OPEN_ROUTES]
    assert [declared_scopes(r) for r in probes] == [None, None]


async def test_every_guarded_route_without_a_key_is_401_with_a_bearer_challenge(arq_redis: ArqRedis) -> None:
    app = keyed_app(arq_redis)
    async with client_of(app) as http:
        for route in guarded_routes(app):
            for method in route.methods or ():
                answer = await http.request(method, concrete(route.path), json={})
                assert answer.status_code == 401, (method, route.path, answer.text)
                assert answer.headers["www-authenticate"] == "Bearer"
                assert answer.json() == {
                    "error": "unauthorized",
                    "message": "this route needs an API key: send `Authorization: Bearer <key>`",
                }
        for probe in ("/health/live", "/health/ready"):
            assert (await http.get(probe)).status_code in (200, 503)


@pytest.mark.parametrize(
    "authorization", ["Bearer wrong", "Bearer ", basic("x", ADMIN_TOKEN), "Token " + ADMIN_TOKEN, ADMIN_TOKEN]
)
async def test_a_wrong_or_misplaced_key_is_401(arq_redis: ArqRedis, authorization: str) -> None:
    async with client_of(keyed_app(arq_redis)) as http:
        answer = await http.get("/jobs", headers={"Authorization": authorization})
        assert answer.status_code == 401
        assert answer.json()["error"] == "unauthorized"


async def test_a_key_without_the_scope_is_403_naming_it(arq_redis: ArqRedis) -> None:
    billing = await make_key(arq_redis, "billing", "jobs:read", "jobs:enqueue:noop")
    app = keyed_app(arq_redis)
    async with client_of(app) as http:
        created = await http.post("/jobs/noop", json={"value": 1}, headers=bearer(billing))
        assert created.status_code == 202
        job_id = created.json()["job_id"]
        answer = await http.delete(f"/jobs/{job_id}", headers=bearer(billing))
        assert answer.status_code == 403
        assert answer.json() == {
            "error": "forbidden",
            "message": "key 'billing' lacks scope 'jobs:cancel'",
            "scope": "jobs:cancel",
        }
        other_task = await http.post("/jobs/send_webhook", json={}, headers=bearer(billing))
        assert other_task.status_code == 403
        assert other_task.json()["scope"] == "jobs:enqueue:send_webhook"
        for path, scope in [
            ("/metrics", "metrics:read"),
            ("/queues", "metrics:read"),
            ("/workers", "metrics:read"),
            ("/health/workers", "metrics:read"),
            ("/dead-letters", "dead-letters:read"),
        ]:
            answer = await http.get(path, headers=bearer(billing))
            assert (answer.status_code, answer.json()["scope"]) == (403, scope), path
        assert (await http.get(f"/jobs/{job_id}", headers=bearer(billing))).status_code == 200
        assert (await http.get("/tasks", headers=bearer(billing))).status_code == 200


async def test_each_scope_opens_its_routes(arq_redis: ArqRedis) -> None:
    ops = await make_key(arq_redis, "ops", "metrics:read", "dead-letters:read", "dead-letters:write")
    writer = await make_key(
        arq_redis, "writer", "jobs:enqueue", "jobs:cancel", "workflows:write", "jobs:read"
    )
    async with client_of(keyed_app(arq_redis)) as http:
        for path in ("/metrics", "/queues", "/workers", "/dead-letters"):
            assert (await http.get(path, headers=bearer(ops))).status_code == 200, path
        assert (await http.get("/health/workers", headers=bearer(ops))).status_code in (200, 503)
        job = (await http.post("/jobs/noop", json={}, headers=bearer(writer))).json()
        assert (await http.delete(f"/jobs/{job['job_id']}", headers=bearer(writer))).json()[
            "status"
        ] == "cancelled"
        flow = await http.post(
            "/workflows", json={"type": "chain", "steps": [{"task": "noop"}]}, headers=bearer(writer)
        )
        assert flow.status_code == 202
        workflow_id = flow.json()["workflow_id"]
        assert (await http.get(f"/workflows/{workflow_id}", headers=bearer(writer))).json()[
            "owner"
        ] == "writer"
        assert (await http.delete(f"/workflows/{workflow_id}", headers=bearer(writer))).status_code == 200


async def test_a_workflow_needs_the_enqueue_scope_of_each_step(arq_redis: ArqRedis) -> None:
    key = await make_key(arq_redis, "flows", "workflows:write", "jobs:enqueue:noop")
    spec = {"type": "chain", "steps": [{"task": "noop"}, {"task": "send_webhook"}]}
    async with client_of(keyed_app(arq_redis)) as http:
        answer = await http.post("/workflows", json=spec, headers=bearer(key))
        assert answer.status_code == 403
        assert answer.json() == {
            "error": "forbidden",
            "message": "key 'flows' lacks scope 'jobs:enqueue:send_webhook'",
            "scope": "jobs:enqueue:send_webhook",
        }
        assert await arq_redis.keys("unit:workflow:*") == []


async def test_a_key_sees_only_its_own_jobs_and_admin_sees_all(arq_redis: ArqRedis) -> None:
    scopes = ("jobs:enqueue", "jobs:read", "jobs:cancel")
    alice = await make_key(arq_redis, "alice", *scopes)
    bob = await make_key(arq_redis, "bob", *scopes)
    async with client_of(keyed_app(arq_redis)) as http:
        mine = (await http.post("/jobs/noop", json={"value": "a"}, headers=bearer(alice))).json()
        theirs = (await http.post("/jobs/noop", json={"value": "b"}, headers=bearer(bob))).json()
        job_id = mine["job_id"]
        own = await http.get(f"/jobs/{job_id}", headers=bearer(alice))
        assert (own.status_code, own.json()["owner"]) == (200, "alice")
        hidden = await http.get(f"/jobs/{job_id}", headers=bearer(bob))
        unknown = await http.get("/jobs/no-such-job", headers=bearer(bob))
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.json() == {
            "error": "job_not_found",
            "message": f"no job with id {job_id!r} (unknown, or its record has expired)",
            "job_id": job_id,
        }
        assert (await http.delete(f"/jobs/{job_id}", headers=bearer(bob))).status_code == 404
        assert (await http.get(f"/jobs/{job_id}/events", headers=bearer(bob))).status_code == 404
        listed = (await http.get("/jobs", headers=bearer(bob))).json()
        assert [item["job_id"] for item in listed["items"]] == [theirs["job_id"]]
        everyone = (await http.get("/jobs", headers=bearer(ADMIN_TOKEN))).json()
        assert {item["job_id"] for item in everyone["items"]} == {job_id, theirs["job_id"]}
        assert (await http.get(f"/jobs/{job_id}", headers=bearer(ADMIN_TOKEN))).json()["owner"] == "alice"


async def test_idempotency_keys_are_per_owner(arq_redis: ArqRedis) -> None:
    alice = await make_key(arq_redis, "alice", "jobs:enqueue", "jobs:read")
    bob = await make_key(arq_redis, "bob", "jobs:enqueue", "jobs:read")
    async with client_of(keyed_app(arq_redis)) as http:
        headers = {"Idempotency-Key": "order-42"}
        first = await http.post("/jobs/noop", json={"value": 1}, headers={**headers, **bearer(alice)})
        other = await http.post("/jobs/noop", json={"value": 2}, headers={**headers, **bearer(bob)})
        assert (first.status_code, other.status_code) == (202, 202)
        assert first.json()["job_id"] != other.json()["job_id"]
        again = await http.post("/jobs/noop", json={"value": 1}, headers={**headers, **bearer(alice)})
        assert (again.status_code, again.json()["job_id"]) == (200, first.json()["job_id"])
        clash = await http.post("/jobs/noop", json={"value": 3}, headers={**headers, **bearer(bob)})
        assert clash.status_code == 409
        assert clash.json()["job_id"] == other.json()["job_id"]


async def test_an_expired_or_revoked_key_is_401(arq_redis: ArqRedis) -> None:
    expired = await make_key(arq_redis, "old", "jobs:read", expires_in_s=0)
    live = await make_key(arq_redis, "live", "jobs:read")
    app = keyed_app(arq_redis)
    async with client_of(app) as http:
        assert (await http.get("/jobs", headers=bearer(expired))).status_code == 401
        assert (await http.get("/jobs", headers=bearer(live))).status_code == 200
        assert await KeyStore(arq_redis, Keys("unit")).revoke("live") is True
        state: AppState = app.dependency_overrides[get_state]()
        state.keys().loaded_at = float("-inf")  # a second later
        assert (await http.get("/jobs", headers=bearer(live))).status_code == 401


async def test_the_admin_token_is_an_admin_key_and_a_short_one_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        make_settings(admin_token="short")
    assert Principal("x", frozenset({"admin"})).allows("dead-letters:write")
    assert Principal("x", frozenset({"jobs:enqueue"})).allows("jobs:enqueue:noop")
    assert not Principal("x", frozenset({"jobs:enqueue:noop"})).allows("jobs:enqueue:other")
    with pytest.raises(ValueError, match="unknown scope 'jobs:write'"):
        check_scope("jobs:write")


async def test_auth_off_serves_loopback_clients_only(arq_redis: ArqRedis) -> None:
    settings = make_settings(auth="off")
    app = create_app(settings, shipped)
    app.dependency_overrides[get_state] = lambda: AppState(settings, shipped, arq_redis)
    async with client_of(app) as http:
        assert (await http.get("/jobs")).status_code == 200
    refusal = "authentication is off (JOBS_AUTH=off), which serves loopback clients only, not through a proxy"
    async with client_of(app, client=("192.0.2.7", 50000)) as http:  # an address in the ASGI scope only
        answer = await http.get("/jobs")
        assert (answer.status_code, answer.json()["message"]) == (401, refusal)
    async with client_of(app) as http:  # loopback, but through a proxy on this host
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host"):
            answer = await http.get("/jobs", headers={header: "127.0.0.1"})
            assert (answer.status_code, answer.json()["message"]) == (401, refusal), header
        evil = await http.post("/reports", json={"rows": 1}, headers={"Host": "rebind.example:8000"})
        assert (evil.status_code, evil.json()["error"]) == (400, "invalid_host")  # a route of the app's own
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback(None)


async def test_an_untrusted_host_is_400_and_the_public_url_makes_the_links(arq_redis: ArqRedis) -> None:
    app = keyed_app(arq_redis, public_url="https://jobs.example.com/")
    async with client_of(app) as http:
        evil = await http.get("/health/live", headers={"Host": "evil.example"})
        assert evil.status_code == 400
        assert evil.json() == {
            "error": "invalid_host",
            "message": "host 'evil.example' is not served here (JOBS_ALLOWED_HOSTS)",
        }
        assert (await http.get("/health/live", headers={"Host": "jobs.example.com"})).status_code == 200
        created = await http.post("/jobs/noop", json={}, headers=bearer(ADMIN_TOKEN))
        job_id = created.json()["job_id"]
        assert created.headers["location"] == f"https://jobs.example.com/jobs/{job_id}"
        assert created.json()["status_url"] == f"https://jobs.example.com/jobs/{job_id}"


async def test_the_dashboard_needs_an_admin_key_as_bearer_or_basic(arq_redis: ArqRedis) -> None:
    reader = await make_key(arq_redis, "reader", "jobs:read")
    admin = await make_key(arq_redis, "ops", "admin")
    async with client_of(keyed_app(arq_redis)) as http:
        challenge = await http.get("/dashboard/")
        assert challenge.status_code == 401
        assert challenge.headers["www-authenticate"] == 'Basic realm="arq-jobs"'
        assert challenge.headers["content-type"].startswith("text/html")
        refused = await http.get("/dashboard/", headers={"Authorization": basic("me", reader)})
        assert refused.status_code == 403
        assert "key &#39;reader&#39; lacks scope &#39;admin&#39;" in refused.text
        for authorization in (basic("me", admin), basic("", ADMIN_TOKEN), f"Bearer {admin}"):
            answer = await http.get("/dashboard/", headers={"Authorization": authorization})
            assert answer.status_code == 200, authorization
    assert basic_password(basic("u", "p:with:colons")) == "p:with:colons"
    assert basic_password("Basic !!notbase64") is None and basic_password(None) is None


async def test_openapi_declares_the_bearer_scheme_scopes_and_short_operation_ids(arq_redis: ArqRedis) -> None:
    async with client_of(keyed_app(arq_redis)) as http:
        schema = (await http.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "API key",
        "description": "An API key from `arq-jobs keys create` (or JOBS_ADMIN_TOKEN), as "
        "`Authorization: Bearer <key>`. Each operation names the scope it needs.",
    }
    operations = {(path, method): op for path, item in schema["paths"].items() for method, op in item.items()}
    assert operations["/jobs/noop", "post"]["operationId"] == "enqueue_noop"
    assert operations["/jobs/noop", "post"]["security"] == [{"bearer": ["jobs:enqueue:noop"]}]
    assert operations["/jobs/{job_id}", "get"]["operationId"] == "get_job"
    assert operations["/jobs/{job_id}", "get"]["security"] == [{"bearer": ["jobs:read"]}]
    assert operations["/jobs/{job_id}", "delete"]["operationId"] == "cancel_job"
    assert operations["/jobs/{job_id}", "delete"]["security"] == [{"bearer": ["jobs:cancel"]}]
    assert operations["/dead-letters/{job_id}/retry", "post"]["security"] == [
        {"bearer": ["dead-letters:write"]}
    ]
    assert operations["/metrics", "get"]["security"] == [{"bearer": ["metrics:read"]}]
    assert "security" not in operations["/health/live", "get"]
    ids = [op["operationId"] for op in operations.values()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z_]+", i) for i in ids), ids
    assert operations["/jobs/{job_id}", "get"]["responses"]["401"]["description"].startswith("No API key")


async def test_the_reference_apps_own_routes_use_the_same_keys(arq_redis: ArqRedis) -> None:
    reporter = await make_key(arq_redis, "reporter", "jobs:enqueue:generate_report", "jobs:read")
    other = await make_key(arq_redis, "other", "jobs:read")
    async with client_of(keyed_app(arq_redis)) as http:
        anonymous = await http.post("/reports", json={"rows": 10})
        assert (anonymous.status_code, anonymous.json()["error"]) == (401, "unauthorized")
        refused = await http.post("/reports", json={"rows": 10}, headers=bearer(other))
        assert (refused.status_code, refused.json()["scope"]) == (403, "jobs:enqueue:generate_report")
        accepted = await http.post("/reports", json={"rows": 10}, headers=bearer(reporter))
        assert accepted.status_code == 202
        job_id = accepted.json()["job_id"]
        assert (await http.get(f"/jobs/{job_id}", headers=bearer(reporter))).json()["owner"] == "reporter"
        assert (await http.get(f"/reports/{job_id}")).status_code == 401
        hidden = await http.get(f"/reports/{job_id}", headers=bearer(other))
        assert (hidden.status_code, hidden.json()["error"]) == (404, "report_not_found")
        not_yet = await http.get(f"/reports/{job_id}", headers=bearer(reporter))
        assert (not_yet.status_code, not_yet.json()["error"]) == (404, "report_not_found")  # not built yet


async def test_a_keys_listing_walks_its_own_index_so_cursors_name_only_its_jobs(arq_redis: ArqRedis) -> None:
    alice = await make_key(arq_redis, "alice", "jobs:enqueue", "jobs:read")
    bob = await make_key(arq_redis, "bob", "jobs:enqueue", "jobs:read")
    async with client_of(keyed_app(arq_redis)) as http:
        hers = [
            (await http.post("/jobs/noop", json={}, headers=bearer(alice))).json()["job_id"] for _ in range(3)
        ]
        his = [
            (await http.post("/jobs/noop", json={}, headers=bearer(bob))).json()["job_id"] for _ in range(2)
        ]
        assert sorted(await arq_redis.zrange("unit:index:owner:bob", 0, -1)) == sorted(
            j.encode() for j in his
        )
        assert sorted(await arq_redis.zrange("unit:index:owner:alice", 0, -1)) == sorted(
            j.encode() for j in hers
        )
        seen, cursors, cursor = [], [], None
        while True:
            params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = (await http.get("/jobs", params=params, headers=bearer(bob))).json()
            seen += [item["job_id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            cursors.append(cursor)
        assert sorted(seen) == sorted(his)
        assert all(any(job_id in c for job_id in his) for c in cursors) and cursors
        assert not any(job_id in c for c in cursors for job_id in hers)


async def test_redis_failing_while_keys_are_read_is_503_on_the_apps_own_routes_too(
    arq_redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = FastAPI()
    settings = make_settings(auth="keys", admin_token=ADMIN_TOKEN)
    mount(app, settings, shipped)  # install() alone: no json_errors for the whole app

    @app.get("/mine", dependencies=[requires("jobs:read")])
    async def mine() -> dict[str, str]:
        return {"ok": "yes"}

    state = AppState(settings, shipped, arq_redis)
    app.dependency_overrides[get_state] = lambda: state

    async def unreachable(self: KeyStore) -> list[object]:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(KeyStore, "all", unreachable)
    async with client_of(app) as http:
        for path in ("/mine", "/jobs"):
            answer = await http.get(path, headers=bearer("ajk_not-known-here"))
            assert answer.status_code == 503, (path, answer.text)
            assert answer.json()["error"] == "redis_unavailable"
