"""The typed facade: mypy rejects an input of the wrong model before anything runs."""

from __future__ import annotations

from pathlib import Path

from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parents[2]

ROUTE = """
from arq_jobs._api.deps import JobsDep
from workers.tasks.noop import NoopInput
from workers.tasks.reports import ReportInput, generate_report


async def route(jobs: JobsDep) -> str:
    handle = await jobs.enqueue(generate_report, {model}, delay=5)
    return handle.status_url
"""


def typecheck(source: str, tmp_path: Path) -> tuple[str, int]:
    module = tmp_path / "user_route.py"
    module.write_text(source)
    out, err, code = mypy_api.run(
        ["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(ROOT / ".mypy_cache"), str(module)]
    )
    return out + err, code


def test_right_model_typechecks(tmp_path: Path) -> None:
    out, code = typecheck(ROUTE.format(model="ReportInput(rows=10)"), tmp_path)
    assert code == 0, out


def test_wrong_model_is_a_type_error(tmp_path: Path) -> None:
    out, code = typecheck(ROUTE.format(model="NoopInput()"), tmp_path)
    assert code == 1
    assert (
        'user_route.py:8: error: Cannot infer value of type parameter "InputT" of "enqueue" of "Jobs"' in out
    )
