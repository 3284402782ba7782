"""Job results: result and component downloads, logs, and configure_job_log."""

from __future__ import annotations

import json

import pytest

from flare_core import (
    ConfigureJobLog,
    DeleteJob,
    DownloadJobComponents,
    DownloadJobResult,
    GetJobLogs,
    JobNotFound,
    ListJobComponents,
)
from flare_core.service._logs import SERVER_LOG_UNAVAILABLE, SITE_LOG_UNAVAILABLE
from tests.service.helpers import LEAD, Harness, job_files, unzip

# --- result downloads ------------------------------------------------------------------------


def test_download_of_an_unfinished_job_is_refused() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    problem = h.problem(admin, DownloadJobResult(job_id=job_id))
    assert (problem.code, problem.message) == ("job_not_done", f"job {job_id} is still running")


def test_result_download_holds_the_job_folder_meta_and_workspaces() -> None:
    h = Harness()
    job_id = h.finished()
    admin = h.login()
    value = h.ok(admin, DownloadJobResult(job_id=job_id))
    members = unzip(b"".join(h.service.open_download(admin, value["download_id"])))
    meta = json.loads(members["meta.json"])
    # job.zip unzipped: the folder, under its own name, is the one directory in job/.
    folder = {f"job/{meta['job_folder_name']}/{name}": data for name, data in job_files().items()}
    assert {k: v for k, v in members.items() if k.startswith("job/")} == folder
    assert (meta["job_id"], meta["status"], meta["study"]) == (
        job_id,
        "FINISHED:COMPLETED",
        "default",
    )
    for site in ("server", "site-1", "site-2"):
        assert b"FINISHED:COMPLETED" in members[f"workspace/{site}/log.txt"]
        assert json.loads(members[f"workspace/{site}/result.json"])["site"] == site


def test_a_download_id_is_single_use_and_bound_to_its_session() -> None:
    h = Harness()
    job_id = h.finished()
    admin, other = h.login(), h.login()
    download_id = h.ok(admin, DownloadJobResult(job_id=job_id))["download_id"]
    with pytest.raises(JobNotFound):
        h.service.open_download(other, download_id)
    b"".join(h.service.open_download(admin, download_id))
    with pytest.raises(JobNotFound):
        h.service.open_download(admin, download_id)
    with pytest.raises(JobNotFound):
        h.service.open_download(admin, "never-issued")


def test_a_download_of_a_deleted_job_cannot_be_opened() -> None:
    h = Harness()
    job_id = h.finished()
    admin = h.login()
    download_id = h.ok(admin, DownloadJobResult(job_id=job_id))["download_id"]
    h.ok(admin, DeleteJob(job_id=job_id))
    with pytest.raises(JobNotFound, match="no such job"):
        h.service.open_download(admin, download_id)


# --- components ------------------------------------------------------------------------------


def test_a_completed_job_has_no_components() -> None:
    h = Harness()
    job_id = h.finished()
    admin = h.login()
    assert h.ok(admin, ListJobComponents(job_id=job_id)) == []
    problem = h.problem(admin, DownloadJobComponents(job_id=job_id))
    assert (problem.code, problem.message) == (
        "internal_error",
        "no_job_components: No components to download",
    )


def test_a_failed_job_has_error_log_components_per_client() -> None:
    h = Harness()
    job_id = h.finished(fail=True)
    admin = h.login()
    assert h.status(job_id) == "FINISHED:EXECUTION_EXCEPTION"
    assert h.ok(admin, ListJobComponents(job_id=job_id)) == ["ERRORLOG_site-1", "ERRORLOG_site-2"]
    download_id = h.ok(admin, DownloadJobComponents(job_id=job_id))["download_id"]
    members = unzip(b"".join(h.service.open_download(admin, download_id)))
    assert sorted(members) == ["ERRORLOG_site-1", "ERRORLOG_site-2"]
    assert b"executor crashed" in members["ERRORLOG_site-1"]


# --- logs ------------------------------------------------------------------------------------


def test_logs_default_to_the_server_log() -> None:
    h = Harness()
    job_id = h.finished()
    value = h.ok(h.login(), GetJobLogs(job_id=job_id))
    assert list(value) == ["logs"]
    assert list(value["logs"]) == ["server"]
    assert "job finished with status FINISHED:COMPLETED" in value["logs"]["server"]


def test_all_logs_cover_the_server_and_deployed_sites() -> None:
    h = Harness()
    job_id = h.finished()
    for target in ("all", "@ALL"):
        value = h.ok(h.login(), GetJobLogs(job_id=job_id, target=target))
        assert sorted(value["logs"]) == ["server", "site-1", "site-2"]
        assert "unavailable" not in value


def test_a_job_that_never_ran_has_no_logs() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    assert h.ok(admin, GetJobLogs(job_id=job_id)) == {
        "logs": {},
        "unavailable": {"server": SERVER_LOG_UNAVAILABLE},
    }
    assert h.ok(admin, GetJobLogs(job_id=job_id, target="site-7")) == {
        "logs": {},
        "unavailable": {"site-7": SITE_LOG_UNAVAILABLE},
    }


def test_live_logs_are_readable_while_the_job_runs() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    h.advance(2.0)
    logs = h.ok(admin, GetJobLogs(job_id=job_id, target="site-1"))["logs"]
    assert "started on site-1" in logs["site-1"]


def test_log_components_are_the_last_source_and_join_all_mode() -> None:
    h = Harness()
    job_id = h.finished()
    h.system.blobs.write(f"jobs/{job_id}/components/LOG_log.txt_site-9", [b"streamed\n"])
    admin = h.login()
    assert h.ok(admin, GetJobLogs(job_id=job_id, target="site-9"))["logs"] == {
        "site-9": "streamed\n"
    }
    assert "site-9" in h.ok(admin, GetJobLogs(job_id=job_id, target="all"))["logs"]


def test_log_json_is_honoured_and_other_names_read_log_txt() -> None:
    h = Harness()
    job_id = h.finished()
    h.system.workspaces.tree("server").write(f"{job_id}/log.json", b'{"a": 1}\n', 0.0)
    admin = h.login()
    value = h.ok(admin, GetJobLogs(job_id=job_id, log_file_name="log.json"))
    assert value["logs"]["server"] == '{"a": 1}\n'
    other = h.ok(admin, GetJobLogs(job_id=job_id, log_file_name="secrets.txt"))
    assert "job finished" in other["logs"]["server"]


def test_logs_are_cut_to_the_last_five_mebibytes_with_a_marker() -> None:
    h = Harness()
    job_id = h.finished()
    cap = 5 * 1024 * 1024
    big = b"a" * 100 + b"b" * cap
    h.system.workspaces.tree("server").write(f"{job_id}/log.txt", big, 0.0)
    text = h.ok(h.login(), GetJobLogs(job_id=job_id))["logs"]["server"]
    marker = f"... output truncated to last {cap} bytes ...\n"
    assert text.startswith(marker)
    assert text[len(marker) :] == "b" * cap


def test_logs_need_the_download_right() -> None:
    h = Harness()
    job_id = h.finished()
    assert h.problem(h.login("member@nvidia.com"), GetJobLogs(job_id=job_id)).code == (
        "not_authorized"
    )


# --- configure_job_log -----------------------------------------------------------------------


def test_configure_job_log_needs_a_running_job() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    problem = h.problem(admin, ConfigureJobLog(job_id=job_id, config="DEBUG"))
    assert (problem.code, problem.message) == (
        "internal_error",
        f"error: Job {job_id} must be running but is SUBMITTED",
    )


def test_configure_job_log_applies_to_the_targets() -> None:
    h = Harness()
    lead = h.login(LEAD)
    job_id = h.submit(lead)
    h.advance(1.0)
    value = h.ok(lead, ConfigureJobLog(job_id=job_id, config="DEBUG"))
    assert value == dict.fromkeys(["server", "site-1", "site-2"], "log config updated")
    assert h.engine.job_log_config(job_id, "site-2") == "DEBUG"
    one = h.ok(lead, ConfigureJobLog(job_id=job_id, config="INFO", target="site-1"))
    assert one == {"site-1": "log config updated"}
    assert h.ok(lead, ConfigureJobLog(job_id=job_id, config="x", target="server")) == {
        "server": "log config updated"
    }
    problem = h.problem(lead, ConfigureJobLog(job_id=job_id, config="INFO", target="site-9"))
    assert (problem.code, problem.message) == ("invalid_target", "invalid client(s): site-9")
