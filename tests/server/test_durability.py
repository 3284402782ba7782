"""Crash safety: SIGKILL the server while submits are in flight, restart it, lose nothing.

The server runs as a subprocess (``flare-core serve``). Several clients submit jobs with submit
tokens concurrently; once some submits are acknowledged the process is killed with SIGKILL,
so other submits are cut off mid-flight. After a restart on the same workspace:

- every acknowledged job, its token record and the registered study are intact;
- jobs that were live (DISPATCHED/RUNNING) are ``FINISHED:ABNORMAL`` with a reason;
- re-submitting every token (acknowledged or not) never creates a second job for a token;
- no staged upload or temporary file is left behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from flare_adapters.server.config import init_workspace
from tests.server.server_kit import Api, hello_zip

TOKENS = [f"crash-{n:02d}" for n in range(40)]
ACKS_BEFORE_KILL = 12
WORKERS = 4


@contextmanager
def server_process(root: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run ``flare-core serve`` on a free port; yields the process and its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "flare_adapters.cli", "serve", str(root), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        engine = process.stdout.readline()  # bounded: the process prints these or dies
        assert engine.startswith("engine: simulated"), f"server did not start: {engine!r}"
        line = process.stdout.readline()
        assert line.startswith("serving on "), f"server did not start: {line!r}"
        yield process, line.split()[-1]
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


async def _submit_until_killed(
    url: str, key: str, process: subprocess.Popen[str]
) -> dict[str, str]:
    acknowledged: dict[str, str] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for token in TOKENS:
        queue.put_nowait(token)
    async with aiohttp.ClientSession(url) as http:
        api = Api(http)
        await api.login("admin@nvidia.com", key)
        await api.ok(
            "POST", "/v1/studies", json_body={"study": "durable", "site_orgs": ["nvidia:site-1"]}
        )

        async def worker() -> None:
            while not queue.empty():
                token = queue.get_nowait()
                try:
                    job = await api.submit(hello_zip(token), folder=token, token=token)
                except (aiohttp.ClientError, AssertionError, OSError):
                    return  # the server died under this request: not acknowledged
                acknowledged[token] = job
                if len(acknowledged) == ACKS_BEFORE_KILL:
                    process.send_signal(signal.SIGKILL)

        await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return acknowledged


async def _check_after_restart(url: str, key: str, acknowledged: dict[str, str]) -> None:
    async with aiohttp.ClientSession(url) as http:
        api = Api(http)
        await api.login("admin@nvidia.com", key)
        assert "durable" in (await api.ok("GET", "/v1/studies"))["studies"]
        jobs = {
            row["job_id"]: row
            for row in await api.ok("GET", "/v1/jobs", params={"detailed": "true"})
        }
        for token, job in acknowledged.items():
            assert job in jobs, f"acknowledged job of {token} was lost"
            assert await api.ok("GET", "/v1/jobs", params={"submit_token": token}) != []
            status = jobs[job]["status"]
            assert status in ("SUBMITTED", "FINISHED:ABNORMAL"), status
            if status == "FINISHED:ABNORMAL":
                assert jobs[job]["finish_reason"].startswith("the server stopped while the job was")
        # Every token, acknowledged or not, maps to exactly one job after a retry.
        replayed: dict[str, str] = {}
        for token in TOKENS:
            replayed[token] = await api.submit(hello_zip(token), folder=token, token=token)
        for token, job in acknowledged.items():
            assert replayed[token] == job
        assert len(set(replayed.values())) == len(TOKENS)
        rows = await api.ok("GET", "/v1/jobs")
        assert len(rows) == len(TOKENS)
        assert {row["job_id"] for row in rows} == set(replayed.values())


def test_sigkill_during_submits_loses_nothing_acknowledged(tmp_path: Path) -> None:
    _, key = init_workspace(str(tmp_path), scrypt_n=16, job_duration=600.0)
    with server_process(tmp_path) as (process, url):
        acknowledged = asyncio.run(_submit_until_killed(url, key, process))
        assert process.wait(timeout=30) == -signal.SIGKILL
    assert len(acknowledged) >= ACKS_BEFORE_KILL
    assert len(acknowledged) < len(TOKENS), "the kill came too late to cut submits off"
    with server_process(tmp_path) as (process, url):
        asyncio.run(_check_after_restart(url, key, acknowledged))
        process.terminate()
        assert process.wait(timeout=30) == 0
    blobs = tmp_path / "state" / "blobs"
    assert list((blobs / "tmp").iterdir()) == []
    assert (
        not (blobs / "data" / "uploads").exists()
        or list((blobs / "data" / "uploads").iterdir()) == []
    )


def test_restart_after_kill_recovers_running_jobs(tmp_path: Path) -> None:
    _, key = init_workspace(str(tmp_path), scrypt_n=16, job_duration=600.0)

    async def submit(url: str) -> str:
        async with aiohttp.ClientSession(url) as http:
            api = Api(http)
            await api.login("admin@nvidia.com", key)
            job = await api.submit(hello_zip())
            assert (await api.ok("GET", f"/v1/jobs/{job}"))["status"] == "RUNNING"
            return job

    async def inspect(url: str, job: str) -> None:
        async with aiohttp.ClientSession(url) as http:
            api = Api(http)
            await api.login("admin@nvidia.com", key)
            meta = await api.ok("GET", f"/v1/jobs/{job}")
            assert meta["status"] == "FINISHED:ABNORMAL"
            assert meta["finish_reason"] == "the server stopped while the job was RUNNING"
            logs = await api.ok("GET", f"/v1/jobs/{job}/logs")
            assert "the server stopped while the job was RUNNING" in logs["logs"]["server"]

    with server_process(tmp_path) as (process, url):
        job = asyncio.run(submit(url))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    with server_process(tmp_path) as (process, url):
        asyncio.run(inspect(url, job))
