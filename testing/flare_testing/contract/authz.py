"""Contract: authorization under the default policy - who may submit, manage, download, read
logs, operate and use the shell (reference §10.3, §11.1 #25; DECISIONS §19)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pytest

from flare_core.errors import AuthorizationError
from flare_ports.session_spec import SessionSpec
from flare_testing.contract import capabilities as cap
from flare_testing.contract.base import (
    ContractBase,
    OpenSession,
    Users,
    call,
    finished_job,
)
from flare_testing.contract.harness import Harness
from flare_testing.job_folders import JobFolders

__all__ = ["AuthorizationContract"]

ROLES = ("admin", "lead", "member", "org_admin", "other_lead", "other_org_admin")
"""The ``Users`` attributes: project_admin, lead, member and org_admin of the server's org,
and a lead and an org_admin of another org."""

MANAGE = ("abort_job", "delete_job", "download_job_result")

# (actor, owner) -> the job operations the actor may perform on the owner's finished job
JOB_RIGHTS: dict[tuple[str, str], frozenset[str]] = {
    ("admin", "lead"): frozenset({*MANAGE, "clone_job"}),
    ("lead", "lead"): frozenset({*MANAGE, "clone_job"}),
    ("lead", "admin"): frozenset(),
    ("other_lead", "lead"): frozenset(),
    ("org_admin", "lead"): frozenset(MANAGE),
    ("org_admin", "other_lead"): frozenset(),
    ("other_org_admin", "other_lead"): frozenset(MANAGE),
    ("member", "lead"): frozenset(),
}

# DECISIONS §19: logs and components follow the download_job rule.
LOG_RIGHTS: dict[tuple[str, str], bool] = {
    ("admin", "lead"): True,
    ("lead", "lead"): True,
    ("lead", "admin"): False,
    ("org_admin", "lead"): True,
    ("other_org_admin", "lead"): False,
    ("member", "lead"): False,
}

SUBMITTERS = {"admin", "lead", "other_lead"}
OPERATORS = {"admin", "lead", "org_admin"}  # operate and shell: o:site = the server's org


def _expect(allowed: bool) -> AbstractContextManager[object]:
    """Expect the block to succeed, or to raise ``AuthorizationError``."""
    if allowed:
        return nullcontext()
    return pytest.raises(AuthorizationError)


class AuthorizationContract(ContractBase):
    """The default policy, role by role (every request is authorised on the server)."""

    def _as(self, sessions: OpenSession, users: Users, role: str) -> SessionSpec:
        return sessions(getattr(users, role))

    @pytest.mark.parametrize("role", ROLES)
    def test_submit(self, sessions: OpenSession, users: Users, jobs: JobFolders, role: str) -> None:
        session = self._as(sessions, users, role)
        with _expect(role in SUBMITTERS):
            session.submit_job(str(jobs.hello()))

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    @pytest.mark.parametrize("role", ROLES)
    def test_everyone_may_view(
        self, sessions: OpenSession, users: Users, jobs: JobFolders, role: str
    ) -> None:
        job_id = finished_job(sessions(users.lead), jobs)
        session = self._as(sessions, users, role)
        assert [row["job_id"] for row in session.list_jobs()] == [job_id]
        assert session.get_job_meta(job_id)["job_id"] == job_id
        assert "server" in session.check_status("server")
        assert session.get_system_info().server_info.start_time is not None
        assert isinstance(session.list_studies(), dict)

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    @pytest.mark.parametrize("operation", [*MANAGE, "clone_job"])
    @pytest.mark.parametrize(("actor", "owner"), list(JOB_RIGHTS), ids="{0[0]}-on-{0[1]}".format)
    def test_job_rights_follow_the_submitter(
        self,
        sessions: OpenSession,
        users: Users,
        jobs: JobFolders,
        actor: str,
        owner: str,
        operation: str,
    ) -> None:
        job_id = finished_job(self._as(sessions, users, owner), jobs)
        session = self._as(sessions, users, actor)
        with _expect(operation in JOB_RIGHTS[actor, owner]):
            call(session, operation, job_id)

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    @pytest.mark.flare_requires(cap.RELAXED_LOG_RIGHTS)
    @pytest.mark.parametrize("operation", ["get_job_logs", "list_job_components"])
    @pytest.mark.parametrize(("actor", "owner"), list(LOG_RIGHTS), ids="{0[0]}-on-{0[1]}".format)
    def test_logs_follow_the_download_rule(
        self,
        sessions: OpenSession,
        users: Users,
        jobs: JobFolders,
        actor: str,
        owner: str,
        operation: str,
    ) -> None:
        job_id = finished_job(self._as(sessions, users, owner), jobs)
        with _expect(LOG_RIGHTS[actor, owner]):
            call(self._as(sessions, users, actor), operation, job_id)

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    @pytest.mark.parametrize("operation", ["get_job_logs", "list_job_components"])
    def test_project_admin_reads_every_log(
        self, sessions: OpenSession, users: Users, jobs: JobFolders, operation: str
    ) -> None:
        job_id = finished_job(sessions(users.other_lead), jobs)
        call(sessions(users.admin), operation, job_id)

    @pytest.mark.flare_requires(cap.RELAXED_LOG_RIGHTS)
    @pytest.mark.parametrize("role", ROLES)
    def test_report_version_is_a_view_right(
        self, sessions: OpenSession, users: Users, role: str
    ) -> None:
        assert "server" in self._as(sessions, users, role).report_version("server")

    @pytest.mark.parametrize("role", ROLES)
    @pytest.mark.parametrize(
        ("operation", "args"),
        [
            ("report_resources", ("server",)),
            ("configure_site_log", ("INFO",)),
            ("enable_client", ("site-1",)),
            ("disable_client", ("site-offline",)),
        ],
        ids=["report_resources", "configure_site_log", "enable_client", "disable_client"],
    )
    def test_operate_needs_the_server_org(
        self,
        sessions: OpenSession,
        users: Users,
        role: str,
        operation: str,
        args: tuple[Any, ...],
    ) -> None:
        with _expect(role in OPERATORS):
            call(self._as(sessions, users, role), operation, *args)

    @pytest.mark.parametrize("role", ROLES)
    @pytest.mark.parametrize(
        ("operation", "args"),
        [("ls_target", ("server",)), ("get_working_directory", ("server",))],
        ids=["ls", "pwd"],
    )
    def test_server_shell_needs_the_server_org(
        self,
        sessions: OpenSession,
        users: Users,
        role: str,
        operation: str,
        args: tuple[Any, ...],
    ) -> None:
        with _expect(role in OPERATORS):
            call(self._as(sessions, users, role), operation, *args)

    @pytest.mark.parametrize("role", ["member", "other_lead", "other_org_admin"])
    @pytest.mark.parametrize(
        ("operation", "args"),
        [
            ("restart", ("server", None, False)),
            pytest.param(
                "shutdown",
                ("client", None, False),
                marks=pytest.mark.flare_requires(cap.SITE_REFUSALS_TYPED),
            ),
            ("shutdown_system", ()),
            ("remove_client", ("site-1",)),
        ],
        ids=["restart", "shutdown", "shutdown_system", "remove_client"],
    )
    def test_lifecycle_operations_are_refused(
        self,
        sessions: OpenSession,
        users: Users,
        role: str,
        operation: str,
        args: tuple[Any, ...],
    ) -> None:
        with pytest.raises(AuthorizationError):
            call(self._as(sessions, users, role), operation, *args)
        assert sessions(users.admin).get_connected_client_list()

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    @pytest.mark.parametrize("role", ["org_admin", "other_org_admin", "member"])
    def test_clone_is_refused_without_the_clone_right(
        self, sessions: OpenSession, users: Users, jobs: JobFolders, role: str
    ) -> None:
        job_id = finished_job(sessions(users.admin), jobs)
        with pytest.raises(AuthorizationError):
            self._as(sessions, users, role).clone_job(job_id)

    @pytest.mark.flare_requires(cap.USER_ADMIN)
    def test_new_users_get_their_roles_rights(
        self, harness: Harness, sessions: OpenSession, users: Users, jobs: JobFolders
    ) -> None:
        harness.add_user("newlead@nvidia.com", users.server_org, "lead")
        newlead = sessions("newlead@nvidia.com")
        job_id = newlead.submit_job(str(jobs.hello()))
        assert newlead.get_job_meta(job_id)["submitter_role"] == "lead"
        with pytest.raises(AuthorizationError):
            sessions(users.lead).abort_job(job_id)

    @pytest.mark.flare_requires(cap.USER_ADMIN)
    def test_a_role_without_a_policy_entry_may_do_nothing(
        self, harness: Harness, sessions: OpenSession, users: Users
    ) -> None:
        harness.add_user("auditor@nvidia.com", users.server_org, "auditor")
        auditor = sessions("auditor@nvidia.com")
        with pytest.raises(AuthorizationError):
            auditor.list_jobs()
        with pytest.raises(AuthorizationError):
            auditor.check_status("server")

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_denials_change_nothing(
        self, sessions: OpenSession, users: Users, jobs: JobFolders
    ) -> None:
        job_id = finished_job(sessions(users.admin), jobs)
        member = sessions(users.member)
        with pytest.raises(AuthorizationError):
            member.delete_job(job_id)
        with pytest.raises(AuthorizationError):
            member.submit_job(str(jobs.hello()))
        assert [row["job_id"] for row in member.list_jobs()] == [job_id]
