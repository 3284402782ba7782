"""``poll_until``: the one probe-check-sleep loop of the flows that wait for a change.

A wait polls a probe until it reports a result or a deadline passes. Time is only ever
asked with ``Now`` and spent with ``Sleep`` steps, so the sync and async drivers and the
virtual clock of the tests all see the same sequence: probe, ``Now``, ``Sleep``, probe...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from flare_core.flows._context import ClientFlow
from flare_core.steps import Now, Sleep

__all__ = ["PENDING", "Pending", "poll_until"]

T = TypeVar("T")


class Pending:
    """The type of ``PENDING``: what a probe returns while the awaited change has not come."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "PENDING"


PENDING: Final = Pending()
"""A probe's answer "not yet": ``poll_until`` checks the deadline, sleeps and probes again."""


def poll_until(
    probe: Callable[[], ClientFlow[T | Pending]],
    deadline: float,
    interval: float,
    timeout_message: Callable[[], str],
) -> ClientFlow[T]:
    """Run ``probe`` until it returns something other than ``PENDING``.

    The probe runs at once, then after every ``interval`` seconds while the clock (asked
    after each probe) is before ``deadline``. The probe is a sub-flow, so it may issue its
    own steps and raise to end the wait.

    Args:
        probe: makes one attempt; returns the result, or ``PENDING`` to try again.
        deadline: the clock time after which no further attempt is made.
        interval: the seconds slept between attempts.
        timeout_message: builds the ``TimeoutError`` message (called once, at the deadline,
            so it may report what the last attempt saw).

    Returns:
        The probe's first result.

    Raises:
        TimeoutError: the probe still said ``PENDING`` at the deadline.
    """
    while True:
        result = yield from probe()
        if not isinstance(result, Pending):
            return result
        now: float = yield Now()
        if now >= deadline:
            raise TimeoutError(timeout_message())
        yield Sleep(seconds=interval)
