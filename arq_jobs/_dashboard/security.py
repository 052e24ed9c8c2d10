"""The dashboard's guards on actions: same origin (or a CSRF token) for every non-GET request, and
read-only mode.

A browser names where a request comes from in `Sec-Fetch-Site`; `same-origin` is let through. Any
other request needs the CSRF token the pages carry (header `X-CSRF-Token`, or form field `csrf_token`):
an HMAC of a fixed message under the admin token when one is configured, else under a random secret
kept in Redis (`Keys.dashboard_secret`, made by the first process that needs it), so that every API
process (JOBS_API_WORKERS, several hosts) accepts the token any of them rendered, also across restarts.
Everything else is 403.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from redis.asyncio import Redis

from arq_jobs._api.deps import ArqDep, SettingsDep
from arq_jobs._config import Settings
from arq_jobs._keys import Keys

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_HEADER = "x-csrf-token"
TOKEN_FIELD = "csrf_token"
MESSAGE = b"arq-jobs dashboard csrf v1"


class ForbiddenError(Exception):
    """An action the dashboard refuses (403): cross-site, or read-only mode."""


async def csrf_token(settings: Settings, redis: Redis) -> str:
    """The token pages put in their forms and htmx headers: the same in every API process."""
    if settings.admin_token is not None:
        key = settings.admin_token.get_secret_value().encode()
    else:
        key = await shared_secret(redis, Keys(settings.key_prefix).dashboard_secret())
    return hmac.new(key, MESSAGE, hashlib.sha256).hexdigest()


async def shared_secret(redis: Redis, key: str) -> bytes:
    """The secret stored at `key`; the first caller stores a new random one (SET NX: concurrent first
    callers agree on one)."""
    found = await redis.get(key)
    if found is None:
        made = secrets.token_hex(32).encode()
        if await redis.set(key, made, nx=True):
            return made
        found = await redis.get(key)
        if found is None:  # deleted in between: ours serves this request
            return made
    return found if isinstance(found, bytes) else str(found).encode()


async def presented_csrf(request: Request) -> str | None:
    header = request.headers.get(TOKEN_HEADER)
    if header:
        return header
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(TOKEN_FIELD)
        return value if isinstance(value, str) else None
    return None


async def require_same_origin(request: Request, settings: SettingsDep, redis: ArqDep) -> None:
    """Let through safe methods, same-origin requests and requests with the CSRF token; 403 else."""
    if request.method in SAFE_METHODS or request.headers.get("sec-fetch-site") == "same-origin":
        return
    presented = await presented_csrf(request)
    if presented is None or not hmac.compare_digest(
        presented.encode(), (await csrf_token(settings, redis)).encode()
    ):
        raise ForbiddenError(
            "refused: actions must come from the dashboard's own pages (same origin, or its CSRF token)"
        )


async def require_writable(settings: SettingsDep) -> None:
    """403 for every action while the dashboard is read-only."""
    if settings.dashboard_read_only:
        raise ForbiddenError("refused: the dashboard is read-only (JOBS_DASHBOARD_READ_ONLY)")
