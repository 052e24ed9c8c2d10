"""Outgoing webhooks, sent with the worker's shared HTTP client, whose address guard refuses hosts inside
the network (arq_jobs._netguard; JOBS_WEBHOOK_ALLOWED_HOSTS opens exceptions)."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated

import httpx
from pydantic import AfterValidator, AnyHttpUrl, BaseModel, Field, JsonValue, StringConstraints
from pydantic_core import PydanticCustomError

from arq_jobs import (
    BlockedAddressError,
    JobContext,
    PermanentError,
    RetryPolicy,
    Secret,
    TaskError,
    TaskInput,
    TransientError,
    task,
)


class WebhookError(TaskError):
    """A webhook target answered with a status that is not 2xx."""

    code = "webhook_error"

    def __init__(self, url: str, status_code: int) -> None:
        super().__init__(f"webhook target {url} answered HTTP {status_code}")
        self.url = url
        self.status_code = status_code


class WebhookRejectedError(WebhookError, PermanentError):
    """A webhook target refused the request (4xx other than 429): retrying cannot help."""

    code = "webhook_rejected"


class WebhookUnavailableError(WebhookError, TransientError):
    """A webhook target is failing or throttling (5xx, 429): retried, after its Retry-After if given."""

    code = "webhook_unavailable"

    def __init__(self, url: str, status_code: int, retry_after_s: float | None = None) -> None:
        WebhookError.__init__(self, url, status_code)
        self.retry_after_s = retry_after_s


class WebhookRequestError(PermanentError):
    """The webhook request could not be sent as given (httpx's LocalProtocolError: HTTP forbids one of
    its headers): retrying cannot help. The message never quotes a header's value, which may be secret."""

    code = "webhook_invalid_request"

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"the request to webhook target {url} could not be sent: {problem}")
        self.url = url


class WebhookBlockedError(BlockedAddressError):
    """The webhook's host is, or resolves to, a loopback, private, link-local or otherwise internal
    address that JOBS_WEBHOOK_ALLOWED_HOSTS does not open: nothing was sent, and retrying cannot help."""

    code = "webhook_blocked"
    subject = "webhook host"


HOP_BY_HOP = "a hop-by-hop header, which the sender sets per connection"
# headers the sender owns: a caller's value would misroute the request or desynchronise its framing
RESERVED_HEADERS = {
    "host": "the URL gives the host",
    "content-length": "it is set from the body",
    "transfer-encoding": "the body's framing is set by the sender",
    **dict.fromkeys(
        (
            "connection",
            "keep-alive",
            "proxy-authenticate",
            "proxy-authorization",
            "proxy-connection",
            "te",
            "trailer",
            "upgrade",
        ),
        HOP_BY_HOP,
    ),
}


def settable_header(name: str) -> str:
    why = RESERVED_HEADERS.get(name.lower())
    if why is not None:
        raise PydanticCustomError(
            "header_not_allowed", "header '{header}' cannot be set: {why}", {"header": name, "why": why}
        )
    return name


HeaderName = Annotated[
    str,
    StringConstraints(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", max_length=256),
    AfterValidator(settable_header),
]
# h11's field-value (h11._abnf) within printable ASCII: visible characters, with spaces and tabs only
# between them; h11 refuses a value with leading or trailing whitespace, and quotes it in its error
HEADER_VALUE_PATTERN = r"^([\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?)?$"
HeaderValue = Annotated[str, StringConstraints(pattern=HEADER_VALUE_PATTERN, max_length=8192)]


class WebhookInput(TaskInput):
    url: AnyHttpUrl = Field(description="http(s) URL to POST to.")
    payload: JsonValue = Field(description="JSON body to send.")
    headers: dict[HeaderName, Annotated[HeaderValue, Secret]] = Field(
        default_factory=dict,
        description=(
            "Extra request headers (printable ASCII, no leading or trailing whitespace; not Host, "
            "Content-Length or hop-by-hop ones)."
        ),
    )


class WebhookResult(BaseModel):
    status_code: int
    elapsed_ms: float


def retry_after_s(response: httpx.Response) -> float | None:
    """A Retry-After header in seconds (delta-seconds or an HTTP date), None when absent or bad."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def json_body(payload: JsonValue) -> bytes:
    """The payload encoded as httpx's `json=` does, except that None is sent as `null`, not as no body."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


async def read_at_most(response: httpx.Response, limit: int) -> None:
    """Read the answer's body (as sent, not decompressed) until `limit` bytes have come, and drop it:
    only the status is used, and a body left unread closes its connection instead of being drained."""
    if response.is_stream_consumed:  # a response built in memory (httpx.MockTransport): nothing to read
        return
    received = 0
    async for chunk in response.aiter_raw():
        received += len(chunk)
        if received >= limit:
            return


def refused_headers(headers: dict[str, str]) -> str:
    """What HTTP refused in a request with these headers, naming headers, never their values."""
    bad = [name for name, value in headers.items() if re.fullmatch(HEADER_VALUE_PATTERN, value) is None]
    if bad:
        return f"HTTP does not allow the value of header(s) {', '.join(map(repr, bad))}"
    return "HTTP does not allow one of its headers"


# retried: connection errors and timeouts (httpx.TransportError), 5xx and 429 (WebhookUnavailableError,
# after Retry-After when given); failed at once: other 4xx and 3xx (WebhookRejectedError), a request HTTP
# does not allow (WebhookRequestError) and hosts inside the network (WebhookBlockedError)
WEBHOOK_RETRY = RetryPolicy(
    max_attempts=5, base_s=1.0, factor=2.0, cap_s=60.0, retry_on=(httpx.TransportError,)
)


@task(timeout_s=30, retry=WEBHOOK_RETRY)
async def send_webhook(ctx: JobContext, data: WebhookInput) -> WebhookResult:
    """POST a JSON body to a URL; any 2xx answer is success.

    Retries on connection errors, timeouts, 5xx and 429 (honouring Retry-After); fails at once on any
    other answer, and without sending when the URL's host is inside the network (WebhookBlockedError)
    or HTTP does not allow the request (WebhookRequestError)."""
    headers = httpx.Headers(data.headers)
    headers.setdefault("content-type", "application/json")
    limit = ctx.resources.settings.webhook_max_response_bytes
    started = time.perf_counter()
    try:
        async with ctx.http.stream(
            "POST", str(data.url), content=json_body(data.payload), headers=headers
        ) as response:
            await read_at_most(response, limit)
    except BlockedAddressError as blocked:
        raise WebhookBlockedError(blocked.host, blocked.port, blocked.address, blocked.reason) from None
    except httpx.LocalProtocolError:  # its message quotes the refused header value, which may be secret
        raise WebhookRequestError(str(data.url), refused_headers(data.headers)) from None
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    if response.status_code == 429 or response.status_code >= 500:
        raise WebhookUnavailableError(str(data.url), response.status_code, retry_after_s(response))
    if not response.is_success:
        raise WebhookRejectedError(str(data.url), response.status_code)
    return WebhookResult(status_code=response.status_code, elapsed_ms=elapsed_ms)
