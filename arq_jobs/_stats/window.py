"""The windows statistics are read over, the units of time they are kept in, and the key names."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit statistics are kept in: one hash per unit and scope (`includes/stats.lua`)."""

    name: str  # mirrors STATS_UNITS of arq_jobs/_scripts/lua/includes/stats.lua
    seconds: int


MINUTE = Unit("m", 60)
HOUR = Unit("h", 3600)

JOBS_SCOPE = "jobs:"  # a task's attempts on a queue: `jobs:<queue>:<task>` (mirrors STATS_JOBS)
DEPTH_SCOPE = "depth:"  # a queue's sampled depth: `depth:<queue>`


class Window(StrEnum):
    """How far back `GET /stats` looks."""

    MINUTES_15 = "15m"
    HOUR_1 = "1h"
    HOURS_24 = "24h"
    DAYS_7 = "7d"
    DAYS_30 = "30d"

    @property
    def seconds(self) -> int:
        return WINDOW_SECONDS[self]

    @property
    def resolution_s(self) -> int:
        """The length of one point of the series."""
        return RESOLUTION_S[self]

    @property
    def unit(self) -> Unit:
        """The unit it is read from: minutes up to an hour, hours beyond."""
        return MINUTE if self.resolution_s < HOUR.seconds else HOUR

    @property
    def points(self) -> int:
        return self.seconds // self.resolution_s


WINDOW_SECONDS = {
    Window.MINUTES_15: 15 * 60,
    Window.HOUR_1: 3600,
    Window.HOURS_24: 86_400,
    Window.DAYS_7: 7 * 86_400,
    Window.DAYS_30: 30 * 86_400,
}
RESOLUTION_S = {
    Window.MINUTES_15: 60,
    Window.HOUR_1: 60,
    Window.HOURS_24: 3600,
    Window.DAYS_7: 3600,
    Window.DAYS_30: 6 * 3600,
}
