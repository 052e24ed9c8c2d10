from __future__ import annotations

import pickle

import pytest
from pydantic import BaseModel

from arq_jobs._serializer import EXCEPTION_KEY, dumps, loads


class Point(BaseModel):
    x: int
    y: int


def test_round_trips_json_values() -> None:
    value = {"f": "noop", "a": [{"value": [1, "two", None, 3.5]}], "k": {}, "t": None}
    assert loads(dumps(value)) == value


def test_models_and_tuples_become_json() -> None:
    assert loads(dumps({"p": Point(x=1, y=2), "t": (1, 2)})) == {"p": {"x": 1, "y": 2}, "t": [1, 2]}


def test_exceptions_keep_type_message_and_traceback() -> None:
    try:
        raise ValueError("bad row 7")
    except ValueError as exc:
        encoded = loads(dumps({"r": exc}))["r"][EXCEPTION_KEY]
    assert encoded["type"] == "ValueError"
    assert encoded["message"] == "bad row 7"
    assert encoded["traceback"].startswith("Traceback (most recent call last):")
    assert encoded["traceback"].rstrip().endswith("ValueError: bad row 7")


def test_arbitrary_objects_are_refused() -> None:
    with pytest.raises(TypeError):
        dumps({"obj": object()})


def test_pickle_is_never_read() -> None:
    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("this would run",))

    with pytest.raises(ValueError):
        loads(pickle.dumps(Boom()))


def test_exceptions_without_a_message_get_one() -> None:

    encoded = loads(dumps(TimeoutError()))[EXCEPTION_KEY]
    assert (encoded["type"], encoded["message"]) == ("TimeoutError", "Timeout expired.")

    class Quiet(Exception):
        pass

    assert loads(dumps(Quiet()))[EXCEPTION_KEY]["message"] == "Quiet"
