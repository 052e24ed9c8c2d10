"""Who may call the API's routes: `authorize`, the dependency each route declares with the scope it
needs (`Security(authorize, scopes=[JOBS_READ])`), so the OpenAPI document names the bearer scheme
and each operation's scope.

`JOBS_AUTH=keys` (the default): a request carries an API key (`arq-jobs keys create`) or
JOBS_ADMIN_TOKEN as `Authorization: Bearer <key>`; the dashboard also takes it as the password of HTTP
Basic, so a browser can ask for it. No or a dead key → 401; a key without the scope → 403.
`JOBS_AUTH=off`: no keys, and only clients on a loopback address are served (`serve()` refuses to
listen anywhere else), so a local development API is never open to the network by accident.

The principal a request was authenticated as is kept on `request.state`: the job facade scopes what
it reads and writes to that owner's jobs (`arq_jobs._api.jobs.Jobs`)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
from typing import Annotated

from fastapi import Depends, Request, params
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from redis.exceptions import RedisError

from arq_jobs._api.deps import PRINCIPAL, StateDep
from arq_jobs._api.hosts import trusted_host
from arq_jobs._auth.scopes import ADMIN, Principal
from arq_jobs._errors import AuthenticationError, PermissionDeniedError, RedisUnavailableError
from arq_jobs._redis_errors import describe_redis_error

log = logging.getLogger(__name__)

REALM = "arq-jobs"
# a request that came through a proxy: with authentication off it is refused, whatever address it came from
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")
BASIC_CHALLENGE = f'Basic realm="{REALM}"'

bearer = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="API key",
    description="An API key from `arq-jobs keys create` (or JOBS_ADMIN_TOKEN), as "
    "`Authorization: Bearer <key>`. Each operation names the scope it needs.",
    auto_error=False,
)


def is_loopback(host: str | None) -> bool:
    """Whether `host` is a loopback address (or the name localhost)."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False


def basic_password(authorization: str | None) -> str | None:
    """The password of an HTTP Basic Authorization header (any user name); None if none."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon and password else None


async def authenticate(
    request: Request, state: StateDep, secret: str | None, challenge: str
) -> Principal | None:
    """The principal `secret` stands for; None when authentication is off; AuthenticationError else.
    A Redis error while the keys are read is RedisUnavailableError (503), on routes of the app's own
    too."""
    if state.settings.auth == "off":
        client = request.client.host if request.client else None
        if not is_loopback(client) or any(name in request.headers for name in FORWARDING_HEADERS):
            raise AuthenticationError(
                "authentication is off (JOBS_AUTH=off), which serves loopback clients only, not through "
                "a proxy",
                challenge,
            )
        return None
    if not secret:
        raise AuthenticationError(
            "this route needs an API key: send `Authorization: Bearer <key>`", challenge
        )
    try:
        principal = await state.keys().principal(secret)
    except RedisError as error:
        log.warning("redis error while reading the API keys: %s", describe_redis_error(error))
        raise RedisUnavailableError(error) from error
    if principal is None:
        raise AuthenticationError("unknown, revoked or expired API key", challenge)
    return principal


def check_scopes(principal: Principal | None, scopes: list[str]) -> None:
    """PermissionDeniedError naming the first of `scopes` the principal lacks."""
    if principal is None:
        return
    for scope in scopes:
        if not principal.allows(scope):
            raise PermissionDeniedError(principal.name, scope)


async def authorize(
    request: Request,
    state: StateDep,
    security: SecurityScopes,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    _host: Annotated[None, Depends(trusted_host)],
) -> Principal | None:
    """The API's routes' guard: an allowed Host (run once per request: FastAPI caches it with the
    routers' own), and a key with every scope the route declares (None: auth is off)."""
    principal = await authenticate(request, state, credentials.credentials if credentials else None, "Bearer")
    check_scopes(principal, security.scopes)
    setattr(request.state, PRINCIPAL, principal)
    return principal


async def authorize_dashboard(
    request: Request, state: StateDep, _host: Annotated[None, Depends(trusted_host)]
) -> Principal | None:
    """The dashboard's guard: an `admin` key, as Bearer or as HTTP Basic's password (401 answers ask
    a browser for it)."""
    authorization = request.headers.get("authorization")
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    secret = credentials.strip() if scheme.lower() == "bearer" else basic_password(authorization)
    principal = await authenticate(request, state, secret, BASIC_CHALLENGE)
    check_scopes(principal, [ADMIN])
    setattr(request.state, PRINCIPAL, principal)
    return principal


def requires(*scopes: str) -> params.Security:
    """The dependency a route lists to need `scopes`: `dependencies=[requires(JOBS_READ)]`."""
    return params.Security(authorize, scopes=list(scopes))


DashboardAuth = Depends(authorize_dashboard)
