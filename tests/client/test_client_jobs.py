"""Job flows over a scripted transport: the exact commands sent, local validation before
anything is sent, result shaping, uploads and downloads."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from flare_core import (
    AbortJob,
    CloneJob,
    ConfigureJobLog,
    DeleteJob,
    DownloadJobComponents,
    DownloadJobResult,
    GetJobLogs,
    InternalError,
    InvalidArgumentError,
    InvalidJobDefinition,
    JobNotDone,
    JobNotFound,
    ListJobComponents,
    ListJobs,
    SubmitJob,
)
from tests.client.scripted import ScriptedTransport, make_session, ok, problem, zip_bytes

JOB = "9a0f5c1e-2b7d-4c3e-8d1f-6a5b4c3d2e1f"


def job_folder(root: Path, name: str = "hello-job") -> Path:
    folder = root / name
    (folder / "app" / "config").mkdir(parents=True)
    (folder / "app" / "empty").mkdir()
    (folder / "meta.json").write_text('{"name": "hello"}')
    (folder / ".hidden-file").write_text("dot")
    (folder / "app" / "config" / "config_fed_server.json").write_text("{}")
    return folder


# --- submit_job ----------------------------------------------------------------------------


def test_submit_uploads_the_folder_under_its_name(tmp_path: Path) -> None:
    folder = job_folder(tmp_path)
    os.symlink("/etc/hostname", folder / "link.txt")
    transport = ScriptedTransport(ok(JOB))
    session = make_session(transport, str(tmp_path))
    assert session.submit_job(str(folder) + "/") == JOB
    names = zipfile.ZipFile(io.BytesIO(transport.uploaded[0])).namelist()
    assert names[0] == "hello-job/"
    assert {
        "hello-job/meta.json",
        "hello-job/.hidden-file",
        "hello-job/app/empty/",
        "hello-job/app/config/config_fed_server.json",
    } <= set(names)
    assert "hello-job/link.txt" not in names
    assert all(name.startswith("hello-job/") for name in names)


def test_submit_resolves_relative_names_against_upload_dir(tmp_path: Path) -> None:
    job_folder(tmp_path / "upload", "fox-training_poc.1")
    transport = ScriptedTransport(ok(JOB))
    session = make_session(transport, str(tmp_path))
    assert session.submit_job("fox-training_poc.1") == JOB
    assert transport.of(SubmitJob)[0].folder_name == "fox-training_poc.1"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "job_definition_path is required but not specified."),
        (None, "job_definition_path is required but not specified."),
        (42, "job_definition_path must be str"),
        ("no-such-folder", "job_definition_path 'no-such-folder' is not a valid folder"),
    ],
)
def test_submit_rejects_bad_paths_before_sending(
    tmp_path: Path, path: object, message: str
) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidJobDefinition, match=message):
        session.submit_job(path)  # type: ignore[arg-type]  # the wrong type is the point
    assert transport.sent == []


def test_submit_rejects_a_file(tmp_path: Path) -> None:
    (tmp_path / "job.txt").write_text("x")
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidJobDefinition, match="is not a valid folder"):
        session.submit_job(str(tmp_path / "job.txt"))
    assert transport.sent == []


@pytest.mark.parametrize("name", [".hidden", "-x", "a b", "fox training poc"])
def test_submit_rejects_unsupported_folder_names(tmp_path: Path, name: str) -> None:
    folder = job_folder(tmp_path, name)
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidJobDefinition, match="contains unsupported characters"):
        session.submit_job(str(folder))
    assert transport.sent == []


@pytest.mark.parametrize("token", ["", "bad token", "bad/token", "x" * 129, 5])
def test_submit_rejects_bad_tokens_before_sending(tmp_path: Path, token: object) -> None:
    folder = job_folder(tmp_path)
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidArgumentError, match="submit_token"):
        session.submit_job(str(folder), submit_token=token)  # type: ignore[arg-type]  # on purpose
    assert transport.sent == []


def test_submit_accepts_a_128_character_token(tmp_path: Path) -> None:
    folder = job_folder(tmp_path)
    transport = ScriptedTransport(ok(JOB))
    session = make_session(transport, str(tmp_path))
    session.submit_job(str(folder), submit_token="t" * 128)
    assert transport.of(SubmitJob)[0].submit_token == "t" * 128


@pytest.mark.parametrize("value", [None, "", 7])
def test_submit_without_job_id_in_reply_is_an_internal_error(tmp_path: Path, value: object) -> None:
    folder = job_folder(tmp_path)
    session = make_session(ScriptedTransport(ok(value)), str(tmp_path))
    with pytest.raises(InternalError, match="server failed to return job id"):
        session.submit_job(str(folder))


# --- clone / meta / list ---------------------------------------------------------------------


def test_clone_sends_the_job_id_and_returns_the_new_one(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok("new-id"))
    session = make_session(transport, str(tmp_path))
    assert session.clone_job(JOB) == "new-id"
    assert transport.sent == [CloneJob(job_id=JOB)]


def test_clone_without_job_id_in_reply(tmp_path: Path) -> None:
    session = make_session(ScriptedTransport(ok(None)), str(tmp_path))
    with pytest.raises(InternalError, match="server failed to return job id"):
        session.clone_job(JOB)


@pytest.mark.parametrize(
    "call",
    [
        "clone_job",
        "get_job_meta",
        "abort_job",
        "delete_job",
        "download_job_result",
        "download_job_components",
        "list_job_components",
        "get_job_logs",
    ],
)
@pytest.mark.parametrize("bad", ["", None, 3])
def test_job_methods_reject_bad_ids_locally(tmp_path: Path, call: str, bad: object) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(JobNotFound):
        getattr(session, call)(bad)
    assert transport.sent == []


def test_get_job_meta_requires_a_meta(tmp_path: Path) -> None:
    session = make_session(ScriptedTransport(ok({})), str(tmp_path))
    with pytest.raises(InternalError, match="server failed to return job meta"):
        session.get_job_meta(JOB)


def test_list_jobs_maps_legacy_aliases_into_the_command(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok([{"job_id": JOB}]))
    session = make_session(transport, str(tmp_path))
    rows = session.list_jobs(max_num=5, job_id_prefix="job", job_name_prefix="hello")
    assert rows == [{"job_id": JOB}]
    assert transport.sent == [ListJobs(limit=5, id_prefix="job", name_prefix="hello")]


def test_list_jobs_canonical_arguments_win(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok([]))
    session = make_session(transport, str(tmp_path))
    session.list_jobs(
        detailed=True, limit=2, id_prefix="ab", reverse=True, submit_token="t.1", max_num=9, id="z"
    )
    assert transport.sent == [
        ListJobs(detailed=True, limit=2, id_prefix="ab", reverse=True, submit_token="t.1")
    ]


def test_list_jobs_rejects_unknown_kwargs(tmp_path: Path) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(TypeError, match="unsupported list_jobs kwargs"):
        session.list_jobs(colour="red")
    assert transport.sent == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"detailed": "yes"}, "detailed"),
        ({"reverse": 1}, "reverse"),
        ({"limit": -2}, "limit"),
        ({"submit_token": "bad token"}, "submit_token"),
    ],
)
def test_list_jobs_rejects_bad_values(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(ValueError, match=message):
        session.list_jobs(**kwargs)  # type: ignore[arg-type]  # the wrong types are the point
    assert transport.sent == []


def test_list_jobs_none_means_empty(tmp_path: Path) -> None:
    assert make_session(ScriptedTransport(ok(None)), str(tmp_path)).list_jobs() == []


# --- abort / delete / components ---------------------------------------------------------------


def test_abort_returns_none(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok("Aborted the job before running it."))
    session = make_session(transport, str(tmp_path))
    abort: Callable[[str], object] = session.abort_job  # DECISIONS §11: returns None
    assert abort(JOB) is None
    assert transport.sent == [AbortJob(job_id=JOB)]


def test_delete_returns_the_tombstone_count(tmp_path: Path) -> None:
    result = {"job_id": JOB, "submit_records_marked_deleted": 1}
    transport = ScriptedTransport(ok(dict(result)))
    session = make_session(transport, str(tmp_path))
    assert session.delete_job(JOB) == result
    assert transport.sent == [DeleteJob(job_id=JOB)]


def test_delete_fills_missing_keys(tmp_path: Path) -> None:
    session = make_session(ScriptedTransport(ok({})), str(tmp_path))
    assert session.delete_job(JOB) == {"job_id": JOB, "submit_records_marked_deleted": 0}


def test_list_job_components(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok(["ERRORLOG_site-1", "LOG_log.txt_site-2"]))
    session = make_session(transport, str(tmp_path))
    assert session.list_job_components(JOB) == ["ERRORLOG_site-1", "LOG_log.txt_site-2"]
    assert transport.sent == [ListJobComponents(job_id=JOB)]


# --- downloads --------------------------------------------------------------------------------

ARCHIVE = zip_bytes(
    {"job/meta.json": b"{}", "meta.json": b'{"status": "FINISHED:COMPLETED"}', "workspace/": b""}
)


def test_download_result_lands_in_download_dir(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({"download_id": "d1"}))
    transport.archive = ARCHIVE
    session = make_session(transport, str(tmp_path))
    path = session.download_job_result(JOB)
    assert path == str(tmp_path / "download" / JOB)
    assert (Path(path) / "meta.json").read_text() == '{"status": "FINISHED:COMPLETED"}'
    assert (Path(path) / "job" / "meta.json").exists()
    assert (Path(path) / "workspace").is_dir()
    assert transport.sent == [DownloadJobResult(job_id=JOB)]


def test_download_result_suffixes_existing_directories(tmp_path: Path) -> None:
    transport = ScriptedTransport(default=ok({"download_id": "d"}))
    transport.archive = ARCHIVE
    session = make_session(transport, str(tmp_path))
    first = session.download_job_result(JOB)
    second = session.download_job_result(JOB)
    third = session.download_job_result(JOB)
    assert [Path(p).name for p in (first, second, third)] == [JOB, f"{JOB}__1", f"{JOB}__2"]


def test_download_result_into_a_destination(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({"download_id": "d"}))
    transport.archive = ARCHIVE
    session = make_session(transport, str(tmp_path))
    path = session.download_job_result(JOB, destination=str(tmp_path / "out" / "deep"))
    assert path == str(tmp_path / "out" / "deep" / JOB)
    assert not (tmp_path / "download").exists()


def test_download_of_an_unfinished_job_creates_nothing(tmp_path: Path) -> None:
    transport = ScriptedTransport(problem(JobNotDone(f"job {JOB} is still running")))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(JobNotDone):
        session.download_job_result(JOB)
    assert not (tmp_path / "download" / JOB).exists()


def test_download_with_a_corrupt_archive_leaves_nothing_behind(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({"download_id": "d"}))
    transport.archive = b"not a zip at all"
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InternalError, match="downloaded archive refused"):
        session.download_job_result(JOB)
    assert list((tmp_path / "download").iterdir()) == []


def test_download_rejects_a_bad_destination(tmp_path: Path) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidArgumentError, match="destination"):
        session.download_job_result(JOB, destination="")
    assert transport.sent == []


def test_download_components(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({"download_id": "c"}))
    transport.archive = zip_bytes({"ERRORLOG_site-1": b"boom\n"})
    session = make_session(transport, str(tmp_path))
    path = session.download_job_components(JOB)
    assert (Path(path) / "ERRORLOG_site-1").read_text() == "boom\n"
    assert transport.sent == [DownloadJobComponents(job_id=JOB)]


def test_download_is_retried_after_a_broken_stream(tmp_path: Path) -> None:
    from flare_core import NoConnection

    transport = ScriptedTransport(NoConnection("reset"), ok({"download_id": "d"}))
    transport.archive = ARCHIVE
    session = make_session(transport, str(tmp_path))
    assert Path(session.download_job_result(JOB)).name == JOB
    assert len(transport.sent) == 2


# --- logs ---------------------------------------------------------------------------------------

LOGS = {
    "logs": {"server": "INFO one\nERROR two\nINFO three\nERROR fourth\n", "site-1": "a\nb\n"},
    "unavailable": {"site-2": "client log stream not available for this job"},
}


def test_get_job_logs_sends_target_and_file(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok(LOGS))
    session = make_session(transport, str(tmp_path))
    assert session.get_job_logs(JOB, target="all") == LOGS
    assert transport.sent == [GetJobLogs(job_id=JOB, target="all", log_file_name="log.txt")]


def test_get_job_logs_filters_tail_then_grep_locally(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok(LOGS))
    session = make_session(transport, str(tmp_path))
    result = session.get_job_logs(JOB, "all", 1, "ERROR")
    assert result["logs"] == {"server": "ERROR fourth\n", "site-1": ""}
    assert result["unavailable"] == LOGS["unavailable"]
    assert transport.sent == [GetJobLogs(job_id=JOB, target="all")]


def test_get_job_logs_tail_zero_gives_empty_text(tmp_path: Path) -> None:
    session = make_session(ScriptedTransport(ok(LOGS)), str(tmp_path))
    assert session.get_job_logs(JOB, tail_lines=0)["logs"]["server"] == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tail_lines": -1}, "greater than or equal to 0"),
        ({"tail_lines": "x"}, "tail_lines must be an integer"),
        ({"target": ""}, "target"),
        ({"grep_pattern": 3}, "grep_pattern"),
        ({"log_file_name": ""}, "log_file_name"),
    ],
)
def test_get_job_logs_rejects_bad_arguments_before_sending(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidArgumentError, match=message):
        session.get_job_logs(JOB, **kwargs)  # type: ignore[arg-type]  # wrong types on purpose
    assert transport.sent == []


def test_get_job_logs_accepts_a_bare_logs_map_and_no_payload(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({"server": "x\n"}), ok(None))
    session = make_session(transport, str(tmp_path))
    assert session.get_job_logs(JOB) == {"logs": {"server": "x\n"}}
    assert session.get_job_logs(JOB, log_file_name="log.json") == {"logs": {}}
    assert transport.sent[1] == GetJobLogs(job_id=JOB, log_file_name="log.json")


def test_configure_job_log_encodes_dicts_as_json(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({"status": "ok"}), ok(None))
    session = make_session(transport, str(tmp_path))
    assert session.configure_job_log(JOB, {"version": 1}) == {"status": "ok"}
    assert session.configure_job_log(JOB, "DEBUG", target="site-1") == {}
    assert transport.sent == [
        ConfigureJobLog(job_id=JOB, config='{"version": 1}', target="all"),
        ConfigureJobLog(job_id=JOB, config="DEBUG", target="site-1"),
    ]
