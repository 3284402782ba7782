"""Which job ids ``ServiceCore.load_job`` looks up: the version-4 UUIDs, in any spelling
``uuid.UUID`` reads. The canonical spelling is matched without parsing (every job command
pays the check), so the fast path must agree with the parse on every input."""

from __future__ import annotations

import random
import uuid

import pytest

from flare_core.service._core import _is_uuid4

_V4 = "3f2b6c1e-8a4d-4c2b-9f1e-2d3c4b5a6e7f"

SPELLINGS = [
    _V4,
    _V4.replace("-", ""),
    "{" + _V4 + "}",
    "urn:uuid:" + _V4,
    _V4[:14] + "1" + _V4[15:],  # version 1
    _V4[:19] + "c" + _V4[20:],  # the Microsoft variant, not RFC 4122
    _V4 + "0",
    _V4[:-1],
    _V4.replace("-", "_"),
    "",
    "not-a-uuid",
    _V4 + "\n",
]


def _parsed(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4
    except ValueError:
        return False


@pytest.mark.parametrize("value", SPELLINGS)
def test_the_fast_path_agrees_with_the_parse(value: str) -> None:
    assert _is_uuid4(value) == _parsed(value)


def test_random_ids_of_every_version_and_variant_agree() -> None:
    rng = random.Random(4)
    for _ in range(5000):
        value = str(uuid.UUID(int=rng.getrandbits(128)))
        assert _is_uuid4(value) == _parsed(value), value
    assert _is_uuid4(str(uuid.uuid4()))
