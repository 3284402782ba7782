"""The command registry: ``COMMAND_TYPES`` is the one list every other command list reads."""

from __future__ import annotations

import flare_core as fc
from flare_core import commands


def test_every_command_struct_is_registered_and_exported() -> None:
    defined = {
        value
        for value in vars(commands).values()
        if isinstance(value, type) and issubclass(value, fc.Command) and value is not fc.Command
    }
    assert set(fc.COMMAND_TYPES) == defined
    assert len(fc.COMMAND_TYPES) == len(defined)
    names = {t.__name__ for t in fc.COMMAND_TYPES}
    assert names | {"COMMAND_TYPES", "Command"} == set(commands.__all__)
    assert all(getattr(fc, name) is getattr(commands, name) for name in names)


def test_every_command_declares_its_result() -> None:
    # Commands answering nothing say so (``None``); the rest name a type, checked live
    # against the server in tests/server/test_openapi_results.py.
    silent = {t.__name__ for t in fc.COMMAND_TYPES if t.result is None}
    assert silent == {"RemoveClient", "Logout"}
