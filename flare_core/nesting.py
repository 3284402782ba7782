"""Bounded nesting of decoded JSON and msgpack documents (issue 10, item 5).

msgspec decodes recursively and raises ``RecursionError`` on very deep input; shallower but
still deep values decode, are stored (a job's meta) and blow up later, when encoded on a
thread with less stack to spare - a 500 for every user who lists that job. So every document
that comes from outside is decoded through ``decode_json`` or checked with ``check_nesting``:
more than ``MAX_NESTING`` levels is the sender's mistake, reported as ``NestingTooDeep``.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar, cast

import msgspec

from flare_core.errors import InvalidArgumentError

__all__ = ["MAX_NESTING", "NestingTooDeep", "check_nesting", "copy_json", "decode_json"]

T = TypeVar("T")

MAX_NESTING = 64
"""The deepest nesting of objects and arrays accepted in any document from the wire or an
upload (job configs nest a handful of levels)."""


class NestingTooDeep(InvalidArgumentError):
    """A document nests objects or arrays deeper than ``MAX_NESTING`` levels."""


def _too_deep(what: str, limit: int) -> NestingTooDeep:
    return NestingTooDeep(f"{what} is nested deeper than {limit} levels")


def check_nesting(value: object, what: str, limit: int = MAX_NESTING) -> None:
    """Check a decoded value's nesting, without recursion.

    Args:
        value: a decoded document (dicts, lists, tuples and msgspec structs are containers).
        what: the document's name, for the message.
        limit: the deepest nesting accepted; the top-level container is level 1.

    Raises:
        NestingTooDeep: ``value`` nests deeper.
    """
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children: Any
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        elif isinstance(item, msgspec.Struct):
            children = msgspec.structs.astuple(item)
        else:
            continue
        if depth + 1 > limit:
            raise _too_deep(what, limit)
        stack.extend((child, depth + 1) for child in children)


def decode_json(data: bytes | str, what: str, limit: int = MAX_NESTING) -> Any:
    """Decode a JSON document of bounded nesting.

    Raises:
        NestingTooDeep: it nests deeper than ``limit`` (msgspec's own recursion bound
            included).
        msgspec.DecodeError: it is not JSON.
    """
    try:
        value = msgspec.json.decode(data)
    except RecursionError:
        raise _too_deep(what, limit) from None
    check_nesting(value, what, limit)
    return value


# Immutable, so a copy may share them; exact types only (a subclass may carry mutable state).
_ATOMS: frozenset[type] = frozenset({str, int, float, bool, type(None)})


def _copy(value: Any) -> Any:
    cls = type(value)
    if cls is dict:
        # A C-speed shallow copy first, then only the containers in it are replaced: a meta's
        # values are mostly strings and numbers.
        out = value.copy()
        for k, v in value.items():
            if type(k) not in _ATOMS:  # not a JSON key: copy it too, as deepcopy would
                return {copy.deepcopy(k): _copy(v) for k, v in value.items()}
            if type(v) not in _ATOMS:
                out[k] = _copy(v)
        return out
    if cls is list:
        return [v if type(v) in _ATOMS else _copy(v) for v in value]
    if cls in _ATOMS:
        return value
    return copy.deepcopy(value)


def copy_json(value: T) -> T:
    """A deep copy of a JSON-like value (a job meta), an order of magnitude cheaper than
    ``copy.deepcopy`` on one.

    Every ``dict`` and ``list`` is rebuilt, so nothing mutable is shared with ``value``;
    ``str``, ``int``, ``float``, ``bool`` and ``None`` are immutable and shared, as
    ``deepcopy`` shares them; any other value (a tuple, an enum, a struct) goes through
    ``copy.deepcopy``, so types are kept exactly. Unlike ``deepcopy`` it does not preserve
    sharing inside ``value`` (a list under two keys becomes two lists) and recurses once per
    level, so it is for acyclic documents, which every stored meta is (it is JSON).
    """
    return cast(T, _copy(value))
