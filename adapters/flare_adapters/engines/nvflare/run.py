"""One job on NVFlare's simulator: its folder, its process group, its mirror, its end.

A ``JobRun`` owns a thread that unpacks the job folder, starts the child
(``flare_adapters.engines.nvflare.child``) in a process group of its own, and then, every
``poll_interval``, mirrors the sites' logs into their workspaces and follows the rounds, until
the process ends. It then copies the results, decides the outcome and reports it. An abort
sends SIGTERM to the group and SIGKILL after a grace period; closing the engine kills the
group at once and reports nothing (the job is left live, so the next start's recovery ends it
``FINISHED:ABNORMAL``, as a server restart ends a job on NVFlare).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flare_adapters.engines.nvflare.mirror import SiteMirror
from flare_adapters.engines.nvflare.outcome import Outcome, RoundTracker, outcome
from flare_adapters.engines.simulated import WritableWorkspaces, plan_run
from flare_core.archive import is_safe_member, split_wrapper
from flare_core.service.ports import EngineListener, JobLaunch

__all__ = ["MARKER_ENV", "JobRun", "RunSettings"]

MARKER_ENV = "FLARE_CORE_ENGINE_JOB"
"""Set in every engine child's environment (``<engine root>:<job id>``) to find them by PID."""
SERVER = "server"
_CHUNK = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """How jobs run (see ``NVFlareEngine``)."""

    poll_interval: float = 0.5
    abort_grace: float = 10.0
    python: str = sys.executable


class JobRun:
    """A job's simulator run; ``start`` it, ``abort`` or ``kill`` it.

    Args:
        launch: what the service dispatched.
        root: this run's scratch folder (created; removed when the run ends).
        workspaces: the sites' workspaces (logs and results are mirrored there).
        listener: the service's callbacks.
        now: the clock.
        settings: timings and the Python that runs the child.
        done: called with the job id once the run has reported its end (or was killed).
    """

    def __init__(
        self,
        launch: JobLaunch,
        root: str,
        workspaces: WritableWorkspaces,
        listener: EngineListener,
        now: Callable[[], float],
        settings: RunSettings,
        done: Callable[[str], None],
    ) -> None:
        self.job_id = launch.job_id
        self.sites = list(launch.sites)
        self._launch = launch
        self._root = root
        self._workspaces = workspaces
        self._listener = listener
        self._now = now
        self._settings = settings
        self._done = done
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._aborted = False
        self._lost: str | None = None
        self._killed = False
        self._abort_deadline: float | None = None
        self.started_at: float | None = None
        self.tracker = RoundTracker(num_rounds=plan_run(launch.archive)[2])
        self._mirrors: dict[str, SiteMirror] = {}
        self._thread = threading.Thread(target=self._main, name=f"job-{self.job_id}", daemon=True)

    # --- control ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the run's thread (the job folder is written there, off the caller's lock)."""
        self._thread.start()

    @property
    def running(self) -> bool:
        """True while the simulator process is alive."""
        process = self._process
        return process is not None and process.poll() is None

    def abort(self) -> None:
        """Stop the job: SIGTERM to its group now, SIGKILL after the grace period."""
        with self._lock:
            if self._aborted:
                return
            self._aborted = True
            self._abort_deadline = time.monotonic() + self._settings.abort_grace
        self._signal(signal.SIGTERM)
        self._wake.set()

    def lose(self, reason: str) -> None:
        """A site of the job went away: stop the run as an abort does, but end it
        ``FINISHED:EXECUTION_EXCEPTION`` with ``reason`` (its workflow cannot finish)."""
        with self._lock:
            if self._lost is None:
                self._lost = reason
        self.abort()

    def kill(self, timeout: float = 10.0) -> None:
        """Kill the group now and wait for the thread; the run reports no end."""
        with self._lock:
            self._killed = True
        self._signal(signal.SIGKILL)
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def elapsed(self) -> float:
        """Seconds since the process started (0 before)."""
        return 0.0 if self.started_at is None else max(0.0, self._now() - self.started_at)

    def error_text(self, site: str) -> str:
        """What the site's ``error_log.txt`` holds so far."""
        mirror = self._mirrors.get(site)
        return "" if mirror is None else mirror.error_text()

    # --- the thread ------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            try:
                folder = self._unpack()
                self._spawn(folder)
            except Exception as exc:
                if not self._killed:
                    self._listener.job_finished(
                        self.job_id, "FINISHED:FAILED_TO_RUN", f"cannot start the simulator: {exc}"
                    )
                return
            self._listener.job_started(self.job_id)
            self._follow()
            if self._killed:
                return
            result = self._finish()
            self._listener.job_finished(self.job_id, result.status, result.reason)
        finally:
            self._cleanup()
            self._done(self.job_id)

    def _unpack(self) -> str:
        archive = self._launch.archive
        wrapper, rel_names = split_wrapper(archive.names())
        folder = os.path.join(self._root, "job", wrapper or "job")
        prefix = f"{wrapper}/" if wrapper else ""
        for rel in rel_names:
            name = prefix + rel
            if rel.endswith("/") or not is_safe_member(name):
                continue
            target = os.path.join(folder, *rel.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as handle:
                for chunk in archive.open(name):
                    handle.write(chunk)
        return folder

    def _spawn(self, folder: str) -> None:
        workspace = os.path.join(self._root, "simulator")
        sites = self.sites
        command = [
            self._settings.python,
            "-m",
            "flare_adapters.engines.nvflare.child",
            folder,
            "-w",
            workspace,
            "-c",
            ",".join(sites),
            "-t",
            str(max(1, len(sites))),
        ]
        env = {**os.environ, MARKER_ENV: f"{self._root}:{self.job_id}"}
        with open(os.path.join(self._root, "console.txt"), "wb") as console:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,  # the lifeline: EOF means the server is gone
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=self._root,
                env=env,
                start_new_session=True,  # a process group of its own
            )
        with self._lock:
            self._process = process
            self.started_at = self._now()
            killed = self._killed
        if killed:
            self._signal(signal.SIGKILL)
        for site in [SERVER, *sites]:
            self._mirrors[site] = SiteMirror(
                os.path.join(workspace, site), self._workspaces.tree(site), self.job_id, self._now
            )

    def _follow(self) -> None:
        process = self._process
        assert process is not None
        while process.poll() is None:
            self._pump()
            with self._lock:
                deadline = self._abort_deadline
            if deadline is not None and time.monotonic() >= deadline:
                self._signal(signal.SIGKILL)
            if self._killed:
                break
            self._wake.wait(self._settings.poll_interval)
            self._wake.clear()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=self._settings.abort_grace)

    def _pump(self) -> bool:
        """Mirror every site's new log bytes; report round progress. True if anything came."""
        changed = False
        for site, mirror in self._mirrors.items():
            text = mirror.pump()
            changed = changed or bool(text)
            if site == SERVER and text and self.tracker.feed(text):
                self._listener.job_progress(self.job_id, self.tracker.progress())
        return changed

    def _finish(self) -> Outcome:
        for _ in range(1024):  # the logs' tails (each pump copies a bounded chunk)
            before = [m.error_text() for m in self._mirrors.values()]
            changed = self._pump()
            if not changed and before == [m.error_text() for m in self._mirrors.values()]:
                break
        for mirror in self._mirrors.values():
            mirror.collect()
        process = self._process
        returncode = None if process is None else process.poll()
        errors = {site: mirror.error_text() for site, mirror in self._mirrors.items()}
        if returncode not in (0, None) and not any(text.strip() for text in errors.values()):
            errors = {SERVER: self._console_tail()}
        if self._lost is not None:
            return Outcome("FINISHED:EXECUTION_EXCEPTION", self._lost)
        result = outcome(returncode, self._aborted, errors)
        # The reason is shown to users: no server paths (the scratch folder) in it.
        return Outcome(result.status, result.reason.replace(self._root + os.sep, ""))

    def _console_tail(self) -> str:
        path = os.path.join(self._root, "console.txt")
        try:
            with open(path, "rb") as handle:
                handle.seek(max(0, os.path.getsize(path) - 4096))
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _signal(self, signum: int, *, group_only: bool = False) -> None:
        # group_only: the leader may have exited while others of its group live on.
        process = self._process
        if process is None or (process.poll() is not None and not group_only):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)  # the child leads its own group

    def _cleanup(self) -> None:
        process = self._process
        if process is not None:
            self._signal(signal.SIGKILL, group_only=True)  # what the simulator left behind
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5.0)
        shutil.rmtree(self._root, ignore_errors=True)

    def stats(self, site: str) -> dict[str, Any]:
        """The site's ``show_stats`` value while the job runs (NVFlare's shape)."""
        if site == SERVER:
            value: dict[str, Any] = {
                "ServerRunner": {
                    "job_id": self.job_id,
                    "status": "started",
                    "workflow": self.tracker.workflow,
                    "elapsed_seconds": round(self.elapsed(), 3),
                }
            }
            if self.tracker.workflow:
                value[self.tracker.workflow] = self.tracker.stats()
            return value
        return {
            "ClientRunner": {
                "job_id": self.job_id,
                "status": "started",
                "elapsed_seconds": round(self.elapsed(), 3),
            }
        }
