"""Progress a running task reports through its context, stored in the job's record."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field


class Progress(BaseModel):
    """Step `step` of `total`, with a percentage and a human message."""

    step: int = Field(ge=0)
    total: int = Field(ge=1)
    percent: float = Field(ge=0, le=100)
    message: str = ""
    updated_at: datetime

    @classmethod
    def at(cls, step: int, total: int, message: str = "") -> Progress:
        """Progress at `step` of `total` now; `step` is clamped to the range 0..total."""
        if total < 1:
            raise ValueError("total must be at least 1")
        step = max(0, min(step, total))
        return cls(
            step=step,
            total=total,
            percent=round(100 * step / total, 2),
            message=message,
            updated_at=datetime.now(UTC),
        )
