"""The dashboard's guards on actions: same origin (or a CSRF token) for every non-GET request, and
read-only mode.

A browser names where a request comes from in `Sec-Fetch-Site`; `same-origin` is let through. Any
other request needs the CSRF token the pages carry (header `X-CSRF-Token`, or form field `csrf_token`):
an HMAC of a fixed message under the admin token when one is configured (so every API process agrees),
else under a random per-process secret. Everything else is 403.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request

from arq_jobs._api.deps import SettingsDep
from arq_jobs._config import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_HEADER = "x-csrf-token"
TOKEN_FIELD = "csrf_token"
PROCESS_SECRET = secrets.token_bytes(32)
MESSAGE = b"arq-jobs dashboard csrf v1"


class ForbiddenError(Exception):
    """An action the dashboard refuses (403): cross-site, or read-only mode."""


def csrf_token(settings: Settings) -> str:
    """The token pages put in their forms and htmx headers."""
    key = PROCESS_SECRET if settings.admin_token is None else settings.admin_token.get_secret_value().encode()
    return hmac.new(key, MESSAGE, hashlib.sha256).hexdigest()


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


async def require_same_origin(request: Request, settings: SettingsDep) -> None:
    """Let through safe methods, same-origin requests and requests with the CSRF token; 403 else."""
    if request.method in SAFE_METHODS or request.headers.get("sec-fetch-site") == "same-origin":
        return
    presented = await presented_csrf(request)
    if presented is None or not hmac.compare_digest(presented.encode(), csrf_token(settings).encode()):
        raise ForbiddenError(
            "refused: actions must come from the dashboard's own pages (same origin, or its CSRF token)"
        )


async def require_writable(settings: SettingsDep) -> None:
    """403 for every action while the dashboard is read-only."""
    if settings.dashboard_read_only:
        raise ForbiddenError("refused: the dashboard is read-only (JOBS_DASHBOARD_READ_ONLY)")
