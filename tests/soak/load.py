"""Load: many WebSocket and HTTP sessions doing mixed reads, submits and waits at once.

Every session is an ``AsyncSession`` on one event loop (the client side stays one process);
each loops over a weighted mix - ``list_jobs``, ``get_job_meta``, ``submit_job`` and
``wait_for_job`` of its last submit - for the given time. Any exception is an error.
Reported: read latency p50/p99 (waits last as long as the job: not a latency), submit p99,
calls per second, and the server's peak RSS.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import msgspec

from flare_adapters.http.client import http_transport
from flare_adapters.session import AsyncSession
from flare_adapters.ws.client import ws_transport
from flare_testing.job_folders import JobFolders
from tests.soak.hostile import percentile
from tests.soak.served import ServerProcess, make_workspace

__all__ = ["LoadResult", "run_load"]

RSS_BOUND_MIB = 1024.0
"""The server's peak RSS must stay under this (it was 2 GiB after one hostile ``cat``)."""


class LoadResult(msgspec.Struct, frozen=True, kw_only=True):
    """What the load phase measured."""

    ws_sessions: int
    http_sessions: int
    seconds: float
    calls: int
    errors: int
    p50_ms: float
    p99_ms: float
    submit_p99_ms: float
    calls_per_second: float
    peak_rss_mib: float
    first_errors: list[str]

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.peak_rss_mib < RSS_BOUND_MIB


def run_load(
    workdir: str, *, ws_sessions: int = 200, http_sessions: int = 50, seconds: float = 60.0
) -> LoadResult:
    """Run the phase (see the module docstring)."""
    root = str(Path(workdir) / "load")
    keys = make_workspace(root, job_duration=0.2)
    server = ServerProcess(root)
    server.start()
    try:
        result = asyncio.run(
            _drive(
                server, keys["admin@nvidia.com"], Path(workdir), ws_sessions, http_sessions, seconds
            )
        )
        rss = server.peak_rss_mib()
    finally:
        server.stop()
    latencies, errors, calls, took = result
    return LoadResult(
        ws_sessions=ws_sessions,
        http_sessions=http_sessions,
        seconds=took,
        calls=calls,
        errors=len(errors),
        p50_ms=percentile(latencies["read"], 0.5),
        p99_ms=percentile(latencies["read"], 0.99),
        submit_p99_ms=percentile(latencies["submit"], 0.99),
        calls_per_second=calls / took if took else 0.0,
        peak_rss_mib=rss,
        first_errors=errors[:5],
    )


async def _drive(
    server: ServerProcess, key: str, workdir: Path, ws_n: int, http_n: int, seconds: float
) -> tuple[dict[str, list[float]], list[str], int, float]:
    latencies: dict[str, list[float]] = {"read": [], "submit": [], "wait": []}
    errors: list[str] = []
    folder = str(JobFolders(workdir / "load-jobs").hello(name="load"))
    ws_url = server.url.replace("http://", "ws://") + "/v1/ws"

    async def open_one(scheme: str, index: int) -> AsyncSession:
        factory = ws_transport if scheme == "ws" else http_transport
        return await factory.connect_async(
            ws_url if scheme == "ws" else server.url,
            user="admin@nvidia.com",
            api_key=key,
            study="default",
            timeout=60.0,
            upload_dir=str(workdir / f"load-up-{index}"),
            max_poll_interval=0.2,
        )

    sessions = await asyncio.gather(
        *(open_one("ws", i) for i in range(ws_n)),
        *(open_one("http", ws_n + i) for i in range(http_n)),
    )
    seed_job = await sessions[0].submit_job(folder)
    stop_at = time.monotonic() + seconds

    async def worker(session: AsyncSession, rng: random.Random) -> None:
        last = seed_job
        while time.monotonic() < stop_at:
            roll = rng.random()
            started = time.perf_counter()
            kind = "read" if roll < 0.85 else "submit" if roll < 0.95 else "wait"
            try:
                if roll < 0.45:
                    await session.list_jobs(limit=10)
                elif roll < 0.85:
                    await session.get_job_meta(last)
                elif roll < 0.95:
                    last = await session.submit_job(folder)
                else:
                    await session.wait_for_job(last, timeout=30.0, poll_interval=0.5)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            latencies[kind].append((time.perf_counter() - started) * 1000)

    begun = time.monotonic()
    try:
        await asyncio.gather(*(worker(s, random.Random(i)) for i, s in enumerate(sessions)))
    finally:
        took = time.monotonic() - begun
        await asyncio.gather(*(s.aclose() for s in sessions), return_exceptions=True)
    return latencies, errors, sum(map(len, latencies.values())) + len(errors), took
