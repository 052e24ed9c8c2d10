"""`arq-jobs keys create|list|revoke`: the API keys (arq_jobs._auth.keys), straight in Redis.

A key is shown once, when it is made; Redis keeps only its SHA-256. Every API process sees a new or
revoked key within a second, without a restart."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

import typer
from pydantic import BaseModel

from arq_jobs._auth.keys import ApiKey, KeyStore
from arq_jobs._auth.scopes import SCOPES
from arq_jobs._cli.errors import CliError, ExitCode
from arq_jobs._cli.output import JsonFlag, Output, OutputOption, add_row, choose, console, show, table, when
from arq_jobs._cli.session import fail, run
from arq_jobs._client import JobClient
from arq_jobs._clock import ms_to_datetime, now_ms

app = typer.Typer(
    help="API keys: create one (its secret is shown once), list them (never their secrets), revoke one.",
    no_args_is_help=True,
)

UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
Name = Annotated[str, typer.Argument(help="The key's name: the owner of the jobs it makes.", metavar="NAME")]


def parse_duration(text: str | None) -> int | None:
    """`30d`, `12h`, `90m`, `3600s` or `2w` in seconds; None for None."""
    if text is None:
        return None
    found = re.fullmatch(r"\s*([0-9]{1,9})\s*([smhdw])\s*", text)
    if found is None or int(found[1]) == 0:
        raise typer.BadParameter(f"{text!r}: give a number and a unit, such as 30d, 12h, 90m or 2w")
    return int(found[1]) * UNITS_S[found[2]]


class CreatedKey(BaseModel):
    """What `keys create --json` prints: the secret, once."""

    name: str
    key: str
    scopes: list[str]
    expires_at: datetime | None


class KeyInfo(BaseModel):
    """What `keys list` shows of a key: never its secret."""

    name: str
    scopes: list[str]
    created_at: datetime | None
    expires_at: datetime | None
    expired: bool
    last_used_at: datetime | None


@app.command("create")
def create(
    ctx: typer.Context,
    name: Name,
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            "-s",
            help=f"A scope the key holds (repeat for more): {', '.join(SCOPES)}, or jobs:enqueue:<task>.",
            show_default=False,
        ),
    ],
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Expire after this long: 30d, 12h, 90m, 2w.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key; its secret is printed once and cannot be shown again."""
    expires_in_s = parse_duration(expires_in)

    async def work(client: JobClient) -> tuple[ApiKey, str]:
        try:
            return await KeyStore(client.redis, client.keys).create(name, scope, expires_in_s)
        except ValueError as error:
            raise CliError(str(error), ExitCode.INVALID_INPUT) from None

    key, secret = run(ctx, work)
    created = CreatedKey(
        name=key.name, key=secret, scopes=key.scopes, expires_at=ms_to_datetime(key.expires_ms)
    )
    if as_json:
        show(created, Output.JSON)
        return
    rows = table("name", "scopes", "expires")
    add_row(rows, (key.name, " ".join(key.scopes), when(created.expires_at) or "never"))
    show(created, Output.TABLE, rows, f"key: {secret}")
    console(stderr=True).print("Store the key now: it is not shown again.", markup=False)


@app.command("list")
def list_keys(ctx: typer.Context, output: OutputOption = Output.TABLE, as_json: JsonFlag = False) -> None:
    """Every API key: scopes, creation, expiry and last use (never a secret)."""

    async def work(client: JobClient) -> list[KeyInfo]:
        store = KeyStore(client.redis, client.keys)
        used = await store.last_used()
        now = now_ms()
        return [
            KeyInfo(
                name=key.name,
                scopes=key.scopes,
                created_at=ms_to_datetime(key.created_ms),
                expires_at=ms_to_datetime(key.expires_ms),
                expired=key.expired(now),
                last_used_at=ms_to_datetime(used.get(key.name)),
            )
            for key in await store.all()
        ]

    found = run(ctx, work)
    rows = table("name", "scopes", "created", "expires", "last used")
    for key in found:
        expires = "expired" if key.expired else when(key.expires_at) or "never"
        add_row(rows, (key.name, " ".join(key.scopes), when(key.created_at), expires, when(key.last_used_at)))
    show(found, choose(output, as_json), rows if found else "no API keys")


@app.command("revoke")
def revoke(ctx: typer.Context, name: Name) -> None:
    """Revoke an API key: every API process refuses it within a second."""

    async def work(client: JobClient) -> bool:
        return await KeyStore(client.redis, client.keys).revoke(name)

    if not run(ctx, work):
        raise fail(f"no API key named {name!r}", ExitCode.NOT_FOUND)
    show(None, Output.TABLE, f"key {name!r} revoked")
