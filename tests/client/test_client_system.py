"""System, site and stats flows over a scripted transport (reference §6, §8; DECISIONS
§13-§16): commands sent, local validation, SystemInfo building, restart/shutdown waits and
session closing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flare_core import (
    CheckStatus,
    ClientInfo,
    ClientsStillRunning,
    ConfigureSiteLog,
    DisableClient,
    EnableClient,
    InternalError,
    InvalidArgumentError,
    JobNotDone,
    Logout,
    NoClientsAvailable,
    NoConnection,
    RemoveClient,
    ReportResources,
    ReportVersion,
    ResetErrors,
    Restart,
    SessionClosed,
    ShowErrors,
    ShowStats,
    Shutdown,
)
from flare_core.flows import client_job_rows, system_info_from_status
from tests.client.scripted import ScriptedTransport, make_session, ok, problem

JOB = "5e3f1d2c-7b6a-4e5f-9a8b-1c2d3e4f5a6b"


def status(
    start: float = 1000.0,
    clients: dict[str, float] | None = None,
    jobs: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "server": {"status": "started", "start_time": start, "jobs": jobs or []},
        "server_status": "started",
        "server_start_time": start,
        "jobs": jobs or [],
    }
    if clients:
        value["clients"] = [
            {"client_name": n, "client_last_conn_time": t, "fqcn": n} for n, t in clients.items()
        ]
    return value


# --- system info ------------------------------------------------------------------------------


def test_get_system_info_builds_the_value_objects(tmp_path: Path) -> None:
    value = status(
        1234.5,
        {"site-1": 10.0, "site-2": 11.0},
        [{"job_id": JOB, "app_name": "app"}, {"job_id": "j2"}],
    )
    transport = ScriptedTransport(ok(value))
    session = make_session(transport, str(tmp_path))
    info = session.get_system_info()
    assert transport.sent == [CheckStatus(target_type="server")]
    assert (info.server_info.status, info.server_info.start_time) == ("started", 1234.5)
    assert info.client_info == [ClientInfo("site-1", 10.0), ClientInfo("site-2", 11.0)]
    assert [(j.job_id, j.app_name) for j in info.job_info] == [(JOB, "app"), ("j2", "?")]


def test_system_info_without_clients_or_start_time() -> None:
    info = system_info_from_status({"server": {"status": "started"}})
    assert info.client_info == []
    assert info.job_info == []
    assert info.server_info.start_time is None
    assert "start_time: unknown" in str(info.server_info)


def test_system_info_requires_a_server_entry(tmp_path: Path) -> None:
    session = make_session(ScriptedTransport(ok({"site-1": {}})), str(tmp_path))
    with pytest.raises(InternalError, match="no server status"):
        session.get_system_info()


def test_get_connected_client_list(tmp_path: Path) -> None:
    session = make_session(ScriptedTransport(ok(status(clients={"site-1": 3.0}))), str(tmp_path))
    assert session.get_connected_client_list() == [ClientInfo("site-1", 3.0)]


# --- target handling ----------------------------------------------------------------------------


def test_check_status_sends_each_client_name(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({"site-1": {}, "site-2": {}}))
    session = make_session(transport, str(tmp_path))
    assert session.check_status("client", ["site-1", "site-2"]) == {"site-1": {}, "site-2": {}}
    assert transport.sent == [CheckStatus(target_type="client", targets=["site-1", "site-2"])]


@pytest.mark.parametrize("kind", ["server", "all"])
def test_targets_only_travel_for_client(tmp_path: Path, kind: str) -> None:
    transport = ScriptedTransport(default=ok({}))
    session = make_session(transport, str(tmp_path))
    session.check_status(kind, ["site-1"])
    session.report_resources(kind, ["site-1"])
    session.report_version(kind, ["site-1"])
    assert transport.sent == [
        CheckStatus(target_type=kind),
        ReportResources(target_type=kind),
        ReportVersion(target_type=kind),
    ]


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("check_status", ()),
        ("report_resources", ()),
        ("report_version", ()),
        ("restart", ()),
        ("shutdown", ()),
        ("show_stats", (JOB,)),
        ("show_errors", (JOB,)),
    ],
)
def test_unknown_target_type_is_rejected_before_sending(
    tmp_path: Path, method: str, args: tuple[str, ...]
) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    target_first = method in ("show_stats", "show_errors")
    call_args = (*args, "everyone") if target_first else ("everyone",)
    with pytest.raises(InvalidArgumentError, match=method):
        getattr(session, method)(*call_args)
    assert transport.sent == []


@pytest.mark.parametrize("targets", ["site-1", ["bad name"], [3]])
def test_malformed_client_targets_are_rejected(tmp_path: Path, targets: object) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidArgumentError):
        session.check_status("client", targets)  # type: ignore[arg-type]  # on purpose
    assert transport.sent == []


def test_report_resources_and_version_pass_values_through(tmp_path: Path) -> None:
    resources = {"server": {"cpus": 4}, "site-1": {"cpus": 2}}
    versions = {"server": {"version": "0.1.0"}, "site-1": {"version": "0.1.0"}}
    transport = ScriptedTransport(ok(resources), ok(versions))
    session = make_session(transport, str(tmp_path))
    assert session.report_resources("all") == resources
    assert session.report_version("client", ["site-1"]) == versions
    assert transport.sent[1] == ReportVersion(target_type="client", targets=["site-1"])


# --- client job status ---------------------------------------------------------------------------


def test_get_client_job_status_returns_reference_rows(tmp_path: Path) -> None:
    rows = [
        {"client_name": "site-1", "app_name": "app", "job_id": JOB, "status": "started"},
        {"client_name": "site-2", "status": "no_jobs"},
    ]
    transport = ScriptedTransport(ok({"site-1": {}, "site-2": {}, "client_status": rows}))
    session = make_session(transport, str(tmp_path))
    assert session.get_client_job_status(["site-1", "site-2"]) == rows
    assert transport.sent == [CheckStatus(target_type="client", targets=["site-1", "site-2"])]


def test_client_rows_are_derived_from_site_entries() -> None:
    value = {
        "site-1": {"status": "started", "jobs": [{"job_id": JOB, "app_name": "a", "status": "s"}]},
        "site-2": {"status": "started", "jobs": []},
    }
    assert client_job_rows(value) == [
        {"client_name": "site-1", "app_name": "a", "job_id": JOB, "status": "s"},
        {"client_name": "site-2", "status": "no_jobs"},
    ]


def test_get_client_job_status_is_none_without_clients(tmp_path: Path) -> None:
    transport = ScriptedTransport(problem(NoClientsAvailable("no clients available")))
    session = make_session(transport, str(tmp_path))
    assert session.get_client_job_status() is None


# --- restart -----------------------------------------------------------------------------------


def test_restart_server_waits_for_a_new_start_time_then_closes(tmp_path: Path) -> None:
    transport = ScriptedTransport(
        ok(status(1000.0)),  # snapshot
        ok({"server_status": "ok"}),  # restart
        ok(status(1000.0)),  # poll: not yet
        ok(status(1001.0)),  # poll: restarted
    )
    session = make_session(transport, str(tmp_path))
    assert session.restart("server") == {"server_status": "ok"}
    assert transport.ops == ["CheckStatus", "Restart", "CheckStatus", "CheckStatus", "Logout"]
    assert transport.of(Restart) == [Restart(target_type="server")]
    assert transport.sleeps == [(0.5, None)]
    assert session.closed
    assert transport.close_count == 1
    with pytest.raises(SessionClosed, match="session closed"):
        session.list_jobs()


def test_restart_without_wait_keeps_the_session(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({"server_status": "ok"}), ok([]))
    session = make_session(transport, str(tmp_path))
    assert session.restart("server", wait=False) == {"server_status": "ok"}
    assert session.list_jobs() == []
    assert transport.ops == ["Restart", "ListJobs"]


@pytest.mark.parametrize("timeout", [0, -3])
@pytest.mark.parametrize("method", ["restart", "shutdown"])
def test_wait_requires_a_positive_timeout(tmp_path: Path, method: str, timeout: float) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidArgumentError, match="timeout must be a positive number"):
        getattr(session, method)("server", None, True, timeout)
    assert transport.sent == []


def test_restart_timeout_raises_and_still_closes(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok(status(5.0)), ok({}), default=ok(status(5.0)))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(TimeoutError, match="server did not restart within 2 seconds"):
        session.restart("server", timeout=2)
    assert session.closed
    assert transport.ops[-1] == "Logout"


def test_restart_counts_a_down_server_as_restarting(tmp_path: Path) -> None:
    transport = ScriptedTransport(
        ok(status(5.0)), ok({}), NoConnection("restarting"), ok(status(5.0))
    )
    session = make_session(transport, str(tmp_path))
    session.restart("server")
    assert transport.ops == ["CheckStatus", "Restart", "CheckStatus", "CheckStatus", "Logout"]


def test_restart_with_unknown_previous_start_completes_at_once(tmp_path: Path) -> None:
    transport = ScriptedTransport(
        problem(InternalError("server internal error")), ok({}), ok(status(5.0))
    )
    session = make_session(transport, str(tmp_path))
    session.restart("server")
    assert transport.ops == ["CheckStatus", "Restart", "CheckStatus", "Logout"]


def test_restart_all_waits_for_clients_to_reconnect(tmp_path: Path) -> None:
    before = status(5.0, {"site-1": 1.0, "site-2": 1.0})
    transport = ScriptedTransport(
        ok(before),
        ok({"server_status": "ok", "client_status": {"site-1": "ok", "site-2": "ok"}}),
        ok(status(6.0, {"site-1": 1.0, "site-2": 1.0})),  # server back, clients not yet
        ok(status(6.0, {"site-1": 2.0, "site-2": 1.0})),  # clients poll: one back
        ok(status(6.0, {"site-1": 2.0, "site-2": 3.0})),  # both back
    )
    session = make_session(transport, str(tmp_path))
    session.restart("all")
    assert transport.of(Restart) == [Restart(target_type="all")]
    assert transport.ops.count("CheckStatus") == 4
    assert session.closed


def test_restart_clients_keeps_the_session_open(tmp_path: Path) -> None:
    transport = ScriptedTransport(
        ok(status(5.0, {"site-1": 1.0, "site-2": 1.0})),
        ok({"client_status": {"site-1": "ok"}}),
        ok(status(5.0, {"site-1": 4.0, "site-2": 1.0})),
    )
    session = make_session(transport, str(tmp_path))
    session.restart("client", ["site-1"])
    assert transport.of(Restart) == [Restart(target_type="client", targets=["site-1"])]
    assert not session.closed


def test_restart_refused_while_jobs_run_keeps_the_session(tmp_path: Path) -> None:
    refusal = JobNotDone("There are still jobs running.")
    transport = ScriptedTransport(ok(status()), problem(refusal))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(JobNotDone):
        session.restart("server")
    assert not session.closed


def test_restart_is_never_replayed(tmp_path: Path) -> None:
    transport = ScriptedTransport(NoConnection("lost"))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(NoConnection):
        session.restart("server", wait=False)
    assert transport.ops == ["Restart"]


# --- shutdown ---------------------------------------------------------------------------------


def test_shutdown_server_without_wait_closes_the_session(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({"server_status": "stopped"}))
    session = make_session(transport, str(tmp_path))
    assert session.shutdown("server", wait=False) == {"server_status": "stopped"}
    assert transport.sent == [Shutdown(target_type="server"), Logout()]
    assert session.closed
    with pytest.raises(SessionClosed):
        session.check_status("server")


def test_shutdown_server_waits_until_it_stops_answering(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({}), ok(status()), NoConnection("gone"))
    session = make_session(transport, str(tmp_path))
    session.shutdown("all")
    assert transport.ops == ["Shutdown", "CheckStatus", "CheckStatus", "Logout"]
    assert session.closed


def test_shutdown_server_timeout(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({}), default=ok(status()))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(TimeoutError, match=r"server did not stop within 1\.5 seconds"):
        session.shutdown("server", timeout=1.5)
    assert session.closed


def test_shutdown_refused_keeps_the_session(tmp_path: Path) -> None:
    transport = ScriptedTransport(problem(ClientsStillRunning("one or more clients")))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(ClientsStillRunning):
        session.shutdown("server")
    assert not session.closed


def test_shutdown_is_retried(tmp_path: Path) -> None:
    transport = ScriptedTransport(NoConnection("x"), ok({}))
    session = make_session(transport, str(tmp_path))
    session.shutdown("server", wait=False)
    assert transport.ops == ["Shutdown", "Shutdown", "Logout"]


def test_shutdown_clients_waits_for_them_to_leave(tmp_path: Path) -> None:
    transport = ScriptedTransport(
        ok({"client_status": {"site-1": "shutdown"}}),
        ok(status(clients={"site-1": 1.0, "site-2": 1.0})),
        ok(status(clients={"site-2": 1.0})),
    )
    session = make_session(transport, str(tmp_path))
    session.shutdown("client", ["site-1"])
    assert transport.sent[0] == Shutdown(target_type="client", targets=["site-1"])
    assert transport.ops == ["Shutdown", "CheckStatus", "CheckStatus"]
    assert not session.closed


def test_shutdown_all_clients_waits_until_none_is_left(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({}), ok(status(clients={"site-2": 1.0})), ok(status()))
    session = make_session(transport, str(tmp_path))
    session.shutdown("client")
    assert transport.ops == ["Shutdown", "CheckStatus", "CheckStatus"]


def test_shutdown_system_keeps_the_session_open(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({}))
    session = make_session(transport, str(tmp_path))
    shutdown_system: Callable[[], object] = session.shutdown_system
    assert shutdown_system() is None
    assert transport.sent == [Shutdown(target_type="all")]
    assert not session.closed


# --- clients, site log, apps --------------------------------------------------------------------


def test_client_admin_commands(tmp_path: Path) -> None:
    disabled = {"clients": [{"client_name": "site-1", "state": "disabled"}]}
    enabled = {"clients": [{"client_name": "site-1", "state": "enabled"}]}
    transport = ScriptedTransport(ok(None), ok(disabled), ok(enabled))
    session = make_session(transport, str(tmp_path))
    remove_client: Callable[[str], object] = session.remove_client
    assert remove_client("site-1") is None
    assert session.disable_client("site-1") == disabled
    assert session.enable_client("site-1") == enabled
    assert transport.sent == [
        RemoveClient(client_name="site-1"),
        DisableClient(client_name="site-1"),
        EnableClient(client_name="site-1"),
    ]


@pytest.mark.parametrize("method", ["remove_client", "disable_client", "enable_client"])
@pytest.mark.parametrize("name", ["", None, 5])
def test_client_names_are_checked_locally(tmp_path: Path, method: str, name: object) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidArgumentError, match="client_name must be a non-empty str"):
        getattr(session, method)(name)
    assert transport.sent == []


def test_configure_site_log(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({"server": "log config updated"}))
    session = make_session(transport, str(tmp_path))
    assert session.configure_site_log("DEBUG", "server") == {"server": "log config updated"}
    assert transport.sent == [ConfigureSiteLog(config="DEBUG", target="server")]


@pytest.mark.parametrize("config", [{"version": 1}, "/etc/logging.conf", "99"])
def test_configure_site_log_rejects_non_levels(tmp_path: Path, config: object) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidArgumentError, match="only supports log levels"):
        session.configure_site_log(config)
    assert transport.sent == []


def test_available_apps_are_the_upload_dir_folders(tmp_path: Path) -> None:
    upload = tmp_path / "upload"
    (upload / "job-a").mkdir(parents=True)
    (upload / "job-b").mkdir()
    (upload / "notes.txt").write_text("x")
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    assert sorted(session.get_available_apps_to_upload()) == ["job-a", "job-b"]
    assert transport.sent == []


def test_available_apps_without_upload_dir(tmp_path: Path) -> None:
    assert make_session(ScriptedTransport(), str(tmp_path)).get_available_apps_to_upload() == []


# --- stats --------------------------------------------------------------------------------------


def test_stats_commands(tmp_path: Path) -> None:
    stats = {"server": {"ServerRunner": {"round": 1}}}
    transport = ScriptedTransport(ok(stats), ok(None), ok("reset the server error stats"))
    session = make_session(transport, str(tmp_path))
    assert session.show_stats(JOB, "server") == stats
    assert session.show_errors(JOB, "client", ["site-1"]) == {}
    reset_errors: Callable[[str], object] = session.reset_errors
    assert reset_errors(JOB) is None
    assert transport.sent == [
        ShowStats(job_id=JOB, target_type="server"),
        ShowErrors(job_id=JOB, target_type="client", targets=["site-1"]),
        ResetErrors(job_id=JOB, target_type="all"),
    ]


@pytest.mark.parametrize("method", ["show_stats", "show_errors"])
@pytest.mark.parametrize("bad", ["", None, 7])
def test_stats_reject_bad_job_ids_with_value_errors(
    tmp_path: Path, method: str, bad: object
) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidArgumentError):
        getattr(session, method)(bad, "server")
    with pytest.raises(InvalidArgumentError):
        session.reset_errors(bad)  # type: ignore[arg-type]  # the wrong type is the point
    assert transport.sent == []
