"""Connect + login, the three reads on every transport, and 32 reads in flight.

Reads are interleaved in one comparison per read: raw aiohttp GET, HTTP sync and async, raw
websockets echo, WS sync and async, ``AdminService.handle`` and the memory transport sync
and async. Each raw baseline moves the bytes our server answers the same read with.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from bench.context import READ_ROUTES, Bench
from bench.results import Figure, at_least, at_most, under
from bench.stats import Sampler, interleaved, sample_async, sample_sync
from flare_core import CheckStatus, Command, GetJobMeta, ListJobs, Ok
from flare_ports import AsyncSessionSpec, SessionSpec, connect_async
from flare_testing import FakeFlare, JobFolders

__all__ = ["measure_concurrency", "measure_connect", "measure_reads"]

_FAKE_ADMIN = "admin@nvidia.com"
_HTTP_GOAL = at_most(1.5, "<= 1.5x raw")
_MEMORY_GOAL = at_most(3.0, "<= 3x handle")


def _sync_reads(session: SessionSpec, job_id: str) -> dict[str, Callable[[], object]]:
    return {
        "list_jobs": session.list_jobs,
        "get_job_meta": lambda: session.get_job_meta(job_id),
        "get_system_info": session.get_system_info,
    }


def _async_reads(
    session: AsyncSessionSpec, job_id: str
) -> dict[str, Callable[[], Awaitable[object]]]:
    return {
        "list_jobs": session.list_jobs,
        "get_job_meta": lambda: session.get_job_meta(job_id),
        "get_system_info": session.get_system_info,
    }


def _memory_commands(job_id: str) -> dict[str, Command]:
    return {
        "list_jobs": ListJobs(),
        "get_job_meta": GetJobMeta(job_id=job_id),
        "get_system_info": CheckStatus(target_type="server"),
    }


async def _raw_get(client: aiohttp.ClientSession, path: str) -> bytes:
    async with client.get(path) as response:
        return await response.read()


async def _raw_echo(ws: ClientConnection, body: bytes) -> object:
    await ws.send(body)
    return await ws.recv()


def measure_reads(bench: Bench) -> list[Figure]:
    server = bench.server()
    assert bench.raw_http is not None
    assert bench.raw_ws is not None
    loop, plan = bench.loop, bench.plan
    figures: list[Figure] = []
    with (
        bench.session(server.http_url) as http,
        bench.session(server.ws_url) as ws,
        FakeFlare() as fake,
        fake.session() as memory,
    ):
        a_http = loop.run_until_complete(
            connect_async(server.http_url, user=server.user, api_key=server.api_key)
        )
        a_ws = loop.run_until_complete(
            connect_async(server.ws_url, user=server.user, api_key=server.api_key)
        )
        a_memory = fake.async_session()
        client = bench.raw_client()
        raw_ws = loop.run_until_complete(
            ws_connect(bench.raw_ws.url, max_size=None, compression=None)
        )
        try:
            memory_job = memory.submit_job(
                str(JobFolders(os.path.join(bench.tmp, "memory")).hello())
            )
            # The fake's users log in with their name as the key.
            grant = fake.service.login(_FAKE_ADMIN, _FAKE_ADMIN, "default")
            principal = fake.service.authenticate(grant.token)
            commands = _memory_commands(memory_job)
            for name in READ_ROUTES:
                command = commands[name]
                reply = fake.service.handle(principal, command)
                assert isinstance(reply, Ok), reply
                body = bench.bodies[name]
                candidates: dict[str, Sampler] = {
                    "raw aiohttp GET": sample_async(loop, partial(_raw_get, client, f"/r/{name}")),
                    "http sync": sample_sync(_sync_reads(http, bench.job_id)[name]),
                    "http async": sample_async(loop, _async_reads(a_http, bench.job_id)[name]),
                    "raw websockets echo": sample_async(loop, partial(_raw_echo, raw_ws, body)),
                    "ws sync": sample_sync(_sync_reads(ws, bench.job_id)[name]),
                    "ws async": sample_async(loop, _async_reads(a_ws, bench.job_id)[name]),
                    "AdminService.handle": sample_sync(
                        partial(fake.service.handle, principal, command)
                    ),
                    "memory sync": sample_sync(_sync_reads(memory, memory_job)[name]),
                    "memory async": sample_async(loop, _async_reads(a_memory, memory_job)[name]),
                }
                got = interleaved(candidates, rounds=plan.rounds, number=plan.number)
                for ours, base, goal in (
                    ("http sync", "raw aiohttp GET", _HTTP_GOAL),
                    ("http async", "raw aiohttp GET", _HTTP_GOAL),
                    ("ws sync", "raw websockets echo", _HTTP_GOAL),
                    ("ws async", "raw websockets echo", _HTTP_GOAL),
                    ("memory sync", "AdminService.handle", _MEMORY_GOAL),
                    ("memory async", "AdminService.handle", _MEMORY_GOAL),
                ):
                    mine, raw = got[ours], got[base]
                    figures.append(
                        Figure(
                            group="reads",
                            name=f"{name} {ours}",
                            value=mine.median * 1e3,
                            p99=mine.p99 * 1e3,
                            unit="ms",
                            baseline=base,
                            baseline_value=raw.median * 1e3,
                            ratio=mine.median / raw.median,
                            goal=goal,
                            extra={"samples": mine.n, "bytes": len(body)},
                        )
                    )
                if name == "get_job_meta":
                    bench.rtt = {
                        "http": got["http sync"].median,
                        "ws": got["ws sync"].median,
                        "raw http": got["raw aiohttp GET"].median,
                        "raw ws": got["raw websockets echo"].median,
                    }
        finally:
            loop.run_until_complete(raw_ws.close())
            loop.run_until_complete(client.close())
            for session in (a_http, a_ws, a_memory):
                loop.run_until_complete(session.aclose())
    return figures


def _timed_connect(open_one: Callable[[], Any], close_one: Callable[[Any], None]) -> Sampler:
    def run(number: int) -> list[float]:
        out = []
        for _ in range(number):
            start = time.perf_counter()
            session = open_one()
            out.append(time.perf_counter() - start)
            close_one(session)
        return out

    return run


def measure_connect(bench: Bench) -> list[Figure]:
    """``connect`` (TCP, login, session set-up) over HTTP and WS vs a raw first request."""
    server = bench.server()
    assert bench.raw_http is not None
    loop, raw_url = bench.loop, bench.raw_http.url

    async def raw_first_request() -> aiohttp.ClientSession:
        client = aiohttp.ClientSession(base_url=raw_url)
        await _raw_get(client, "/r/get_job_meta")
        return client

    candidates = {
        "raw aiohttp connect+GET": _timed_connect(
            lambda: loop.run_until_complete(raw_first_request()),
            lambda client: loop.run_until_complete(client.close()),
        ),
        "http": _timed_connect(lambda: bench.session(server.http_url), lambda s: s.close()),
        "ws": _timed_connect(lambda: bench.session(server.ws_url), lambda s: s.close()),
    }
    number = max(2, bench.plan.number // 4)  # each leaves a closed session on the server
    got = interleaved(candidates, rounds=bench.plan.rounds, number=number, warmup=1)
    raw = got["raw aiohttp connect+GET"]
    return [
        Figure(
            group="connect",
            name=f"connect + login {name}",
            value=got[name].median * 1e3,
            p99=got[name].p99 * 1e3,
            unit="ms",
            baseline="raw aiohttp connect+GET",
            baseline_value=raw.median * 1e3,
            ratio=got[name].median / raw.median,
            goal=under(10.0, "<= 10 ms"),
        )
        for name in ("http", "ws")
    ]


def measure_concurrency(bench: Bench) -> list[Figure]:
    """``concurrency`` get_job_meta in flight on one async session vs the raw clients."""
    server = bench.server()
    assert bench.raw_http is not None
    assert bench.raw_ws is not None
    loop, plan, width = bench.loop, bench.plan, bench.plan.concurrency
    body = bench.bodies["get_job_meta"]

    def batches(call: Callable[[], Awaitable[object]]) -> Sampler:
        async def batch(number: int) -> list[float]:
            out = []
            for _ in range(number):
                start = time.perf_counter()
                await asyncio.gather(*(call() for _ in range(width)))
                out.append((time.perf_counter() - start) / width)
            return out

        return lambda number: loop.run_until_complete(batch(number))

    a_http = loop.run_until_complete(
        connect_async(server.http_url, user=server.user, api_key=server.api_key)
    )
    a_ws = loop.run_until_complete(
        connect_async(server.ws_url, user=server.user, api_key=server.api_key)
    )
    client = bench.raw_client()
    raw_ws = loop.run_until_complete(ws_connect(bench.raw_ws.url, max_size=None, compression=None))

    async def raw_ws_batch() -> None:
        # One connection, ``width`` requests pipelined: websockets allows one reader at a time.
        for _ in range(width):
            await raw_ws.send(body)
        for _ in range(width):
            await raw_ws.recv()

    def raw_ws_sampler(number: int) -> list[float]:
        async def run() -> list[float]:
            out = []
            for _ in range(number):
                start = time.perf_counter()
                await raw_ws_batch()
                out.append((time.perf_counter() - start) / width)
            return out

        return loop.run_until_complete(run())

    try:
        got = interleaved(
            {
                "raw aiohttp": batches(lambda: _raw_get(client, "/r/get_job_meta")),
                "http async": batches(lambda: a_http.get_job_meta(bench.job_id)),
                "raw websockets": raw_ws_sampler,
                "ws async": batches(lambda: a_ws.get_job_meta(bench.job_id)),
            },
            rounds=plan.rounds,
            number=plan.batches,
            warmup=1,
        )
    finally:
        loop.run_until_complete(raw_ws.close())
        loop.run_until_complete(client.close())
        for session in (a_http, a_ws):
            loop.run_until_complete(session.aclose())
    figures = []
    for ours, base in (("http async", "raw aiohttp"), ("ws async", "raw websockets")):
        mine, raw = got[ours], got[base]
        figures.append(
            Figure(
                group="concurrency",
                name=f"{width} get_job_meta in flight, {ours}",
                value=1.0 / mine.median,
                unit="calls/s",
                baseline=f"{base}, {width} in flight",
                baseline_value=1.0 / raw.median,
                ratio=raw.median / mine.median,
                goal=at_least(0.7, ">= 0.7x raw"),
            )
        )
    return figures
