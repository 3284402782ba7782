"""Benchmarks: each figure is printed next to a raw baseline measured in the same run.

Run with ``make bench`` (or ``python -m bench [--jobs N]``). Ratios, not absolute times, are
the goals: machines differ, the ratio to the raw baseline on the same machine does not.

1. Session overhead: ``Session.get_job_meta`` over the memory transport (flow, retry
   sub-flow, driver, transport, authentication) vs ``AdminService.handle`` called directly.
2. Listing at scale: ``list_jobs(limit=10)`` through the service over SQLite with N jobs vs
   the one raw SQL query that reads the same ten rows.
3. Token hashing: ``content_hash`` of a job archive vs plain ``hashlib.sha256`` of its bytes.
4. Network round trip: ``get_job_meta`` over HTTP and over WebSocket against the embedded
   server vs a raw aiohttp GET of the same route.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from typing import Any

import msgspec

from flare_adapters.memory.blobs import zip_view
from flare_adapters.sqlite.db import Database
from flare_adapters.sqlite.stores import SqliteJobStore
from flare_core import GetJobMeta, ListJobs, Ok, Principal
from flare_core.listing import select_jobs
from flare_core.tokens import content_hash
from flare_testing import FakeFlare, JobFolders


def _best(fn: Callable[[], object], repeat: int, number: int) -> float:
    """Best per-call seconds over ``repeat`` rounds of ``number`` calls."""
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number)
    return min(rounds)


def _row(name: str, ours: float, raw: float) -> None:
    print(f"  {name:<44} {ours * 1e6:10.1f} us  raw {raw * 1e6:9.1f} us  ratio {ours / raw:6.2f}x")


def bench_session_overhead(tmp: str) -> None:
    print("1. session overhead (memory transport)")
    with FakeFlare() as fake, fake.session() as session:
        job_id = session.submit_job(str(JobFolders(os.path.join(tmp, "session-jobs")).hello()))
        grant = fake.service.login("admin@nvidia.com", "admin@nvidia.com", "default")
        principal = fake.service.authenticate(grant.token)
        command = GetJobMeta(job_id=job_id)
        assert isinstance(fake.service.handle(principal, command), Ok)
        raw = _best(lambda: fake.service.handle(principal, command), 5, 2000)
        ours = _best(lambda: session.get_job_meta(job_id), 5, 2000)
        _row("get_job_meta: Session vs AdminService.handle", ours, raw)


def _fill(store: SqliteJobStore, db: Database, jobs: int) -> None:
    base = 1_700_000_000.0
    with db.transaction():
        for i in range(jobs):
            store.add(
                {
                    "job_id": str(uuid.UUID(int=i, version=4)),
                    "name": f"job-{i % 97}",
                    "study": "default" if i % 10 else "other",
                    "status": "FINISHED:COMPLETED",
                    "submit_time": base + i,
                    "submit_time_iso": "",
                    "duration": "N/A",
                }
            )


def bench_listing(tmp: str, jobs: int) -> None:
    print(f"2. list_jobs(limit=10) over SQLite with {jobs} jobs")
    db = Database(os.path.join(tmp, "bench.sqlite3"))
    store = SqliteJobStore(db)
    _fill(store, db, jobs)
    command = ListJobs(limit=10)
    principal = Principal(name="admin@nvidia.com", org="nvidia", role="project_admin")

    def ours() -> list[dict[str, Any]]:
        candidates = store.query(study="default", newest=command.limit)
        return select_jobs(
            candidates, command, study="default", caller_name=principal.name, now=0.0
        )

    decode = msgspec.json.Decoder(dict)

    def raw() -> list[dict[str, Any]]:
        with db.reading() as conn:
            rows = conn.execute(
                "SELECT meta FROM jobs WHERE study = ? ORDER BY submit_time DESC LIMIT 10",
                ("default",),
            ).fetchall()
        return [decode.decode(r[0]) for r in rows]

    assert len(ours()) == 10 == len(raw())
    _row("list newest 10 vs raw indexed SELECT", _best(ours, 5, 50), _best(raw, 5, 50))
    db.close()


def bench_hash(tmp: str) -> None:
    print("3. submit-token content hash")
    buffer = io.BytesIO()
    payload = os.urandom(256 * 1024)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(40):
            archive.writestr(f"job/app/custom/file{i}.bin", payload)
    data = buffer.getvalue()
    view = zip_view(data)
    ours = _best(lambda: content_hash(view), 3, 3)
    raw = _best(lambda: hashlib.sha256(data).hexdigest(), 3, 3)
    _row("content_hash (10 MiB, 40 files) vs sha256", ours, raw)


def bench_network(tmp: str) -> None:
    print("4. network round trip (embedded server on loopback)")
    try:
        import aiohttp

        from flare_ports import connect
        from flare_testing import serve
    except ImportError as exc:  # the http/ws extras are not installed
        print(f"  skipped: {exc}")
        return
    with serve() as system:
        kwargs = {"user": system.admin_user, "api_key": system.admin_key}
        with connect(system.http_url, **kwargs) as session:
            job_id = session.submit_job(str(JobFolders(os.path.join(tmp, "network-jobs")).hello()))
            http = _best(lambda: session.get_job_meta(job_id), 5, 200)
        with connect(system.ws_url, **kwargs) as session:
            ws = _best(lambda: session.get_job_meta(job_id), 5, 200)

        async def raw_round_trips() -> float:
            async with aiohttp.ClientSession(base_url=system.http_url) as client:
                async with client.post(
                    "/v1/sessions",
                    json={
                        "user": system.admin_user,
                        "api_key": system.admin_key,
                        "study": "default",
                    },
                ) as response:
                    token = (await response.json())["token"]
                headers = {"Authorization": f"Bearer {token}"}
                rounds = []
                for _ in range(5):
                    start = time.perf_counter()
                    for _ in range(200):
                        async with client.get(f"/v1/jobs/{job_id}", headers=headers) as response:
                            await response.read()
                    rounds.append((time.perf_counter() - start) / 200)
                return min(rounds)

        raw = asyncio.run(raw_round_trips())
        _row("get_job_meta over http:// vs raw aiohttp GET", http, raw)
        _row("get_job_meta over ws:// vs raw aiohttp GET", ws, raw)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs in the listing bench")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_session_overhead(tmp)
        bench_listing(tmp, args.jobs)
        bench_hash(tmp)
        bench_network(tmp)


if __name__ == "__main__":
    main()
