"""Outgoing webhooks, sent with the worker's shared HTTP client."""

from __future__ import annotations

import time
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, Field, JsonValue, StringConstraints

from jobcore.context import JobContext
from jobcore.errors import WebhookError
from jobcore.registry import TaskInput, task

HeaderName = Annotated[str, StringConstraints(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", max_length=256)]
HeaderValue = Annotated[str, StringConstraints(pattern=r"^[\x20-\x7e\t]*$", max_length=8192)]


class WebhookInput(TaskInput):
    url: AnyHttpUrl = Field(description="http(s) URL to POST to.")
    payload: JsonValue = Field(description="JSON body to send.")
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict, description="Extra request headers (printable ASCII)."
    )


class WebhookResult(BaseModel):
    status_code: int
    elapsed_ms: float


@task(timeout_s=30)
async def send_webhook(ctx: JobContext, data: WebhookInput) -> WebhookResult:
    """POST a JSON body to a URL; any 2xx answer is success."""
    started = time.perf_counter()
    response = await ctx.http.post(str(data.url), json=data.payload, headers=data.headers)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    if not response.is_success:
        raise WebhookError(str(data.url), response.status_code)
    return WebhookResult(status_code=response.status_code, elapsed_ms=elapsed_ms)
