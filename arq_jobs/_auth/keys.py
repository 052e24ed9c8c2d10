"""API keys: made, listed and revoked by the operator (`arq-jobs keys`), kept in Redis as the SHA-256
of their secret only, and read by every API process through a `KeyCache` at most a second old.

A secret is `ajk_` and 32 random bytes (URL-safe base64): guessing is hopeless, so a fast hash is
enough (as GitHub's and Stripe's tokens); the plain secret is shown once, when it is made."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable

from pydantic import BaseModel, Field, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from arq_jobs._auth.scopes import ADMIN_TOKEN, Principal, check_scope
from arq_jobs._clock import now_ms
from arq_jobs._keys import Keys
from arq_jobs._logs import get_logger

log = get_logger(__name__)

SECRET_PREFIX = "ajk_"
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
RESERVED_NAMES = frozenset({ADMIN_TOKEN.name})  # JOBS_ADMIN_TOKEN's owner name
REFRESH_S = 1.0  # a key made or revoked takes effect on every API process within this time
MISS_REFRESH_S = 0.1  # an unknown key reads the keys again when they are older than this (a new key works
# at once; a flood of wrong keys costs at most ten reads a second)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_name(name: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(f"invalid key name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-'")
    if name in RESERVED_NAMES:
        raise ValueError(f"the key name {name!r} is reserved for JOBS_ADMIN_TOKEN")
    return name


class ApiKey(BaseModel):
    """One key as stored: never its secret."""

    name: str
    digest: str = Field(description="SHA-256 of the secret (hex).")
    scopes: list[str]
    created_ms: int
    expires_ms: int | None = None

    def expired(self, now: int) -> bool:
        return self.expires_ms is not None and now >= self.expires_ms


class KeyStore:
    """The deployment's API keys in Redis (one hash by name, one of last-use times)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def create(
        self, name: str, scopes: Iterable[str], expires_in_s: int | None = None
    ) -> tuple[ApiKey, str]:
        """A new key and its secret; ValueError for a bad or taken name, or an unknown scope."""
        wanted = sorted({check_scope(scope) for scope in scopes})
        if not wanted:
            raise ValueError("give the key at least one scope (--scope)")
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        now = now_ms()
        key = ApiKey(
            name=check_name(name),
            digest=digest(secret),
            scopes=wanted,
            created_ms=now,
            expires_ms=None if expires_in_s is None else now + expires_in_s * 1000,
        )
        if not await self.redis.hsetnx(self.keys.api_keys(), name, key.model_dump_json()):  # type: ignore[misc]
            raise ValueError(f"a key named {name!r} exists already (revoke it first)")
        return key, secret

    async def all(self) -> list[ApiKey]:
        """Every key, by name (an unreadable entry is skipped)."""
        raw: dict[bytes, bytes] = await self.redis.hgetall(self.keys.api_keys())  # type: ignore[misc]
        found = []
        for value in raw.values():
            try:
                found.append(ApiKey.model_validate_json(value))
            except ValidationError:
                log.warning("api_key.unreadable")
        return sorted(found, key=lambda key: key.name)

    async def last_used(self) -> dict[str, int]:
        raw: dict[bytes, bytes] = await self.redis.hgetall(self.keys.api_keys_used())  # type: ignore[misc]
        return {name.decode(): int(ms) for name, ms in raw.items()}

    async def revoke(self, name: str) -> bool:
        """Remove the key `name`; False when there is none."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.keys.api_keys(), name)
            pipe.hdel(self.keys.api_keys_used(), name)
            removed, _ = await pipe.execute()
        return bool(removed)


class KeyCache:
    """What an API process knows of the keys: read from Redis when older than REFRESH_S (one read
    at a time however many requests wait), looked up by the digest of the presented secret. Last-use
    times are written back at most once per refresh, best effort (a Redis out of memory still
    authenticates the reads it serves)."""

    def __init__(self, store: KeyStore, admin_token: str | None = None) -> None:
        self.store = store
        self.admin_token = admin_token
        self.by_digest: dict[str, ApiKey] = {}
        self.loaded_at = float("-inf")
        self.used: dict[str, int] = {}
        self.lock = asyncio.Lock()

    async def principal(self, secret: str) -> Principal | None:
        """Who `secret` authenticates as; None for an unknown, revoked or expired key."""
        if self.admin_token is not None and hmac.compare_digest(secret.encode(), self.admin_token.encode()):
            return ADMIN_TOKEN
        await self.refresh(REFRESH_S)
        key = self.by_digest.get(digest(secret))
        if key is None:
            await self.refresh(MISS_REFRESH_S)
            key = self.by_digest.get(digest(secret))
        now = now_ms()
        if key is None or key.expired(now):
            return None
        self.used[key.name] = now
        return Principal(key.name, frozenset(key.scopes))

    async def refresh(self, max_age_s: float = REFRESH_S) -> None:
        """Read the keys again when what is known is older than `max_age_s`."""
        if time.monotonic() - self.loaded_at < max_age_s:
            return
        async with self.lock:
            if time.monotonic() - self.loaded_at < max_age_s:
                return  # another request refreshed it while this one waited
            keys = await self.store.all()
            self.by_digest = {key.digest: key for key in keys}
            self.loaded_at = time.monotonic()
            used, self.used = self.used, {}
            if used:
                try:
                    await self.store.redis.hset(self.store.keys.api_keys_used(), mapping=used)  # type: ignore[misc]
                except RedisError as error:
                    log.debug("api_key.last_used_not_written", error=type(error).__name__)
