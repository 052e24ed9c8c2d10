"""Paging through a sorted-set index newest first, with a cursor that neither skips nor repeats
entries while new ones arrive: the cursor is the last entry's score and member ("<ms>:<id>")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from redis.asyncio import Redis

T = TypeVar("T")


CURSOR_PATTERN = r"^[0-9]{1,16}:.+$"


def parse_cursor(cursor: str) -> tuple[int, str]:
    """A cursor's score and member (routes check it against CURSOR_PATTERN)."""
    score, _, member = cursor.partition(":")
    return int(score), member


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


async def walk(
    redis: Redis,
    index: str,
    *,
    limit: int,
    cursor: str | None,
    load: Callable[[Sequence[str]], Awaitable[Sequence[T | None]]],
    keep: Callable[[T], bool] = lambda _: True,
    budget: int = 5000,
) -> Page[T]:
    """Up to `limit` items of `index`, newest first, after `cursor`.

    `load` reads the items of a batch of members (None for one that is gone: its member is dropped
    from the index); `keep` filters items. At most `budget` entries are read per call: a filtered
    page may hold fewer than `limit` items and still have a next cursor."""
    after = parse_cursor(cursor) if cursor else None
    found: list[tuple[int, str, T]] = []
    last: tuple[int, str] | None = None
    offset = 0
    scanned = 0
    batch_size = max(limit + 1, 50)
    exhausted = False
    while len(found) <= limit:
        batch = await redis.zrevrangebyscore(
            index, after[0] if after else "+inf", "-inf", start=offset, num=batch_size, withscores=True
        )
        offset += len(batch)
        # several members may share the cursor's score: skip those the cursor already passed
        members = [
            (m.decode(), int(s))
            for m, s in batch
            if not (after and int(s) == after[0] and m.decode() >= after[1])
        ]
        values = await load([m for m, _ in members]) if members else []
        gone = []
        for (member, score), value in zip(members, values, strict=True):
            scanned += 1
            if value is None:
                gone.append(member)
                continue
            if keep(value):
                found.append((score, member, value))
                if len(found) > limit:
                    break
            last = (score, member)
        if gone:  # deleted or expired: drop from the index (later entries move up by as many)
            await redis.zrem(index, *gone)
            offset -= len(gone)
        if len(batch) < batch_size:
            exhausted = True
            break
        if scanned >= budget and len(found) <= limit:
            break
    page = found[:limit]
    if len(found) > limit:
        return Page([item for _, _, item in page], f"{page[-1][0]}:{page[-1][1]}")
    if exhausted or last is None:
        return Page([item for _, _, item in page], None)
    return Page([item for _, _, item in page], f"{last[0]}:{last[1]}")
