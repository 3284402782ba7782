"""Many idle WebSocket sessions on one server: memory per session, and whether an active
session slows down beside them.

The idle sessions are async WS sessions on the bench loop (logged in, then left alone); the
active one is a sync WS session timing ``get_job_meta``. Rounds alternate "alone" and "beside
N idle" so both see the same noise; memory is the server's RSS growth per idle session.
"""

from __future__ import annotations

import asyncio
import time

from bench.context import Bench
from bench.processes import rss_kib
from bench.results import Figure, at_most
from bench.stats import sample_sync, summarise
from flare_ports import AsyncSessionSpec, connect_async

__all__ = ["measure_idle_sessions"]


def measure_idle_sessions(bench: Bench) -> list[Figure]:
    server, loop, count = bench.server(), bench.loop, bench.plan.idle_sessions

    async def open_idle() -> list[AsyncSessionSpec]:
        sessions: list[AsyncSessionSpec] = []
        for _ in range(count):  # one by one, as dashboards would connect, not a login storm
            sessions.append(
                await connect_async(server.ws_url, user=server.user, api_key=server.api_key)
            )
        return sessions

    async def close_idle(sessions: list[AsyncSessionSpec]) -> None:
        await asyncio.gather(*(session.aclose() for session in sessions))

    alone: list[float] = []
    beside: list[float] = []
    per_session_kib: list[float] = []
    with bench.session(server.ws_url) as active:
        read = sample_sync(lambda: active.get_job_meta(bench.job_id))
        read(5)  # warm-up
        for _ in range(max(1, min(bench.plan.rounds, 3))):
            alone.extend(read(bench.plan.number))
            time.sleep(0.2)  # let the server settle (freed buffers, finished logouts)
            before = rss_kib(server.pid)
            idle = loop.run_until_complete(open_idle())
            try:
                time.sleep(0.2)
                per_session_kib.append((rss_kib(server.pid) - before) / count)
                beside.extend(read(bench.plan.number))
            finally:
                loop.run_until_complete(close_idle(idle))
    solo, crowded = summarise(alone), summarise(beside)
    return [
        Figure(
            group="sessions",
            name=f"{count} idle WS sessions: server memory per session",
            value=summarise(per_session_kib).median,
            unit="KiB/session",
        ),
        Figure(
            group="sessions",
            name=f"get_job_meta ws sync beside {count} idle sessions",
            value=crowded.median * 1e3,
            p99=crowded.p99 * 1e3,
            unit="ms",
            baseline="same session alone",
            baseline_value=solo.median * 1e3,
            ratio=crowded.median / solo.median,
            goal=at_most(1.5, "<= 1.5x alone"),
        ),
    ]
