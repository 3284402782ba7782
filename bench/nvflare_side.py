"""Against NVFlare: the same calls on NVFlare 2.9's own ``Session`` and on flare-core, side
by side in one run, interleaved.

The POC is ``flare_testing.nvflare_poc.running_poc`` (the set-up of ``make test-nvflare``:
one server, two sites, loopback, a temporary workspace, always stopped). Its server runs in
its own processes, as ``flare-core serve`` does here. NVFlare is much slower, so each of its
samples is a few calls, not dozens. Submits come last, flare-core's before NVFlare's: NVFlare
then runs those jobs, and that load must not land on the other figures.

Wait reaction on NVFlare: a third session polls the job's status every few milliseconds to
see when the abort took effect (NVFlare's ``abort_job`` returns before the change shows), and
``monitor_job`` is timed from then. flare-core's reaction is the waiting figures' (poll
interval 2 s, both).
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench.context import Bench
from bench.results import Figure, Report, at_least
from bench.stats import Sampler, interleaved, sample_sync, summarise

__all__ = ["available", "measure_nvflare"]

_POLL = 2.0


def available() -> bool:
    try:
        import nvflare  # noqa: F401
    except ImportError:
        return False
    return True


def _nv_session(poc: Any) -> Any:
    from nvflare.fuel.flare_api.flare_api import new_secure_session

    user = poc.users[0]
    # NVFlare prints "Connecting to FLARE ..." on every login: not part of the table.
    with contextlib.redirect_stdout(io.StringIO()):
        return new_secure_session(user, str(poc.admin_kit(user)), timeout=30.0)


def _vs(name: str, mine: float, theirs: float, goal: float, p99: float | None = None) -> Figure:
    return Figure(
        group="vs nvflare",
        name=name,
        value=mine * 1e3,
        p99=None if p99 is None else p99 * 1e3,
        unit="ms",
        baseline="NVFlare Session",
        baseline_value=theirs * 1e3,
        ratio=theirs / mine,
        goal=at_least(goal, f">= {goal:g}x faster"),
    )


def measure_nvflare(bench: Bench, report: Report) -> list[Figure]:
    from flare_testing.nvflare_poc import running_poc

    server = bench.server()
    folders = bench.folders("nvflare")
    figures: list[Figure] = []
    with running_poc(Path(bench.tmp) / "poc") as poc:
        nv = _nv_session(poc)
        ours = {"http": bench.session(server.http_url), "ws": bench.session(server.ws_url)}
        try:
            job = nv.submit_job(str(folders.hello(name="bench-nv-read")))
            mine_job = ours["http"].submit_job(str(folders.hello(name="bench-nv-read")))
            rounds = max(3, bench.plan.rounds)
            connect: dict[str, Sampler] = {
                "nvflare": _connect_sampler(lambda: _nv_session(poc)),
                "http": _connect_sampler(lambda: bench.session(server.http_url)),
                "ws": _connect_sampler(lambda: bench.session(server.ws_url)),
            }
            got = interleaved(connect, rounds=rounds, number=1, warmup=1)
            for name in ("http", "ws"):
                figures.append(
                    _vs(f"connect + login {name}", got[name].median, got["nvflare"].median, 100)
                )
            number = max(2, bench.plan.number // 3)
            for read in ("list_jobs", "get_job_meta", "get_system_info"):
                calls: dict[str, Sampler] = {
                    "nvflare": sample_sync(_read(nv, read, job)),
                    **{n: sample_sync(_read(s, read, mine_job)) for n, s in ours.items()},
                }
                got = interleaved(calls, rounds=rounds, number=number)
                for name in ours:
                    figures.append(
                        _vs(
                            f"{read} {name} sync",
                            got[name].median,
                            got["nvflare"].median,
                            10,
                            got[name].p99,
                        )
                    )
            try:
                nv_reaction = _nv_wait_reaction(poc, nv, folders, bench.plan.nvflare_waits)
            except Exception as exc:  # an NVFlare job that never ran: say so, keep the rest
                report.skip(f"NVFlare wait reaction: {exc!r}")
            else:
                for name, ms in bench.waits_ms.items():
                    figures.append(_vs(f"wait reaction {name}", ms / 1e3, nv_reaction, 100))
            folder = str(folders.hello(name="bench-nv-submit"))
            # Ours first, then NVFlare's: each NVFlare submit starts a real training run on
            # the POC (its server and both sites spawn job processes on these two cores),
            # which would land on every figure measured after it; a flare-core job costs
            # nothing after its launch.
            mine: dict[str, Sampler] = {
                n: sample_sync(partial(s.submit_job, folder)) for n, s in ours.items()
            }
            got = interleaved(mine, rounds=rounds, number=1, warmup=0)
            theirs = interleaved(
                {"nvflare": sample_sync(lambda: nv.submit_job(folder))},
                rounds=rounds,
                number=1,
                warmup=0,
            )
            for name in ours:
                figures.append(
                    _vs(f"submit_job {name}", got[name].median, theirs["nvflare"].median, 10)
                )
        finally:
            for session in ours.values():
                session.close()
            nv.close()
    return figures


def _connect_sampler(open_one: Callable[[], Any]) -> Sampler:
    def run(number: int) -> list[float]:
        out = []
        for _ in range(number):
            start = time.perf_counter()
            session = open_one()
            out.append(time.perf_counter() - start)
            session.close()
        return out

    return run


def _read(session: Any, read: str, job_id: str) -> Callable[[], object]:
    if read == "get_job_meta":
        return lambda: session.get_job_meta(job_id)
    method: Callable[[], object] = getattr(session, read)
    return method


def _nv_wait_reaction(poc: Any, nv: Any, folders: Any, samples: int) -> float:
    """Median seconds from the abort showing in NVFlare to its ``monitor_job`` returning."""
    reactions = []
    waiter, watcher = _nv_session(poc), _nv_session(poc)
    try:
        for _ in range(samples):
            job = nv.submit_job(str(folders.hello(name="bench-nv-wait", num_rounds=1000)))
            _until(partial(_is_running, nv, job), 120.0)
            returned: dict[str, float] = {}
            seen: dict[str, float] = {}
            threads = [
                threading.Thread(target=_monitor, args=(waiter, job, returned)),
                threading.Thread(target=_watch, args=(watcher, job, seen)),
            ]
            for thread in threads:
                thread.start()
            time.sleep(0.5)
            nv.abort_job(job)
            for thread in threads:
                thread.join(150.0)
            if "at" not in returned or "at" not in seen:
                raise RuntimeError(f"NVFlare job {job}: abort not observed")
            reactions.append(max(0.0, returned["at"] - seen["at"]))
    finally:
        waiter.close()
        watcher.close()
    return summarise(reactions).median


def _is_running(session: Any, job_id: str) -> bool:
    return bool(session.get_job_meta(job_id).get("status") == "RUNNING")


def _monitor(session: Any, job_id: str, returned: dict[str, float]) -> None:
    session.monitor_job(job_id, timeout=120.0, poll_interval=_POLL)
    returned["at"] = time.perf_counter()


def _watch(session: Any, job_id: str, seen: dict[str, float]) -> None:
    """Poll until the job shows FINISHED:*; when that was first seen."""
    deadline = time.monotonic() + 120.0
    while time.monotonic() < deadline:
        if str(session.get_job_meta(job_id).get("status", "")).startswith("FINISHED"):
            seen["at"] = time.perf_counter()
            return


def _until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError("NVFlare job did not start running")
