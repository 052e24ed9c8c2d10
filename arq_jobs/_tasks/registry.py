"""Tasks and the registry of them: one source for `WorkerSettings.functions` and the API's routes.

A task is a module-level `async def (ctx: JobContext, data: SomeInputModel) -> Result` wrapped by
`@task(...)`, which reads the input model and result type from its annotations.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import pkgutil
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar, cast, get_type_hints

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from arq_jobs._config import ENV_PREFIX, QUEUE_PATTERN, Settings
from arq_jobs._errors import TaskInputError, UnknownTaskError
from arq_jobs._limits.spec import RateLimit, TaskLimits
from arq_jobs._schedules.cron import Cron
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.retry import RetryPolicy

SOFT_LIMIT_FRACTION = 0.8
FINGERPRINT_LENGTH = 12


class TaskInput(BaseModel):
    """Base for task input models: refuses NaN and Infinity, which JSON (and so Redis) cannot carry."""

    model_config = ConfigDict(allow_inf_nan=False)


def input_fingerprint(model: type[BaseModel]) -> str:
    """A short fingerprint of an input model's JSON schema (sha256 of its canonical JSON, without the
    titles, descriptions and examples that do not change what validates): the same schema gives the
    same fingerprint in every process, so API and workers can compare theirs."""
    schema = json.dumps(what_validates(model.model_json_schema()), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(schema.encode()).hexdigest()[:FINGERPRINT_LENGTH]


DOCUMENTATION_KEYWORDS = frozenset({"title", "description", "examples"})
NAMED_SCHEMAS = frozenset({"properties", "patternProperties", "$defs", "definitions"})


def what_validates(schema: Any, *, names: bool = False) -> Any:
    """`schema` without its documentation keywords (a property *named* `title` stays)."""
    if isinstance(schema, dict):
        if names:
            return {name: what_validates(value) for name, value in schema.items()}
        return {
            key: what_validates(value, names=key in NAMED_SCHEMAS)
            for key, value in schema.items()
            if key not in DOCUMENTATION_KEYWORDS
        }
    if isinstance(schema, list):
        return [what_validates(item) for item in schema]
    return schema


InputT = TypeVar("InputT", bound=BaseModel)
ResultT = TypeVar("ResultT")

TaskFunction = Callable[[JobContext, InputT], Awaitable[ResultT]]


@dataclass(frozen=True, eq=False)
class Task(Generic[InputT, ResultT]):
    """A registered task: the function plus its typed input/result and its limits."""

    name: str
    function: TaskFunction[InputT, ResultT]
    input_model: type[InputT]
    result_adapter: TypeAdapter[ResultT] = field(repr=False)
    queue: str | None
    timeout_s: float | None
    retry: RetryPolicy
    description: str
    soft_timeout_s: float | None = None
    limits: TaskLimits = TaskLimits()
    schedules: tuple[Cron, ...] = ()
    max_input_bytes: int | None = None  # its enqueue route's body limit, when below JOBS_MAX_REQUEST_BYTES

    @property
    def max_attempts(self) -> int:
        return self.retry.max_attempts

    @cached_property
    def input_fingerprint(self) -> str:
        """The fingerprint of this task's input schema (computed once)."""
        return input_fingerprint(self.input_model)

    async def __call__(self, ctx: JobContext, data: InputT) -> ResultT:
        return await self.function(ctx, data)

    def queue_for(self, settings: Settings) -> str:
        """The queue this task's jobs go to: its own, else the settings' default."""
        return self.queue or settings.queue_name

    def timeout_for(self, settings: Settings) -> float:
        """This task's hard time limit: its own, else the settings' default."""
        return self.timeout_s or settings.job_timeout_s

    def soft_timeout_for(self, settings: Settings) -> float:
        """When the task is told its time is nearly up: its own soft limit, else 80 % of the hard one."""
        hard = self.timeout_for(settings)
        if self.soft_timeout_s is not None and self.soft_timeout_s < hard:
            return self.soft_timeout_s
        return round(hard * SOFT_LIMIT_FRACTION, 3)

    def parse_input(self, payload: Any) -> InputT:
        """Validate a payload against the input model, naming the task and field when it fails."""
        try:
            return self.input_model.model_validate(payload)
        except ValidationError as error:
            raise TaskInputError(self.name, input_errors(error)) from None

    @cached_property
    def inputs_adapter(self) -> TypeAdapter[list[InputT]]:
        """Validates a list of inputs in one call (a batch's)."""
        return TypeAdapter(list[self.input_model])  # type: ignore[name-defined]

    def parse_inputs(self, payloads: Sequence[Any]) -> list[InputT]:
        """Validate a batch's payloads at once; TaskInputError names every mistake, each `loc` starting
        with the index of its payload."""
        try:
            return self.inputs_adapter.validate_python(payloads)
        except ValidationError as error:
            raise TaskInputError(self.name, input_errors(error)) from None

    def dump_result(self, value: ResultT) -> Any:
        """The result as JSON-able data."""
        return self.result_adapter.dump_python(value, mode="json")

    def step(self, data: InputT | None = None, *, queue: str | None = None) -> Step[InputT]:
        """This task as a workflow step (arq_jobs._workflows.spec): the first steps take `data`, later
        ones none (they get the previous step's result); `queue` overrides the task's own."""
        return Step(self, data, queue)


@dataclass(frozen=True, slots=True)
class Step(Generic[InputT]):
    """A task as a workflow step (`task.step(data)`): with its input in the first stage, without in
    later ones; `queue` overrides the task's own. Workflows are built of them (arq_jobs._workflows.spec)."""

    task: Task[InputT, Any]
    data: InputT | None = None
    queue: str | None = None


def input_errors(error: ValidationError) -> list[dict[str, Any]]:
    """A validation error's mistakes as TaskInputError lists them: `loc`, `msg`, `type`."""
    mistakes = error.errors(include_url=False)
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in mistakes]


def stored_payload(task: Task[InputT, Any], data: InputT) -> Any:
    """What a job of `task` stores for `data` (JSON-able); TaskInputError when it would not come back
    the same — e.g. a SecretStr (dumped masked) or a field excluded from dumps: the worker would get
    other data than the caller gave."""
    payload = data.model_dump(mode="json", by_alias=True)
    if task.parse_input(payload).model_dump() != data.model_dump():
        reason = "does not survive being stored as JSON (a SecretStr or excluded field?)"
        raise TaskInputError(task.name, [{"loc": [], "msg": reason, "type": "json_round_trip"}])
    return payload


def of_input(index: int, error: TaskInputError) -> list[dict[str, Any]]:
    """A batch input's mistakes, each `loc` starting with the input's index."""
    return [{**mistake, "loc": [index, *mistake["loc"]]} for mistake in error.errors]


def stored_payloads(task: Task[InputT, Any], items: Sequence[InputT]) -> list[Any]:
    """`stored_payload` of each of a batch's `items`, checked in three calls for all of them when they
    are all of the input model itself; TaskInputError naming each input that would not come back the
    same, its `loc` starting with the input's index."""
    model = task.input_model
    if all(type(data) is model for data in items):
        adapter = task.inputs_adapter
        payloads: list[Any] = adapter.dump_python(list(items), mode="json", by_alias=True)
        try:
            if adapter.dump_python(adapter.validate_python(payloads)) == adapter.dump_python(list(items)):
                return payloads
        except ValidationError:
            pass
    found: list[Any] = []
    errors: list[dict[str, Any]] = []
    for index, data in enumerate(items):  # one by one, to name the inputs that fail
        try:
            found.append(stored_payload(task, data))
        except TaskInputError as error:
            errors += of_input(index, error)
    if errors:
        raise TaskInputError(task.name, errors)
    return found


def task(
    *,
    name: str | None = None,
    queue: str | None = None,
    timeout_s: float | None = None,
    soft_timeout_s: float | None = None,
    max_attempts: int | None = None,
    retry: RetryPolicy | None = None,
    description: str | None = None,
    rate_limit: str | None = None,
    max_concurrency: int | None = None,
    schedule: Cron | Sequence[Cron] | None = None,
    max_input_bytes: int | None = None,
) -> Callable[[TaskFunction[InputT, ResultT]], Task[InputT, ResultT]]:
    """Register an `async def` as a task.

    `timeout_s` is the hard time limit (default: the settings' `job_timeout_s`), `soft_timeout_s`
    when the task is told first (default 80 % of the hard limit); `retry` the retry policy, or just
    `max_attempts` with the default backoff. `queue` defaults to the settings' queue; it must be one of
    the settings' `queues` (checked when the registry is loaded); an enqueue may override it.

    `rate_limit` (`"10/s"`, `"100/m"`) and `max_concurrency` hold the task's jobs back, across every
    worker, while starting one would exceed them (see arq_jobs._limits.spec). `schedule`: one Cron or several
    that enqueue the task by themselves. `max_input_bytes`: the largest request body its enqueue route
    (`POST /jobs/<name>`) reads (413 beyond), when lower than JOBS_MAX_REQUEST_BYTES.
    """
    if retry is not None and max_attempts is not None and retry.max_attempts != max_attempts:
        raise ValueError("give max_attempts in the RetryPolicy or as max_attempts, not both")
    policy = retry or RetryPolicy(max_attempts=3 if max_attempts is None else max_attempts)
    if timeout_s is not None and timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    if soft_timeout_s is not None and (
        soft_timeout_s <= 0 or (timeout_s is not None and soft_timeout_s >= timeout_s)
    ):
        raise ValueError("soft_timeout_s must be positive and below timeout_s")
    if max_input_bytes is not None and max_input_bytes < 1:
        raise ValueError("max_input_bytes must be at least 1")
    limits = TaskLimits(RateLimit.parse(rate_limit) if rate_limit else None, max_concurrency)
    schedules = (schedule,) if isinstance(schedule, Cron) else tuple(schedule or ())

    def wrap(function: TaskFunction[InputT, ResultT]) -> Task[InputT, ResultT]:
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"task {function.__qualname__} must be an async def")
        hints = get_type_hints(function)
        params = list(inspect.signature(function).parameters)
        if len(params) != 2:
            raise TypeError(f"task {function.__qualname__} must take (ctx, data)")
        input_model = hints.get(params[1])
        if not (isinstance(input_model, type) and issubclass(input_model, BaseModel)):
            raise TypeError(f"task {function.__qualname__}: annotate `data` with a pydantic model")
        doc = inspect.getdoc(function) or ""
        return Task(
            name=name or function.__name__,
            function=function,
            input_model=cast(type[InputT], input_model),
            result_adapter=TypeAdapter(hints.get("return", Any)),
            queue=queue,
            timeout_s=timeout_s,
            retry=policy,
            description=description or doc.split("\n", 1)[0],
            soft_timeout_s=soft_timeout_s,
            limits=limits,
            schedules=schedules,
            max_input_bytes=max_input_bytes,
        )

    return wrap


@dataclass(frozen=True, slots=True)
class Schedule:
    """One of a task's Crons under its name, unique across the registry (the scheduler fires it)."""

    name: str
    task: Task[Any, Any]
    cron: Cron


class TaskRegistry:
    """The set of tasks, by name."""

    def __init__(self, tasks: Iterable[Task[Any, Any]]) -> None:
        self._tasks: dict[str, Task[Any, Any]] = {}
        for t in tasks:
            if t.name in self._tasks:
                raise ValueError(f"two tasks are named {t.name!r}")
            self._tasks[t.name] = t

    @classmethod
    def discover(cls, package: str) -> TaskRegistry:
        """Every task defined in the modules of `package` (one module per domain)."""
        pkg = importlib.import_module(package)
        found: list[Task[Any, Any]] = []
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            module = importlib.import_module(f"{package}.{info.name}")
            found.extend(_tasks_defined_in(vars(module), module.__name__))
        return cls(found)

    @classmethod
    def discover_all(cls, packages: Iterable[str]) -> TaskRegistry:
        """Every task defined in the modules of each of `packages` (the `task_packages` setting)."""
        return cls(task for package in packages for task in cls.discover(package))

    @property
    def version(self) -> str:
        """A fingerprint of the tasks (names, queues, limits, retry policies, input schemas): two
        processes with the same version run the same task definitions."""
        described = [
            [
                t.name,
                t.queue,
                t.timeout_s,
                t.soft_timeout_s,
                repr(t.retry),
                t.input_model.model_json_schema(),
                *([repr(t.limits)] if t.limits else []),
                *([repr(t.schedules)] if t.schedules else []),
            ]
            for t in sorted(self._tasks.values(), key=lambda t: t.name)
        ]
        return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def input_fingerprints(self) -> dict[str, str]:
        """Each task's input-schema fingerprint, by name: what a worker says it serves."""
        return {name: t.input_fingerprint for name, t in sorted(self._tasks.items())}

    def check(self, settings: Settings) -> None:
        """Raise ValueError naming the first task or schedule these settings cannot run (its queue
        is not configured, its schedule is wrong, a disabled schedule is unknown)."""
        self.check_queues(settings)
        self.check_schedules(settings.disabled_schedules)

    def check_queues(self, settings: Settings) -> None:
        """Raise ValueError naming the first task whose own queue is not one of `settings.queues`."""
        for t in self._tasks.values():
            if t.queue is not None and t.queue not in settings.queues:
                raise ValueError(
                    f"task {t.name!r} has queue {t.queue!r}, which is not one of "
                    f"{ENV_PREFIX}QUEUES ({', '.join(settings.queues)})"
                )

    @property
    def schedules(self) -> list[Schedule]:
        """Every task's schedules, named: a Cron's own name, else the task's (`<task>-<n>`, from 1,
        for the n-th of a task's several unnamed ones)."""
        return [
            Schedule(cron.name or (t.name if len(t.schedules) == 1 else f"{t.name}-{n}"), t, cron)
            for t in self._tasks.values()
            for n, cron in enumerate(t.schedules, start=1)
        ]

    def check_schedules(self, disabled: Iterable[str] = ()) -> None:
        """Raise ValueError naming the first schedule whose name is malformed or taken, or whose
        input does not validate against its task's input model; or a `disabled` name (the setting
        JOBS_DISABLED_SCHEDULES) that no task declares: a typo would leave a schedule firing."""
        names = [schedule.name for schedule in self.schedules]
        for name in disabled:
            if name not in names:
                declared = ", ".join(names) or "none"
                raise ValueError(
                    f"{ENV_PREFIX}DISABLED_SCHEDULES names {name!r}, which no task declares "
                    f"(the schedules: {declared})"
                )
        seen: dict[str, str] = {}
        for schedule in self.schedules:
            name, owner = schedule.name, schedule.task.name
            if not re.fullmatch(QUEUE_PATTERN, name):
                raise ValueError(
                    f"schedule {name!r} of task {owner!r}: not a valid schedule name "
                    "(use letters, digits, '_', '.', '-')"
                )
            if name in seen:
                by = f"task {owner!r}" if seen[name] == owner else f"tasks {seen[name]!r} and {owner!r}"
                raise ValueError(f"schedule {name!r} is declared twice (by {by})")
            seen[name] = owner
            try:
                schedule.task.parse_input(dict(schedule.cron.input))
            except TaskInputError as error:
                raise ValueError(f"schedule {name!r}: {error}") from None

    def get(self, name: str) -> Task[Any, Any]:
        try:
            return self._tasks[name]
        except KeyError:
            raise UnknownTaskError(name) from None

    def __iter__(self) -> Iterator[Task[Any, Any]]:
        return iter(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks


def load_registry(settings: Settings) -> TaskRegistry:
    """The tasks of `settings.task_packages`, or stop the process with one line naming the package
    that cannot be imported, the task whose queue is not configured, or the schedule that is wrong."""
    try:
        registry = TaskRegistry.discover_all(settings.task_packages)
    except ModuleNotFoundError as error:
        raise SystemExit(f"invalid settings: JOBS_TASK_PACKAGES: cannot import {error.name!r}") from None
    try:
        registry.check(settings)
    except ValueError as error:
        raise SystemExit(f"invalid settings: {error}") from None
    return registry


def _tasks_defined_in(namespace: Mapping[str, Any], module: str) -> Iterator[Task[Any, Any]]:
    for value in namespace.values():
        if isinstance(value, Task) and value.function.__module__ == module:
            yield value
