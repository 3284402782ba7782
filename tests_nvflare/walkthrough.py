"""Every ``SessionSpec`` method on a real job, once per certification run.

The contract suite leaves out, on the shared POC, the tests that wait for many jobs to end
(``quick_jobs``: a real federation takes about ten seconds a job). This walkthrough makes sure
that each run still calls every method of ``SessionSpec`` against NVFlare, with one real job
run to its end: submit, watch, results, logs, stats, clone, abort, delete, the shell, studies,
sites and the system reports. ``restart``/``shutdown``/``shutdown_system`` would stop the
POC every test shares; ``test_zz_destructive.py`` runs them last.

Values are checked against the contract where every run agrees (the reference's shapes where
flare-core keeps them); the behaviour where they differ is the contract suite's business.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flare_core import InternalError, InvalidTarget, JobNotRunning, MonitorReturnCode
from flare_ports.session_spec import SessionSpec
from flare_testing.contract import capabilities as cap
from flare_testing.contract.base import ContractBase, OpenSession, Token, Users, pending_job
from flare_testing.job_folders import JobFolders

__all__ = ["EveryMethod"]

STUDY = "walkthrough"


class EveryMethod(ContractBase):
    """One test that calls every ``SessionSpec`` method (the run's mixin comes first)."""

    def test_every_method_on_a_real_job(
        self,
        sessions: OpenSession,
        jobs: JobFolders,
        users: Users,
        caps: frozenset[str],
        token: Token,
        tmp_path: Path,
    ) -> None:
        session = sessions()
        self._system(session, caps)
        job_id = self._job(session, jobs, caps, token, tmp_path)
        self._shell(session)
        self._studies(session, sessions, users, token)
        self._sites(session, job_id)

    def _system(self, session: SessionSpec, caps: frozenset[str]) -> None:
        info = session.get_system_info()
        assert sorted(c.name for c in info.client_info) == ["site-1", "site-2"]
        assert [c.name for c in session.get_connected_client_list()] == [
            c.name for c in info.client_info
        ]
        status = session.check_status("client")
        rows = session.get_client_job_status()
        assert rows is not None
        assert {row["client_name"] for row in rows} == {"site-1", "site-2"}
        if cap.STATUS_BY_SITE in caps:
            assert {"site-1", "site-2"} <= set(status)
            assert all(isinstance(v, dict) for v in session.report_resources("all").values())
        else:
            assert session.report_resources("all")
        versions = session.report_version("all")
        assert set(versions) == {"server", "site-1", "site-2"}
        assert session.get_available_apps_to_upload() == []
        session.set_timeout(30.0)
        session.unset_timeout()
        session.configure_site_log("INFO")

    def _job(
        self,
        session: SessionSpec,
        jobs: JobFolders,
        caps: frozenset[str],
        token: Token,
        tmp_path: Path,
    ) -> str:
        runnable = jobs.hello(deploy_map={"app": ["@ALL"]}, min_clients=2)  # really runs
        job_id = session.submit_job(str(runnable), submit_token=token("walk"))
        assert [r["job_id"] for r in session.list_jobs(submit_token=token("walk"))] == [job_id]
        assert session.get_job_meta(job_id)["job_id"] == job_id
        seen: list[str] = []

        def follow(_session: Any, _job_id: str, meta: dict[str, Any]) -> bool:
            seen.append(str(meta["status"]))
            return True

        rc, meta = session.monitor_job_and_return_job_meta(job_id, 180, 0.5, follow)
        assert rc == MonitorReturnCode.JOB_FINISHED  # by value: the reference has its own enum
        assert meta is not None
        assert meta["status"] == "FINISHED:COMPLETED", seen
        assert session.wait_for_job(job_id, timeout=60)["status"] == "FINISHED:COMPLETED"
        assert session.monitor_job(job_id, 60, 0.5) == MonitorReturnCode.JOB_FINISHED
        # The job-run commands, on the finished job: RUNNING is too brief to aim at on a real
        # clock, and a finished job's answers are fixed (reference §5.2, §6.14).
        with pytest.raises(JobNotRunning):
            session.show_stats(job_id, "server")
        with pytest.raises(JobNotRunning):
            session.show_errors(job_id, "server")
        with pytest.raises(JobNotRunning):
            session.reset_errors(job_id)
        with pytest.raises(InternalError, match="must be running"):
            session.configure_job_log(job_id, "DEBUG")
        logs = session.get_job_logs(job_id, tail_lines=5)
        assert "server" in logs["logs"]
        assert session.list_job_components(job_id) == []
        result = Path(session.download_job_result(job_id, str(tmp_path / "result")))
        assert (result / "meta.json").is_file()
        assert (result / "workspace").is_dir()
        with pytest.raises(InternalError, match="no_job_components"):
            session.download_job_components(job_id)
        # The clone of a real job really runs, to its end, before it is deleted; the abort
        # goes to a job that can never be scheduled. NVFlare 2.9 races both otherwise: an abort
        # that lands as its scheduler picks the job up leaves the job deploying, and a delete
        # then kills NVFlare's job runner (a StorageException in ``set_status``), after which
        # the POC schedules nothing more (docs/nvflare.md).
        clone = session.clone_job(job_id)
        assert session.wait_for_job(clone, timeout=180)["status"] == "FINISHED:COMPLETED"
        session.delete_job(clone)
        parked = pending_job(session, jobs, submit_token=token("walk-parked"))
        abort_result = session.abort_job(parked)
        if cap.ABORT_RETURNS_NONE in caps:
            assert abort_result is None
        assert session.wait_for_job(parked, timeout=60)["status"] == "FINISHED:ABORTED"
        session.delete_job(parked)
        return job_id

    def _shell(self, session: SessionSpec) -> None:
        assert "log.txt" in session.ls_target("server")
        assert session.cat_target("server", file="log.txt")
        assert session.head_target("server", "-n 2", file="log.txt")
        assert session.head_target_log("server")
        assert session.tail_target("server", "-n 2", file="log.txt")
        assert session.tail_target_log("server")
        assert session.grep_target("server", pattern="INFO", file="log.txt")
        assert session.get_working_directory("site-1").strip()

    def _studies(
        self, session: SessionSpec, sessions: OpenSession, users: Users, token: Token
    ) -> None:
        study = f"{STUDY}-{token('s').rsplit('.', 1)[-1]}"[:60].lower().replace(":", "-")
        session.register_study(study, site_orgs=[f"{users.server_org}:site-1"])
        session.add_study_site(study, site_orgs=[f"{users.server_org}:site-2"])
        session.remove_study_site(study, site_orgs=[f"{users.server_org}:site-2"])
        session.add_study_user(study, users.lead)
        assert study in str(session.list_studies())
        assert study in str(session.show_study(study))
        session.remove_study_user(study, users.lead)
        session.remove_study(study)

    def _sites(self, session: SessionSpec, job_id: str) -> None:
        # A site that never connected: NVFlare 2.9 loses the org of a real site that rejoins
        # (``site_rejoin``), which would cost the shared POC its study commands.
        assert session.disable_client("site-offline")["clients"][0]["state"] == "disabled"
        assert session.enable_client("site-offline")["clients"][0]["state"] == "enabled"
        with pytest.raises(InvalidTarget):
            session.remove_client("site-offline")
        session.delete_job(job_id)
        session.close()
