"""How big and how long a run is: the full run, ``--quick`` and the unit test's ``tiny``."""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["Plan", "full", "quick", "tiny"]

_MIB = 1 << 20


@dataclass(frozen=True)
class Plan:
    """Sizes of one run.

    Attributes:
        rounds: interleaved rounds per comparison (each candidate once per round).
        number: calls per candidate per round (latency figures).
        writes: samples per write figure (each creates a job).
        waits: samples per wait figure (each aborts a live job).
        concurrency: reads in flight on one async session.
        batches: batches of ``concurrency`` reads per candidate per round.
        listing_sizes: job counts of the SQLite listing figures.
        listing_calls: calls per listing query per round.
        study_counts: registry sizes (studies) of the studies figures.
        transfer_bytes: the size of the downloaded and uploaded file.
        idle_sessions: WebSocket sessions held open for the sessions figure.
        nvflare: compare with NVFlare's ``Session`` on a POC.
        nvflare_waits: wait samples against NVFlare (each waits out an NVFlare abort).
        seed_jobs: jobs submitted before the reads (list_jobs returns a page of them).
    """

    name: str
    rounds: int
    number: int
    writes: int
    waits: int
    concurrency: int
    batches: int
    listing_sizes: tuple[int, ...]
    listing_calls: int
    transfer_bytes: int
    idle_sessions: int
    study_counts: tuple[int, ...] = (1, 10, 100)
    nvflare: bool = False
    nvflare_waits: int = 3
    seed_jobs: int = 10

    def with_options(self, **changes: object) -> Plan:
        return replace(self, **changes)  # type: ignore[arg-type]


def full() -> Plan:
    return Plan(
        name="full",
        rounds=7,
        number=60,
        writes=20,
        waits=6,
        concurrency=32,
        batches=10,
        listing_sizes=(1_000, 10_000, 100_000),
        listing_calls=30,
        transfer_bytes=128 * _MIB,
        idle_sessions=200,
    )


def quick() -> Plan:
    return Plan(
        name="quick",
        rounds=3,
        number=15,
        writes=5,
        waits=2,
        concurrency=32,
        batches=3,
        listing_sizes=(1_000, 10_000),
        listing_calls=10,
        transfer_bytes=16 * _MIB,
        idle_sessions=50,
        nvflare_waits=1,
    )


def tiny() -> Plan:
    """The unit test's plan: every figure, sizes too small to mean anything."""
    return Plan(
        name="tiny",
        rounds=1,
        number=2,
        writes=1,
        waits=1,
        concurrency=4,
        batches=1,
        listing_sizes=(50, 100),
        listing_calls=2,
        study_counts=(1, 3),
        transfer_bytes=256 * 1024,
        idle_sessions=3,
        nvflare_waits=1,
        seed_jobs=2,
    )
