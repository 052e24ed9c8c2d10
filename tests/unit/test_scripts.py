"""The Lua scripts' files (arq_jobs/_scripts/lua): complete headers, includes that resolve, Lua
literals that agree with the Python constants they mirror, and the by-name calls of
arq_jobs._scripts.script.Script."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

import arq_jobs
from arq_jobs._scripts.script import FILE_NAME, INCLUDE, Script, Slot, lua_file, parse_header

PACKAGE = Path(arq_jobs.__file__).parent
LUA = PACKAGE / "_scripts" / "lua"
SCRIPTS = sorted(path.name for path in LUA.glob("*.lua"))
INCLUDES = sorted(f"includes/{path.name}" for path in (LUA / "includes").glob("*.lua"))
INTEGRATION_TESTS = Path(__file__).parents[1] / "integration" / "test_scripts.py"

COMMENT = re.compile(r"--(?!\[\[).*$", re.MULTILINE)
USED = re.compile(r"\b(KEYS|ARGV)\[(\d+)\]|\b(ARGV), *(\d+)\b")
MIRROR = re.compile(r"^local (\w+) = ('([^']*)'|-?\d+) -- mirrors ([\w.]+)$", re.MULTILINE)


def code_of(text: str, path: str) -> str:
    header = parse_header(text, path)
    return COMMENT.sub("", text.split(header.text, 1)[1])


def covers(slot: Slot, index: int) -> bool:
    if slot.size is None:
        return index >= slot.first
    return slot.first <= index < slot.first + slot.size


def test_no_lua_is_left_in_python() -> None:
    inline = [path for path in PACKAGE.rglob("*.py") if "redis.call(" in path.read_text()]
    assert inline == []
    assert len(SCRIPTS) >= 14
    assert INCLUDES == ["includes/enqueue.lua", "includes/stats.lua", "includes/transition.lua"]


@pytest.mark.parametrize("file", SCRIPTS)
def test_a_script_documents_every_key_and_argument_it_uses_and_uses_every_one_it_documents(file: str) -> None:
    assert FILE_NAME.match(file), "named <what-it-does>-<number of keys>.lua"
    text = lua_file(file)
    header = parse_header(text, file)
    assert re.search(r"^  Returns ", header.text, re.MULTILINE), "the header says what it returns"
    used: dict[str, set[int]] = {"KEYS": set(), "ARGV": set()}
    for key_kind, key_index, argv_kind, argv_first in USED.findall(code_of(text, file)):
        used[key_kind or argv_kind].add(int(key_index or argv_first))
    assert used["KEYS"] == {slot.first for slot in header.keys}
    for index in used["ARGV"]:
        assert any(covers(slot, index) for slot in header.args), f"ARGV[{index}] is not in the header"
    for slot in header.args:
        assert any(covers(slot, index) for index in used["ARGV"]), f"ARGV {slot.name} is never read"
    assert Script(file).source.count("local function transition(") <= 1


@pytest.mark.parametrize("file", SCRIPTS)
def test_every_include_resolves_and_is_expanded_once(file: str) -> None:
    text = lua_file(file)
    wanted = INCLUDE.findall(text)
    assert all(path in INCLUDES for path in wanted)
    source = Script(file).source
    assert "--!include" not in source
    assert "--[[" not in source, "headers are not sent to Redis"
    for path in wanted:
        assert source.count(f"-- {path}\n") == 1


@pytest.mark.parametrize("path", INCLUDES)
def test_an_include_has_a_header_and_uses_no_keys_or_arguments_of_its_own(path: str) -> None:
    text = lua_file(path)
    assert not re.search(r"\b(KEYS|ARGV)\b", code_of(text, path))
    assert not INCLUDE.search(text)


def test_every_script_is_loaded_by_the_package_and_tested_on_its_own() -> None:
    sources = "\n".join(path.read_text() for path in PACKAGE.rglob("*.py"))
    tests = INTEGRATION_TESTS.read_text()
    for file in SCRIPTS:
        assert f'load_script("{file}")' in sources, file
        name = FILE_NAME.match(file).group(1).replace("-", "_")  # type: ignore[union-attr]
        assert re.search(rf"^async def test_{name}_", tests, re.MULTILINE), file


def python_value(dotted: str) -> Any:
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for name in parts[split:]:
            found = getattr(found, name)
        return found
    raise AssertionError(f"{dotted} is not importable")


@pytest.mark.parametrize("path", SCRIPTS + INCLUDES)
def test_lua_literals_agree_with_the_python_constants_they_mirror(path: str) -> None:
    text = lua_file(path)
    mirrored = MIRROR.findall(text)
    assert len(mirrored) == text.count("-- mirrors"), "one `local NAME = literal -- mirrors x.y` per line"
    for _name, literal, string, dotted in mirrored:
        value = python_value(dotted)
        assert (string if literal.startswith("'") else int(literal)) == value, f"{path}: {dotted}"


def test_keys_and_arguments_are_passed_by_name_in_the_headers_order() -> None:
    script = Script("enqueue-4.lua")
    assert script.key_names == ("arq_job", "queue", "record", "events")
    assert script.keys(events="e", record="r", queue="q", arq_job="j") == ["j", "q", "r", "e"]
    args = script.args(
        record_fields=["f", 1],
        transition=list(range(19)),
        waiting="w",
        max_pending=9,
        only_new="0",
        wake_channel="",
        record_ttl_ms=5,
        run_at=4,
        job_ttl_ms=3,
        job=b"data",
        job_id="id",
    )
    assert args == ["id", b"data", 3, 4, 5, "", "0", 9, "w", *range(19), "f", 1]


def test_a_missing_or_unexpected_name_is_an_error() -> None:
    script = Script("record-tick-1.lua")
    with pytest.raises(
        TypeError, match=r"record-tick-1.lua: KEYS missing \['schedule'\], unexpected \['queue'\]"
    ):
        script.keys(queue="q")
    with pytest.raises(TypeError, match=r"ARGV missing \['job_id'\], unexpected \[\]"):
        script.args(tick=1)
    with pytest.raises(TypeError, match=r"ARGV missing \[\], unexpected \['extra'\]"):
        script.args(tick=1, job_id="j", extra=2)


def test_a_fixed_group_must_have_its_size() -> None:
    script = Script("enqueue-4.lua")
    values: dict[str, Any] = {
        "job_id": "id",
        "job": b"",
        "job_ttl_ms": 1,
        "run_at": 1,
        "record_ttl_ms": 1,
        "wake_channel": "",
        "only_new": "0",
        "max_pending": 0,
        "waiting": "",
    }
    with pytest.raises(TypeError, match="ARGV transition takes 19 values, not 18"):
        script.args(**values, transition=list(range(18)), record_fields=[])


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("  KEYS[2] b — gap\n", r"KEYS\[2\] b should be numbered from 1"),
        ("  ARGV[1..] rest — all\n  ARGV[2] late — after the rest\n", "follows an open-ended ARGV"),
        ("  ARGV[1] a — one\n  ARGV[2] a — again\n", "a name of its ARGV is given twice"),
        ("  KEYS[1..2] pair — grouped keys\n", "KEYS are named one by one"),
    ],
)
def test_a_header_with_a_gap_or_a_doubled_name_is_refused(header: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_header(f"--[[\n  What it does.\n\n{header}\n  Returns 1.\n]]\nreturn 1\n", "x-1.lua")
