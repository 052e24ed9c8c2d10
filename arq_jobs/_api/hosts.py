"""Which `Host` the API answers to (JOBS_ALLOWED_HOSTS, and JOBS_PUBLIC_URL's host): others get 400.

The status and workflow URLs the API hands out are built from the request's Host unless
JOBS_PUBLIC_URL is set, so a forged Host would end up in a `Location`; and a loopback API (the
default, and the only place JOBS_AUTH=off may listen) must not be reachable through DNS rebinding
from a browser, which reaches it under a foreign host name."""

from __future__ import annotations

from fastapi import Request

from arq_jobs._api.deps import StateDep
from arq_jobs._config import Settings
from arq_jobs._errors import InvalidHostError


def host_name(header: str) -> str:
    """The name in a Host header, without port or IPv6 brackets, lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def allowed(host: str, settings: Settings) -> bool:
    patterns = [*settings.allowed_hosts]
    if settings.public_url is not None and settings.public_url.host:
        patterns.append(settings.public_url.host)
    for pattern in (p.strip().lower().removeprefix("[").removesuffix("]") for p in patterns):
        if pattern == "*" or host == pattern:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


def check_host(request: Request, settings: Settings) -> None:
    """InvalidHostError unless the request's Host is allowed."""
    host = host_name(request.headers.get("host", ""))
    if not allowed(host, settings):
        raise InvalidHostError(host)


async def trusted_host(request: Request, state: StateDep) -> None:
    """The dependency of every route install() adds (`authorize` checks the same for routes of yours
    behind `requires()`)."""
    check_host(request, state.settings)
