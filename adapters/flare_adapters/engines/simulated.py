"""A deterministic job engine driven by a clock's timers (the fake's engine).

Each launched job "runs" on the server and its client sites for a virtual duration, writing an
NVFlare-like workspace on every site (``<job_id>/log.txt`` with clock timestamps, a result file,
``error_log.txt`` on failure), then reports its terminal status to the service. A control API
(``finish_job``, ``fail_job``, ``hold_job``, ``hold_jobs_named``, ``release_job``,
``set_duration``) lets tests and FakeFlare steer it.

The job's own configs shape the simulation a little, so realistic job-folder variants behave
as they would on NVFlare:

* run time = ``duration`` + ``num_rounds`` (largest workflow ``args.num_rounds``, default 1)
  x ``sleep_time`` (largest executor ``args.sleep_time``, default 0);
* a component, executor or workflow ``path`` that neither starts with ``nvflare.`` nor names a
  module in the app's ``custom/`` folder cannot be "imported": the job fails with
  ``FINISHED:EXECUTION_EXCEPTION`` one virtual second after it starts (or at its end, if the
  run is shorter).

Only ``config_fed_server.json``/``config_fed_client.json`` are read (other formats are run as
they are). Launching, starting and aborting report synchronously, on the caller's thread; the
end of a run is reported from the clock's ``advance``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from flare_core.archive import ArchiveView, split_wrapper
from flare_core.errors import InvalidArgumentError
from flare_core.lifecycle import JobStatus, is_terminal
from flare_core.nesting import decode_json
from flare_core.service.ports import EngineListener, JobLaunch

__all__ = ["SimulatedEngine", "TimerClock", "WritableTree", "WritableWorkspaces", "plan_run"]

SERVER = "server"
_FAIL_AFTER = 1.0  # virtual seconds from start until an "unimportable component" fails a job
_MAX_CONFIG_BYTES = 1024 * 1024


class TimerClock(Protocol):
    """What the engine needs of a clock: the time and one-shot timers (``VirtualClock``)."""

    def time(self) -> float:
        """Epoch seconds."""
        ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> Callable[[], None]:
        """Run ``callback`` after ``delay`` seconds; returns a cancel function."""
        ...


class WritableTree(Protocol):
    """What the engine needs of a site's workspace (``MemoryFileTree``)."""

    def write(self, path: str, data: bytes, mtime: float) -> None:
        """Create or replace a file."""
        ...

    def append(self, path: str, data: bytes, mtime: float) -> None:
        """Append to a file, creating it when missing."""
        ...


class WritableWorkspaces(Protocol):
    """Every site's writable workspace (``MemoryWorkspaces``)."""

    def tree(self, site: str) -> WritableTree:
        """The workspace of ``site``, created when new."""
        ...


@dataclass
class _Plan:
    """What the job's configs say about its run (see the module docstring)."""

    extra_seconds: float = 0.0
    failure: str | None = None
    rounds: int = 1


@dataclass
class _Run:
    job_id: str
    name: str
    sites: list[str]  # client sites; the server always takes part
    plan: _Plan
    run_seconds: float
    started_at: float | None = None
    held: bool = False
    cancel: Callable[[], None] | None = None
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    log_config: dict[str, str] = field(default_factory=dict)

    @property
    def end_at(self) -> float | None:
        return None if self.started_at is None else self.started_at + self.run_seconds

    def participants(self) -> list[str]:
        return [SERVER, *self.sites]


def _timestamp(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S},{moment.microsecond // 1000:03d}"


def _number(value: object, default: float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return default


def _read_json(archive: ArchiveView, name: str) -> Any:
    if archive.size(name) > _MAX_CONFIG_BYTES:
        return None
    try:
        return decode_json(b"".join(archive.open(name)), name)
    except (msgspec.DecodeError, InvalidArgumentError):
        return None


def _component_entries(config: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for key in ("components", "workflows"):
        items = config.get(key)
        if isinstance(items, list):
            yield from (item for item in items if isinstance(item, dict))
    executors = config.get("executors")
    if isinstance(executors, list):
        for item in executors:
            if isinstance(item, dict) and isinstance(item.get("executor"), dict):
                yield item["executor"]


def plan_run(archive: ArchiveView) -> tuple[float, str | None, int]:
    """Read a job's configs for the simulation (see the module docstring).

    Args:
        archive: the uploaded job folder.

    Returns:
        ``(extra seconds, failure reason or None, number of rounds)``.
    """
    wrapper, rel_names = split_wrapper(archive.names())
    prefix = f"{wrapper}/" if wrapper else ""
    rounds, sleep_time, failure = 1, 0.0, None
    for rel in rel_names:
        parts = rel.split("/")
        if len(parts) != 3 or parts[1] != "config":
            continue
        if parts[2] not in ("config_fed_server.json", "config_fed_client.json"):
            continue
        config = _read_json(archive, prefix + rel)
        if not isinstance(config, dict):
            continue
        custom = {
            r.split("/")[2].removesuffix(".py")
            for r in rel_names
            if r.startswith(f"{parts[0]}/custom/") and len(r.split("/")) > 2
        }
        for entry in _component_entries(config):
            path = entry.get("path")
            args = entry.get("args")
            args = args if isinstance(args, dict) else {}
            rounds = max(rounds, int(_number(args.get("num_rounds"), 1)))
            sleep_time = max(sleep_time, _number(args.get("sleep_time"), 0.0))
            if (
                failure is None
                and isinstance(path, str)
                and not path.startswith("nvflare.")
                and path.split(".", 1)[0] not in custom
            ):
                failure = f"cannot load component '{path}': no module named '{path.split('.')[0]}'"
    return rounds * sleep_time, failure, rounds


class SimulatedEngine:
    """The ``Engine`` port over a clock with timers and in-memory workspaces.

    Args:
        clock: the time source and timer service (a ``VirtualClock``).
        workspaces: where the sites' job files are written.
        duration: virtual seconds a job runs, before config-derived extra time.
        start_delay: virtual seconds between launch (DISPATCHED) and start (RUNNING); 0 starts
            synchronously inside ``launch``.
        resources: what every client site reports to ``report_resources``.
    """

    def __init__(
        self,
        clock: TimerClock,
        workspaces: WritableWorkspaces,
        *,
        duration: float = 10.0,
        start_delay: float = 0.0,
        resources: dict[str, Any] | None = None,
    ) -> None:
        self._clock = clock
        self._workspaces = workspaces
        self._lock = threading.RLock()
        self._listener: EngineListener | None = None
        self._runs: dict[str, _Run] = {}
        self._hold_requests: set[str] = set()
        self._held_names: set[str] = set()
        self._released_early: set[str] = set()  # released before launch: no name hold
        self._site_log_config: dict[str, str] = {}
        self._resources = dict(resources or {"num_of_gpus": 0, "mem_per_gpu_in_GiB": 0})
        self.set_duration(duration)
        self._start_delay = max(0.0, float(start_delay))

    # --- the Engine port -------------------------------------------------------------------

    def attach(self, listener: EngineListener) -> None:
        """Register the service's callbacks."""
        self._listener = listener

    def launch(self, launch: JobLaunch) -> None:
        """Deploy a job to the server and ``launch.sites``; start it now or after the delay."""
        extra, failure, rounds = plan_run(launch.archive)
        run = _Run(
            job_id=launch.job_id,
            name=launch.name,
            sites=list(launch.sites),
            plan=_Plan(extra_seconds=extra, failure=failure, rounds=rounds),
            run_seconds=self._duration + extra,
        )
        with self._lock:
            if launch.job_id in self._runs:
                raise RuntimeError(f"job {launch.job_id} is already deployed")
            by_name = launch.name in self._held_names
            run.held = launch.job_id in self._hold_requests or (
                by_name and launch.job_id not in self._released_early
            )
            self._released_early.discard(launch.job_id)
            self._hold_requests.discard(launch.job_id)
            self._runs[launch.job_id] = run
        for site in run.participants():
            self._log(site, launch.job_id, "INFO", f"deployed job '{launch.name}' to {site}")
        if self._start_delay <= 0:
            self._start(launch.job_id)
        else:
            cancel = self._clock.call_later(self._start_delay, lambda: self._start(launch.job_id))
            with self._lock:
                run.cancel = cancel

    def abort(self, job_id: str) -> bool:
        """Stop a launched job now (reported as ``FINISHED:ABORTED``); False when unknown."""
        return self._finish(job_id, JobStatus.FINISHED_ABORTED.value, "aborted by admin")

    def is_running(self, job_id: str) -> bool:
        """True between the job's start and its end."""
        with self._lock:
            run = self._runs.get(job_id)
            return run is not None and run.started_at is not None

    def stats(self, job_id: str, site: str) -> Any:
        """The site's runner statistics for a running job (``{}`` for a non-participant)."""
        with self._lock:
            run = self._runs.get(job_id)
            if run is None or site not in run.participants() or run.started_at is None:
                return {}
            elapsed = self._clock.time() - run.started_at
            runner = "ServerRunner" if site == SERVER else "ClientRunner"
            fraction = min(1.0, elapsed / run.run_seconds) if run.run_seconds > 0 else 1.0
            return {
                runner: {
                    "job_id": job_id,
                    "status": "started",
                    "elapsed_seconds": round(elapsed, 3),
                    "current_round": min(run.plan.rounds - 1, int(fraction * run.plan.rounds)),
                    "num_rounds": run.plan.rounds,
                    **run.stats.get(site, {}),
                }
            }

    def errors(self, job_id: str, site: str) -> Any:
        """The site's error statistics for a running job (``{}`` when none)."""
        with self._lock:
            run = self._runs.get(job_id)
            return {} if run is None else dict(run.errors.get(site, {}))

    def reset_errors(self, job_id: str, site: str) -> None:
        """Clear the site's error statistics for a running job."""
        with self._lock:
            run = self._runs.get(job_id)
            if run is not None:
                run.errors.pop(site, None)

    def resources(self, site: str) -> dict[str, Any]:
        """The server reports ``unlimited``; clients report the configured resources."""
        if site == SERVER:
            return {"resources": "unlimited"}
        return dict(self._resources)

    def configure_job_log(self, job_id: str, site: str, config: str) -> None:
        """Record a running job's log configuration on one site (and log that it changed)."""
        with self._lock:
            run = self._runs.get(job_id)
            if run is None:
                raise KeyError(job_id)
            run.log_config[site] = config
        self._log(site, job_id, "INFO", f"log configuration changed to {config}")

    def configure_site_log(self, site: str, config: str) -> None:
        """Record a site's own log level or mode."""
        with self._lock:
            self._site_log_config[site] = config

    # --- control API (tests, FakeFlare) -------------------------------------------------------

    def set_duration(self, seconds: float) -> None:
        """Set how long jobs launched from now on run (virtual seconds, before extras).

        Raises:
            InvalidArgumentError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise InvalidArgumentError("duration must be >= 0")
        self._duration = float(seconds)

    def finish_job(self, job_id: str, status: str = JobStatus.FINISHED_COMPLETED.value) -> None:
        """End a launched job now with ``status`` (starting it first if it has not started).

        Raises:
            InvalidArgumentError: ``status`` is not a ``FINISHED:*`` status.
            KeyError: the engine is not running that job.
        """
        self._end_now(job_id, status, "")

    def fail_job(
        self,
        job_id: str,
        status: str = JobStatus.FINISHED_EXECUTION_EXCEPTION.value,
        reason: str = "simulated failure",
    ) -> None:
        """End a launched job now with a failure ``status``; every site logs ``reason`` and
        gets an ``error_log.txt``.

        Raises:
            InvalidArgumentError: ``status`` is not a ``FINISHED:*`` status.
            KeyError: the engine is not running that job.
        """
        self._end_now(job_id, status, reason or "simulated failure")

    def site_lost(self, site: str) -> list[str]:
        """A client site went away: every launched job it takes part in fails now.

        As on NVIDIA FLARE, where a job's participant that stops responding fails the run
        (its workflow cannot collect that site's results), the job ends
        ``FINISHED:EXECUTION_EXCEPTION`` and every participant logs the reason. Jobs the site
        does not take part in run on.

        Returns:
            The ids of the jobs that failed.
        """
        with self._lock:
            jobs = [job_id for job_id, run in self._runs.items() if site in run.sites]
        for job_id in jobs:
            self._end_now(
                job_id,
                JobStatus.FINISHED_EXECUTION_EXCEPTION.value,
                f"lost connection to client {site} while the job was running",
            )
        return jobs

    def hold_job(self, job_id: str) -> None:
        """Keep a job RUNNING until ``release_job`` (or ``finish_job``/``fail_job``/abort).

        May be called before the job is launched; the hold then applies from its launch.
        """
        with self._lock:
            run = self._runs.get(job_id)
            if run is None:
                self._hold_requests.add(job_id)
                return
            run.held = True
            if run.started_at is not None and run.cancel is not None:
                run.cancel()
                run.cancel = None

    def hold_jobs_named(self, name: str) -> None:
        """Keep every job named ``name`` RUNNING from its launch until ``release_job``.

        A test learns a job's id only when its submit returns, and on a real clock the job may
        have ended by then; holding by name (a name the test made unique) holds it before the
        submit is even sent, so no test has to race a job's end.
        """
        with self._lock:
            self._held_names.add(name)

    def release_job(self, job_id: str) -> None:
        """Let a held job run on; it ends at its planned time, or at once if that has passed."""
        with self._lock:
            self._hold_requests.discard(job_id)
            run = self._runs.get(job_id)
            if run is None:
                if self._held_names:
                    self._released_early.add(job_id)
                return
            if not run.held:
                return
            run.held = False
            end_at = run.end_at
            if end_at is None:  # not started yet: _start schedules the end normally
                return
            remaining = end_at - self._clock.time()
        if remaining <= 0:
            self._end_planned(job_id)
        else:
            self._schedule_end(job_id, remaining)

    def running_jobs(self) -> list[str]:
        """The ids of the launched jobs that have not ended, in launch order."""
        with self._lock:
            return list(self._runs)

    def inject_error(self, job_id: str, site: str, message: str) -> None:
        """Add an entry to a running job's error statistics on ``site`` (``show_errors``).

        Raises:
            KeyError: the engine is not running that job.
        """
        with self._lock:
            self._runs[job_id].errors.setdefault(site, {}).setdefault("error", []).append(message)

    def site_log_config(self, site: str) -> str | None:
        """The last log configuration applied to ``site``'s own logging, if any."""
        with self._lock:
            return self._site_log_config.get(site)

    def job_log_config(self, job_id: str, site: str) -> str | None:
        """The last log configuration applied to a running job on ``site``, if any."""
        with self._lock:
            run = self._runs.get(job_id)
            return None if run is None else run.log_config.get(site)

    # --- internals ---------------------------------------------------------------------------

    def _start(self, job_id: str) -> None:
        with self._lock:
            run = self._runs.get(job_id)
            if run is None or run.started_at is not None:
                return
            run.started_at = self._clock.time()
            run.cancel = None
            held = run.held
            delay = run.run_seconds
            if run.plan.failure is not None:
                delay = min(delay, _FAIL_AFTER)
        for site in run.participants():
            self._log(site, job_id, "INFO", f"job '{run.name}' started on {site}")
        if self._listener is not None:
            self._listener.job_started(job_id)
        if not held:
            self._schedule_end(job_id, delay)

    def _schedule_end(self, job_id: str, delay: float) -> None:
        cancel = self._clock.call_later(delay, lambda: self._end_planned(job_id))
        with self._lock:
            run = self._runs.get(job_id)
            if run is None or run.held:
                cancel()
                return
            if run.cancel is not None:
                run.cancel()
            run.cancel = cancel

    def _end_planned(self, job_id: str) -> None:
        with self._lock:
            run = self._runs.get(job_id)
            if run is None:
                return
            failure = run.plan.failure
        if failure is None:
            self._finish(job_id, JobStatus.FINISHED_COMPLETED.value, "")
        else:
            self._finish(job_id, JobStatus.FINISHED_EXECUTION_EXCEPTION.value, failure)

    def _end_now(self, job_id: str, status: str, reason: str) -> None:
        if not is_terminal(status):
            raise InvalidArgumentError(f"status must be a FINISHED:* status, not {status!r}")
        with self._lock:
            if job_id not in self._runs:
                raise KeyError(job_id)
        # A job cannot end before it ran (except by abort): start it first, as NVFlare would.
        self._start(job_id)
        self._finish(job_id, status, reason)

    def _finish(self, job_id: str, status: str, reason: str) -> bool:
        with self._lock:
            run = self._runs.pop(job_id, None)
            if run is None:
                return False
            if run.cancel is not None:
                run.cancel()
                run.cancel = None
        now = self._clock.time()
        for site in run.participants():
            tree = self._workspaces.tree(site)
            if reason and status != JobStatus.FINISHED_ABORTED.value:
                self._log(site, job_id, "ERROR", reason)
                line = f"{_timestamp(now)} - ERROR - {reason}\n"
                tree.append(f"{job_id}/error_log.txt", line.encode(), now)
            if status == JobStatus.FINISHED_COMPLETED.value:
                for rnd in range(run.plan.rounds):
                    self._log(site, job_id, "INFO", f"round {rnd} finished")
                result = {
                    "job_id": job_id,
                    "site": site,
                    "status": status,
                    "rounds": run.plan.rounds,
                }
                tree.write(f"{job_id}/result.json", msgspec.json.encode(result), now)
            self._log(site, job_id, "INFO", f"job finished with status {status}")
        if self._listener is not None:
            self._listener.job_finished(job_id, status, reason)
        return True

    def _log(self, site: str, job_id: str, level: str, message: str) -> None:
        now = self._clock.time()
        runner = "ServerRunner" if site == SERVER else "ClientRunner"
        line = (
            f"{_timestamp(now)} - {runner} - {level} - [identity={site}, run={job_id}]: {message}\n"
        )
        self._workspaces.tree(site).append(f"{job_id}/log.txt", line.encode(), now)
