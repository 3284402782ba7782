"""A virtual clock: time stands still until someone advances it (trio's MockClock idea).

``VirtualClock`` implements the service's ``Clock`` port and adds timers, so the simulated
engine and the memory transport run whole job lifetimes in microseconds, deterministically.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable

from flare_core.errors import InvalidArgumentError

__all__ = ["DEFAULT_EPOCH", "VirtualClock"]

DEFAULT_EPOCH = 1_700_000_000.0
"""The default start time: 2023-11-14T22:13:20Z."""


class _Timer:
    __slots__ = ("callback", "cancelled", "due", "seq")

    def __init__(self, due: float, seq: int, callback: Callable[[], object]) -> None:
        self.due = due
        self.seq = seq
        self.callback = callback
        self.cancelled = False

    def __lt__(self, other: _Timer) -> bool:
        return (self.due, self.seq) < (other.due, other.seq)


class VirtualClock:
    """A clock that moves only when told to, running due timers in time order.

    ``time()`` starts at ``start`` (epoch seconds); ``monotonic()`` starts at 0.0 and moves in
    step with it. Thread-safe: timers may be added and cancelled from any thread; callbacks run
    on the thread that calls ``advance``, without the clock's lock held, so they may add timers
    of their own (those also run if they fall due within the same advance).
    """

    def __init__(self, start: float = DEFAULT_EPOCH) -> None:
        self._lock = threading.RLock()
        self._start = float(start)
        self._elapsed = 0.0
        self._timers: list[_Timer] = []
        self._seq = itertools.count()

    def time(self) -> float:
        """The current virtual wall-clock time, epoch seconds."""
        with self._lock:
            return self._start + self._elapsed

    def monotonic(self) -> float:
        """Virtual seconds elapsed since the clock was created."""
        with self._lock:
            return self._elapsed

    def call_later(self, delay: float, callback: Callable[[], object]) -> Callable[[], None]:
        """Run ``callback`` once the clock has advanced ``delay`` seconds from now.

        Args:
            delay: seconds from now; negative counts as 0 (due at the next ``advance``,
                even ``advance(0)``).
            callback: called with no arguments.

        Returns:
            A function that cancels the timer (idempotent; harmless after it ran).
        """
        with self._lock:
            timer = _Timer(self._elapsed + max(0.0, float(delay)), next(self._seq), callback)
            heapq.heappush(self._timers, timer)

        def cancel() -> None:
            with self._lock:
                timer.cancelled = True

        return cancel

    def next_deadline(self) -> float | None:
        """The ``monotonic()`` time of the earliest pending timer, or None when there is none."""
        with self._lock:
            self._drop_cancelled()
            return self._timers[0].due if self._timers else None

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running every timer that falls due on the way.

        Timers run in due-time order (ties in the order they were added); while each runs,
        the clock reads exactly its due time. Afterwards the clock reads ``now + seconds``.

        Raises:
            InvalidArgumentError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise InvalidArgumentError("cannot advance a clock by a negative amount")
        with self._lock:
            target = self._elapsed + float(seconds)
        while True:
            with self._lock:
                self._drop_cancelled()
                if not self._timers or self._timers[0].due > target:
                    self._elapsed = max(self._elapsed, target)
                    return
                timer = heapq.heappop(self._timers)
                self._elapsed = max(self._elapsed, timer.due)
            timer.callback()

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
