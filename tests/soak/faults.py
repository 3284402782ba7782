"""Faults: submits through a faulty network and a server that is SIGKILLed and restarted.

Sessions (HTTP and WebSocket, half with user submit tokens, half without) submit uniquely
named jobs through the loopback proxy while a fault thread drops requests, loses replies,
delays data and cuts connections at random, and the server process is killed with SIGKILL at
random moments and restarted on the same port. Afterwards the server's jobs are compared
with the acknowledged submissions:

- lost: an acknowledged job id the server does not know;
- duplicated: one submit (one job name) that became more than one job;
- left running: jobs still DISPATCHED/RUNNING once the load stopped and jobs had time to end
  (recovery moves those a crash interrupted to ``FINISHED:ABNORMAL``).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path

import msgspec

from flare_adapters.http.client import http_transport
from flare_adapters.session import Session
from flare_adapters.ws.client import ws_transport
from flare_core.flows import RetryPolicy
from flare_testing.job_folders import JobFolders
from tests.soak.served import ServerProcess, make_workspace
from tests.transports.proxy import LoopbackProxy

__all__ = ["FaultResult", "run_faults"]

RETRY = RetryPolicy(attempts=12, initial_delay=0.05, max_delay=0.5, deadline=30.0)
"""Long enough to ride out a restart (a submit carries a token: retrying it is safe)."""

_LIVE = ("DISPATCHED", "RUNNING")


class FaultResult(msgspec.Struct, frozen=True, kw_only=True):
    """What the fault phase saw."""

    submits: int
    acknowledged: int
    failed: int
    network_faults: int
    kills: int
    lost: int
    duplicated: int
    left_running: int

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.left_running == 0


def _session(scheme: str, url: str, key: str, upload_dir: str) -> Session:
    factory = http_transport if scheme == "http" else ws_transport
    return factory.connect(
        url,
        user="admin@nvidia.com",
        api_key=key,
        study="default",
        retry=RETRY,
        timeout=15.0,
        upload_dir=upload_dir,
    )


def run_faults(
    workdir: str,
    *,
    submits: int = 1000,
    sessions: int = 8,
    kills: int = 20,
    seed: int = 10,
) -> FaultResult:
    """Run the phase (see the module docstring)."""
    rng = random.Random(seed)
    root = str(Path(workdir) / "faults")
    keys = make_workspace(root, job_duration=0.02)
    key = keys["admin@nvidia.com"]
    server = ServerProcess(root)
    server.start()
    proxy = LoopbackProxy(server.port)
    folders = JobFolders(Path(workdir) / "fault-jobs")
    acknowledged: dict[str, str] = {}  # job name -> job id
    failures: list[str] = []
    lock = threading.Lock()
    done = threading.Event()
    counter = iter(range(submits))
    faults = 0

    def submitter(index: int) -> None:
        scheme = "http" if index % 2 == 0 else "ws"
        upload_dir = str(Path(workdir) / f"uploads-{index}")
        session = _session(scheme, proxy.url(scheme), key, upload_dir)
        try:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                name = f"soak-{n:05d}"
                token = f"tok-{n:05d}" if n % 2 == 0 else None
                try:
                    job_id = session.submit_job(str(folders.hello(name=name)), token)
                except Exception as exc:  # a submit that exhausted its retries: not acknowledged
                    with lock:
                        failures.append(f"{name}: {type(exc).__name__}")
                    continue
                with lock:
                    acknowledged[name] = job_id
        finally:
            session.close()

    def injector() -> None:
        nonlocal faults
        while not done.wait(rng.uniform(0.02, 0.1)):
            kind = rng.choice(("drop", "lose", "cut", "delay"))
            if kind == "drop":
                proxy.drop_requests = 1
            elif kind == "lose":
                proxy.lose_replies = 1
            elif kind == "cut":
                proxy.cut()
            else:
                proxy.delay = rng.uniform(0.005, 0.05)
                time.sleep(0.05)
                proxy.delay = 0.0
            faults += 1

    threads = [threading.Thread(target=submitter, args=(i,)) for i in range(sessions)]
    chaos = threading.Thread(target=injector)
    killed = 0
    try:
        for thread in threads:
            thread.start()
        chaos.start()
        while killed < kills and any(t.is_alive() for t in threads):
            time.sleep(rng.uniform(0.1, 0.6))
            server.kill()
            killed += 1
            server.start()
        for thread in threads:
            thread.join()
    finally:
        done.set()
        chaos.join()
        proxy.drop_requests = proxy.lose_replies = 0
    try:
        with _session("http", server.url, key, str(Path(workdir) / "uploads-check")) as admin:
            deadline = time.monotonic() + 60.0
            rows = admin.list_jobs()
            while any(r["status"] in _LIVE for r in rows) and time.monotonic() < deadline:
                time.sleep(0.2)
                rows = admin.list_jobs()
    finally:
        server.stop()
        proxy.close()
    ids = {row["job_id"] for row in rows}
    names = Counter(row["job_name"] for row in rows)
    return FaultResult(
        submits=submits,
        acknowledged=len(acknowledged),
        failed=len(failures),
        network_faults=faults,
        kills=killed,
        lost=sum(1 for job_id in acknowledged.values() if job_id not in ids),
        duplicated=sum(count - 1 for count in names.values() if count > 1),
        left_running=sum(1 for row in rows if row["status"] in _LIVE),
    )
