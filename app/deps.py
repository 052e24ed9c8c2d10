"""Dependency providers and their `Annotated` aliases; tests replace them via dependency_overrides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends, Request

from app.jobs import Jobs
from jobcore.client import JobClient
from jobcore.config import Settings
from jobcore.registry import TaskRegistry


@dataclass(frozen=True, slots=True)
class AppState:
    """What the lifespan owns: settings, the task registry and the pooled ArqRedis."""

    settings: Settings
    registry: TaskRegistry
    arq: ArqRedis


def get_state(request: Request) -> AppState:
    state: AppState = request.state.app_state
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    """The app's settings."""
    return state.settings


def get_registry(state: StateDep) -> TaskRegistry:
    """The task registry the app was built with."""
    return state.registry


def get_arq(state: StateDep) -> ArqRedis:
    """The pooled ArqRedis created in the lifespan."""
    return state.arq


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[TaskRegistry, Depends(get_registry)]
ArqDep = Annotated[ArqRedis, Depends(get_arq)]


def get_jobs(request: Request, arq: ArqDep, settings: SettingsDep, registry: RegistryDep) -> Jobs:
    """The typed job facade for this request."""
    return Jobs(JobClient(arq, settings, registry), request)


JobsDep = Annotated[Jobs, Depends(get_jobs)]
