"""Each package's ``__all__`` is exactly its public surface, and every name in it resolves."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = ["flare_core", "flare_core.rules", "flare_ports", "flare_adapters", "flare_testing"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_resolve(name: str) -> None:
    module = importlib.import_module(name)
    assert len(set(module.__all__)) == len(module.__all__)
    for public in module.__all__:
        assert getattr(module, public) is not None, public


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_are_exported(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not isinstance(value, types.ModuleType)
        and attr not in {"annotations", "TYPE_CHECKING", "Any"}
    }
    assert public <= set(module.__all__)


def test_errors_import_from_both_core_and_ports_level() -> None:
    from flare_core import JobNotFound
    from flare_ports import JobNotFound as PortsJobNotFound
    from flare_ports import SessionSpec

    assert JobNotFound is PortsJobNotFound
    assert JobNotFound.__module__ == "flare_core.errors"
    assert SessionSpec.__module__ == "flare_ports.session_spec"
