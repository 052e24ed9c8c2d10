"""Dependency providers and their `Annotated` aliases; tests replace them via dependency_overrides.

They are `async def` although they do not await: FastAPI runs a plain `def` dependency in a thread
pool, a thread hop per dependency per request."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends, Request
from redis.exceptions import RedisError

from arq_jobs._api.jobs import Jobs
from arq_jobs._auth.keys import KeyCache, KeyStore
from arq_jobs._auth.scopes import Principal
from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._errors import RedisUnavailableError
from arq_jobs._jobs.event_hub import EventHub
from arq_jobs._keys import Keys
from arq_jobs._redis_errors import describe_redis_error
from arq_jobs._scripts.batch import ScriptBatch
from arq_jobs._tasks.registry import TaskRegistry
from arq_jobs._version_guard import VersionGuard

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppState:
    """What the lifespan owns: settings, the task registry and the pooled ArqRedis."""

    settings: Settings
    registry: TaskRegistry
    arq: ArqRedis
    batch: ScriptBatch | None = None  # shared by the requests' clients: concurrent enqueues go together
    prefix: str = ""  # where install() mounted the routes: status URLs start with it
    guard: VersionGuard | None = None  # shared by the requests' clients: one snapshot of the workers a second
    events: EventHub | None = None  # the event streams' count and shared reader (None: one per stream)
    key_cache: KeyCache | None = None  # the API keys, read once a second (built with the pool)

    def keys(self) -> KeyCache:
        """The key cache; an AppState built by hand (tests) gets one of its own on first use."""
        if self.key_cache is None:
            object.__setattr__(self, "key_cache", key_cache(self.settings, self.arq))
        assert self.key_cache is not None
        return self.key_cache


def key_cache(settings: Settings, arq: ArqRedis) -> KeyCache:
    """The API keys of `settings`' deployment, with JOBS_ADMIN_TOKEN as the bootstrap admin key."""
    admin = settings.admin_token
    return KeyCache(
        KeyStore(arq, Keys(settings.key_prefix)), None if admin is None else admin.get_secret_value()
    )


STATE_KEY = "arq_jobs"
PRINCIPAL = "arq_jobs_principal"  # the request.state attribute arq_jobs._api.auth keeps the caller in


async def get_state(request: Request) -> AppState:
    try:
        state: AppState = getattr(request.state, STATE_KEY)
    except AttributeError:
        raise RuntimeError(
            "arq_jobs is not running in this app: call arq_jobs.fastapi.install(app) before the app "
            "starts, and serve it with its lifespan"
        ) from None
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    """The app's settings."""
    return state.settings


async def get_registry(state: StateDep) -> TaskRegistry:
    """The task registry the app was built with."""
    return state.registry


async def get_arq(state: StateDep) -> ArqRedis:
    """The pooled ArqRedis created in the lifespan."""
    return state.arq


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[TaskRegistry, Depends(get_registry)]
ArqDep = Annotated[ArqRedis, Depends(get_arq)]


async def get_event_hub(state: StateDep) -> EventHub:
    """The API process's event hub (an AppState built without one: a hub of this request's own)."""
    return state.events if state.events is not None else EventHub.for_settings(state.arq, state.settings)


EventHubDep = Annotated[EventHub, Depends(get_event_hub)]


def principal_of(request: Request) -> Principal | None:
    """Who the request was authenticated as (None: auth is off, or the route has no guard)."""
    found = getattr(request.state, PRINCIPAL, None)
    return found if isinstance(found, Principal) else None


async def get_api_jobs(request: Request, state: StateDep) -> Jobs:
    """The typed job facade for a request to one of the API's own routes (from the state directly:
    each dependency FastAPI resolves costs time on every request)."""
    guard = True if state.guard is None else state.guard
    client = JobClient(state.arq, state.settings, state.registry, state.batch, guard)
    return Jobs(client, request, state.prefix, principal_of(request))


async def get_jobs(request: Request, state: StateDep) -> AsyncIterator[Jobs]:
    """The typed job facade for this request. A Redis error out of the route (the route's own use of
    Redis too) becomes RedisUnavailableError, answered 503 `redis_unavailable` as by the API's routes."""
    try:
        yield await get_api_jobs(request, state)
    except RedisError as exc:
        log.warning(
            "redis error during %s %s: %s", request.method, request.url.path, describe_redis_error(exc)
        )
        raise RedisUnavailableError(exc) from exc


ApiJobsDep = Annotated[Jobs, Depends(get_api_jobs)]
JobsDep = Annotated[Jobs, Depends(get_jobs)]
"""`jobs: JobsDep` in a route of yours: enqueue tasks, read job status, start workflows."""
