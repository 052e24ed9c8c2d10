"""Workflows as building blocks: steps (a task with its input), groups of steps, and the chain, group
and chord made of them. They are checked when built, from Python (`Task.step`, `group`) or from the
JSON of `POST /workflows` (`Workflow.from_json`, which builds the same blocks), so both refuse the
same mistakes with the same errors, before anything is written.

Every workflow is a list of stages run one after another; a stage is one step, or a group of steps
run in parallel. The first stage's steps take their own input; each later step gets the previous
stage's output: a single step's result, or a group's results as a list in member order.

    chain(a, b, group(c, d), e)   →  [a] [b] [c d] [e]
    group(a, b, c)                →  [a b c]
    chord([a, b, c], callback=d)  →  [a b c] [d]

A step is named by its path in the JSON spec: `steps[1]`, `steps[2].steps[0]`, `callback`.

A workflow has at most JOBS_MAX_WORKFLOW_STEPS steps in all, its groups' members and a chord's callback
included (`check_size`): counted in the JSON before its steps are read, and again when it is created.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from arq_jobs._errors import InvalidWorkflowError, TaskInputError, UnknownTaskError
from arq_jobs._tasks.registry import Step, Task, TaskRegistry

# per chain and per group: a finished stage hands every member's result to one script answer
MAX_STEPS = 1000


class WorkflowKind(StrEnum):
    CHAIN = "chain"
    GROUP = "group"
    CHORD = "chord"


@dataclass(frozen=True, slots=True)
class Group:
    """Steps of a chain run in parallel (`group(a.step(), b.step())`); the next step gets their
    results as a list."""

    steps: tuple[Step[Any], ...]


def group(*steps: Step[Any]) -> Group:
    """A group of steps inside a chain."""
    return Group(steps)


@dataclass(frozen=True, slots=True)
class PlacedStep:
    """A step at its place: its path, and in the first stage its validated input."""

    path: str
    step: Step[Any]


@dataclass(frozen=True, slots=True)
class Stage:
    """Steps that run together; a group's output is the list of its members' results."""

    path: str
    group: bool
    steps: tuple[PlacedStep, ...]


@dataclass(frozen=True, slots=True)
class Workflow:
    """A checked workflow, ready to be created (arq_jobs._workflows.engine)."""

    kind: WorkflowKind
    stages: tuple[Stage, ...]

    @property
    def size(self) -> int:
        """How many steps it has: every group member and a chord's callback count."""
        return sum(len(stage.steps) for stage in self.stages)

    @classmethod
    def chain(cls, *steps: Step[Any] | Group) -> Workflow:
        """Each step's result is the next step's input; a step may be a group."""
        stages = []
        for n, item in enumerate(_some(steps, "steps", "a chain")):
            path = f"steps[{n}]"
            if isinstance(item, Group):
                stages.append(_group_stage(item.steps, path, f"{path}.steps", first=n == 0))
            else:
                stages.append(Stage(path, False, (_place(item, path, first=n == 0),)))
        return cls(WorkflowKind.CHAIN, tuple(stages))

    @classmethod
    def group(cls, *steps: Step[Any]) -> Workflow:
        """Steps in parallel; the workflow's result is their results in order."""
        return cls(WorkflowKind.GROUP, (_group_stage(steps, "steps", "steps", first=True),))

    @classmethod
    def chord(cls, steps: Sequence[Step[Any]], callback: Step[Any]) -> Workflow:
        """A group, then `callback` given the list of its results."""
        members = _group_stage(tuple(steps), "steps", "steps", first=True)
        last = Stage("callback", False, (_place(callback, "callback", first=False),))
        return cls(WorkflowKind.CHORD, (members, last))

    @classmethod
    def from_json(cls, spec: Any, registry: TaskRegistry, max_steps: int | None = None) -> Workflow:
        """The workflow a `POST /workflows` body describes:

        `{"type": "chain", "steps": [{"task": "fetch", "input": {...}}, {"task": "parse"},
        {"type": "group", "steps": [{"task": "a"}, {"task": "b"}]}]}`, `{"type": "group", "steps":
        [...]}`, `{"type": "chord", "steps": [...], "callback": {"task": "total"}}`; a step may also
        name its `queue`. With `max_steps` (JOBS_MAX_WORKFLOW_STEPS), a spec with more steps is refused
        before any step is read."""
        if max_steps is not None:
            check_size(_count_steps(spec), max_steps)
        return _SpecReader(registry).workflow(spec)


def check_size(steps: int, limit: int) -> None:
    """InvalidWorkflowError when a workflow of `steps` steps is over `limit` (JOBS_MAX_WORKFLOW_STEPS)."""
    if steps > limit:
        raise InvalidWorkflowError(
            f"it has {steps} steps (group members and callbacks included), more than the {limit} a "
            "workflow may have (JOBS_MAX_WORKFLOW_STEPS)",
            steps=steps,
            limit=limit,
        )


def _count_steps(spec: Any) -> int:
    """The steps a JSON spec names (a group in a chain counts its members, a chord its callback);
    what is malformed counts as one, and is refused when the spec is read."""
    if not isinstance(spec, Mapping):
        return 0
    steps = spec.get("steps")
    count = int("callback" in spec)
    for item in steps if isinstance(steps, list) else ():
        members = item.get("steps") if isinstance(item, Mapping) and "type" in item else None
        count += len(members) if isinstance(members, list) else 1
    return count


def input_not_allowed(path: str, task: str) -> InvalidWorkflowError:
    return InvalidWorkflowError(
        "only the steps of a workflow's first stage take an input; this one is given the previous "
        "step's result (or a group's list of results): remove its input",
        path=path,
        task=task,
    )


def parse_step_input(task: Task[Any, Any], payload: Any, path: str) -> Any:
    """`payload` validated against the task's input model, or the error naming the step."""
    try:
        return task.parse_input(payload)
    except TaskInputError as error:
        raise InvalidWorkflowError(str(error), path=path, task=task.name, detail=error.errors) from None


def _some(items: Sequence[Any], path: str, what: str) -> Sequence[Any]:
    if not items:
        raise InvalidWorkflowError(f"{what} needs at least one step", path=path)
    if len(items) > MAX_STEPS:
        raise InvalidWorkflowError(f"{what} takes at most {MAX_STEPS} steps, not {len(items)}", path=path)
    return items


def _group_stage(steps: Sequence[Any], path: str, members: str, *, first: bool) -> Stage:
    placed = tuple(
        _place(step, f"{members}[{j}]", first=first) for j, step in enumerate(_some(steps, path, "a group"))
    )
    return Stage(path, True, placed)


def _place(step: object, path: str, *, first: bool) -> PlacedStep:
    if isinstance(step, Group):
        raise InvalidWorkflowError("groups nest only in a chain, one level deep", path=path)
    if not isinstance(step, Step):
        raise InvalidWorkflowError(f"expected a step (task.step(...)), not {type(step).__name__}", path=path)
    task = step.task
    if not first:
        if step.data is not None:
            raise input_not_allowed(path, task.name)
        return PlacedStep(path, step)
    if step.data is None:  # an input model whose fields all have defaults needs none
        return PlacedStep(path, replace(step, data=parse_step_input(task, {}, path)))
    if not isinstance(step.data, task.input_model):
        raise InvalidWorkflowError(
            f"its input must be a {task.input_model.__name__}, not a {type(step.data).__name__}",
            path=path,
            task=task.name,
        )
    return PlacedStep(path, step)


STEP_FIELDS = frozenset({"task", "input", "queue"})
GROUP_FIELDS = frozenset({"type", "steps"})


@dataclass(frozen=True, slots=True)
class _SpecReader:
    """Turns a JSON spec into the building blocks, naming each step by its path when it is wrong."""

    registry: TaskRegistry

    def workflow(self, spec: Any) -> Workflow:
        if not isinstance(spec, Mapping):
            raise InvalidWorkflowError("a workflow is a JSON object with `type` and `steps`")
        kind = spec.get("type")
        if not (isinstance(kind, str) and kind in set(WorkflowKind)):
            raise InvalidWorkflowError(f"`type` must be chain, group or chord, not {kind!r}", path="type")
        kind = WorkflowKind(kind)
        _known_fields(spec, {"type", "steps", "callback"} if kind is WorkflowKind.CHORD else GROUP_FIELDS)
        steps = _steps(spec, None)
        if kind is WorkflowKind.CHAIN:
            return Workflow.chain(
                *(self.chain_item(raw, f"steps[{n}]", n == 0) for n, raw in enumerate(steps))
            )
        members = [self.step(raw, f"steps[{j}]", first=True) for j, raw in enumerate(steps)]
        if kind is WorkflowKind.GROUP:
            return Workflow.group(*members)
        if "callback" not in spec:
            raise InvalidWorkflowError("a chord needs a `callback` step", path="callback")
        return Workflow.chord(members, self.step(spec["callback"], "callback", first=False))

    def chain_item(self, raw: Any, path: str, first: bool) -> Step[Any] | Group:
        if not (isinstance(raw, Mapping) and "type" in raw):
            return self.step(raw, path, first=first)
        if raw["type"] != WorkflowKind.GROUP:
            raise InvalidWorkflowError(
                f"a chain's step is a task or a group, not a {raw['type']!r}: only groups nest", path=path
            )
        _known_fields(raw, GROUP_FIELDS, path)
        steps = _steps(raw, path)
        return Group(tuple(self.step(m, f"{path}.steps[{j}]", first=first) for j, m in enumerate(steps)))

    def step(self, raw: Any, path: str, *, first: bool) -> Step[Any]:
        if not isinstance(raw, Mapping):
            raise InvalidWorkflowError("a step is an object with `task` (and `input`, `queue`)", path=path)
        if "type" in raw:
            raise InvalidWorkflowError("groups nest only in a chain, one level deep", path=path)
        _known_fields(raw, STEP_FIELDS, path)
        name = raw.get("task")
        if not isinstance(name, str):
            raise InvalidWorkflowError("a step names its `task`", path=path)
        try:
            task = self.registry.get(name)
        except UnknownTaskError as error:
            raise InvalidWorkflowError(str(error), path=path, task=name) from None
        queue = raw.get("queue")
        if queue is not None and not isinstance(queue, str):
            raise InvalidWorkflowError("`queue` is the name of a queue", path=path, task=name)
        if "input" not in raw:
            return Step(task, None, queue)
        if not first:
            raise input_not_allowed(path, name)
        return Step(task, parse_step_input(task, raw["input"], path), queue)


def _steps(raw: Mapping[str, Any], path: str | None) -> list[Any]:
    steps = raw.get("steps")
    if not isinstance(steps, list):
        raise InvalidWorkflowError("`steps` is a list of steps", path=path or "steps")
    return steps


def _known_fields(raw: Mapping[str, Any], allowed: Collection[str], path: str | None = None) -> None:
    unknown = sorted(str(name) for name in raw if name not in allowed)
    if unknown:
        raise InvalidWorkflowError(
            f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})", path=path
        )
