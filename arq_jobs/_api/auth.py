"""`require_admin`: the admin auth dependency (the dashboard, and later other admin routes).

Without `JOBS_ADMIN_TOKEN` it lets everything through. With it, a request must carry the token as
`Authorization: Bearer <token>` or as the password of HTTP Basic (any user name); otherwise 401 with
`WWW-Authenticate: Basic`, so a browser asks for it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from arq_jobs._api.deps import SettingsDep

REALM = "arq-jobs"
CHALLENGE = {"WWW-Authenticate": f'Basic realm="{REALM}"'}


def presented_token(authorization: str | None) -> str | None:
    """The token an Authorization header carries (Bearer, or the password of Basic); None if none."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, colon, password = decoded.partition(":")
        return password if colon else None
    return None


def token_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison of the presented token with the configured one."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


async def require_admin(request: Request, settings: SettingsDep) -> None:
    """Refuse (401) a request without the admin token, when one is configured."""
    if settings.admin_token is None:
        return
    if not token_matches(
        presented_token(request.headers.get("authorization")), settings.admin_token.get_secret_value()
    ):
        raise HTTPException(401, "this page needs the admin token (JOBS_ADMIN_TOKEN)", headers=CHALLENGE)


AdminDep = Annotated[None, Depends(require_admin)]
