"""Fairness: while one user runs the most expensive request each route allows, another user's
read stays fast (p99 of ``list_jobs`` latency). This is the general check behind the shell
fixes: a large file, a costly pattern or a long listing must not stall anyone else.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from pathlib import Path

import msgspec

from flare_adapters.http.client import http_transport
from flare_testing.job_folders import JobFolders
from tests.soak.client import Raw, login
from tests.soak.hostile import _prepare_workspace, percentile
from tests.soak.served import ServerProcess, make_workspace

__all__ = ["FairnessResult", "run_fairness"]

P99_GOAL_MS = 50.0

EXPENSIVE: list[tuple[str, str]] = [
    ("GET", "/v1/sites/server/shell/cat?" + urllib.parse.urlencode({"path": "big.log"})),
    (
        "GET",
        "/v1/sites/server/shell/grep?"
        + urllib.parse.urlencode({"path": "big.log", "pattern": "a.*b"}),
    ),
    (
        "GET",
        "/v1/sites/server/shell/grep?"
        + urllib.parse.urlencode({"path": "bin.txt", "pattern": "[a-z]*x" * 146}),
    ),
    (
        "GET",
        "/v1/sites/server/shell/tail?"
        + urllib.parse.urlencode({"path": "big.log", "options": "-n 100000"}),
    ),
    ("GET", "/v1/sites/server/shell/ls?" + urllib.parse.urlencode({"options": "-laR"})),
    ("GET", "/v1/jobs?detailed=true"),
]
"""The costliest request of each kind one user may send (shell reads at their bounds, the full
detailed listing)."""


class FairnessResult(msgspec.Struct, frozen=True, kw_only=True):
    """The other user's read latencies while the expensive requests ran."""

    expensive_requests: int
    reads: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def ok(self) -> bool:
        return self.p99_ms < P99_GOAL_MS


def run_fairness(workdir: str, *, seconds: float = 20.0, jobs: int = 200) -> FairnessResult:
    """Run the phase (see the module docstring)."""
    root = str(Path(workdir) / "fairness")
    keys = make_workspace(root, job_duration=0.01)
    _prepare_workspace(root)
    server = ServerProcess(root)
    server.start()
    raw = Raw(server.port, timeout=120.0)
    try:
        folders = JobFolders(Path(workdir) / "fairness-jobs")
        with http_transport.connect(
            server.url, user="admin@nvidia.com", api_key=keys["admin@nvidia.com"], study="default"
        ) as admin:
            for n in range(jobs):
                admin.submit_job(str(folders.hello(name=f"fair-{n}")))
        heavy = login(raw, "admin@nvidia.com", keys["admin@nvidia.com"])
        reader = login(raw, "lead@nvidia.com", keys["lead@nvidia.com"])
        stop = threading.Event()
        sent = 0

        def hammer() -> None:
            nonlocal sent
            while not stop.is_set():
                for method, path in EXPENSIVE:
                    if stop.is_set():
                        return
                    # Not decoded: the measuring thread shares this process's GIL.
                    raw.request(method, path, None, {"Authorization": f"Bearer {heavy}"})
                    sent += 1

        threads = [threading.Thread(target=hammer) for _ in range(2)]
        for thread in threads:
            thread.start()
        latencies: list[float] = []
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                status, _, took = raw.call("GET", "/v1/jobs?limit=10", reader)
                assert status == 200, status
                latencies.append(took * 1000)
                time.sleep(0.01)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    finally:
        server.stop()
    return FairnessResult(
        expensive_requests=sent,
        reads=len(latencies),
        p50_ms=percentile(latencies, 0.5),
        p99_ms=percentile(latencies, 0.99),
        max_ms=max(latencies, default=0.0),
    )
