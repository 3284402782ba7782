"""The private event-loop thread of the sync transports, and the sync flavour built on it."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterable, Iterator

import pytest

from flare_adapters.loop_thread import LoopThread, ThreadedTransport
from flare_core.commands import Command, GetJobMeta, ListJobs, SubmitJob
from flare_core.errors import NoConnection
from flare_core.replies import Ok, Reply
from flare_ports.transport import ChunkSink, Transport


@pytest.fixture
def runner() -> Iterator[LoopThread]:
    loop = LoopThread("test-loop")
    yield loop
    loop.close()


async def _answer(value: int) -> int:
    await asyncio.sleep(0)
    return value


async def _thread_name() -> str:
    return threading.current_thread().name


def test_coroutines_run_on_the_private_thread(runner: LoopThread) -> None:
    assert runner.run(_answer(7)) == 7
    assert runner.run(_thread_name()) == "test-loop"
    assert not runner.in_loop_thread()


def test_failures_propagate_unchanged(runner: LoopThread) -> None:
    async def fail() -> None:
        raise KeyError("inner")

    with pytest.raises(KeyError, match="inner"):
        runner.run(fail())


def test_re_entry_from_the_loop_is_refused(runner: LoopThread) -> None:
    async def re_enter() -> int:
        return runner.run(_answer(1))

    with pytest.raises(RuntimeError, match="own event loop thread"):
        runner.run(re_enter())


def test_closing_from_the_loop_is_refused(runner: LoopThread) -> None:
    async def close_inside() -> None:
        runner.close()

    with pytest.raises(RuntimeError, match="own thread"):
        runner.run(close_inside())


def test_close_is_idempotent_and_later_runs_fail(runner: LoopThread) -> None:
    runner.close()
    runner.close()
    assert runner.closed
    coro = _answer(1)
    with pytest.raises(NoConnection, match="closed"):
        runner.run(coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED  # not left unawaited


def test_close_cancels_what_still_runs(runner: LoopThread) -> None:
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    runner.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(forever()))
    runner.run(_answer(0))  # the task has started
    runner.close()
    assert cancelled.is_set()


class _Recorder:
    """An ``AsyncTransport`` that records where and how it was used."""

    def __init__(self) -> None:
        self.threads: set[str] = set()
        self.uploaded = b""
        self.closed = 0

    def _seen(self) -> None:
        self.threads.add(threading.current_thread().name)

    async def acall(self, command: Command, timeout: float | None) -> Reply:
        self._seen()
        return Ok(value=type(command).__name__)

    async def aupload(
        self, command: Command, chunks: AsyncIterable[bytes], timeout: float | None
    ) -> Reply:
        self._seen()
        self.uploaded = b"".join([chunk async for chunk in chunks])
        return Ok(value=len(self.uploaded))

    async def adownload(self, command: Command, sink: ChunkSink, timeout: float | None) -> Reply:
        self._seen()
        for piece in (b"ab", b"cd"):
            sink(piece)
        return Ok()

    def monotonic(self) -> float:
        return 42.0

    async def asleep(self, seconds: float, wake_on: str | None) -> bool:
        self._seen()
        return wake_on == "wake"

    async def aclose(self) -> None:
        self.closed += 1


async def _make() -> _Recorder:
    return _Recorder()


def test_the_threaded_transport_serves_the_sync_port() -> None:
    transport = ThreadedTransport.open(_make, name="recorder")
    inner = transport.inner
    assert isinstance(inner, _Recorder)
    assert isinstance(transport, Transport)
    assert transport.call(ListJobs(), None) == Ok(value="ListJobs")
    zipped = iter([b"PK", b"\x03\x04", b"rest"])
    assert transport.upload(SubmitJob(folder_name="f"), zipped, None) == Ok(value=8)
    assert inner.uploaded == b"PK\x03\x04rest"
    received: list[bytes] = []
    assert transport.download(GetJobMeta(job_id="j"), received.append, None) == Ok()
    assert received == [b"ab", b"cd"]
    assert transport.sleep(1.0, "wake") is True
    assert transport.monotonic() == 42.0
    assert inner.threads == {"recorder"}
    transport.close()
    transport.close()
    assert inner.closed == 1
    assert transport.closed
    with pytest.raises(NoConnection):
        transport.call(ListJobs(), None)


def test_a_failing_factory_stops_the_thread() -> None:
    async def broken() -> _Recorder:
        raise NoConnection("cannot connect to server: nobody home")

    with pytest.raises(NoConnection, match="nobody home"):
        ThreadedTransport.open(broken, name="doomed")
    assert "doomed" not in {thread.name for thread in threading.enumerate()}


def test_upload_chunks_are_produced_off_the_loop() -> None:
    producers: set[str] = set()

    def chunks() -> Iterator[bytes]:
        for piece in (b"a", b"b"):
            producers.add(threading.current_thread().name)
            yield piece

    transport = ThreadedTransport.open(_make, name="recorder")
    try:
        transport.upload(SubmitJob(folder_name="f"), chunks(), None)
    finally:
        transport.close()
    assert producers
    assert "recorder" not in producers
