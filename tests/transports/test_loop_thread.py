"""The private event loops of sync code (``LoopThread``, ``BorrowedLoop``), and the sync
transport flavour built on them."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterable, Iterator

import pytest

from flare_adapters.loop_thread import BorrowedLoop, LoopThread, ThreadedTransport
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
    # The caller's thread ran every coroutine itself (``BorrowedLoop``): no hand-off.
    assert inner.threads == {threading.current_thread().name}
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


# --- BorrowedLoop ------------------------------------------------------------------------------


@pytest.fixture
def borrowed() -> Iterator[BorrowedLoop]:
    loop = BorrowedLoop("test-pump")
    yield loop
    loop.close()


def test_a_caller_runs_the_loop_on_its_own_thread(borrowed: BorrowedLoop) -> None:
    assert borrowed.run(_answer(7)) == 7
    assert borrowed.run(_thread_name()) == threading.current_thread().name
    assert not borrowed.in_loop_thread()


def test_borrowed_failures_propagate_and_re_entry_is_refused(borrowed: BorrowedLoop) -> None:
    async def fail() -> None:
        raise KeyError("inner")

    async def re_enter() -> int:
        return borrowed.run(_answer(1))

    async def close_inside() -> None:
        borrowed.close()

    with pytest.raises(KeyError, match="inner"):
        borrowed.run(fail())
    with pytest.raises(RuntimeError, match="own event loop thread"):
        borrowed.run(re_enter())
    with pytest.raises(RuntimeError, match="own loop"):
        borrowed.run(close_inside())
    assert borrowed.run(_answer(2)) == 2


def test_the_idle_loop_keeps_turning(borrowed: BorrowedLoop) -> None:
    # What arrives between calls (a callback from another thread, a due timer) runs on the
    # pump thread without any call: pings get answered while the caller is elsewhere.
    ran = threading.Event()
    threads: list[str] = []

    def note() -> None:
        threads.append(threading.current_thread().name)
        ran.set()

    borrowed.run(_answer(0))
    borrowed.loop.call_soon_threadsafe(note)
    assert ran.wait(10.0)
    assert threads == ["test-pump"]


def test_concurrent_callers_do_not_wait_for_each_other(borrowed: BorrowedLoop) -> None:
    # One thread holds the loop in a long call; another's short calls finish meanwhile, and
    # when the long call's caller is the first to leave, the pump finishes the others.
    release = threading.Event()
    started = threading.Event()

    async def long_call() -> str:
        started.set()
        while not release.is_set():
            await asyncio.sleep(0.001)
        return "long"

    results: dict[str, object] = {}
    holder = threading.Thread(target=lambda: results.update(long=borrowed.run(long_call())))
    holder.start()
    assert started.wait(10.0)
    assert [borrowed.run(_answer(n)) for n in range(3)] == [0, 1, 2]  # handed to the holder
    release.set()
    holder.join(10.0)
    assert results == {"long": "long"}

    gate = threading.Event()

    async def slow_handed() -> str:
        while not gate.is_set():
            await asyncio.sleep(0.001)
        return "handed"

    async def quick_then_leave() -> None:
        started.clear()
        worker = threading.Thread(target=lambda: results.update(slow=borrowed.run(slow_handed())))
        worker.start()
        results["worker"] = worker
        await asyncio.sleep(0.01)  # the worker's coroutine is on this loop now

    borrowed.run(quick_then_leave())  # this caller leaves while the worker's call still runs
    gate.set()
    worker = results.pop("worker")
    assert isinstance(worker, threading.Thread)
    worker.join(10.0)
    assert results["slow"] == "handed"  # the pump ran the loop for it


def test_a_caller_inside_another_loop_hands_its_call_over(borrowed: BorrowedLoop) -> None:
    async def outer() -> tuple[int, str]:
        # A sync call from inside a running loop of the caller's own (blocking it, as any
        # sync call does): this loop cannot be run here, so the pump thread runs it.
        return borrowed.run(_answer(5)), borrowed.run(_thread_name())

    assert asyncio.run(outer()) == (5, "test-pump")


def test_borrowed_close_cancels_what_still_runs_and_later_runs_fail() -> None:
    loop = BorrowedLoop("closing")
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    async def spawn() -> None:
        asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(0)

    loop.run(spawn())
    loop.close()
    loop.close()
    assert cancelled.is_set()
    assert loop.closed
    assert "closing" not in {thread.name for thread in threading.enumerate()}
    with pytest.raises(NoConnection):
        loop.run(_answer(1))


def test_a_loop_made_and_closed_inside_another_loop_closes() -> None:
    # What a sync session made and closed inside an async test does: every call, the close's
    # shutdown included (which cancels every task of the loop), is handed to the pump thread.
    async def outer() -> int:
        loop = BorrowedLoop("nested")
        value = loop.run(_answer(3))
        worker = await asyncio.get_running_loop().run_in_executor(None, loop.run, _answer(4))
        loop.close()
        return value + worker

    assert asyncio.run(outer()) == 7
    assert "nested" not in {thread.name for thread in threading.enumerate()}
