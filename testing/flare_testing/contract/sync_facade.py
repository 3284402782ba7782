"""Run an ``AsyncSessionSpec`` through the synchronous ``SessionSpec`` surface.

The contract suite writes each test body once, against ``SessionSpec``. To exercise
``AsyncSessionSpec`` through every one of those bodies, the async flavour hands the test a
``SyncFacade``: each method call starts the async session's coroutine of the same name and
runs it to completion on a private event loop (one ``asyncio.Runner`` per test, shared by all
sessions the test opens), so the async driver, its flows and its transport do all the work;
the facade only waits. ``close`` maps to ``aclose`` and the ``with`` statement to
``async with``. Plain (non-coroutine) attributes pass through unchanged.

Never use a facade from inside a running event loop (``asyncio.Runner`` refuses).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from flare_ports.session_spec import AsyncSessionSpec

__all__ = ["SyncFacade", "run_awaitable"]

T = TypeVar("T")

_RENAMED = {"close": "aclose"}


async def _wait(awaitable: Awaitable[T]) -> T:
    return await awaitable


def run_awaitable(runner: asyncio.Runner, value: Awaitable[T] | T) -> T:
    """Return ``value``, first running it to completion on ``runner`` if it is awaitable."""
    if inspect.isawaitable(value):
        result: T = runner.run(_wait(value))
        return result
    return value


def _iterate(runner: asyncio.Runner, stream: AsyncIterator[T]) -> Iterator[T]:
    """A sync iterator over ``stream``, each step run on ``runner``."""
    try:
        while True:
            try:
                item: T = runner.run(_wait(anext(stream)))
            except StopAsyncIteration:
                return
            yield item
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            runner.run(_wait(close()))


class SyncFacade:
    """A synchronous view of one ``AsyncSessionSpec``.

    Args:
        session: the async session to drive.
        runner: the private event loop its coroutines run on; the caller closes it after
            the session.
    """

    def __init__(self, session: AsyncSessionSpec, runner: asyncio.Runner) -> None:
        self._session = session
        self._runner = runner

    @property
    def wrapped(self) -> AsyncSessionSpec:
        """The async session behind this facade."""
        return self._session

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._session, _RENAMED.get(name, name))
        if not callable(attr):
            return attr
        method: Callable[..., Any] = attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if isinstance(result, AsyncIterator):  # watch_jobs: iterate it on the runner
                return _iterate(self._runner, result)
            return run_awaitable(self._runner, result)

        call.__name__ = name
        return call

    def __enter__(self) -> SyncFacade:
        self._runner.run(_wait(self._session.__aenter__()))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._runner.run(_wait(self._session.__aexit__(exc_type, exc, tb)))

    def __repr__(self) -> str:
        return f"SyncFacade({self._session!r})"
