"""Cron schedules declared with a task: `@task(schedule=Cron("*/5 * * * *", timezone="Europe/Paris"))`.

(Skeleton: parsing and next-run computation arrive with the schedules work.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cron:
    """When a task runs by itself, with which input, under which schedule name."""

    expression: str
    timezone: str = "UTC"
    input: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
