from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from arq_jobs._errors import TaskInputError, UnknownTaskError
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import Task, TaskRegistry, load_registry, task
from arq_jobs._worker.settings import worker_options
from tests.apps import create_app
from workers.tasks.noop import NoopInput
from workers.tasks.reports import ReportInput, ReportResult

from .conftest import make_settings


class In(BaseModel):
    n: int


class Out(BaseModel):
    doubled: int


@task(queue="math", timeout_s=5, max_attempts=4)
async def double(ctx: JobContext, data: In) -> Out:
    """Double a number.

    More text that is not the summary.
    """
    return Out(doubled=2 * data.n)


def test_decorator_reads_models_from_annotations_and_keeps_limits() -> None:
    assert isinstance(double, Task)
    assert double.name == "double"
    assert double.input_model is In
    assert double.queue == "math"
    assert double.timeout_s == 5
    assert double.max_attempts == 4
    assert double.description == "Double a number."
    assert double.result_adapter.json_schema()["properties"] == {
        "doubled": {"title": "Doubled", "type": "integer"}
    }
    assert double.dump_result(Out(doubled=6)) == {"doubled": 6}


def test_defaults_leave_queue_and_timeout_to_settings() -> None:
    @task(name="renamed")
    async def plain(ctx: JobContext, data: In) -> int:
        return data.n

    assert (plain.name, plain.queue, plain.timeout_s, plain.max_attempts) == ("renamed", None, None, 3)


def test_sync_functions_and_untyped_inputs_are_refused() -> None:
    def sync(ctx: JobContext, data: In) -> int:
        return 1

    async def untyped(ctx: JobContext, data: dict[str, Any]) -> int:
        return 1

    with pytest.raises(TypeError, match="must be an async def"):
        task()(sync)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="annotate `data` with a pydantic model"):
        task()(untyped)  # type: ignore[type-var]
    with pytest.raises(ValueError, match="max_attempts"):
        task(max_attempts=0)


def test_parse_input_names_task_and_field() -> None:
    with pytest.raises(TaskInputError) as failed:
        double.parse_input({"n": "many"})
    assert (
        str(failed.value)
        == "invalid input for task 'double': n: Input should be a valid integer, unable to parse string as an integer"
    )
    assert failed.value.details() == {
        "task": "double",
        "detail": [
            {
                "loc": ["n"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "type": "int_parsing",
            }
        ],
    }


def test_registry_refuses_two_tasks_with_one_name() -> None:
    with pytest.raises(ValueError, match="two tasks are named 'double'"):
        TaskRegistry([double, double])


def test_discover_finds_every_shipped_task(registry: TaskRegistry) -> None:
    assert sorted(t.name for t in registry) == ["generate_report", "noop", "send_webhook"]
    assert registry.get("noop").input_model is NoopInput
    assert registry.get("generate_report").input_model is ReportInput
    assert registry.get("generate_report").result_adapter.json_schema()["title"] == ReportResult.__name__
    assert "noop" in registry and "missing" not in registry
    assert len(registry) == 3


def test_unknown_name_raises_unknown_task(registry: TaskRegistry) -> None:
    with pytest.raises(UnknownTaskError) as missing:
        registry.get("resize_image")
    assert missing.value.details() == {"task": "resize_image"}


def test_task_packages_setting_loads_each_package_and_names_a_missing_one() -> None:
    loaded = load_registry(make_settings(task_packages="workers.tasks"))
    assert sorted(t.name for t in loaded) == ["generate_report", "noop", "send_webhook"]
    with pytest.raises(SystemExit) as stopped:
        load_registry(make_settings(task_packages="workers.tasks, no_such_tasks"))
    assert str(stopped.value) == "invalid settings: JOBS_TASK_PACKAGES: cannot import 'no_such_tasks'"


@pytest.fixture
def probe_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A task package whose one task declares the queue `math`."""
    name = "queue_probe_tasks"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "maths.py").write_text(
        "from pydantic import BaseModel\n"
        "from arq_jobs._tasks.registry import task\n\n\n"
        "class In(BaseModel):\n    n: int\n\n\n"
        "@task(queue='math')\n"
        "async def double(ctx, data: In) -> int:\n    return 2 * data.n\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


def test_a_task_on_an_unconfigured_queue_stops_start_up_with_one_line(probe_package: str) -> None:
    settings = make_settings(task_packages=(probe_package,))
    with pytest.raises(SystemExit) as stopped:
        load_registry(settings)
    assert stopped.value.code == (
        "invalid settings: task 'double' has queue 'math', which is not one of JOBS_QUEUES (high, default, low)"
    )
    configured = make_settings(task_packages=(probe_package,), queues=("default", "math"))
    assert [t.queue for t in load_registry(configured)] == ["math"]


def test_the_app_and_the_workers_refuse_a_registry_with_an_unconfigured_queue() -> None:
    registry = TaskRegistry([double])
    message = "task 'double' has queue 'math', which is not one of JOBS_QUEUES (high, default, low)"
    with pytest.raises(ValueError) as refused:
        create_app(make_settings(), registry)
    assert str(refused.value) == message
    with pytest.raises(ValueError) as refused:
        worker_options(make_settings(), registry)
    assert str(refused.value) == message
