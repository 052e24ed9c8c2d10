"""Dependency providers and their `Annotated` aliases; tests replace them via dependency_overrides.

They are `async def` although they do not await: FastAPI runs a plain `def` dependency in a thread
pool, a thread hop per dependency per request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends, Request

from app.jobs import Jobs
from jobcore.batching import ScriptBatch
from jobcore.client import JobClient
from jobcore.config import Settings
from jobcore.registry import TaskRegistry


@dataclass(frozen=True, slots=True)
class AppState:
    """What the lifespan owns: settings, the task registry and the pooled ArqRedis."""

    settings: Settings
    registry: TaskRegistry
    arq: ArqRedis
    batch: ScriptBatch | None = None  # shared by the requests' clients: concurrent enqueues go together


async def get_state(request: Request) -> AppState:
    state: AppState = request.state.app_state
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


async def get_jobs(request: Request, state: StateDep) -> Jobs:
    """The typed job facade for this request (from the state directly: each dependency FastAPI
    resolves costs time on every request)."""
    return Jobs(JobClient(state.arq, state.settings, state.registry, state.batch), request)


JobsDep = Annotated[Jobs, Depends(get_jobs)]
