"""The shop's worker: `arq shop.worker.WorkerSettings` (Redis and key prefix from `JOBS_*`)."""

from __future__ import annotations

import os
from typing import Any

from arq_jobs.worker import worker_settings
from shop.mailer import MAILER, Mailer

DEFAULT_SENDER = "receipts@shop.example"


async def startup(ctx: dict[str, Any]) -> None:
    """Open the mailer the tasks send with (sender address: `SHOP_RECEIPTS_FROM`)."""
    ctx[MAILER] = Mailer(sender=os.environ.get("SHOP_RECEIPTS_FROM", DEFAULT_SENDER))


async def shutdown(ctx: dict[str, Any]) -> None:
    """Close the mailer."""
    mailer: Mailer | None = ctx.pop(MAILER, None)
    if mailer is not None:
        await mailer.aclose()


WorkerSettings = worker_settings(task_packages=["shop.tasks"], on_startup=startup, on_shutdown=shutdown)
