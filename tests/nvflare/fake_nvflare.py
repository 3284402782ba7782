"""A stand-in for NVFlare's admin ``Session``, replying the way NVFlare 2.9 does.

The unit tests of the nvflare backend run without NVFlare installed; the shapes here are the
ones measured on a real 2.9 POC (raw ``check_status`` meta, ``str(dict)`` resources, the
message strings of ``abort_job`` for an unstarted, a running and a finished job,
``JobNotDone`` from ``delete_job`` of a live job, downloads named ``<job_id>__1``). Exceptions
carry NVFlare's module name so translation sees them as NVFlare's. The real certification is
``make test-nvflare`` on a real POC.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

_MODULE = "nvflare.fuel.flare_api.api_spec"


def _nvflare_error(name: str, base: type[Exception] = Exception) -> type[Exception]:
    cls = type(name, (base,), {})
    cls.__module__ = _MODULE
    return cls


JobNotFound = _nvflare_error("JobNotFound")
JobNotDone = _nvflare_error("JobNotDone")
SessionClosed = _nvflare_error("SessionClosed")
InternalError = _nvflare_error("InternalError")
NoConnection = _nvflare_error("NoConnection", ConnectionError)


class SubmitTokenConflict(Exception):
    def __init__(self, message: str, existing_job_id: str | None = None) -> None:
        super().__init__(message)
        self.existing_job_id = existing_job_id


SubmitTokenConflict.__module__ = _MODULE


class FakeFederation:
    """The shared state behind every fake session: jobs by id, in submission order."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, str] = {}
        self.lock = threading.Lock()
        self.opened: list[tuple[str, str]] = []
        self.fail_next: list[Exception] = []
        self.fail_delete: list[Exception] = []  # raised by delete_job, after its checks
        # Aborts of an unstarted job that NVFlare's scheduler undoes: answered, status unchanged.
        self.lost_aborts = 0
        self.aborts = 0
        self.block: threading.Event | None = None

    def opener(self, user: Any, study: str, timeout: float) -> FakeSession:
        self.opened.append((user.name, study))
        return FakeSession(self, study)

    def set_status(self, job_id: str, status: str) -> None:
        with self.lock:
            self.jobs[job_id]["status"] = status


class FakeSession:
    """The methods of NVFlare's ``Session`` the backend calls."""

    def __init__(self, federation: FakeFederation, study: str) -> None:
        self.f = federation
        self.study = study
        self.closed = False

    def _maybe_fail(self) -> None:
        if self.closed:
            raise SessionClosed("session closed")
        if self.f.block is not None:
            self.f.block.wait(10)
        if self.f.fail_next:
            raise self.f.fail_next.pop(0)

    def close(self) -> None:
        self.closed = True

    def submit_job(self, path: str, submit_token: str | None = None) -> str:
        self._maybe_fail()
        if not os.path.isfile(os.path.join(path, "meta.json")):
            raise ValueError("no meta.json")
        with self.f.lock:
            if submit_token and submit_token in self.f.tokens:
                return self.f.tokens[submit_token]
            job_id = str(uuid.uuid4())
            self.f.jobs[job_id] = {
                "job_id": job_id,
                "name": os.path.basename(path),
                "status": "SUBMITTED",
                "study": self.study,
                "submitter_name": "admin@nvidia.com",
                "files": sorted(os.listdir(path)),
            }
            if submit_token:
                self.f.tokens[submit_token] = job_id
            return job_id

    def _meta(self, job_id: str) -> dict[str, Any]:
        meta = self.f.jobs.get(job_id)
        if meta is None:
            raise JobNotFound(f"no such job: {job_id}")
        return meta

    def get_job_meta(self, job_id: str) -> dict[str, Any]:
        self._maybe_fail()
        return dict(self._meta(job_id))

    def list_jobs(self, **kwargs: Any) -> list[dict[str, Any]]:
        self._maybe_fail()
        rows = [
            {"job_id": m["job_id"], "job_name": m["name"], "status": m["status"]}
            for m in self.f.jobs.values()
            if m["study"] == self.study
        ]
        if kwargs.get("limit"):
            rows = rows[-kwargs["limit"] :]
        return rows

    def abort_job(self, job_id: str) -> str:
        self._maybe_fail()
        meta = self._meta(job_id)
        self.f.aborts += 1
        if meta["status"] in ("SUBMITTED", "DISPATCHED"):
            if self.f.lost_aborts:
                self.f.lost_aborts -= 1
            else:
                meta["status"] = "FINISHED:ABORTED"
            return f"Aborted the job {job_id} before running it."
        if meta["status"] == "RUNNING":
            meta["status"] = "FINISHED:ABORTED"
            return "Abort signal has been sent to the server app."
        return f"Job for {job_id} is already completed."

    def delete_job(self, job_id: str) -> dict[str, Any]:
        self._maybe_fail()
        meta = self._meta(job_id)
        if meta["status"] in ("DISPATCHED", "RUNNING"):
            raise JobNotDone(f"job {job_id} is still running")
        if self.f.fail_delete:
            raise self.f.fail_delete.pop(0)
        del self.f.jobs[job_id]
        return {"job_id": job_id, "submit_records_marked_deleted": 0}

    def download_job_result(self, job_id: str, destination: str | None = None) -> str:
        self._maybe_fail()
        self._meta(job_id)
        assert destination is not None
        folder = os.path.join(destination, f"{job_id}__1")
        os.makedirs(os.path.join(folder, "workspace"))
        with open(os.path.join(folder, "workspace", "log.txt"), "w") as handle:
            handle.write("round 1 finished\n")
        return folder

    def check_status(self, target_type: str, targets: Any = None) -> dict[str, Any]:
        self._maybe_fail()
        meta: dict[str, Any] = {"status": "ok"}
        running = [m for m in self.f.jobs.values() if m["status"] == "RUNNING"]
        if target_type in ("server", "all"):
            meta.update(
                server_status="stopped" if not running else "started",
                server_start_time=1000.0,
                jobs=[{"job_id": m["job_id"], "app_name": "app"} for m in running],
                clients=[
                    {"client_name": "site-1", "client_last_conn_time": 1001.0, "fqcn": "site-1"}
                ],
            )
        if target_type in ("client", "all"):
            meta["client_status"] = [{"client_name": "site-1", "status": "no_jobs"}]
        return meta

    def report_resources(self, target_type: str, targets: Any = None) -> dict[str, str]:
        self._maybe_fail()
        return {"server": "{'num_cpus': 2, 'gpus': []}", "site-1": "not a dict"}

    def __getattr__(self, name: str) -> Callable[..., Any]:
        raise AttributeError(name)
