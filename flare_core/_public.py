"""Exported classes report the package users import them from (as httpx does)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["report_package"]


def report_package(namespace: Mapping[str, object], names: Iterable[str], package: str) -> None:
    """Set ``__module__`` of each class in ``names`` that a private submodule of ``package``
    defines to ``package``: that is where users and the docs find it, and what the
    architecture test checks.
    """
    for name in names:
        value = namespace[name]
        if isinstance(value, type) and value.__module__.startswith(f"{package}._"):
            value.__module__ = package
