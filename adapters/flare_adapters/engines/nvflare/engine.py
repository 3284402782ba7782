"""The ``nvflare`` engine: each dispatched job runs for real on NVIDIA FLARE's simulator.

The embedded server keeps its own system (SQLite, submit tokens, studies, policy, events) and
hands each dispatched job to this engine, which runs the job's NVFlare computation on this
machine (``nvflare simulator`` on the job folder, one client per site the job was deployed to),
in a child process group of its own (``run.JobRun``):

* the sites' ``log.txt``/``error_log.txt`` reach their workspaces while the job runs, so
  ``get_job_logs``, ``tail_target_log`` and the shell commands see them live;
* the workflow's rounds are followed in the server's log and reported to the service
  (``job_progress``: the job meta's ``progress``, pushed to waiting sessions) and by
  ``show_stats``;
* the end is mapped to the lifecycle as an NVFlare server would (``outcome.outcome``), and the
  sites' folders (the server's ``models/``, logs, stats) become the job's result;
* NVFlare's own component allow-list applies (the simulator enforces it), and a job with
  ``custom/`` code runs only when ``allow_custom_code`` says so: otherwise it is
  ``FINISHED:FAILED_TO_RUN`` with the reason.

How many jobs run at once is the service's ``max_running_jobs`` (the scheduler keeps the rest
SUBMITTED, oldest first). Children never outlive the server: ``close`` kills them, and each
child kills its own group when the server's end of its lifeline closes (``child``).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from typing import Any

from flare_adapters.engines.nvflare.outcome import first_error
from flare_adapters.engines.nvflare.run import SERVER, JobRun, RunSettings
from flare_adapters.engines.simulated import WritableWorkspaces
from flare_core.service.ports import EngineListener, JobLaunch

__all__ = ["NVFlareEngine", "nvflare_available"]

_CLIENT_RESOURCES = {"num_of_gpus": 0, "mem_per_gpu_in_GiB": 0}


def nvflare_available() -> bool:
    """True when the ``flare-core[nvflare]`` extra (NVIDIA FLARE) is installed."""
    import importlib.util

    return importlib.util.find_spec("nvflare") is not None


class NVFlareEngine:
    """The ``Engine`` port on NVFlare's simulator (see the module docstring).

    Args:
        root: the engine's scratch folder (one sub-folder per running job; emptied at start).
        workspaces: the sites' workspaces, where logs and results are mirrored.
        now: the clock.
        allow_custom_code: run jobs whose apps carry ``custom/`` code.
        settings: timings and the Python that runs the children.
    """

    def __init__(
        self,
        root: str,
        workspaces: WritableWorkspaces,
        now: Callable[[], float],
        *,
        allow_custom_code: bool = False,
        settings: RunSettings | None = None,
    ) -> None:
        shutil.rmtree(root, ignore_errors=True)  # a crashed server's leftovers
        os.makedirs(root, exist_ok=True)
        self._root = root
        self._workspaces = workspaces
        self._now = now
        self._allow_custom_code = allow_custom_code
        self._settings = settings or RunSettings()
        self._lock = threading.Lock()
        self._runs: dict[str, JobRun] = {}
        self._listener: EngineListener | None = None
        self._closed = False
        self._error_marks: dict[tuple[str, str], int] = {}
        self._job_log_config: dict[tuple[str, str], str] = {}
        self._site_log_config: dict[str, str] = {}

    # --- the Engine port -------------------------------------------------------------------

    def attach(self, listener: EngineListener) -> None:
        """Register the service's callbacks."""
        self._listener = listener

    def launch(self, launch: JobLaunch) -> None:
        """Start the job's run (its thread writes the folder and starts the simulator).

        Raises:
            PermissionError: the job carries ``custom/`` code and the server does not allow it.
            RuntimeError: the engine is closed or already runs the job.
        """
        if launch.meta.get("byoc") and not self._allow_custom_code:
            raise PermissionError(
                "custom code is not allowed on this server (engine.allow_custom_code is false)"
            )
        if self._listener is None:
            raise RuntimeError("the engine has no listener")
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine is closed")
            if launch.job_id in self._runs:
                raise RuntimeError(f"job {launch.job_id} is already running")
            run = JobRun(
                launch,
                os.path.join(self._root, launch.job_id),
                self._workspaces,
                self._listener,
                self._now,
                self._settings,
                self._forget,
            )
            self._runs[launch.job_id] = run
        run.start()

    def abort(self, job_id: str) -> bool:
        """Stop a job's process group; it reports ``FINISHED:ABORTED`` once it has ended."""
        run = self._run(job_id)
        if run is None:
            return False
        run.abort()
        return True

    def is_running(self, job_id: str) -> bool:
        """True while the job's simulator process is alive."""
        run = self._run(job_id)
        return run is not None and run.running

    def stats(self, job_id: str, site: str) -> Any:
        """The site's runner statistics, with the workflow's round progress on the server."""
        run = self._run(job_id)
        if run is None or (site != SERVER and site not in run.sites):
            return {}
        return run.stats(site)

    def errors(self, job_id: str, site: str) -> Any:
        """The errors the site logged since the last ``reset_errors`` (``{}`` when none)."""
        run = self._run(job_id)
        if run is None:
            return {}
        text = run.error_text(site)[self._error_marks.get((job_id, site), 0) :]
        if not text.strip():
            return {}
        count = sum(1 for line in text.splitlines() if " - ERROR - " in line)
        return {"error_count": max(1, count), "last_error": first_error(text)}

    def reset_errors(self, job_id: str, site: str) -> None:
        """Count only errors logged from now on."""
        run = self._run(job_id)
        if run is not None:
            self._error_marks[(job_id, site)] = len(run.error_text(site))

    def resources(self, site: str) -> dict[str, Any]:
        """The server reports ``unlimited``; a client site reports no GPUs (CPU simulation)."""
        if site == SERVER:
            return {"resources": "unlimited"}
        return dict(_CLIENT_RESOURCES)

    def configure_job_log(self, job_id: str, site: str, config: str) -> None:
        """Record a running job's log configuration on one site, and say so in its log.

        The simulator reads its logging configuration when it starts, so a running job's
        own logging keeps it (documented in docs/nvflare.md).
        """
        run = self._run(job_id)
        if run is None:
            raise KeyError(job_id)
        self._job_log_config[(job_id, site)] = config
        line = f"[flare-core: log configuration {config} recorded for this job on {site}]\n"
        self._workspaces.tree(site).append(f"{job_id}/log.txt", line.encode(), self._now())

    def configure_site_log(self, site: str, config: str) -> None:
        """Record a site's own log level or mode."""
        self._site_log_config[site] = config

    def site_lost(self, site: str) -> list[str]:
        """A client site went away: the running jobs it takes part in fail, as on NVFlare
        (``FINISHED:EXECUTION_EXCEPTION``, once their processes stopped). Their ids."""
        with self._lock:
            runs = [run for run in self._runs.values() if site in run.sites]
        for run in runs:
            run.lose(f"lost connection to client {site} while the job was running")
        return [run.job_id for run in runs]

    # --- lifecycle ---------------------------------------------------------------------------

    def running_jobs(self) -> list[str]:
        """The ids of the jobs with a live run, in launch order."""
        with self._lock:
            return list(self._runs)

    def close(self) -> None:
        """Kill every running job's process group and wait for their threads (no reports:
        the jobs are left live, and the next start's recovery ends them ABNORMAL)."""
        with self._lock:
            self._closed = True
            runs = list(self._runs.values())
        for run in runs:
            run.kill()

    # --- internals ---------------------------------------------------------------------------

    def _run(self, job_id: str) -> JobRun | None:
        with self._lock:
            return self._runs.get(job_id)

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._runs.pop(job_id, None)
        for key in [k for k in self._error_marks if k[0] == job_id]:
            self._error_marks.pop(key, None)
        for key in [k for k in self._job_log_config if k[0] == job_id]:
            self._job_log_config.pop(key, None)
