"""The hexagon's rules, enforced: imports point inward and the core performs no I/O."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "flare_core": ROOT / "flare_core",
    "flare_ports": ROOT / "ports" / "flare_ports",
    "flare_adapters": ROOT / "adapters" / "flare_adapters",
    "flare_testing": ROOT / "testing" / "flare_testing",
}
# Which of our packages each package may import (inward only).
ALLOWED = {
    "flare_core": {"flare_core"},
    "flare_ports": {"flare_core", "flare_ports"},
    "flare_adapters": {"flare_core", "flare_ports", "flare_adapters"},
    "flare_testing": {"flare_core", "flare_ports", "flare_adapters", "flare_testing"},
}
# Standard-library and third-party modules that mean I/O, concurrency or a clock.
IO_MODULES = {
    "aiohttp",
    "asyncio",
    "concurrent",
    "glob",
    "io",
    "multiprocessing",
    "os",
    "pathlib",
    "random",
    "secrets",
    "selectors",
    "shutil",
    "signal",
    "socket",
    "sqlite3",
    "ssl",
    "subprocess",
    "tempfile",
    "threading",
    "time",
    "websockets",
    "zipfile",
}
# Calls that read a clock or entropy even from otherwise pure modules.
FORBIDDEN_ATTR_CALLS = {
    ("datetime", "now"),
    ("datetime", "today"),
    ("datetime", "utcnow"),
    ("date", "today"),
    ("uuid", "uuid1"),
    ("uuid", "uuid4"),
}
FORBIDDEN_BUILTINS = {"open", "input", "print", "breakpoint"}


def _modules(package: str) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(PACKAGES[package].rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported_roots(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_imports_point_inward(package: str) -> None:
    ours = set(PACKAGES)
    violations = [
        f"{path.relative_to(ROOT)}:{line} imports {root}"
        for path, tree in _modules(package)
        for line, root in _imported_roots(tree)
        if root in ours and root not in ALLOWED[package]
    ]
    assert violations == []


NVFLARE_ADAPTER = PACKAGES["flare_adapters"] / "nvflare"  # the backend
NVFLARE_CHILD = PACKAGES["flare_adapters"] / "engines" / "nvflare" / "child.py"
"""The engine imports NVFlare only in the child process it starts for each job."""


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_only_the_nvflare_adapter_imports_nvflare(package: str) -> None:
    # Without the extra everything else must import; NVFlare stays behind its adapter.
    violations = [
        f"{path.relative_to(ROOT)}:{line} imports nvflare"
        for path, tree in _modules(package)
        for line, root in _imported_roots(tree)
        if root == "nvflare" and NVFLARE_ADAPTER not in path.parents and path != NVFLARE_CHILD
    ]
    assert violations == []


def test_core_imports_no_io_modules() -> None:
    violations = [
        f"{path.relative_to(ROOT)}:{line} imports {root}"
        for path, tree in _modules("flare_core")
        for line, root in _imported_roots(tree)
        if root in IO_MODULES
    ]
    assert violations == []


def test_core_makes_no_io_or_clock_calls() -> None:
    violations = []
    for path, tree in _modules("flare_core"):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_BUILTINS:
                violations.append(f"{path.relative_to(ROOT)}:{node.lineno} calls {func.id}()")
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and (func.value.id, func.attr) in FORBIDDEN_ATTR_CALLS
            ):
                violations.append(
                    f"{path.relative_to(ROOT)}:{node.lineno} calls {func.value.id}.{func.attr}()"
                )
    assert violations == []


def test_scanner_catches_a_violation(tmp_path: Path) -> None:
    # Guard against a scanner that silently finds nothing.
    tree = ast.parse("import socket\nfrom time import monotonic\nopen('x')\n")
    assert {root for _, root in _imported_roots(tree)} == {"socket", "time"}
    assert any(isinstance(n, ast.Call) for n in ast.walk(tree))
    assert len(list(_modules("flare_core"))) > 5


def _imported_modules(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every module path an import names, ``from x import y`` giving ``x.y`` too (``y`` may be a
    submodule)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _private_step(dotted: str) -> str | None:
    """The first ``_``-prefixed component of a dotted path (dunders excepted), or None."""
    for part in dotted.split(".")[1:]:
        if part.startswith("_") and not part.startswith("__"):
            return part
    return None


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_other_packages_are_reached_through_public_modules_only(package: str) -> None:
    # A package uses another one as a third party would: through its un-prefixed modules.
    # Importing a ``_private`` module of another package is the shortcut this forbids; inside
    # one package, private modules are how it is organised.
    violations = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path, tree in _modules(package)
        for line, module in _imported_modules(tree)
        if module.split(".")[0] in PACKAGES
        and module.split(".")[0] != package
        and _private_step(module) is not None
    ]
    assert violations == []


def test_the_boundary_scanner_sees_private_steps() -> None:
    tree = ast.parse("from flare_core.service._core import X\nfrom flare_core import _errors\n")
    found = [m for _, m in _imported_modules(tree) if _private_step(m)]
    assert found == ["flare_core.service._core", "flare_core.service._core.X", "flare_core._errors"]
    assert _private_step("flare_core.service.ports") is None


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_public_classes_report_a_public_module(package: str) -> None:
    module = importlib.import_module(package)
    violations = [
        f"{package}.{name} reports {value.__module__}"
        for name in module.__all__
        if isinstance(value := getattr(module, name), type)
        and value.__module__.split(".")[0] in PACKAGES
        and _private_step(value.__module__) is not None
    ]
    assert violations == []
