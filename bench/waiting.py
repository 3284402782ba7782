"""Wait reaction: from a job's status change on the server to ``wait_for_job`` returning.

One session waits on a live job (the simulated jobs of the bench server run for an hour)
in a thread; a second session aborts the job. The abort's reply comes after the server has
committed the new status, so the reaction is timed from that reply to the waiter's return
(a lower bound by at most the reply's half round trip; the JSON also keeps the time from
sending the abort, an upper bound). It is counted in read round trips of the same transport
(``bench.rtt``, from the reads figures). Done at the default ``poll_interval`` and at a long
one: the goal is <= 2 round trips whatever the interval.
"""

from __future__ import annotations

import threading
import time

from bench.context import Bench
from bench.results import Figure, under
from bench.stats import summarise
from flare_ports import SessionSpec

__all__ = ["measure_waits", "react_once"]

_SETTLE = 0.3  # seconds for the waiter to make its first poll and subscribe before the change


def react_once(
    waiter: SessionSpec, control: SessionSpec, job_id: str, poll: float
) -> tuple[float, float]:
    """Abort ``job_id`` while ``waiter`` waits on it; ``(from the reply, from the request)``."""
    done: dict[str, float] = {}
    failed: list[BaseException] = []

    def wait() -> None:
        try:
            waiter.wait_for_job(job_id, timeout=poll + 30.0, poll_interval=poll)
            done["at"] = time.perf_counter()
        except BaseException as exc:  # reported by the main thread
            failed.append(exc)

    thread = threading.Thread(target=wait, name="bench-waiter", daemon=True)
    thread.start()
    time.sleep(_SETTLE)
    sent = time.perf_counter()
    control.abort_job(job_id)
    acked = time.perf_counter()
    thread.join(poll + 40.0)
    if failed:
        raise failed[0]
    if "at" not in done:
        raise RuntimeError(f"wait_for_job({job_id}) did not return")
    return max(0.0, done["at"] - acked), done["at"] - sent


def measure_waits(bench: Bench) -> list[Figure]:
    server = bench.server()
    folder = str(bench.folders("waits").hello(name="bench-wait"))
    polls = (2.0,) if bench.plan.name == "tiny" else (2.0, 30.0)
    figures = []
    for name, url in (("http", server.http_url), ("ws", server.ws_url)):
        with bench.session(url) as waiter, bench.session(url) as control:
            rtt = bench.rtt.get(name) or _rtt(control)
            for poll in polls:
                after_reply, after_request = [], []
                for _ in range(bench.plan.waits):
                    job_id = control.submit_job(folder)
                    low, high = react_once(waiter, control, job_id, poll)
                    after_reply.append(low)
                    after_request.append(high)
                    control.delete_job(job_id)
                got = summarise(after_reply)
                if poll == 2.0:
                    bench.waits_ms[name] = got.median * 1e3
                figures.append(
                    Figure(
                        group="waiting",
                        name=f"wait reaction {name}, poll_interval={poll:g}s",
                        value=got.median / rtt,
                        p99=got.p99 / rtt,
                        unit="round trips",
                        baseline=f"{name} read RTT (ms)",
                        baseline_value=rtt * 1e3,
                        ratio=None,
                        goal=under(2.0, "<= 2 round trips"),
                        extra={
                            "reaction_ms": got.median * 1e3,
                            "reaction_from_request_ms": summarise(after_request).median * 1e3,
                            "samples": got.n,
                        },
                    )
                )
    return figures


def _rtt(session: SessionSpec) -> float:
    """A read round trip, when the reads figures did not run."""
    jobs = session.list_jobs(limit=1)
    samples = []
    for _ in range(20):
        start = time.perf_counter()
        session.get_job_meta(str(jobs[0]["job_id"])) if jobs else session.get_system_info()
        samples.append(time.perf_counter() - start)
    return summarise(samples).median
