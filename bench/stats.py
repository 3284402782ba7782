"""Timing: per-call samples taken in interleaved rounds, summarised as median and p99.

The machine is shared and noisy, so a figure and its baseline are never measured one after
the other in one block: each round runs every candidate once (in a rotating order), and the
ratio of medians over all rounds is what the goals judge. A burst of noise then hits both.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Summary", "interleaved", "sample_async", "sample_sync", "summarise"]

Sampler = Callable[[int], list[float]]
"""Takes ``number`` and returns that many per-call durations, seconds."""


@dataclass(frozen=True)
class Summary:
    """Median, 99th percentile and count of per-call seconds."""

    median: float
    p99: float
    n: int

    def as_json(self) -> dict[str, float]:
        return {"median_s": self.median, "p99_s": self.p99, "n": self.n}


def summarise(samples: Sequence[float]) -> Summary:
    """The median and p99 (nearest rank) of ``samples`` (at least one)."""
    ordered = sorted(samples)
    rank = max(0, math.ceil(0.99 * len(ordered)) - 1)
    return Summary(median=statistics.median(ordered), p99=ordered[rank], n=len(ordered))


def sample_sync(call: Callable[[], object]) -> Sampler:
    """A sampler timing ``call()`` once per sample."""

    def run(number: int) -> list[float]:
        out = []
        clock = time.perf_counter
        for _ in range(number):
            start = clock()
            call()
            out.append(clock() - start)
        return out

    return run


def sample_async(loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[object]]) -> Sampler:
    """A sampler timing ``await call()`` on ``loop`` (driven from this thread)."""

    async def batch(number: int) -> list[float]:
        out = []
        clock = time.perf_counter
        for _ in range(number):
            start = clock()
            await call()
            out.append(clock() - start)
        return out

    def run(number: int) -> list[float]:
        return loop.run_until_complete(batch(number))

    return run


def interleaved(
    candidates: Mapping[str, Sampler], *, rounds: int, number: int, warmup: int = 3
) -> dict[str, Summary]:
    """Run every candidate ``number`` times per round, ``rounds`` rounds, rotating the order.

    A warm-up of ``warmup`` calls each comes first (connection pools, caches, JIT-free but
    lazily built objects) and is not counted.
    """
    names = list(candidates)
    for name in names:
        candidates[name](warmup)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].extend(candidates[name](number))
    return {name: summarise(values) for name, values in samples.items()}
