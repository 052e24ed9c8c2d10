"""`arq-jobs keys create|list|revoke` on fakeredis: the secret printed once and stored only hashed,
the list without secrets, revocation, and clear errors for bad names, scopes and durations."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis

from arq_jobs._auth.keys import KeyCache, KeyStore
from arq_jobs._auth.scopes import Principal
from arq_jobs._cli.errors import ExitCode
from arq_jobs._keys import Keys

from .conftest import Invoke
from .test_cli import assert_error, output_json


async def test_create_prints_the_key_once_and_redis_keeps_only_its_hash(
    invoke: Invoke, arq_redis: ArqRedis
) -> None:
    created = output_json(
        await invoke(
            "keys",
            "create",
            "billing",
            "--scope",
            "jobs:enqueue",
            "-s",
            "jobs:read",
            "--expires-in",
            "30d",
            "--json",
        )
    )
    secret = created["key"]
    assert set(created) == {"name", "key", "scopes", "expires_at"}
    assert (created["name"], created["scopes"]) == ("billing", ["jobs:enqueue", "jobs:read"])
    assert secret.startswith("ajk_") and len(secret) == 47
    expires = datetime.fromisoformat(created["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=29, hours=23) < expires <= timedelta(days=30)
    stored = await arq_redis.hgetall("unit:api-keys")
    assert list(stored) == [b"billing"]
    assert secret.encode() not in stored[b"billing"]
    assert json.loads(stored[b"billing"])["digest"] == hashlib.sha256(secret.encode()).hexdigest()
    cache = KeyCache(KeyStore(arq_redis, Keys("unit")))
    assert await cache.principal(secret) == Principal("billing", frozenset({"jobs:enqueue", "jobs:read"}))


async def test_create_as_a_table_says_to_store_the_key(invoke: Invoke) -> None:
    result = await invoke("keys", "create", "ops", "--scope", "admin")
    assert result.exit_code == 0
    assert "key: ajk_" in result.stdout
    assert result.stderr == "Store the key now: it is not shown again.\n"


async def test_list_shows_no_secret_and_the_last_use(invoke: Invoke, arq_redis: ArqRedis) -> None:
    secret = output_json(await invoke("keys", "create", "a", "--scope", "jobs:read", "--json"))["key"]
    output_json(await invoke("keys", "create", "b", "--scope", "metrics:read", "--json"))
    cache = KeyCache(KeyStore(arq_redis, Keys("unit")))
    assert await cache.principal(secret) is not None
    cache.loaded_at = float("-inf")
    await cache.refresh()  # writes the last use back
    listed = await invoke("keys", "list", "--json")
    assert secret not in listed.stdout
    keys = output_json(listed)
    assert [(k["name"], k["scopes"], k["expired"], k["expires_at"]) for k in keys] == [
        ("a", ["jobs:read"], False, None),
        ("b", ["metrics:read"], False, None),
    ]
    assert keys[0]["last_used_at"] is not None and keys[1]["last_used_at"] is None
    table = await invoke("keys", "list")
    assert table.exit_code == 0 and "metrics:read" in table.stdout and "ajk_" not in table.stdout


async def test_revoke_removes_the_key(invoke: Invoke, arq_redis: ArqRedis) -> None:
    secret = output_json(await invoke("keys", "create", "gone", "--scope", "jobs:read", "--json"))["key"]
    result = await invoke("keys", "revoke", "gone")
    assert (result.exit_code, result.stdout) == (0, "key 'gone' revoked\n")
    assert await KeyCache(KeyStore(arq_redis, Keys("unit"))).principal(secret) is None
    assert_error(await invoke("keys", "revoke", "gone"), ExitCode.NOT_FOUND, "no API key named 'gone'")


async def test_bad_names_scopes_and_durations_are_refused(invoke: Invoke) -> None:
    output_json(await invoke("keys", "create", "dup", "--scope", "jobs:read", "--json"))
    assert_error(
        await invoke("keys", "create", "dup", "--scope", "jobs:read"),
        ExitCode.INVALID_INPUT,
        "a key named 'dup' exists already (revoke it first)",
    )
    assert_error(
        await invoke("keys", "create", "admin", "--scope", "jobs:read"),
        ExitCode.INVALID_INPUT,
        "the key name 'admin' is reserved for JOBS_ADMIN_TOKEN",
    )
    refused = await invoke("keys", "create", "x", "--scope", "jobs:write")
    assert refused.exit_code == ExitCode.INVALID_INPUT
    assert refused.stderr.startswith("error: unknown scope 'jobs:write' (known: jobs:enqueue, jobs:read")
    bad = await invoke("keys", "create", "y", "--scope", "jobs:read", "--expires-in", "soon")
    assert bad.exit_code == ExitCode.USAGE
    assert "give a number and a unit, such as 30d" in bad.stderr
