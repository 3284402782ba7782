"""A scripted transport double for the client tests (serves Transport and AsyncTransport).

It records every command sent (with its timeout and any uploaded archive), answers from a
script of replies / exceptions / reply functions, keeps a fake clock that only ``sleep`` and
call latency move, and can wake sleeps early for chosen job ids.
"""

from __future__ import annotations

import io
import zipfile
from collections import deque
from collections.abc import AsyncIterable, Callable, Iterable
from typing import Any, TypeVar

from flare_adapters.session import AsyncSession, Session
from flare_core import Command, Ok, Problem, Reply
from flare_core.flows import RetryPolicy

C = TypeVar("C", bound=Command)
Outcome = Reply | BaseException | Callable[[Command], Reply]


def ok(value: Any = None) -> Ok:
    """Shorthand for an ``Ok`` reply."""
    return Ok(value=value)


def problem(exc: BaseException) -> Problem:
    """The problem a backend would send for ``exc``."""
    return Problem.from_exception(exc)


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A small zip archive holding ``files`` (names ending in ``/`` are directories)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


class ScriptedTransport:
    """Answers commands from a script; records everything."""

    def __init__(self, *script: Outcome, default: Outcome | None = None) -> None:
        self.script: deque[Outcome] = deque(script)
        self.default: Outcome = default if default is not None else Ok()
        self.sent: list[Command] = []
        self.timeouts: list[float | None] = []
        self.uploaded: list[bytes] = []
        self.archive = b""
        self.now = 100.0
        self.latency = 0.0
        self.sleeps: list[tuple[float, str | None]] = []
        self.wake_after: dict[str, float] = {}
        self.close_count = 0

    # --- script helpers ---------------------------------------------------------------------

    def then(self, *outcomes: Outcome) -> ScriptedTransport:
        """Append outcomes to the script."""
        self.script.extend(outcomes)
        return self

    def of(self, kind: type[C]) -> list[C]:
        """The sent commands of one type."""
        return [command for command in self.sent if isinstance(command, kind)]

    @property
    def ops(self) -> list[str]:
        """The sent commands' type names, in order."""
        return [type(command).__name__ for command in self.sent]

    def _answer(self, command: Command, timeout: float | None) -> Reply:
        self.sent.append(command)
        self.timeouts.append(timeout)
        self.now += self.latency
        outcome = self.script.popleft() if self.script else self.default
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, Ok | Problem):
            return outcome
        return outcome(command)

    # --- Transport --------------------------------------------------------------------------

    def call(self, command: Command, timeout: float | None) -> Reply:
        return self._answer(command, timeout)

    def upload(self, command: Command, chunks: Iterable[bytes], timeout: float | None) -> Reply:
        self.uploaded.append(b"".join(chunks))
        return self._answer(command, timeout)

    def download(
        self, command: Command, sink: Callable[[bytes], object], timeout: float | None
    ) -> Reply:
        reply = self._answer(command, timeout)
        if isinstance(reply, Ok):
            half = len(self.archive) // 2
            sink(self.archive[:half])
            sink(self.archive[half:])
        return reply

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float, wake_on: str | None) -> bool:
        self.sleeps.append((seconds, wake_on))
        early = self.wake_after.get(wake_on) if wake_on is not None else None
        if early is not None and early < seconds:
            self.now += early
            return True
        self.now += seconds
        return False

    def close(self) -> None:
        self.close_count += 1

    # --- AsyncTransport ---------------------------------------------------------------------

    async def acall(self, command: Command, timeout: float | None) -> Reply:
        return self.call(command, timeout)

    async def aupload(
        self, command: Command, chunks: AsyncIterable[bytes], timeout: float | None
    ) -> Reply:
        collected = [chunk async for chunk in chunks]
        return self.upload(command, collected, timeout)

    async def adownload(
        self, command: Command, sink: Callable[[bytes], object], timeout: float | None
    ) -> Reply:
        return self.download(command, sink, timeout)

    async def asleep(self, seconds: float, wake_on: str | None) -> bool:
        return self.sleep(seconds, wake_on)

    async def aclose(self) -> None:
        self.close()


def fixed_token() -> str:
    """A deterministic private-token source."""
    return "session.fixed"


def make_session(
    transport: ScriptedTransport, root: str, retry: RetryPolicy | None = None
) -> Session:
    """A ``Session`` over ``transport`` with upload/download dirs under ``root``."""
    return Session(
        transport,
        upload_dir=f"{root}/upload",
        download_dir=f"{root}/download",
        retry=retry,
        mint_token=fixed_token,
    )


def make_async_session(
    transport: ScriptedTransport, root: str, retry: RetryPolicy | None = None
) -> AsyncSession:
    """An ``AsyncSession`` over ``transport`` with upload/download dirs under ``root``."""
    return AsyncSession(
        transport,
        upload_dir=f"{root}/upload",
        download_dir=f"{root}/download",
        retry=retry,
        mint_token=fixed_token,
    )
