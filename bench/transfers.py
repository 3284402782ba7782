"""Transfers: upload (``submit_job`` of a folder holding one large random file) and download
(``download_job_result`` of that job once aborted: the result carries the job folder, so the
same bytes come back), over HTTP and WS, against raw aiohttp streaming of the same file to and
from the raw app.

Throughput is bytes of the payload per second. RSS growth is each side's peak resident set
during the transfer (``VmHWM``, reset first with ``/proc/<pid>/clear_refs``) minus its RSS
before: the client is this process, the server is ``flare-core serve``'s process.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from functools import partial

import aiohttp

from bench.context import Bench
from bench.processes import peak_rss_kib, reset_peak_rss, rss_kib
from bench.results import Figure, at_least, under
from bench.stats import summarise
from flare_ports import SessionSpec, connect

__all__ = ["measure_transfers"]

_CHUNK = 256 * 1024
_RSS_LIMIT_MIB = 32.0


class _Rss:
    """Peak RSS growth of a few processes around one operation, MiB."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before: dict[str, int] = {}
        self.exact = True

    def __enter__(self) -> _Rss:
        # Without a reset (clear_refs refused) the peak is the process's lifetime peak: the
        # growth is then over-stated, never under-stated. ``exact`` says which it was.
        for pid in self.pids.values():
            self.exact = reset_peak_rss(pid) and self.exact
        self.before = {name: rss_kib(pid) for name, pid in self.pids.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        self.growth = {
            name: max(0, peak_rss_kib(pid) - self.before[name]) / 1024
            for name, pid in self.pids.items()
        }


def measure_transfers(bench: Bench) -> list[Figure]:
    server = bench.server()
    assert bench.raw_http is not None
    size = os.path.getsize(bench.transfer_file)
    downloads = os.path.join(bench.tmp, "downloads")
    os.makedirs(downloads, exist_ok=True)
    folder = bench.folders("transfer").hello(name="bench-transfer")
    os.link(bench.transfer_file, folder / "app" / "payload.bin")  # no copy in memory
    pids = {"client": os.getpid(), "server": server.pid}
    raw_pids = {"client": os.getpid(), "server": bench.raw_http.pid}
    sessions = {
        name: connect(url, user=server.user, api_key=server.api_key, download_dir=downloads)
        for name, url in (("http", server.http_url), ("ws", server.ws_url))
    }
    times: dict[str, list[float]] = {}
    growth: dict[str, dict[str, float]] = {}
    exact: list[bool] = []

    def run(label: str, watched: dict[str, int], call: Callable[[], object]) -> object:
        with _Rss(watched) as rss:
            start = time.perf_counter()
            value = call()
            elapsed = time.perf_counter() - start
        times.setdefault(label, []).append(elapsed)
        exact.append(rss.exact)
        for side, mib in rss.growth.items():
            growth.setdefault(label, {})[side] = max(growth.get(label, {}).get(side, 0.0), mib)
        return value

    try:
        for _ in range(max(1, min(bench.plan.rounds, 3))):
            run("upload raw", raw_pids, lambda: bench.loop.run_until_complete(_raw_upload(bench)))
            run(
                "download raw",
                raw_pids,
                lambda: bench.loop.run_until_complete(_raw_download(bench, downloads)),
            )
            for name, session in sessions.items():
                job = run(f"upload {name}", pids, partial(session.submit_job, str(folder)))
                assert isinstance(job, str)
                _finish(session, job)
                got = run(f"download {name}", pids, partial(session.download_job_result, job))
                _check_download(str(got), size)
                shutil.rmtree(str(got), ignore_errors=True)
                session.delete_job(job)
    finally:
        for session in sessions.values():
            session.close()
    figures = []
    mib = size / (1 << 20)
    for direction in ("upload", "download"):
        raw = summarise(times[f"{direction} raw"]).median
        for name in sessions:
            mine = summarise(times[f"{direction} {name}"]).median
            figures.append(
                Figure(
                    group="transfers",
                    name=f"{direction} {mib:g} MiB {name}",
                    value=mib / mine,
                    unit="MiB/s",
                    baseline="raw aiohttp streaming",
                    baseline_value=mib / raw,
                    ratio=raw / mine,
                    goal=at_least(0.7, ">= 0.7x raw"),
                    extra={
                        "bytes": size,
                        "seconds": mine,
                        "raw_rss_mib": growth[f"{direction} raw"],
                    },
                )
            )
            for side in ("client", "server"):
                figures.append(
                    Figure(
                        group="transfers",
                        name=f"{direction} {mib:g} MiB {name}: {side} RSS growth",
                        value=growth[f"{direction} {name}"][side],
                        unit="MiB",
                        baseline=f"raw {side}",
                        baseline_value=growth[f"{direction} raw"][side],
                        goal=under(_RSS_LIMIT_MIB, f"<= {_RSS_LIMIT_MIB:g} MiB"),
                        extra={"peak_reset": all(exact)},
                    )
                )
    return figures


async def _raw_upload(bench: Bench) -> None:
    assert bench.raw_http is not None

    async def body() -> object:
        with open(bench.transfer_file, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    async with (
        aiohttp.ClientSession(base_url=bench.raw_http.url) as client,
        client.post("/upload", data=body()) as response,
    ):
        assert (await response.json())["size"] == os.path.getsize(bench.transfer_file)


async def _raw_download(bench: Bench, downloads: str) -> None:
    assert bench.raw_http is not None
    target = os.path.join(downloads, "raw.bin")
    async with (
        aiohttp.ClientSession(base_url=bench.raw_http.url) as client,
        client.get("/file") as response,
    ):
        with open(target, "wb") as out:
            async for chunk in response.content.iter_chunked(_CHUNK):
                out.write(chunk)
    os.unlink(target)


def _check_download(path: str, size: int) -> None:
    """The download carried the payload (not some small file), or the figure means nothing."""
    total = 0
    for parent, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(parent, f)) for f in files)
    if total < size:
        raise RuntimeError(f"download_job_result brought {total} bytes, not the {size}")


def _finish(session: SessionSpec, job_id: str) -> None:
    """Abort the (hour-long simulated) job and wait until it is terminal: a result exists."""
    session.abort_job(job_id)
    for _ in range(500):
        if str(session.get_job_meta(job_id).get("status", "")).startswith("FINISHED"):
            return
        time.sleep(0.01)
    raise RuntimeError(f"job {job_id} did not finish after its abort")
