"""Lua scripts as files: `lua/<what it does>-<number of keys>.lua`, one script a file, read once.

Each file opens with a `--[[ ... ]]` header naming its keys and arguments, one a line:

    KEYS[1] queue — ARQ's queue
    ARGV[1] now — the time (ms)
    ARGV[2..12] transition — a fixed-size group of arguments (a list of that length)
    ARGV[13..] fields — the rest (a list, possibly empty); only the last entry may be open-ended

Callers pass keys and arguments by those names (`CLAIM_SCRIPT.keys(queue=...)`, `.args(now=...)`):
a missing or unexpected name is a TypeError, never a shifted offset. A line `--!include
includes/<file>.lua` is replaced by that file's code (headers are not sent; each file once per script).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from operator import itemgetter
from typing import Any

Arg = str | int | float | bytes

HEADER = re.compile(r"\A--\[\[\n(.*?)\n\]\]\n", re.DOTALL)
SLOT = re.compile(r"^ *(KEYS|ARGV)\[(\d+)(\.\.(\d*))?\] +([a-z_][a-z0-9_]*) +— ", re.MULTILINE)
INCLUDE = re.compile(r"^--!include +(\S+) *$", re.MULTILINE)
FILE_NAME = re.compile(r"\A([a-z][a-z-]*[a-z])-(\d+)\.lua\Z")


@dataclass(frozen=True, slots=True)
class Slot:
    """One name of the header: ARGV[first] alone (`size` 1), ARGV[first..first+size-1] (a group),
    or ARGV[first..] (`size` None: the rest)."""

    name: str
    first: int
    size: int | None = 1


@dataclass(frozen=True, slots=True)
class Header:
    text: str
    keys: tuple[Slot, ...]
    args: tuple[Slot, ...]


def lua_file(path: str) -> str:
    """The text of `lua/<path>`."""
    return resources.files(__package__).joinpath("lua", path).read_text(encoding="utf-8")


def parse_header(text: str, path: str) -> Header:
    """The header of a .lua file; ValueError when it has none, or its numbering has a gap."""
    found = HEADER.match(text)
    if found is None:
        raise ValueError(f"{path}: no --[[ header ]] at the top")
    slots: dict[str, list[Slot]] = {"KEYS": [], "ARGV": []}
    for kind, first, ranged, last, name in SLOT.findall(found.group(1)):
        start = int(first)
        size: int | None = 1
        if ranged:
            size = int(last) - start + 1 if last else None
        if slots[kind] and slots[kind][-1].size is None:
            raise ValueError(f"{path}: {kind}[{start}] {name} follows an open-ended {kind}")
        expected = 1 + sum(slot.size or 0 for slot in slots[kind])
        if start != expected or (size is not None and size < 1):
            raise ValueError(f"{path}: {kind}[{start}] {name} should be numbered from {expected}")
        slots[kind].append(Slot(name, start, size))
    if any(slot.size != 1 for slot in slots["KEYS"]):
        raise ValueError(f"{path}: KEYS are named one by one")
    for kind, named in slots.items():
        if len({slot.name for slot in named}) != len(named):
            raise ValueError(f"{path}: a name of its {kind} is given twice")
    return Header(found.group(1), tuple(slots["KEYS"]), tuple(slots["ARGV"]))


@cache
def included(path: str) -> str:
    """An include's code (header removed), read once."""
    text = lua_file(path)
    parse_header(text, path)
    if INCLUDE.search(text):
        raise ValueError(f"{path}: includes do not include")
    return HEADER.sub("", text)


def expand(text: str) -> str:
    """The code of a script: header removed, each include replaced by its code (once)."""
    seen: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        path = match.group(1)
        if path in seen:
            return ""
        seen.add(path)
        return f"-- {path}\n{included(path)}"

    return INCLUDE.sub(replace, HEADER.sub("", text))


def values_getter(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function giving a mapping's values of `names`, in order, as a tuple (KeyError if one is missing)."""
    if len(names) == 1:
        name = names[0]
        return lambda named: (named[name],)
    if not names:
        return lambda named: ()
    return itemgetter(*names)


class Script:
    """One script of `lua/`: the code sent to Redis (`source`, `sha`) and its keys' and arguments'
    names, in order."""

    def __init__(self, file: str) -> None:
        named = FILE_NAME.match(file)
        if named is None:
            raise ValueError(f"{file}: a script's file is named <what-it-does>-<number of keys>.lua")
        text = lua_file(file)
        header = parse_header(text, file)
        if len(header.keys) != int(named.group(2)):
            raise ValueError(f"{file}: its header names {len(header.keys)} KEYS")
        self.name = named.group(1)
        self.file = file
        self.source = expand(text)
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()
        self.key_names = tuple(slot.name for slot in header.keys)
        self.arg_slots = header.args
        # built once: a call only looks its names up (a wrong one is a KeyError or a wrong count)
        self._get_keys = values_getter(self.key_names)
        self._get_args = values_getter([slot.name for slot in header.args])
        # the arguments given as lists: their position and size (0: any)
        self._groups = tuple((n, slot.size or 0) for n, slot in enumerate(header.args) if slot.size != 1)
        self._rest_only = self._groups == ((len(header.args) - 1, 0),)  # the usual case

    def __repr__(self) -> str:
        return f"Script({self.file!r})"

    def keys(self, **named: str) -> list[str]:
        """KEYS in the header's order."""
        try:
            if len(named) == len(self.key_names):
                return list(self._get_keys(named))
        except KeyError:
            pass
        raise self._mismatch("KEYS", named, self.key_names)

    def args(self, **named: Arg | Sequence[Arg]) -> list[Arg]:
        """ARGV in the header's order; a group or the rest is given as a list."""
        try:
            if len(named) == len(self.arg_slots):
                given = self._get_args(named)
                if not self._groups:
                    return list(given)
                if self._rest_only:
                    return [*given[:-1], *given[-1]]
                return self._splice(given)
        except KeyError:
            pass
        raise self._mismatch("ARGV", named, [slot.name for slot in self.arg_slots])

    def _splice(self, given: tuple[Any, ...]) -> list[Arg]:
        argv: list[Arg] = []
        start = 0
        for at, size in self._groups:
            argv += given[start:at]
            if size and len(given[at]) != size:
                name = self.arg_slots[at].name
                raise TypeError(f"{self.file}: ARGV {name} takes {size} values, not {len(given[at])}")
            argv += given[at]
            start = at + 1
        argv += given[start:]
        return argv

    def _mismatch(self, kind: str, given: dict[str, Any], names: Collection[str]) -> TypeError:
        missing = sorted(set(names).difference(given))
        extra = sorted(set(given).difference(names))
        return TypeError(f"{self.file}: {kind} missing {missing}, unexpected {extra}")


@cache
def load_script(file: str) -> Script:
    """The script `lua/<file>` (read and checked once)."""
    return Script(file)
