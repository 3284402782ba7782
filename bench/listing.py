"""Listing at scale: ``list_jobs`` server time over SQLite at 1k, 10k and 100k jobs, and
the Python memory a full detailed listing holds while it is served (streamed).

"Server time" is ``AdminService.handle(ListJobs(...))`` on the server's own runtime (the
``ServerRuntime`` ``flare-core serve`` builds: SQLite job store, real clock), called in this
process so no network is counted. The baseline for each query is the one raw indexed SQL
statement that reads the same rows, decoded with msgspec. The store grows between sizes, so
the figures also show how each query scales.
"""

from __future__ import annotations

import asyncio
import os
import random
import tracemalloc
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import msgspec

from bench.context import Bench
from bench.results import Figure, Goal, under
from bench.stats import Summary, interleaved, sample_sync
from flare_adapters.server.config import init_workspace, load_config
from flare_adapters.server.rows import reply_pieces
from flare_adapters.server.runtime import ServerRuntime
from flare_adapters.server.settings import ServerSettings
from flare_core import ListJobs, Ok
from flare_core.principal import Principal

__all__ = ["fill", "measure_listing"]

T = TypeVar("T")

_TOP = "\U0010ffff"  # the highest code point: ``x >= p AND x < p || _TOP`` is a prefix range
_LIMIT = 20
_STUDY = "default"
_STREAM_PEAK_MIB = 4.0
"""The bound on a streamed full listing's peak Python memory at every size: a store page of
rows (500, about 0.6 MiB here) and a body piece, never the study."""


def fill(runtime: ServerRuntime, start: int, stop: int, rng: random.Random) -> str:
    """Add jobs ``start..stop`` (FINISHED, in one transaction); returns the last id."""
    base = 1_700_000_000.0
    job_id = ""
    with runtime.db.transaction():
        for i in range(start, stop):
            job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            runtime.jobs.add(
                {
                    "job_id": job_id,
                    "name": f"job-{i % 97}",
                    "study": _STUDY,
                    "status": "FINISHED:COMPLETED",
                    "submit_time": base + i,
                    "submit_time_iso": "",
                    "duration": "N/A",
                    "submitter_name": "admin@nvidia.com",
                    "submitter_org": "nvidia",
                    "submitter_role": "project_admin",
                }
            )
    return job_id


def measure_listing(bench: Bench) -> list[Figure]:
    root = os.path.join(bench.tmp, "listing")
    config, api_key = init_workspace(root, engine="simulated")
    loop = asyncio.new_event_loop()  # the runtime's clock needs one; no timer fires here
    runtime = ServerRuntime(root, load_config(root), loop)
    figures: list[Figure] = []
    try:
        admin = config.users[0].name
        principal = runtime.service.authenticate(
            runtime.service.login(admin, api_key, _STUDY).token
        )
        decode = msgspec.json.Decoder(dict[str, Any])
        rng = random.Random(12)
        filled = 0
        for size in bench.plan.listing_sizes:
            last = fill(runtime, filled, size, rng)
            filled = size
            prefix = last[:6]  # six hex digits: one job at 100k, a handful at 1k
            queries: dict[str, tuple[ListJobs, str, list[object]]] = {
                "id prefix": (
                    ListJobs(id_prefix=prefix, limit=_LIMIT),
                    # ``+study``, ``+submit_time``: neither the study index nor the time order
                    # may be used, so SQLite takes the primary-key range and sorts the few
                    # matches (left to itself it walks the whole study's time index).
                    "SELECT meta FROM jobs WHERE +study = ? AND job_id >= ? AND job_id < ?"
                    " ORDER BY +submit_time DESC, rowid DESC LIMIT ?",
                    [_STUDY, prefix, prefix + _TOP, _LIMIT],
                ),
                "name prefix": (
                    ListJobs(name_prefix="job-4", limit=_LIMIT),
                    "SELECT meta FROM jobs WHERE study = ? AND name_lower >= ? AND name_lower < ?"
                    " ORDER BY submit_time DESC, rowid DESC LIMIT ?",
                    [_STUDY, "job-4", "job-4" + _TOP, _LIMIT],
                ),
                "limit=20": (
                    ListJobs(limit=_LIMIT),
                    "SELECT meta FROM jobs WHERE study = ?"
                    " ORDER BY submit_time DESC, rowid DESC LIMIT ?",
                    [_STUDY, _LIMIT],
                ),
            }
            for label, (command, sql, params) in queries.items():
                reply = runtime.service.handle(principal, command)
                assert isinstance(reply, Ok), reply

                def raw(sql: str = sql, params: list[object] = params) -> list[dict[str, Any]]:
                    with runtime.db.reading() as conn:
                        rows = conn.execute(sql, params).fetchall()
                    return [decode.decode(row[0]) for row in rows]

                handle = partial(runtime.service.handle, principal, command)
                with runtime.db.reading() as conn:
                    plan = [row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
                got = interleaved(
                    {"raw SQL": sample_sync(raw), "list_jobs": sample_sync(handle)},
                    rounds=bench.plan.rounds,
                    number=bench.plan.listing_calls,
                )
                figures.append(
                    _server_time(
                        f"list_jobs {label}, {size:,} jobs",
                        got,
                        # The bound is stated at 100,000 jobs; smaller sizes show growth.
                        goal=under(5.0, "<= 5 ms") if size >= 100_000 else None,
                        extra={"jobs": size, "rows": len(reply.value), "raw_plan": plan},
                    )
                )
            figures += _full_listing(bench, runtime, principal, decode, size)
    finally:
        runtime.close()
        loop.close()
    return figures


def _full_listing(
    bench: Bench,
    runtime: ServerRuntime,
    principal: Principal,
    decode: msgspec.json.Decoder[dict[str, Any]],
    size: int,
) -> list[Figure]:
    """The full detailed listing of the study as the HTTP server serves it: server time and
    the Python memory it holds.

    Served means ``handle`` and then the body's encoding (``reply_pieces``, in pieces of the
    server's chunk size): a listing longer than a store page is a ``Rows`` reply that reads
    its pages as the pieces are made. The memory figure is ``tracemalloc``'s peak during
    that; its baseline is the same peak for the raw statement's rows, fetched and decoded,
    which grows with the study as a listing built whole did.
    """
    command = ListJobs(detailed=True)
    sql = "SELECT meta FROM jobs WHERE study = ? ORDER BY submit_time, rowid"
    piece_bytes = ServerSettings().chunk_bytes

    def raw() -> list[dict[str, Any]]:
        with runtime.db.reading() as conn:
            rows = conn.execute(sql, [_STUDY]).fetchall()
        return [decode.decode(row[0]) for row in rows]

    def served() -> int:
        reply = runtime.service.handle(principal, command)
        assert isinstance(reply, Ok), reply
        return sum(len(piece) for piece in reply_pieces(reply.value, piece_bytes))

    # A 100k-job listing takes a good part of a second: a few calls per round are enough.
    number = max(1, bench.plan.listing_calls // 10)
    got = interleaved(
        {"raw SQL": sample_sync(raw), "list_jobs": sample_sync(served)},
        rounds=bench.plan.rounds,
        number=number,
        warmup=1,
    )
    body, peak = _peak_memory(served)
    _, raw_peak = _peak_memory(raw)
    rows = runtime.jobs.count(_STUDY)
    name = f"list_jobs detailed, all {size:,} jobs"
    extra = {"jobs": size, "rows": rows, "body_bytes": body}
    return [
        _server_time(name, got, goal=None, extra=extra),
        Figure(
            group="listing",
            name=f"{name}: peak Python memory",
            value=peak / 2**20,
            unit="MiB",
            baseline="raw SQL rows, decoded",
            baseline_value=raw_peak / 2**20,
            ratio=peak / max(raw_peak, 1),
            # Streaming holds a store page and a body piece, whatever the study's size.
            goal=under(_STREAM_PEAK_MIB, f"<= {_STREAM_PEAK_MIB:g} MiB"),
            extra={**extra, "bytes_per_row": peak / max(rows, 1)},
        ),
    ]


def _server_time(
    name: str, got: dict[str, Summary], *, goal: Goal | None, extra: dict[str, Any]
) -> Figure:
    """The figure of ``got["list_jobs"]`` against ``got["raw SQL"]``, in ms."""
    mine, base = got["list_jobs"], got["raw SQL"]
    return Figure(
        group="listing",
        name=name,
        value=mine.median * 1e3,
        p99=mine.p99 * 1e3,
        unit="ms",
        baseline="raw indexed SQL",
        baseline_value=base.median * 1e3,
        ratio=mine.median / base.median,
        goal=goal,
        extra=extra,
    )


def _peak_memory(call: Callable[[], T]) -> tuple[T, int]:
    """``call()``'s value and the peak of Python allocations while it ran, bytes."""
    tracemalloc.start()
    try:
        value = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return value, peak
