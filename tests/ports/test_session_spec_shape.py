"""SessionSpec keeps every seed method, parameter and default; AsyncSessionSpec mirrors it."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from flare_ports import AsyncSessionSpec, SessionSpec

SEED = Path(__file__).resolve().parent.parent / "data" / "seed_api_spec.txt"
# DECISIONS §1: methods the seed uses or its users need, beyond the seed's own.
ADDED = {
    "get_job_meta",
    "monitor_job_and_return_job_meta",
    "configure_job_log",
    "configure_site_log",
}


def _seed_methods() -> dict[str, ast.arguments]:
    """Parse the seed's SessionSpec method signatures (the text lost its indentation)."""
    text = SEED.read_text(encoding="utf-8")
    body = text[text.index("class SessionSpec(ABC):") : text.index("def job_monitor_cb_signature")]
    methods: dict[str, ast.arguments] = {}
    for match in re.finditer(r"def (\w+)\(", body):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(body)):
            depth += {"(": 1, ")": -1}.get(body[end], 0)
            if depth == 0:
                break
        params = body[match.end() : end]
        tree = ast.parse(f"def {match.group(1)}({params}): pass")
        func = tree.body[0]
        assert isinstance(func, ast.FunctionDef)
        methods[match.group(1)] = func.args
    return methods


SEED_METHODS = _seed_methods()


def _literal(node: ast.expr) -> Any:
    return ast.literal_eval(node)


def test_seed_parses_to_a_plausible_method_count() -> None:
    assert len(SEED_METHODS) == 46
    assert "submit_job" in SEED_METHODS
    assert "monitor_job" in SEED_METHODS


@pytest.mark.parametrize("name", sorted(SEED_METHODS))
def test_sync_spec_keeps_seed_signature(name: str) -> None:
    seed = SEED_METHODS[name]
    ours = inspect.signature(getattr(SessionSpec, name))
    params = list(ours.parameters.values())
    seed_positional = [a.arg for a in seed.args]
    assert [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD] == seed_positional
    defaults = dict(zip(reversed(seed_positional), reversed(seed.defaults), strict=False))
    for param in params:
        if param.name in defaults:
            assert param.default == _literal(defaults[param.name]), param.name
        elif param.kind is param.POSITIONAL_OR_KEYWORD and param.name != "self":
            assert param.default is inspect.Parameter.empty, param.name
    assert (seed.vararg is None) == all(p.kind is not p.VAR_POSITIONAL for p in params)
    assert (seed.kwarg is None) == all(p.kind is not p.VAR_KEYWORD for p in params)


def test_sync_spec_has_the_decided_additions() -> None:
    for name in ADDED:
        assert callable(getattr(SessionSpec, name))


def test_every_abstract_method_is_seed_or_decided() -> None:
    assert SessionSpec.__abstractmethods__ <= set(SEED_METHODS) | ADDED
    assert "monitor_job" not in SessionSpec.__abstractmethods__


def _public_methods(cls: type) -> set[str]:
    return {n for n, v in vars(cls).items() if callable(v) and not n.startswith("_")}


def test_async_spec_mirrors_every_sync_method() -> None:
    sync_names = _public_methods(SessionSpec)
    async_names = _public_methods(AsyncSessionSpec)
    assert (sync_names - {"close"}) | {"aclose"} == async_names
    for name in sync_names - {"close"}:
        sync_sig = inspect.signature(getattr(SessionSpec, name))
        async_method = getattr(AsyncSessionSpec, name)
        # The one stream is an async iterator (``async for``), not a coroutine.
        assert inspect.iscoroutinefunction(async_method) != (name == "watch_jobs"), name
        async_sig = inspect.signature(async_method)
        assert list(sync_sig.parameters) == list(async_sig.parameters), name
        for param_name, param in sync_sig.parameters.items():
            assert async_sig.parameters[param_name].default == param.default, (name, param_name)
    assert inspect.iscoroutinefunction(AsyncSessionSpec.aclose)
    assert hasattr(AsyncSessionSpec, "__aenter__")
    assert hasattr(AsyncSessionSpec, "__aexit__")


@pytest.mark.parametrize("spec", [SessionSpec, AsyncSessionSpec])
def test_watch_jobs_is_optional_and_refuses_where_it_is_not_implemented(spec: type) -> None:
    # An implementation written against NVFlare's spec (every seed method, no watch_jobs)
    # still instantiates, and asking it to watch names the class, not an AttributeError.
    abstract = {n for n in dir(spec) if getattr(getattr(spec, n), "__isabstractmethod__", False)}
    assert "watch_jobs" not in abstract
    assert len(abstract) > 30  # the seed's methods: the stub below implements each
    seed_only = {name: lambda *args, **kwargs: None for name in abstract}
    no_watch = type("NoWatch", (spec,), seed_only)()
    with pytest.raises(NotImplementedError, match=r"^NoWatch does not implement watch_jobs$"):
        no_watch.watch_jobs()
