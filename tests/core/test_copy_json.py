"""``copy_json``: the cheap deep copy of job metas must be as exact and as isolated as
``copy.deepcopy`` on them."""

from __future__ import annotations

import copy
import enum
from typing import Any

from flare_core.nesting import copy_json


class _Color(enum.StrEnum):
    RED = "red"


class _Box:
    def __init__(self, items: list[int]) -> None:
        self.items = items

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Box) and other.items == self.items

    __hash__ = None  # type: ignore[assignment]


def _meta() -> dict[Any, Any]:
    return {
        "job_id": "j-1",
        "submit_time": 1700000000.0,
        "min_clients": 2,
        "ok": True,
        "none": None,
        "deploy_map": {"app": ["@ALL"], "nested": {"deep": [[1, 2], {"x": [3]}]}},
        "resource_spec": {},
        "tuple": (1, [2]),
        "enum": _Color.RED,
        "box": _Box([4]),
        7: "an int key",
        ("a", 1): "a tuple key",
    }


def _containers(value: object) -> list[object]:
    """Every mutable container (and object) inside ``value``, ``value`` included."""
    found: list[object] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            if isinstance(item, list):
                found.append(item)
            stack.extend(item)
        elif isinstance(item, _Box):
            found.append(item)
            stack.append(item.items)
    return found


def test_copy_equals_the_original_with_exact_types() -> None:
    meta = _meta()
    copied = copy_json(meta)
    assert copied == meta == copy.deepcopy(meta)
    assert type(copied["tuple"]) is tuple
    assert type(copied["enum"]) is _Color
    assert type(copied["submit_time"]) is float
    assert type(copied["min_clients"]) is int
    assert type(copied["ok"]) is bool
    assert list(copied) == list(meta)  # key order kept


def test_copy_shares_no_mutable_object_with_the_original() -> None:
    meta = _meta()
    copied = copy_json(meta)
    originals = {id(item) for item in _containers(meta)}
    assert not originals & {id(item) for item in _containers(copied)}
    copied["deploy_map"]["nested"]["deep"][1]["x"].append(9)
    copied["tuple"][1].append(9)
    copied["box"].items.append(9)
    copied["resource_spec"]["new"] = 1
    assert meta == _meta()


def test_lists_and_scalars_at_the_top() -> None:
    items: list[Any] = [{"a": [1]}, "s", 2]
    copied = copy_json(items)
    assert copied == items
    assert copied is not items
    assert copied[0] is not items[0]
    assert copy_json("text") == "text"
    assert copy_json(None) is None
