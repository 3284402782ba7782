"""System commands: status, targets, resources, version, restart, shutdown, clients, shell,
stats."""

from __future__ import annotations

import pytest

from flare_core import (
    AbortJob,
    AuthenticationError,
    CheckStatus,
    ConfigureSiteLog,
    DisableClient,
    EnableClient,
    InvalidArgumentError,
    RemoveClient,
    ReportResources,
    ReportVersion,
    ResetErrors,
    Restart,
    ShellCommand,
    ShowErrors,
    ShowStats,
    Shutdown,
)
from tests.service.helpers import (
    ADMIN,
    DEFAULT_META,
    LEAD,
    MEMBER,
    OTHER_LEAD,
    Harness,
    job_zip,
)

EPOCH = 1_700_000_000.0

# --- check_status and targets ----------------------------------------------------------------


def test_check_status_server_has_the_reference_keys_and_the_server_entry() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    h.advance(1.0)
    value = h.ok(admin, CheckStatus(target_type="server"))
    jobs = [{"job_id": job_id, "app_name": "app"}]
    assert value["server"] == {"status": "started", "start_time": EPOCH, "jobs": jobs}
    assert value["server_status"] == "started"
    assert value["server_start_time"] == EPOCH
    assert value["jobs"] == jobs
    assert value["clients"] == [
        {"client_name": "site-1", "client_last_conn_time": EPOCH, "fqcn": "site-1"},
        {"client_name": "site-2", "client_last_conn_time": EPOCH, "fqcn": "site-2"},
    ]
    assert "client_status" not in value
    assert "site-1" not in value


def test_check_status_clients_lists_jobs_per_site() -> None:
    h = Harness(sites=("site-1", "site-2", "site-3"))
    admin = h.login()
    meta = {**DEFAULT_META, "deploy_map": {"app": ["server", "site-1"]}, "min_clients": 1}
    job_id = h.submit(admin, job_zip(meta=meta))
    h.advance(1.0)
    value = h.ok(admin, CheckStatus(target_type="client", targets=["site-1", "site-2"]))
    assert value["client_status"] == [
        {"client_name": "site-1", "job_id": job_id, "app_name": "app", "status": "started"},
        {"client_name": "site-2", "status": "no_jobs"},
    ]
    assert value["site-1"]["jobs"] == [{"job_id": job_id, "app_name": "app", "status": "started"}]
    assert value["site-2"] == {"status": "started", "last_connect_time": EPOCH, "jobs": []}
    assert "server" not in value
    everything = h.ok(admin, CheckStatus(target_type="all"))
    assert {"server", "site-1", "site-2", "site-3", "client_status", "clients"} <= set(everything)


def test_target_errors() -> None:
    h = Harness()
    admin = h.login()
    problem = h.problem(admin, CheckStatus(target_type="client", targets=["site-1", "ghost"]))
    assert (problem.code, problem.message) == ("invalid_target", "invalid client(s): ghost")
    problem = h.problem(admin, CheckStatus(target_type="everyone"))
    assert (problem.code, problem.message) == ("invalid_target", "unknown target type everyone")
    h.service.disconnect_site("site-1")
    h.service.disconnect_site("site-2")
    problem = h.problem(admin, CheckStatus(target_type="client"))
    assert (problem.code, problem.message) == ("no_clients", "no clients available")
    problem = h.problem(admin, CheckStatus(target_type="all"))
    assert (problem.code, problem.message) == ("internal_error", "error: no responses from clients")
    assert "clients" not in h.ok(admin, CheckStatus(target_type="server"))


def test_study_sessions_see_only_enrolled_clients() -> None:
    h = Harness(sites=("site-1", "site-2", "site-3"))
    h.service.add_study("cancer", {"nvidia": ["site-1", "site-3"]}, [ADMIN])
    admin = h.login(study="cancer")
    rows = h.ok(admin, CheckStatus(target_type="all"))["client_status"]
    assert [r["client_name"] for r in rows] == ["site-1", "site-3"]
    problem = h.problem(admin, CheckStatus(target_type="client", targets=["site-2"]))
    assert (problem.code, problem.message) == (
        "invalid_target",
        "site 'site-2' is not enrolled in study 'cancer'",
    )


def test_resources_and_versions_are_dicts_per_site() -> None:
    h = Harness()
    admin = h.login()
    assert h.ok(admin, ReportResources(target_type="all")) == {
        "server": {"resources": "unlimited"},
        "site-1": {"num_of_gpus": 0, "mem_per_gpu_in_GiB": 0},
        "site-2": {"num_of_gpus": 0, "mem_per_gpu_in_GiB": 0},
    }
    h.service.connect_site("site-3", "nvidia", version="2.9.0")
    assert h.ok(admin, ReportVersion(target_type="client", targets=["site-3", "site-1"])) == {
        "site-3": {"version": "2.9.0"},
        "site-1": {"version": "0.1.0"},
    }
    assert h.ok(h.login(MEMBER), ReportVersion(target_type="server")) == {
        "server": {"version": "0.1.0"}
    }


def test_operate_rights_need_the_servers_org() -> None:
    h = Harness()
    assert h.ok(h.login(LEAD), ReportResources(target_type="server"))
    problem = h.problem(h.login(OTHER_LEAD), ReportResources(target_type="server"))
    assert problem.code == "not_authorized"
    assert h.problem(h.login(MEMBER), Restart(target_type="client")).code == "not_authorized"


# --- restart and shutdown --------------------------------------------------------------------


def test_restart_refuses_while_a_job_runs() -> None:
    h = Harness()
    admin = h.login()
    h.submit(admin)
    h.advance(1.0)
    problem = h.problem(admin, Restart(target_type="server"))
    assert problem.code == "job_not_done"
    assert problem.message.startswith("There are still jobs running.")


def test_restart_server_gives_new_start_and_connect_times() -> None:
    h = Harness()
    admin = h.login()
    value = h.ok(admin, Restart(target_type="all"))
    assert value == {"server_status": "ok", "client_status": {"site-1": "ok", "site-2": "ok"}}
    status = h.ok(admin, CheckStatus(target_type="server"))
    assert status["server_start_time"] > EPOCH
    assert all(c["client_last_conn_time"] > EPOCH for c in status["clients"])
    h.advance(5.0)
    value = h.ok(admin, Restart(target_type="client", targets=["site-2"]))
    assert value == {"client_status": {"site-2": "ok"}}
    clients = h.ok(admin, CheckStatus(target_type="server"))["clients"]
    assert [c["client_last_conn_time"] for c in clients][1] == EPOCH + 5.0


def test_shutdown_server_with_clients_connected_is_refused() -> None:
    h = Harness()
    problem = h.problem(h.login(), Shutdown(target_type="server"))
    assert (problem.code, problem.message) == (
        "clients_running",
        "one or more clients are still running",
    )


def test_shutdown_clients_then_all() -> None:
    h = Harness()
    admin = h.login()
    assert h.ok(admin, Shutdown(target_type="client", targets=["site-1"])) == {
        "client_status": {"site-1": "shutdown"}
    }
    assert [s.name for s in h.service.sites() if s.connected] == ["site-2"]
    assert h.ok(admin, Shutdown(target_type="all")) == {
        "client_status": {"site-2": "shutdown"},
        "server_status": "stopped",
    }
    assert h.problem(admin, CheckStatus(target_type="server")).code == "no_connection"


# --- clients ---------------------------------------------------------------------------------


def test_remove_client() -> None:
    h = Harness()
    admin = h.login()
    assert h.ok(admin, RemoveClient(client_name="site-1")) is None
    problem = h.problem(admin, RemoveClient(client_name="site-1"))
    assert (problem.code, problem.message) == ("invalid_target", "invalid client(s): site-1")
    h.service.connect_site("site-1", "nvidia")  # it may come back
    h.service.disconnect_site("site-1")
    h.service.disconnect_site("site-2")
    assert h.problem(admin, RemoveClient(client_name="site-2")).code == "no_clients"


def test_disable_and_enable_are_idempotent_and_block_reconnects() -> None:
    h = Harness()
    admin = h.login()
    first = h.ok(admin, DisableClient(client_name="site-1"))
    assert first == {
        "clients": [
            {
                "client_name": "site-1",
                "state": "disabled",
                "already_disabled": False,
                "active_session_removed": True,
                "credential_revoked": False,
                "rejoin_allowed": False,
            }
        ]
    }
    again = h.ok(admin, DisableClient(client_name="site-1"))["clients"][0]
    assert (again["already_disabled"], again["active_session_removed"]) == (True, False)
    assert h.ok(admin, DisableClient(client_name="offline"))["clients"][0]["state"] == "disabled"
    with pytest.raises(AuthenticationError, match="disabled"):
        h.service.connect_site("site-1", "nvidia")
    enabled = h.ok(admin, EnableClient(client_name="site-1"))["clients"][0]
    assert enabled == {
        "client_name": "site-1",
        "state": "enabled",
        "was_disabled": True,
        "credential_revoked": False,
        "rejoin_allowed": True,
    }
    assert not h.ok(admin, EnableClient(client_name="site-1"))["clients"][0]["was_disabled"]
    h.service.connect_site("site-1", "nvidia")
    assert [s.name for s in h.service.sites() if s.connected] == ["site-1", "site-2"]


def test_connect_site_validates_names() -> None:
    h = Harness()
    for bad in ("server", "a b", ""):
        with pytest.raises(InvalidArgumentError):
            h.service.connect_site(bad, "nvidia")


def test_configure_site_log() -> None:
    h = Harness()
    admin = h.login()
    assert h.ok(admin, ConfigureSiteLog(config="debug")) == dict.fromkeys(
        ["server", "site-1", "site-2"], "log config updated"
    )
    assert h.engine.site_log_config("site-2") == "debug"
    assert h.ok(admin, ConfigureSiteLog(config="20", target="site-1")) == {
        "site-1": "log config updated"
    }
    assert h.problem(admin, ConfigureSiteLog(config="/etc/x")).code == "invalid_argument"
    assert h.problem(admin, ConfigureSiteLog(config="INFO", target="ghost")).code == (
        "invalid_target"
    )


# --- shell -----------------------------------------------------------------------------------


def test_shell_commands_run_in_the_target_workspace() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    h.advance(11.0)
    assert h.ok(admin, ShellCommand(verb="pwd", target="site-1")) == "/workspace/site-1\n"
    assert h.ok(admin, ShellCommand(verb="ls", target="server")) == f"{job_id}\n"
    head = h.ok(
        admin, ShellCommand(verb="head", target="site-2", options="-n 1", path=f"{job_id}/log.txt")
    )
    assert head.count("\n") == 1
    assert "deployed job" in head
    grep = h.ok(
        admin, ShellCommand(verb="grep", target="server", pattern="round", path=f"{job_id}/log.txt")
    )
    assert grep.count("round") == 3
    missing = h.ok(admin, ShellCommand(verb="cat", target="server", path="nope.txt"))
    assert missing == "cat: nope.txt: No such file or directory\n"


def test_shell_rule_violations_targets_and_rights() -> None:
    h = Harness()
    admin = h.login()
    problem = h.problem(admin, ShellCommand(verb="cat", target="server", path="model.bin"))
    assert problem.code == "invalid_argument"
    problem = h.problem(admin, ShellCommand(verb="ls", target="ghost"))
    assert (problem.code, problem.message) == ("invalid_target", "invalid target: ghost")
    problem = h.problem(h.login(MEMBER), ShellCommand(verb="pwd", target="server"))
    assert (problem.code, problem.message) == (
        "not_authorized",
        f"user '{MEMBER}' is not authorized for 'pwd'",
    )


# --- stats -----------------------------------------------------------------------------------


def test_stats_need_a_running_job() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    for command in (ShowStats, ShowErrors, ResetErrors):
        problem = h.problem(admin, command(job_id=job_id, target_type="all"))
        assert (problem.code, problem.message) == (
            "job_not_running",
            f"job {job_id} is not running",
        )


def test_stats_errors_and_reset_per_site() -> None:
    h = Harness()
    lead = h.login(LEAD)
    job_id = h.submit(lead)
    h.advance(3.0)
    stats = h.ok(lead, ShowStats(job_id=job_id, target_type="all"))
    assert sorted(stats) == ["server", "site-1", "site-2"]
    assert stats["server"]["ServerRunner"]["elapsed_seconds"] == 2.0
    h.engine.inject_error(job_id, "site-1", "bad batch")
    errors = h.ok(lead, ShowErrors(job_id=job_id, target_type="client", targets=["site-1"]))
    assert errors == {"site-1": {"error": ["bad batch"]}}
    assert h.ok(lead, ResetErrors(job_id=job_id, target_type="all")) == {
        "server": f"reset the server error stats for job: {job_id}",
        "site-1": f"reset the client error stats for job: {job_id}",
        "site-2": f"reset the client error stats for job: {job_id}",
    }
    assert h.ok(lead, ShowErrors(job_id=job_id, target_type="server")) == {"server": {}}
    assert h.ok(lead, AbortJob(job_id=job_id))
    problem = h.problem(lead, ShowStats(job_id=job_id, target_type="server"))
    assert problem.code == "job_not_running"
