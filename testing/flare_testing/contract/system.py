"""Contract: system and site operations - system info, status, resources, versions, client
jobs, restart/shutdown, client management, timeouts, local app listing (reference §6, §11.1
#19, #21; DECISIONS §13-§16)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flare_core.errors import (
    ClientsStillRunning,
    InvalidTarget,
    JobNotDone,
    NoClientsAvailable,
    NoConnection,
    SessionClosed,
)
from flare_core.info import ClientInfo, ServerInfo, SystemInfo
from flare_ports.session_spec import SessionSpec
from flare_testing.contract import capabilities as cap
from flare_testing.contract.base import (
    ContractBase,
    OpenSession,
    Users,
    arg_error,
    call,
    nothing_sent,
    running_job,
)
from flare_testing.contract.harness import Harness
from flare_testing.job_folders import JobFolders

__all__ = [
    "ClientManagementContract",
    "LifecycleOpsContract",
    "SessionSettingsContract",
    "SystemInfoContract",
    "TargetValidationContract",
]

TARGETED = ("check_status", "report_resources", "report_version", "restart", "shutdown")
"""Methods taking ``(target_type, targets/client_names)``; validated before sending."""


def _names(clients: list[ClientInfo]) -> list[str]:
    return sorted(client.name for client in clients)


def _targeted(session: SessionSpec, method: str, target_type: Any, targets: Any = None) -> Any:
    if method in ("restart", "shutdown"):
        return call(session, method, target_type, targets, wait=True, timeout=30.0)
    return call(session, method, target_type, targets)


class TargetValidationContract(ContractBase):
    """Target types and client names are checked locally, then on the server (§6.1)."""

    @pytest.mark.parametrize("method", TARGETED)
    @pytest.mark.parametrize("target_type", ["servers", "ALL", "", None])
    def test_unknown_target_type_fails_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        method: str,
        target_type: Any,
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(arg_error(caps, ValueError)):
            _targeted(session, method, target_type)

    @pytest.mark.parametrize("method", TARGETED)
    @pytest.mark.parametrize(
        "targets", ["site-1", ["bad name"], ["site/1"], [3]], ids=["str", "space", "slash", "int"]
    )
    def test_malformed_client_names_fail_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        method: str,
        targets: Any,
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(arg_error(caps, SyntaxError)):
            _targeted(session, method, "client", targets)

    @pytest.mark.parametrize("method", ["check_status", "report_resources", "report_version"])
    def test_unknown_client_is_an_invalid_target(self, session: SessionSpec, method: str) -> None:
        with pytest.raises(InvalidTarget, match="site-unknown"):
            _targeted(session, method, "client", ["site-unknown"])

    @pytest.mark.flare_requires(cap.SITE_CONTROL)
    @pytest.mark.parametrize("method", ["check_status", "report_resources", "report_version"])
    def test_disconnected_client_is_an_invalid_target(
        self, harness: Harness, session: SessionSpec, method: str
    ) -> None:
        gone = harness.sites[0]
        harness.disconnect_site(gone)
        with pytest.raises(InvalidTarget, match=gone):
            _targeted(session, method, "client", [gone])

    @pytest.mark.flare_requires(cap.SITE_CONTROL)
    @pytest.mark.parametrize("method", ["check_status", "report_resources", "report_version"])
    def test_no_connected_client_means_no_clients_available(
        self, harness: Harness, session: SessionSpec, method: str
    ) -> None:
        for site in harness.sites:
            harness.disconnect_site(site)
        with pytest.raises(NoClientsAvailable):
            _targeted(session, method, "client")

    def test_names_are_ignored_unless_the_type_is_client(
        self, caps: frozenset[str], session: SessionSpec
    ) -> None:
        result = session.check_status("server", ["not a valid name"])
        assert ("server" if cap.STATUS_BY_SITE in caps else "server_status") in result


class SystemInfoContract(ContractBase):
    """``get_system_info``, ``get_connected_client_list``, ``check_status``,
    ``report_resources``, ``report_version`` and ``get_client_job_status``."""

    def test_system_info_shape(self, harness: Harness, session: SessionSpec) -> None:
        info = session.get_system_info()
        # By name: the reference's own info classes are as good as ours.
        assert type(info).__name__ == SystemInfo.__name__
        assert type(info.server_info).__name__ == ServerInfo.__name__
        assert isinstance(info.server_info.start_time, float)
        assert _names(info.client_info) == sorted(harness.sites)
        assert all(isinstance(c.last_connect_time, float) for c in info.client_info)
        assert info.job_info == []
        assert str(info).startswith("SystemInfo\nserver_info:\nstatus: ")

    @pytest.mark.flare_requires(cap.SERVER_STATUS_STARTED)
    def test_server_status_is_started_while_up(self, session: SessionSpec) -> None:
        assert session.get_system_info().server_info.status == "started"

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    def test_running_jobs_are_listed(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        (job,) = session.get_system_info().job_info
        assert job.job_id == job_id
        assert isinstance(job.app_name, str)

    def test_connected_client_list(self, harness: Harness, session: SessionSpec) -> None:
        clients = session.get_connected_client_list()
        assert _names(clients) == sorted(harness.sites)
        assert all(type(client).__name__ == ClientInfo.__name__ for client in clients)

    @pytest.mark.flare_requires(cap.SITE_CONTROL)
    def test_connected_client_list_follows_connections(
        self, harness: Harness, session: SessionSpec
    ) -> None:
        harness.disconnect_site(harness.sites[0])
        assert _names(session.get_connected_client_list()) == sorted(harness.sites[1:])
        harness.connect_site("site-new")
        assert _names(session.get_connected_client_list()) == sorted(
            [*harness.sites[1:], "site-new"]
        )

    @pytest.mark.flare_requires(cap.STATUS_BY_SITE)
    @pytest.mark.parametrize(
        ("target_type", "server", "clients"),
        [("server", True, False), ("client", False, True), ("all", True, True)],
    )
    def test_check_status_is_keyed_by_site(
        self,
        harness: Harness,
        session: SessionSpec,
        target_type: str,
        server: bool,
        clients: bool,
    ) -> None:
        status = session.check_status(target_type)
        assert ("server" in status) is server
        for site in harness.sites:
            assert (site in status) is clients
            if clients:
                assert isinstance(status[site], dict)
        if server:
            assert isinstance(status["server"], dict)

    @pytest.mark.flare_requires(cap.STATUS_BY_SITE)
    def test_check_status_of_named_clients(self, harness: Harness, session: SessionSpec) -> None:
        first, second = harness.sites[:2]
        assert first in session.check_status("client", [first])
        assert second not in session.check_status("client", [first])
        both = session.check_status("client", [first, second])
        assert {first, second} <= set(both)

    @pytest.mark.flare_requires(cap.STATUS_BY_SITE)
    @pytest.mark.parametrize("target_type", ["server", "client", "all"])
    def test_resources_are_dicts_keyed_by_site(
        self, harness: Harness, session: SessionSpec, target_type: str
    ) -> None:
        resources = session.report_resources(target_type)
        expected = set()
        if target_type != "client":
            expected.add("server")
        if target_type != "server":
            expected.update(harness.sites)
        assert set(resources) == expected
        assert all(isinstance(value, dict) for value in resources.values())

    @pytest.mark.parametrize("target_type", ["server", "client", "all"])
    def test_versions_per_site(
        self, harness: Harness, session: SessionSpec, target_type: str
    ) -> None:
        versions = session.report_version(target_type)
        expected = set()
        if target_type != "client":
            expected.add("server")
        if target_type != "server":
            expected.update(harness.sites)
        assert set(versions) == expected
        for entry in versions.values():
            assert isinstance(entry, dict)
            assert set(entry) in ({"version"}, {"error"})

    def test_versions_of_named_clients(self, harness: Harness, session: SessionSpec) -> None:
        site = harness.sites[0]
        assert set(session.report_version("client", [site])) == {site}

    def test_client_job_status_without_jobs(self, harness: Harness, session: SessionSpec) -> None:
        rows = session.get_client_job_status()
        assert rows is not None
        assert sorted(row["client_name"] for row in rows) == sorted(harness.sites)
        assert all(row["status"] == "no_jobs" for row in rows)

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    def test_client_job_status_with_a_running_job(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        rows = session.get_client_job_status([harness.sites[0]])
        assert rows is not None
        assert [row["client_name"] for row in rows] == [harness.sites[0]]
        assert rows[0]["job_id"] == job_id
        assert {"client_name", "app_name", "job_id", "status"} <= set(rows[0])

    def test_client_job_status_of_an_unknown_client(self, session: SessionSpec) -> None:
        with pytest.raises(InvalidTarget):
            session.get_client_job_status(["site-unknown"])

    @pytest.mark.flare_requires(cap.CLIENT_STATUS_NONE, cap.SITE_CONTROL)
    def test_client_job_status_is_none_without_clients(
        self, harness: Harness, session: SessionSpec
    ) -> None:
        for site in harness.sites:
            harness.disconnect_site(site)
        assert session.get_client_job_status() is None


@pytest.mark.flare_requires(cap.DESTRUCTIVE_OPS)
class LifecycleOpsContract(ContractBase):
    """``restart``, ``shutdown`` and ``shutdown_system`` (reference §6.7-§6.9; DECISIONS §16)."""

    @pytest.mark.parametrize("method", ["restart", "shutdown"])
    @pytest.mark.parametrize("timeout", [0, -1.0, "soon"])
    def test_wait_needs_a_positive_timeout(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        method: str,
        timeout: Any,
    ) -> None:
        with (
            nothing_sent(harness, caps),
            pytest.raises(arg_error(caps, ValueError), match="timeout must be a positive number"),
        ):
            call(session, method, "server", None, True, timeout)

    def test_restart_server_without_waiting(self, session: SessionSpec) -> None:
        result = session.restart("server", wait=False)
        assert result.get("server_status") == "ok"
        session.list_jobs()

    def test_restart_server_closes_the_session(self, sessions: OpenSession, users: Users) -> None:
        session = sessions()
        before = session.get_system_info().server_info.start_time
        assert isinstance(session.restart("server", timeout=60.0), dict)
        with pytest.raises(SessionClosed):
            session.list_jobs()
        after = sessions(users.admin).get_system_info().server_info.start_time
        assert after != before

    def test_restart_all_closes_the_session(self, harness: Harness, sessions: OpenSession) -> None:
        session = sessions()
        session.restart("all", timeout=60.0)
        with pytest.raises(SessionClosed):
            session.get_system_info()
        assert _names(sessions().get_connected_client_list()) == sorted(harness.sites)

    def test_restart_clients_keeps_the_session(
        self, harness: Harness, session: SessionSpec
    ) -> None:
        site = harness.sites[0]
        session.restart("client", [site], timeout=60.0)
        assert _names(session.get_connected_client_list()) == sorted(harness.sites)

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    @pytest.mark.parametrize("method", ["restart", "shutdown"])
    def test_refused_while_jobs_run(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders, method: str
    ) -> None:
        running_job(harness, session, jobs)
        with pytest.raises(JobNotDone):
            call(session, method, "all", None, False)
        assert session.list_jobs()

    @pytest.mark.flare_requires(cap.SITE_CONTROL)
    @pytest.mark.parametrize("method", ["restart", "shutdown"])
    def test_client_target_without_clients(
        self, harness: Harness, session: SessionSpec, method: str
    ) -> None:
        for site in harness.sites:
            harness.disconnect_site(site)
        with pytest.raises(NoClientsAvailable):
            call(session, method, "client", None, False)

    def test_shutdown_server_with_clients_connected(self, session: SessionSpec) -> None:
        with pytest.raises(ClientsStillRunning):
            session.shutdown("server", wait=False)
        session.list_jobs()

    def test_shutdown_clients_keeps_the_session(self, session: SessionSpec) -> None:
        session.shutdown("client")
        assert session.get_connected_client_list() == []
        session.list_jobs()

    def test_shutdown_named_client(self, harness: Harness, session: SessionSpec) -> None:
        first, *rest = harness.sites
        session.shutdown("client", [first])
        assert _names(session.get_connected_client_list()) == sorted(rest)

    def test_shutdown_server_closes_the_session_without_waiting(
        self, session: SessionSpec, sessions: OpenSession
    ) -> None:
        session.shutdown("client")
        assert isinstance(session.shutdown("server", wait=False), dict)
        with pytest.raises(SessionClosed):
            session.list_jobs()
        with pytest.raises(NoConnection):
            sessions()

    @pytest.mark.parametrize("wait", [True, False])
    def test_shutdown_all_stops_the_system(
        self, session: SessionSpec, sessions: OpenSession, wait: bool
    ) -> None:
        assert isinstance(session.shutdown("all", wait=wait, timeout=60.0), dict)
        with pytest.raises(SessionClosed):
            session.check_status("server")
        with pytest.raises(NoConnection):
            sessions()

    def test_shutdown_system(self, session: SessionSpec, sessions: OpenSession) -> None:
        assert call(session, "shutdown_system") is None
        with pytest.raises(NoConnection):
            sessions()


class ClientManagementContract(ContractBase):
    """``remove_client``, ``disable_client`` and ``enable_client`` (reference §6.11)."""

    @pytest.mark.flare_requires(cap.SITE_REJOIN)
    def test_remove_connected_client(self, harness: Harness, session: SessionSpec) -> None:
        assert call(session, "remove_client", harness.sites[0]) is None

    def test_remove_unknown_client(self, session: SessionSpec) -> None:
        with pytest.raises(InvalidTarget, match="site-unknown"):
            session.remove_client("site-unknown")

    @pytest.mark.flare_requires(cap.SITE_CONTROL)
    def test_remove_without_connected_clients(self, harness: Harness, session: SessionSpec) -> None:
        for site in harness.sites:
            harness.disconnect_site(site)
        with pytest.raises(NoClientsAvailable):
            session.remove_client(harness.sites[0])

    @pytest.mark.parametrize("method", ["remove_client", "disable_client", "enable_client"])
    @pytest.mark.parametrize("name", ["", None, 42])
    def test_bad_client_name_fails_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        method: str,
        name: Any,
    ) -> None:
        with (
            nothing_sent(harness, caps),
            pytest.raises(arg_error(caps, ValueError), match="client_name must be a non-empty str"),
        ):
            call(session, method, name)

    @pytest.mark.flare_requires(cap.SITE_REJOIN)
    def test_disable_is_idempotent(self, harness: Harness, session: SessionSpec) -> None:
        site = harness.sites[0]
        first = session.disable_client(site)
        (entry,) = first["clients"]
        assert entry["client_name"] == site
        assert entry["state"] == "disabled"
        assert entry["already_disabled"] is False
        assert entry["credential_revoked"] is False
        assert entry["rejoin_allowed"] is False
        assert isinstance(entry["active_session_removed"], bool)
        (again,) = session.disable_client(site)["clients"]
        assert again["already_disabled"] is True

    @pytest.mark.flare_requires(cap.SITE_REJOIN)
    def test_disabled_client_is_disconnected(self, harness: Harness, session: SessionSpec) -> None:
        site = harness.sites[0]
        (entry,) = session.disable_client(site)["clients"]
        assert entry["active_session_removed"] is True
        assert site not in _names(session.get_connected_client_list())

    def test_disable_an_offline_client(self, session: SessionSpec) -> None:
        (entry,) = session.disable_client("site-offline")["clients"]
        assert entry["state"] == "disabled"
        assert entry["active_session_removed"] is False

    @pytest.mark.flare_requires(cap.SITE_REJOIN)
    def test_enable_is_idempotent(self, harness: Harness, session: SessionSpec) -> None:
        site = harness.sites[0]
        session.disable_client(site)
        (entry,) = session.enable_client(site)["clients"]
        assert entry == {
            "client_name": site,
            "state": "enabled",
            "was_disabled": True,
            "credential_revoked": False,
            "rejoin_allowed": True,
        }
        (again,) = session.enable_client(site)["clients"]
        assert again["was_disabled"] is False

    @pytest.mark.flare_requires(cap.SITE_CONTROL)
    def test_enabled_client_can_reconnect(self, harness: Harness, session: SessionSpec) -> None:
        site = harness.sites[0]
        session.disable_client(site)
        session.enable_client(site)
        harness.connect_site(site)
        assert site in _names(session.get_connected_client_list())


class SessionSettingsContract(ContractBase):
    """Purely local settings: ``set_timeout``, ``unset_timeout``,
    ``get_available_apps_to_upload`` (reference §6.10, §6.13)."""

    @pytest.mark.parametrize("value", [0.5, 5, 120.0])
    def test_set_timeout_keeps_commands_working(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, value: float
    ) -> None:
        with nothing_sent(harness, caps):
            session.set_timeout(value)
        assert session.list_jobs() == []
        with nothing_sent(harness, caps):
            session.unset_timeout()
        assert session.list_jobs() == []

    @pytest.mark.parametrize("value", [0, -1.0])
    def test_set_timeout_rejects_non_positive_values(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, value: float
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(arg_error(caps, ValueError)):
            session.set_timeout(value)

    @pytest.mark.parametrize("value", ["5", None, [1]])
    def test_set_timeout_rejects_non_numbers(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, value: Any
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises((TypeError, ValueError)):
            session.set_timeout(value)

    def test_available_apps_are_the_upload_dir_folders(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        flare_upload_dir: Path,
    ) -> None:
        for name in ("app-b", "app-a", "hello-numpy-sag"):
            (flare_upload_dir / name).mkdir()
        (flare_upload_dir / "notes.txt").write_text("not an app\n")
        with nothing_sent(harness, caps):
            apps = session.get_available_apps_to_upload()
        assert sorted(apps) == ["app-a", "app-b", "hello-numpy-sag"]

    def test_empty_upload_dir_has_no_apps(self, session: SessionSpec) -> None:
        assert session.get_available_apps_to_upload() == []
