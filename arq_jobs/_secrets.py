"""Secret task inputs: marked in the input model, shown as `"***"` everywhere, encrypted at rest.

Marking. A value is secret when its JSON schema says `"x-secret": true`. `Annotated[str, Secret]`
adds that (and `"writeOnly": true`, so OpenAPI shows it); so does `Field(json_schema_extra=
{"x-secret": True})` on a field. The marker may sit on a field, inside a nested model, on a dict's
values (`dict[str, Annotated[str, Secret]]`), on a list's or tuple's items; the whole value under
it is secret (a marked model or list is hidden whole). Dict keys are never secret.

Paths. `secret_paths(model)` compiles the input model's JSON schema, once per model, into a graph
of the places that lead to a secret: an object's named properties, its other values, an array's
n-th or other items; `$ref`, `anyOf`, `oneOf` and `allOf` are followed, recursive models included.
Branches that lead to no secret are dropped: a task without secrets costs one check.

Three operations walk a payload (the JSON a job stores) along those paths, copying what they
change and leaving `null` alone:
- `redact`: each secret value becomes `"***"`; the whole input of a task this process does not
  know is `"***"` (its secrets are unknown). Applied where inputs are read for display: job details
  (dashboard), dead letters (API, dashboard, CLI).
- `seal` (at enqueue, with JOBS_SECRETS_KEY): each secret value becomes `{"$secret": "<token>"}`,
  the Fernet token of its JSON. A one-key object rather than a prefixed string: a string field
  never holds one, so a sealed value is never taken for a plaintext one; and one left sealed fails
  the input model's validation instead of reaching the task as ciphertext.
- `unseal` (the worker before it runs the task, a dead letter's retry before it enqueues again):
  sealed values are decrypted with any of the keys (MultiFernet: rotation), plaintext ones (stored
  before a key was set) kept; TaskInputError when one cannot be decrypted.
- `fingerprint_inputs` (Idempotency-Key fingerprints): secret values replaced by a keyed hash, so
  that a repeated request still matches (Fernet tokens differ each time) and Redis holds no plain
  hash of a guessable secret.

Failures. A task's exception may quote its input (`ValueError(f"bad token {token}")`, h11's "Illegal
header value b'...'"). Before a failed attempt's error is stored or logged, the worker lists the job's
plaintext secret values (`secret_values`: those of at least MIN_SCRUBBED_CHARS characters, also as a
repr or JSON quotes them) and `scrub_exception` puts a ScrubbedError in the exception's place when
its message or traceback quotes one: the same type name, those texts with each value as `"***"`.

Without JOBS_SECRETS_KEY secret values are stored as given, and still redacted in every output.

cryptography's Fernet is imported on first use (a `SecretsKey` made, a key generated, a sealed value
opened), not with this module: a process without JOBS_SECRETS_KEY does not load it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, cast

from pydantic import BaseModel, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from arq_jobs._config import ENV_PREFIX, Settings
from arq_jobs._errors import PermanentError, TaskInputError, TransientError
from arq_jobs._serializer import TextException, dumps, exception_message, format_traceback, loads

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

    from arq_jobs._tasks.registry import Task, TaskRegistry

MASK: Final = "***"
SEALED_KEY: Final = "$secret"
SCHEMA_FLAG: Final = "x-secret"
KEY_SETTING: Final = f"{ENV_PREFIX}SECRETS_KEY"
# shorter secret values are not scrubbed from error texts: "1", "yes" or "GET" would mangle them
MIN_SCRUBBED_CHARS: Final = 4


class SecretMarker:
    """`Annotated[str, Secret]`: the value is secret (see arq_jobs._secrets)."""

    __slots__ = ()

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update({SCHEMA_FLAG: True, "writeOnly": True})
        return schema

    def __repr__(self) -> str:
        return "Secret"


Secret: Final = SecretMarker()
"""Marks a task input value as secret: `Annotated[str, Secret]`."""


@dataclass(eq=False)
class _Place:
    """A place in a payload: secret itself, or leading to secrets through an object's named
    properties (`keys`; `named`: all its property names), its other values, an array's n-th
    (`positions`) or other items; `also`: the places it is at the same time (a `$ref`'s definition,
    the branches of `anyOf`...)."""

    secret: bool = False
    keys: dict[str, _Place] = field(default_factory=dict)
    named: frozenset[str] = frozenset()
    values: _Place | None = None
    positions: dict[int, _Place] = field(default_factory=dict)
    items: _Place | None = None
    also: list[_Place] = field(default_factory=list)

    def targets(self) -> Iterable[_Place]:
        yield from self.keys.values()
        yield from self.positions.values()
        yield from (p for p in (self.values, self.items) if p is not None)
        yield from self.also


@dataclass(frozen=True, eq=False)
class SecretPaths:
    """Where a model's secret values are; false when it has none."""

    root: _Place | None = None

    def __bool__(self) -> bool:
        return self.root is not None


class _Compiler:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.definitions: dict[str, Any] = schema.get("$defs", {})
        self.compiled: dict[str, _Place] = {}

    def place(self, schema: Any) -> _Place | None:
        if not isinstance(schema, dict):
            return None
        if schema.get(SCHEMA_FLAG) is True:
            return _Place(secret=True)
        place = _Place()
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            place.also.append(self.definition(ref.removeprefix("#/$defs/")))
        for combinator in ("anyOf", "oneOf", "allOf"):
            place.also.extend(p for p in map(self.place, schema.get(combinator, ())) if p is not None)
        properties = schema.get("properties") or {}
        place.named = frozenset(properties)
        for name, sub in properties.items():
            if (found := self.place(sub)) is not None:
                place.keys[name] = found
        others = [schema.get("additionalProperties"), *(schema.get("patternProperties") or {}).values()]
        place.values = _joined([p for p in map(self.place, others) if p is not None])
        for index, sub in enumerate(schema.get("prefixItems", ())):
            if (found := self.place(sub)) is not None:
                place.positions[index] = found
        place.items = self.place(schema.get("items"))
        return place

    def definition(self, name: str) -> _Place:
        """One place per `$defs` entry (a recursive model's refers to itself)."""
        if name not in self.compiled:
            self.compiled[name] = holder = _Place()
            if (inner := self.place(self.definitions.get(name))) is not None:
                holder.also.append(inner)
        return self.compiled[name]


def _joined(places: list[_Place]) -> _Place | None:
    if len(places) <= 1:
        return places[0] if places else None
    return _Place(also=places)


def _prune(root: _Place) -> bool:
    """Drop every branch under `root` that leads to no secret; whether `root` leads to one."""
    every: list[_Place] = []
    seen: set[int] = set()
    pending = [root]
    while pending:
        place = pending.pop()
        if id(place) not in seen:
            seen.add(id(place))
            every.append(place)
            pending.extend(place.targets())
    useful = {id(p) for p in every if p.secret}
    changed = True
    while changed:
        changed = False
        for place in every:
            if id(place) not in useful and any(id(t) in useful for t in place.targets()):
                useful.add(id(place))
                changed = True
    for place in every:
        place.keys = {k: p for k, p in place.keys.items() if id(p) in useful}
        place.positions = {n: p for n, p in place.positions.items() if id(p) in useful}
        place.values = place.values if place.values is not None and id(place.values) in useful else None
        place.items = place.items if place.items is not None and id(place.items) in useful else None
        place.also = [p for p in place.also if id(p) in useful]
    return id(root) in useful


_FOUND: weakref.WeakKeyDictionary[type[BaseModel], SecretPaths] = weakref.WeakKeyDictionary()


def secret_paths(model: type[BaseModel]) -> SecretPaths:
    """Where `model`'s secret values are (found once per model, from its JSON schema)."""
    found = _FOUND.get(model)
    if found is None:
        schema = model.model_json_schema(mode="validation")
        root = _Compiler(schema).place(schema)
        _FOUND[model] = found = SecretPaths(root if root is not None and _prune(root) else None)
    return found


Location = tuple[str | int, ...]
Replace = Callable[[Any, Location], Any]


def _expanded(places: Iterable[_Place]) -> list[_Place]:
    """`places` and every place each of them also is."""
    found: list[_Place] = []
    seen: set[int] = set()
    pending = list(places)
    while pending:
        place = pending.pop()
        if id(place) not in seen:
            seen.add(id(place))
            found.append(place)
            pending.extend(place.also)
    return found


def _walk(value: Any, places: list[_Place], replace: Replace, at: Location) -> Any:
    if value is None:
        return None
    places = _expanded(places)
    if any(place.secret for place in places):
        return replace(value, at)
    if isinstance(value, dict):
        copied = dict(value)
        for key, item in value.items():
            inner = [
                next_place
                for place in places
                if (next_place := place.keys.get(key) if key in place.named else place.values) is not None
            ]
            if inner:
                copied[key] = _walk(item, inner, replace, (*at, key))
        return copied
    if isinstance(value, list):
        copied_items = list(value)
        for index, item in enumerate(value):
            inner = [
                next_place
                for place in places
                if (next_place := place.positions.get(index, place.items)) is not None
            ]
            if inner:
                copied_items[index] = _walk(item, inner, replace, (*at, index))
        return copied_items
    return value


def _each_secret(task: Task[Any, Any], payload: Any, replace: Replace) -> Any:
    paths = secret_paths(task.input_model)
    if paths.root is None:
        return payload
    return _walk(payload, [paths.root], replace, ())


def redact(task: Task[Any, Any] | None, payload: Any) -> Any:
    """`payload` with each secret value (sealed or not) as `"***"`; for an unknown task (None) the
    whole payload is `"***"` (null stays null)."""
    if task is None:
        return None if payload is None else MASK
    return _each_secret(task, payload, lambda _, __: MASK)


def redact_input(registry: TaskRegistry, task: str | None, payload: Any) -> Any:
    """`redact` for a stored job's input, by task name: hidden whole unless `registry` knows it."""
    return redact(registry.get(task) if task is not None and task in registry else None, payload)


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(SEALED_KEY), str)


class SecretsKey:
    """The JOBS_SECRETS_KEY keys: the first encrypts, any decrypts (rotation)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError(f"{KEY_SETTING} names no key")
        from cryptography.fernet import Fernet, MultiFernet

        self._fernet: MultiFernet = MultiFernet([Fernet(key) for key in keys])
        # a key of its own per Fernet key for fingerprints, derived (not the Fernet key itself)
        self._digest_keys = [
            hmac.new(base64.urlsafe_b64decode(key), b"arq-jobs fingerprint", hashlib.sha256).digest()
            for key in keys
        ]

    @classmethod
    def of(cls, settings: Settings) -> SecretsKey | None:
        """The settings' keys; None when JOBS_SECRETS_KEY is not set."""
        if settings.secrets_key is None:
            return None
        return _keys(settings.secrets_key.get_secret_value())

    def encrypt(self, value: Any) -> str:
        return self._fernet.encrypt(dumps(value)).decode()

    def decrypt(self, token: str) -> Any:
        """The value of a token made with any of the keys; InvalidToken if none of them made it."""
        return loads(self._fernet.decrypt(token.encode()))

    def __len__(self) -> int:
        return len(self._digest_keys)

    def digest(self, value: Any, n: int = 0) -> str:
        """A keyed hash of `value` (HMAC-SHA256 under a key derived from the n-th key)."""
        return hmac.new(self._digest_keys[n], dumps(value), hashlib.sha256).hexdigest()


@lru_cache(maxsize=4)
def _keys(setting: str) -> SecretsKey:
    return SecretsKey([part.strip() for part in setting.split(",") if part.strip()])


def new_key() -> str:
    """A new Fernet key for JOBS_SECRETS_KEY."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def seal(task: Task[Any, Any], payload: Any, key: SecretsKey | None) -> Any:
    """`payload` as stored: each secret value encrypted as `{"$secret": token}` (as given without a key)."""
    if key is None:
        return payload
    return _each_secret(task, payload, lambda value, _: {SEALED_KEY: key.encrypt(value)})


def unseal(task: Task[Any, Any], payload: Any, key: SecretsKey | None) -> Any:
    """A stored payload with its sealed values decrypted (plaintext ones kept); TaskInputError,
    naming the field, when one cannot be."""

    def open_value(value: Any, at: Location) -> Any:
        if not is_sealed(value):
            return value
        if key is None:
            raise _unreadable(task, at, f"stored encrypted, and {KEY_SETTING} is not set")
        from cryptography.fernet import InvalidToken  # loaded already: `key` holds a MultiFernet

        try:
            return key.decrypt(value[SEALED_KEY])
        except InvalidToken:
            reason = f"stored encrypted with a key that {KEY_SETTING} does not hold (any more)"
            raise _unreadable(task, at, reason) from None

    return _each_secret(task, payload, open_value)


def _unreadable(task: Task[Any, Any], at: Location, reason: str) -> TaskInputError:
    return TaskInputError(task.name, [{"loc": list(at), "msg": reason, "type": "secret_unreadable"}])


def fingerprint_inputs(task: Task[Any, Any], payload: Any, key: SecretsKey | None) -> list[Any]:
    """What an Idempotency-Key's fingerprint is computed from, the one to store first, then others
    that an earlier request's stored fingerprint may match: with a key, each secret value replaced
    by its keyed hash (one variant per key, so that a rotation keeps replays working; the plaintext
    itself last, for requests made before a key was set). A Fernet token would change every time."""
    if key is None or not secret_paths(task.input_model):
        return [payload]
    variants = []
    for n in range(len(key)):

        def hashed(value: Any, _: Location, n: int = n) -> Any:
            return {"$hmac": key.digest(value, n)}

        variants.append(_each_secret(task, payload, hashed))
    return [*variants, payload]


def secret_values(task: Task[Any, Any], payload: Any) -> list[str]:
    """The plaintext secret values of a job's input (opened: sealed values are left out) as an error's
    text may quote them: each string or number under a secret path (every one inside a secret model,
    list or dict; not dict keys) of at least MIN_SCRUBBED_CHARS characters, as it is and as Python's
    repr of it (str or UTF-8 bytes) and JSON quote it; longest first. Empty for a task without secrets."""
    found: set[str] = set()

    def collect(value: Any, _: Location) -> Any:
        _add_plaintexts(value, found)
        return value

    _each_secret(task, payload, collect)
    return sorted(found, key=lambda value: (-len(value), value))


def _add_plaintexts(value: Any, found: set[str]) -> None:
    if isinstance(value, bool) or value is None or is_sealed(value):
        return
    if isinstance(value, dict):
        for item in value.values():
            _add_plaintexts(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _add_plaintexts(item, found)
    elif isinstance(value, str | int | float):
        text = value if isinstance(value, str) else str(value)
        if len(text) >= MIN_SCRUBBED_CHARS:
            found.update(
                (
                    text,
                    repr(text)[1:-1],
                    repr(text.encode("utf-8", "surrogatepass"))[2:-1],
                    json.dumps(text)[1:-1],
                    json.dumps(text, ensure_ascii=False)[1:-1],
                )
            )


def scrub(text: str, values: Iterable[str]) -> str:
    """`text` with each of `values` (`secret_values`, longest first) in it replaced by `"***"`."""
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


class ScrubbedError(TextException):
    """Stands in for a failed attempt's exception whose message or traceback quoted a secret input
    value: its class has the original's name (and is a PermanentError or TransientError when that
    was, with the same `retry_after_s`); the texts are the original's with each value as `"***"`."""


_SCRUBBED_TYPES: weakref.WeakKeyDictionary[type[BaseException], type[ScrubbedError]] = (
    weakref.WeakKeyDictionary()
)


def _scrubbed_type(original: type[BaseException]) -> type[ScrubbedError]:
    found = _SCRUBBED_TYPES.get(original)
    if found is None:
        kinds = tuple(kind for kind in (PermanentError, TransientError) if issubclass(original, kind))
        namespace = {
            "__module__": original.__module__,
            "__qualname__": original.__qualname__,
            "__doc__": ScrubbedError.__doc__,
        }
        if isinstance(code := getattr(original, "code", None), str):
            namespace["code"] = code
        found = cast(type[ScrubbedError], type(original.__name__, (ScrubbedError, *kinds), namespace))
        _SCRUBBED_TYPES[original] = found
    return found


def scrub_exception(error: BaseException, values: Sequence[str]) -> BaseException:
    """`error` as a failed attempt may store and log it: itself when neither its message nor its
    traceback (causes and notes included) quotes one of `values` (`secret_values`), else a
    ScrubbedError of the same name whose texts have each value as `"***"`."""
    if not values:
        return error
    message = exception_message(error)
    traceback_text = format_traceback(error)
    if not any(value in message or value in traceback_text for value in values):
        return error
    scrubbed = _scrubbed_type(type(error))(scrub(message, values), scrub(traceback_text, values))
    if isinstance(scrubbed, TransientError):
        scrubbed.retry_after_s = getattr(error, "retry_after_s", None)
    return scrubbed
