"""One harness for the three certification runs on one real NVFlare POC.

A POC takes about 12 s to prepare and start, so the whole certification shares one (started by
``conftest.py``) and each test isolates itself inside it instead of getting a fresh system:

* jobs a test submits are aborted (when live) and deleted after it, in every study;
* studies a test registers are removed after it (once their jobs are gone);
* client sites a test disabled are enabled again.

``list_jobs`` therefore starts each test as empty as on a fresh system, and the same contract
tests pass on the fake, on our server and here. The harness declares no back door it does not
have: time is real, jobs cannot be held, sites cannot be connected or disconnected, users and
studies cannot be written behind NVFlare's back.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from flare_adapters.nvflare.commands import delete_past_scheduler_race
from flare_adapters.nvflare.errors import same_name
from flare_adapters.nvflare.kits import KitUser
from flare_adapters.nvflare.pool import open_nvflare_session
from flare_core.errors import JobNotFound
from flare_testing.contract import Users
from flare_testing.job_folders import JobFolders
from flare_testing.nvflare_poc import Poc

__all__ = ["USERS", "FastJobs", "PocHarness"]

USERS = Users(
    admin="admin@nvidia.com",
    lead="lead@nvidia.com",
    member="member@nvidia.com",
    org_admin="org-admin@nvidia.com",
    other_lead="lead@other.org",
    other_org_admin="org-admin@other.org",
    server_org="nvidia",
    other_org="other",
)
"""The contract's six roles, as the POC's admin kits name them (``nvflare_poc.ADMIN_USERS``)."""

_TERMINAL_POLL = 0.25
_CLEANUP_TIMEOUT = 60.0
_REABORT_AFTER = 5.0  # seconds a live job gets to end after an abort before another
_RECONNECT_TIMEOUT = 120.0


class FastJobs(JobFolders):
    """``hello-numpy-sag`` variants for a real federation shared by every test.

    A variant runs one round unless a test asks for more. One without a deploy map of its own
    keeps ``@ALL`` but wants one client more than the POC has, so NVFlare accepts it and never
    schedules it: the tests that run here never wait for a job to end (``quick_jobs`` is off),
    so none should start one whose abort every clean-up would then wait out (a real job takes
    about ten seconds, an abort three). ``@ALL`` keeps such jobs valid in every study, where a
    never-connecting mandatory site would not be enrolled. ``walkthrough.py`` runs real jobs.
    """

    def hello(self, folder_name: str = "hello-numpy-sag", **variant: Any) -> Path:
        """Write a variant (see the class docstring for the defaults)."""
        if variant.get("num_rounds") is None:
            variant["num_rounds"] = 1
        if variant.get("deploy_map") is None and variant.get("min_clients") is None:
            variant["min_clients"] = len(self.sites) + 1
        return super().hello(folder_name, **variant)


class _Admin:
    """The project admin's own NVFlare sessions (one per study), for the harness's chores."""

    def __init__(self, poc: Poc) -> None:
        self._user = KitUser(name=USERS.admin, kit=str(poc.admin_kit(USERS.admin)))
        self._sessions: dict[str, Any] = {}
        self._lock = threading.Lock()

    def session(self, study: str = "default") -> Any:
        with self._lock:
            session = self._sessions.get(study)
            if session is None:
                session = open_nvflare_session(self._user, study, 30.0)
                self._sessions[study] = session
            return session

    def forget(self, study: str) -> None:
        with self._lock:
            session = self._sessions.pop(study, None)
        if session is not None:
            with contextlib.suppress(Exception):
                session.close()

    def close(self) -> None:
        for study in list(self._sessions):
            self.forget(study)


class PocHarness:
    """The contract ``Harness`` of the shared POC (``sites`` and ``job_meta`` only)."""

    def __init__(self, poc: Poc) -> None:
        self.poc = poc
        self.admin = _Admin(poc)

    @property
    def sites(self) -> tuple[str, ...]:
        """The POC's client sites."""
        return self.poc.sites

    def kit(self, user: str) -> str:
        """The admin kit folder of ``user`` (for an unknown user, a folder that does not
        exist: NVFlare knows admins only by their kits)."""
        if user not in self.poc.users:
            return str(self.poc.project_dir / user)
        return str(self.poc.admin_kit(user))

    @property
    def kits(self) -> Mapping[str, str]:
        """Every user's kit folder."""
        return {user: self.kit(user) for user in self.poc.users}

    def job_meta(self, job_id: str) -> dict[str, Any]:
        """A job's meta, read with the admin's session.

        Raises:
            KeyError: no such job.
        """
        try:
            return dict(self.admin.session().get_job_meta(job_id))
        except Exception as exc:
            if type(exc).__name__ == "JobNotFound":
                raise KeyError(job_id) from None
            raise

    # --- isolation ----------------------------------------------------------------------

    def _studies(self) -> set[str]:
        payload = self.admin.session().list_studies()
        return {str(s) for s in payload.get("studies", [])} | {"default"}

    def _job_ids(self, study: str) -> set[str]:
        return {str(row["job_id"]) for row in self.admin.session(study).list_jobs()}

    @contextlib.contextmanager
    def isolated(self) -> Iterator[None]:
        """After the block, remove every job and study and reconnect every site.

        The POC starts empty, so "as it started" means no job in any study and no study: a job
        a failed cleanup left behind goes at the next test's cleanup instead of leaking into
        every later listing.
        """
        try:
            yield
        finally:
            self._clean()

    def _clean(self) -> None:
        studies = self._studies()
        for job_id in sorted(self._job_ids("default")):
            self._delete("default", job_id)
        for study in sorted(studies - {"default"}):
            # The project admin may not be a member of a study a test registered: join it to
            # see (and delete) its jobs, which must go before the study can.
            with contextlib.suppress(Exception):
                self.admin.session().add_study_user(study, USERS.admin)
            try:
                for job_id in sorted(self._job_ids(study)):
                    self._delete(study, job_id)
            finally:
                self.admin.forget(study)
            self.admin.session().remove_study(study)
        self._reconnect_sites()

    def _running(self) -> set[str]:
        raw = self.admin.session().check_status("server")
        return {str(row.get("job_id")) for row in raw.get("jobs") or []}

    def _delete(self, study: str, job_id: str) -> None:
        # As the backend does: NVFlare wedges if a job goes while its runner still holds it.
        # NVFlare 2.9 also loses an abort that lands as its scheduler picks the job up (the job
        # runs on, docs/nvflare.md): a job still live a while after the abort is aborted again.
        # And a delete can lose a race with the scheduler's rewrite of the job's meta: the
        # backend's retry serves here too.
        session = self.admin.session(study)
        with contextlib.suppress(Exception):
            session.abort_job(job_id)
        aborted_at = time.monotonic()
        deadline = aborted_at + _CLEANUP_TIMEOUT
        while True:
            status = str(session.get_job_meta(job_id).get("status", ""))
            settled = status.startswith("FINISHED") or status == "SUBMITTED"
            if settled and job_id not in self._running():
                break
            if time.monotonic() >= deadline:
                break  # delete_job reports what is left
            if not settled and time.monotonic() - aborted_at >= _REABORT_AFTER:
                with contextlib.suppress(Exception):
                    session.abort_job(job_id)
                aborted_at = time.monotonic()
            time.sleep(_TERMINAL_POLL)
        try:
            delete_past_scheduler_race(
                lambda: session.delete_job(job_id), pause=_TERMINAL_POLL, gone=None
            )
        except Exception as exc:
            if not isinstance(same_name(exc), JobNotFound):
                raise  # NVFlare's JobNotFound: gone already, which is all cleanup wants

    def _reconnect_sites(self) -> None:
        # A test may have disabled or removed a site: enable it and wait until it registered
        # again, so the next test finds the system as it started.
        session = self.admin.session()
        connected = {c.name for c in session.get_system_info().client_info}
        missing = [site for site in self.sites if site not in connected]
        if not missing:
            return
        for site in missing:
            with contextlib.suppress(Exception):
                session.enable_client(site)
        deadline = time.monotonic() + _RECONNECT_TIMEOUT
        while time.monotonic() < deadline:
            connected = {c.name for c in session.get_system_info().client_info}
            if all(site in connected for site in self.sites):
                return
            time.sleep(_TERMINAL_POLL)
        raise AssertionError(f"sites {missing} did not reconnect within {_RECONNECT_TIMEOUT} s")

    def close(self) -> None:
        """Close the admin's sessions."""
        self.admin.close()
