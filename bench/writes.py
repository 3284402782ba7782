"""Submit (a small folder, with and without a submit token), clone, abort and delete.

Every write creates or removes a job, so a sample cannot be repeated on the same object: each
round submits two jobs per transport (one with a fresh token), clones one, aborts and deletes
the clone, then cleans up the submitted jobs outside the clock. Durability is the server's
own (every acknowledged mutation is committed before its reply); nothing here changes it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from bench.context import Bench
from bench.results import Figure, under
from bench.stats import summarise
from flare_ports import SessionSpec

__all__ = ["OPERATIONS", "measure_writes"]

OPERATIONS = ("submit", "submit with token", "clone", "abort", "delete")
_GOALS = {"submit": 10.0, "submit with token": 10.0, "clone": 3.0, "abort": 3.0, "delete": 3.0}
_T = TypeVar("_T")


def _timed(samples: list[float], call: Callable[[], _T]) -> _T:
    start = time.perf_counter()
    value = call()
    samples.append(time.perf_counter() - start)
    return value


def measure_writes(bench: Bench) -> list[Figure]:
    server = bench.server()
    folder = str(bench.folders("writes").hello(name="bench-write"))
    transports = {"http": server.http_url, "ws": server.ws_url}
    samples: dict[tuple[str, str], list[float]] = {
        (t, op): [] for t in transports for op in OPERATIONS
    }
    sessions = {name: bench.session(url) for name, url in transports.items()}
    try:
        for _ in range(2):  # warm-up: pools, caches, the first archive
            for session in sessions.values():
                session.delete_job(_abort(session, session.submit_job(folder)))
        for index in range(bench.plan.writes):
            order = list(sessions.items())
            if index % 2:
                order.reverse()
            for name, session in order:
                plain = _timed(samples[name, "submit"], partial(session.submit_job, folder))
                token = f"bench-{uuid.uuid4().hex}"
                tokened = _timed(
                    samples[name, "submit with token"],
                    partial(session.submit_job, folder, submit_token=token),
                )
                clone = _timed(samples[name, "clone"], partial(session.clone_job, plain))
                _timed(samples[name, "abort"], partial(session.abort_job, clone))
                _wait_terminal(session, clone)
                _timed(samples[name, "delete"], partial(session.delete_job, clone))
                for job in (plain, tokened):
                    session.delete_job(_abort(session, job))
    finally:
        for session in sessions.values():
            session.close()
    figures = []
    for (name, op), values in samples.items():
        got = summarise(values)
        figures.append(
            Figure(
                group="writes",
                name=f"{op} {name}",
                value=got.median * 1e3,
                p99=got.p99 * 1e3,
                unit="ms",
                baseline=f"{name} read RTT" if bench.rtt else None,
                baseline_value=bench.rtt[name] * 1e3 if bench.rtt else None,
                ratio=got.median / bench.rtt[name] if bench.rtt else None,
                goal=under(_GOALS[op], f"<= {_GOALS[op]:g} ms"),
                extra={"samples": got.n},
            )
        )
    return figures


def _abort(session: SessionSpec, job_id: str) -> str:
    session.abort_job(job_id)
    _wait_terminal(session, job_id)
    return job_id


def _wait_terminal(session: SessionSpec, job_id: str) -> None:
    """Until the job is terminal (an abort may finish after its reply); bounded."""
    for _ in range(200):
        if str(session.get_job_meta(job_id).get("status", "")).startswith("FINISHED"):
            return
        time.sleep(0.01)
    raise RuntimeError(f"job {job_id} did not finish after its abort")
