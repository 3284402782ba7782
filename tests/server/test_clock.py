"""The server's real clock: thread-safe timers whose callbacks run on a small worker pool."""

from __future__ import annotations

import asyncio
import functools
import threading

import pytest

from flare_adapters.server.clock import LoopClock

pytestmark = pytest.mark.asyncio

BOUND = 10.0  # generous bound on what must happen at once


async def _until(done: threading.Event) -> bool:
    return await asyncio.get_running_loop().run_in_executor(None, done.wait, BOUND)


async def test_due_callbacks_run_side_by_side_on_the_pool() -> None:
    # Four job ends that each wait (an fsync, the service lock) must not queue behind each
    # other: with one timer thread the barrier below would never fill.
    clock = LoopClock(asyncio.get_running_loop(), workers=4)
    barrier = threading.Barrier(4, timeout=BOUND)
    passed: list[int] = []
    done = threading.Event()

    def callback(index: int) -> None:
        barrier.wait()
        passed.append(index)
        if len(passed) == 4:
            done.set()

    try:
        for index in range(4):
            clock.call_later(0.0, functools.partial(callback, index))
        assert await _until(done)
        assert sorted(passed) == [0, 1, 2, 3]
    finally:
        clock.close()


async def test_callbacks_start_in_due_order_and_cancelled_ones_never_run() -> None:
    clock = LoopClock(asyncio.get_running_loop(), workers=1)
    ran: list[str] = []
    done = threading.Event()
    try:
        clock.call_later(0.02, lambda: ran.append("late"))
        cancel = clock.call_later(0.0, lambda: ran.append("cancelled"))
        cancel()
        cancel()  # idempotent
        clock.call_later(0.0, lambda: ran.append("early"))
        clock.call_later(0.05, done.set)
        assert await _until(done)
        assert ran == ["early", "late"]
    finally:
        clock.close()


async def test_a_failing_callback_does_not_stop_the_others() -> None:
    clock = LoopClock(asyncio.get_running_loop(), workers=1)
    done = threading.Event()

    def fail() -> None:
        raise RuntimeError("boom")

    try:
        clock.call_later(0.0, fail)
        clock.call_later(0.0, done.set)
        assert await _until(done)
    finally:
        clock.close()
    after_close = threading.Event()
    clock.call_later(0.0, after_close.set)  # a closed clock runs nothing
    await asyncio.sleep(0.05)
    assert not after_close.is_set()
