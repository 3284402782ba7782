"""Contract: the job lifecycle through a session (submit, meta, run, abort, delete, clone,
download, components) - reference §1-§3, §11.1 #7, #8, #10-#14; DECISIONS §10-§12."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flare_core.errors import (
    InternalError,
    InvalidJobDefinition,
    JobNotDone,
    JobNotFound,
    JobTimeout,
)
from flare_ports.session_spec import SessionSpec
from flare_testing.contract import capabilities as cap
from flare_testing.contract.base import (
    ContractBase,
    OpenSession,
    Token,
    Users,
    call,
    finished_job,
    nothing_sent,
    pending_job,
    running_job,
    unknown_job_id,
    wait_status,
)
from flare_testing.contract.harness import Harness
from flare_testing.job_folders import EXAMPLE, INVALID_DEFINITIONS, JobFolders

__all__ = ["JobIdContract", "JobLifecycleContract", "JobResultsContract", "SubmitContract"]

JOB_METHODS = (
    "get_job_meta",
    "abort_job",
    "delete_job",
    "clone_job",
    "download_job_result",
    "get_job_logs",
    "list_job_components",
    "download_job_components",
)
"""Every method addressed to one job id (reference §11.1 #11)."""

LIVE = ("SUBMITTED", "DISPATCHED", "RUNNING")

# A version-1 UUID (the RFC 4122 DNS namespace): well-formed, but not a job id.
UUID1 = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"


def _is_uuid4(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == value


def _parse_timedelta(text: str) -> timedelta:
    # str(timedelta) renders "H:MM:SS[.ffffff]" (with "N day(s), " in front past a day).
    days = 0
    if "day" in text:
        head, text = text.split(", ")
        days = int(head.split()[0])
    hours, minutes, seconds = text.split(":")
    return timedelta(days=days, hours=int(hours), minutes=int(minutes), seconds=float(seconds))


class SubmitContract(ContractBase):
    """``submit_job``: folder checks, server-side validation and the new job's meta."""

    def test_submit_returns_a_uuid4(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = session.submit_job(str(jobs.hello()))
        assert _is_uuid4(job_id)

    def test_each_submit_creates_a_new_job(self, session: SessionSpec, jobs: JobFolders) -> None:
        folder = str(jobs.hello())
        first = session.submit_job(folder)
        second = session.submit_job(folder)
        assert first != second
        assert {row["job_id"] for row in session.list_jobs()} == {first, second}

    def test_new_job_meta_fields(
        self, session: SessionSpec, jobs: JobFolders, users: Users, token: Token
    ) -> None:
        job_id = pending_job(session, jobs, name="fields-check", submit_token=token("fields.1"))
        meta = session.get_job_meta(job_id)
        assert meta["job_id"] == job_id
        assert meta["status"] == "SUBMITTED"
        assert isinstance(meta["submit_time"], float)
        iso = datetime.fromisoformat(meta["submit_time_iso"])
        assert iso.tzinfo is not None
        assert abs(iso.timestamp() - meta["submit_time"]) < 1.0
        assert meta["start_time"] == ""
        assert meta["duration"] == "N/A"
        assert meta["study"] == "default"
        assert meta["name"] == "fields-check"
        assert meta["job_folder_name"] == EXAMPLE
        assert meta["submitter_name"] == users.admin
        assert meta["submitter_org"] == users.server_org
        assert meta["submitter_role"] == "project_admin"
        assert "submit_token" not in meta
        assert "submitter" not in meta

    def test_meta_keeps_user_keys(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = pending_job(session, jobs, meta_extra={"custom_key": {"a": [1, 2]}})
        meta = session.get_job_meta(job_id)
        assert meta["custom_key"] == {"a": [1, 2]}
        assert meta["min_clients"] == len(jobs.sites) + 1

    @pytest.mark.flare_requires(cap.VIRTUAL_TIME)
    def test_submit_time_is_the_system_clock(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        harness.advance(1234.0)
        job_id = session.submit_job(str(jobs.hello()))
        assert session.get_job_meta(job_id)["submit_time"] == pytest.approx(harness.now, abs=1.0)

    @pytest.mark.parametrize("folder_name", [".hidden", "-x", "a b", "fox training poc"])
    def test_unsupported_folder_name_is_rejected_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        jobs: JobFolders,
        folder_name: str,
    ) -> None:
        folder = jobs.hello(folder_name)
        with (
            nothing_sent(harness, caps),
            pytest.raises(InvalidJobDefinition, match="contains unsupported characters"),
        ):
            session.submit_job(str(folder))

    def test_missing_folder_is_rejected_locally(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, tmp_path: Path
    ) -> None:
        missing = tmp_path / "no-such-job"
        with nothing_sent(harness, caps), pytest.raises(InvalidJobDefinition, match="valid folder"):
            session.submit_job(str(missing))

    def test_file_instead_of_folder_is_rejected_locally(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, tmp_path: Path
    ) -> None:
        path = tmp_path / "job.txt"
        path.write_text("not a folder\n")
        with nothing_sent(harness, caps), pytest.raises(InvalidJobDefinition):
            session.submit_job(str(path))

    @pytest.mark.parametrize("path", [None, ""])
    def test_empty_path_is_rejected_locally(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, path: Any
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(InvalidJobDefinition, match="required"):
            session.submit_job(path)

    def test_valid_unusual_folder_name_is_accepted(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = session.submit_job(str(jobs.hello("fox-training_poc.1")))
        assert session.get_job_meta(job_id)["job_folder_name"] == "fox-training_poc.1"

    def test_trailing_slash_is_ignored(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = session.submit_job(str(jobs.hello("slashed")) + "/")
        assert session.get_job_meta(job_id)["job_folder_name"] == "slashed"

    def test_relative_path_resolves_against_upload_dir(
        self, session: SessionSpec, jobs: JobFolders, flare_upload_dir: Path
    ) -> None:
        # The run's own kind of folder (a real federation's never starts a run), written
        # under the upload directory.
        folder = type(jobs)(flare_upload_dir, jobs.sites).hello("uploaded-job")
        relative = folder.relative_to(flare_upload_dir.resolve())
        job_id = session.submit_job(str(relative))
        assert session.get_job_meta(job_id)["job_folder_name"] == "uploaded-job"

    @pytest.mark.parametrize("kind", list(INVALID_DEFINITIONS))
    def test_invalid_definition_is_rejected(
        self, session: SessionSpec, jobs: JobFolders, kind: str
    ) -> None:
        with pytest.raises(InvalidJobDefinition) as caught:
            session.submit_job(str(jobs.invalid(kind)))
        message = str(caught.value)
        assert message.startswith("invalid job definition")
        assert INVALID_DEFINITIONS[kind] in message
        assert session.list_jobs() == []

    @pytest.mark.flare_requires(cap.SERVER_JOB_IDS)
    def test_job_id_in_meta_is_ignored(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = session.submit_job(str(jobs.hello(meta={"job_id": "my-own-id"})))
        assert job_id != "my-own-id"
        assert _is_uuid4(job_id)
        assert session.get_job_meta(job_id)["job_id"] == job_id

    def test_custom_code_sets_byoc(self, session: SessionSpec, jobs: JobFolders) -> None:
        folder = jobs.hello(extra_files={"app/custom/trainer.py": "WEIGHT = 1\n"})
        assert session.get_job_meta(session.submit_job(str(folder)))["byoc"] is True

    def test_user_supplied_byoc_is_dropped(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = session.submit_job(str(jobs.hello(meta={"byoc": True})))
        assert not session.get_job_meta(job_id).get("byoc")

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_uploaded_content_is_kept_verbatim(
        self, session: SessionSpec, jobs: JobFolders, tmp_path: Path
    ) -> None:
        folder = jobs.hello(extra_files={"app/config/notes.txt": b"\x00binary\xffdata\n"})
        job_id = session.submit_job(str(folder))
        session.wait_for_job(job_id, timeout=3600)
        result = Path(session.download_job_result(job_id, str(tmp_path / "out")))
        # job.zip unzipped: the folder, by its name, under job/ (reference §1.3).
        for path in folder.rglob("*"):
            if path.is_file():
                rel = path.relative_to(folder)
                kept = result / "job" / folder.name / rel
                assert kept.read_bytes() == path.read_bytes(), rel


class JobLifecycleContract(ContractBase):
    """A job's statuses and timestamps; ``abort_job`` and ``delete_job`` in every status."""

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_job_runs_to_completion(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = session.submit_job(str(jobs.hello()))
        meta = session.wait_for_job(job_id, timeout=3600)
        assert meta["status"] == "FINISHED:COMPLETED"
        assert meta["job_id"] == job_id

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_finished_job_has_start_time_and_duration(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        meta = session.get_job_meta(finished_job(session, jobs))
        start = datetime.fromisoformat(meta["start_time"])
        assert start.utcoffset() == timedelta(0)
        assert start.timestamp() >= meta["submit_time"] - 1.0
        assert _parse_timedelta(meta["duration"]) >= timedelta(0)

    @pytest.mark.flare_requires(cap.JOB_CONTROL, cap.VIRTUAL_TIME)
    def test_duration_measures_the_run(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        harness.advance(125.0)
        harness.finish_job(job_id)
        meta = session.wait_for_job(job_id, timeout=60)
        assert _parse_timedelta(meta["duration"]) >= timedelta(seconds=125)

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    def test_running_job_has_start_time(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        meta = session.get_job_meta(job_id)
        assert meta["status"] == "RUNNING"
        assert datetime.fromisoformat(meta["start_time"]).utcoffset() == timedelta(0)
        assert meta["duration"] == "N/A"

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    @pytest.mark.parametrize(
        "status", ["FINISHED:EXECUTION_EXCEPTION", "FINISHED:ABNORMAL", "FINISHED:ABORTED"]
    )
    def test_failed_job_reports_its_status(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders, status: str
    ) -> None:
        job_id = running_job(harness, session, jobs)
        harness.fail_job(job_id, status)
        assert session.wait_for_job(job_id, timeout=60)["status"] == status

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    def test_finish_job_ends_a_held_job(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        harness.finish_job(job_id)
        assert session.wait_for_job(job_id, timeout=60)["status"] == "FINISHED:COMPLETED"

    @pytest.mark.flare_requires(cap.JOB_CONTROL, cap.VIRTUAL_TIME)
    def test_held_job_keeps_running_until_released(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        # Virtual time (advance) has no race to guard against: a job of plain length.
        job_id = running_job(harness, session, jobs, sleep_time=0.0)
        harness.advance(1000.0)
        assert session.get_job_meta(job_id)["status"] == "RUNNING"
        harness.release_job(job_id)
        assert session.wait_for_job(job_id, timeout=3600)["status"] == "FINISHED:COMPLETED"

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_unschedulable_job_stays_submitted(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = pending_job(session, jobs)
        with pytest.raises(JobTimeout, match="did not finish"):
            session.wait_for_job(job_id, timeout=1, poll_interval=0.25)
        assert session.get_job_meta(job_id)["status"] == "SUBMITTED"

    @pytest.mark.flare_requires(cap.SITE_CONTROL, cap.QUICK_JOBS)
    def test_job_is_scheduled_when_its_sites_connect(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = pending_job(session, jobs)
        harness.connect_site("site-pending")
        assert session.wait_for_job(job_id, timeout=3600)["status"] == "FINISHED:COMPLETED"

    # --- abort (reference §1.3, §11.1 #12; DECISIONS §11) ---------------------------------------

    def test_abort_submitted_job(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = pending_job(session, jobs)
        session.abort_job(job_id)
        assert session.get_job_meta(job_id)["status"] == "FINISHED:ABORTED"

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    def test_abort_running_job(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        session.abort_job(job_id)
        assert session.wait_for_job(job_id, timeout=600)["status"] == "FINISHED:ABORTED"

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_abort_finished_job_changes_nothing(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = finished_job(session, jobs)
        before = session.get_job_meta(job_id)
        session.abort_job(job_id)
        assert session.get_job_meta(job_id) == before

    def test_abort_twice_succeeds(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = pending_job(session, jobs)
        session.abort_job(job_id)
        session.abort_job(job_id)
        assert session.get_job_meta(job_id)["status"] == "FINISHED:ABORTED"

    @pytest.mark.flare_requires(cap.ABORT_RETURNS_NONE, cap.JOB_CONTROL)
    def test_abort_returns_none_in_every_status(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        queued = pending_job(session, jobs)
        running = running_job(harness, session, jobs)
        finished = finished_job(session, jobs, name="done")
        for job_id in (queued, running, finished):
            assert call(session, "abort_job", job_id) is None

    # --- delete (reference §1.3, §2.4; DECISIONS §10) ------------------------------------------

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_delete_finished_job(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = finished_job(session, jobs)
        assert session.delete_job(job_id) == {
            "job_id": job_id,
            "submit_records_marked_deleted": 0,
        }
        with pytest.raises(JobNotFound):
            session.get_job_meta(job_id)
        assert session.list_jobs() == []

    def test_delete_submitted_job(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = pending_job(session, jobs)
        assert session.delete_job(job_id)["job_id"] == job_id
        with pytest.raises(JobNotFound):
            session.get_job_meta(job_id)

    @pytest.mark.flare_requires(cap.DELETE_LIVE_JOB, cap.JOB_CONTROL)
    def test_delete_running_job_aborts_it_first(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        assert session.delete_job(job_id)["job_id"] == job_id
        with pytest.raises(JobNotFound):
            session.get_job_meta(job_id)
        with pytest.raises(KeyError):
            harness.job_meta(job_id)

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_delete_twice_is_job_not_found(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = finished_job(session, jobs)
        session.delete_job(job_id)
        with pytest.raises(JobNotFound):
            session.delete_job(job_id)

    def test_delete_leaves_other_jobs(self, session: SessionSpec, jobs: JobFolders) -> None:
        keep = pending_job(session, jobs, name="keep")
        drop = pending_job(session, jobs, name="drop")
        session.delete_job(drop)
        assert [row["job_id"] for row in session.list_jobs()] == [keep]

    # --- clone (reference §1.3, §11.1 #14) -------------------------------------------------------

    def test_clone_creates_a_new_submitted_job(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        source = pending_job(session, jobs, name="to-clone")
        clone = session.clone_job(source)
        assert _is_uuid4(clone)
        assert clone != source
        meta = session.get_job_meta(clone)
        src = session.get_job_meta(source)
        assert meta["status"] == "SUBMITTED"
        assert meta["cloned_from"] == source
        assert meta["study"] == src["study"]
        assert meta["name"] == "to-clone"
        assert meta["deploy_map"] == src["deploy_map"]
        assert meta["min_clients"] == src["min_clients"]
        assert meta["job_folder_name"] == src["job_folder_name"]
        assert meta["start_time"] == ""
        assert meta["duration"] == "N/A"
        assert meta["submit_time"] >= src["submit_time"]

    def test_clone_does_not_copy_user_keys(self, session: SessionSpec, jobs: JobFolders) -> None:
        source = pending_job(session, jobs, meta_extra={"custom_key": "x"})
        meta = session.get_job_meta(session.clone_job(source))
        assert "custom_key" not in meta

    @pytest.mark.flare_requires(cap.QUICK_JOBS, cap.JOB_CONTROL)
    def test_clone_of_a_finished_job_runs(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        name = f"clone-{uuid.uuid4().hex[:12]}"
        source = finished_job(session, jobs, name=name)
        # The clone keeps the source's name: held by it, the clone cannot end on a real clock
        # before the test has seen it live.
        harness.hold_jobs_named(name)
        clone = session.clone_job(source)
        assert session.get_job_meta(clone)["status"] in LIVE
        harness.release_job(clone)
        assert session.wait_for_job(clone, timeout=3600)["status"] == "FINISHED:COMPLETED"

    def test_clone_records_the_caller_as_submitter(
        self, sessions: OpenSession, users: Users, jobs: JobFolders
    ) -> None:
        lead = sessions(users.lead)
        admin = sessions(users.admin)
        source = pending_job(lead, jobs)
        meta = admin.get_job_meta(admin.clone_job(source))
        assert meta["submitter_name"] == users.admin
        assert meta["submitter_role"] == "project_admin"
        assert admin.get_job_meta(source)["submitter_name"] == users.lead

    def test_clone_keeps_the_byoc_flag(self, session: SessionSpec, jobs: JobFolders) -> None:
        source = session.submit_job(
            str(jobs.hello(extra_files={"app/custom/trainer.py": "WEIGHT = 1\n"}))
        )
        assert session.get_job_meta(session.clone_job(source))["byoc"] is True


class JobResultsContract(ContractBase):
    """``download_job_result``, ``list_job_components`` and ``download_job_components``."""

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_download_result_layout(
        self, session: SessionSpec, jobs: JobFolders, flare_download_dir: Path
    ) -> None:
        folder = jobs.hello()
        job_id = session.submit_job(str(folder))
        session.wait_for_job(job_id, timeout=3600)
        path = Path(session.download_job_result(job_id))
        assert path.is_absolute()
        assert path == flare_download_dir.resolve() / job_id
        assert path.is_dir()
        stored = json.loads((path / "meta.json").read_text())
        assert stored["job_id"] == job_id
        assert stored["status"] == "FINISHED:COMPLETED"
        assert (path / "job" / folder.name / "meta.json").read_bytes() == (
            folder / "meta.json"
        ).read_bytes()
        assert (path / "workspace").is_dir()

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_second_download_gets_a_suffix(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = finished_job(session, jobs)
        first = Path(session.download_job_result(job_id))
        second = Path(session.download_job_result(job_id))
        third = Path(session.download_job_result(job_id))
        assert second == first.with_name(f"{job_id}__1")
        assert third == first.with_name(f"{job_id}__2")

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_download_into_destination(
        self, session: SessionSpec, jobs: JobFolders, tmp_path: Path
    ) -> None:
        job_id = finished_job(session, jobs)
        destination = tmp_path / "results" / "nested"
        path = Path(session.download_job_result(job_id, str(destination)))
        assert path == destination.resolve() / job_id
        assert (path / "meta.json").is_file()

    def test_download_of_aborted_job_works(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = pending_job(session, jobs)
        session.abort_job(job_id)
        path = Path(session.download_job_result(job_id))
        assert json.loads((path / "meta.json").read_text())["status"] == "FINISHED:ABORTED"

    def test_download_of_submitted_job_is_not_done(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = pending_job(session, jobs)
        with pytest.raises(JobNotDone):
            session.download_job_result(job_id)

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    def test_download_of_running_job_is_not_done(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        with pytest.raises(JobNotDone):
            session.download_job_result(job_id)

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_components_exclude_system_parts(self, session: SessionSpec, jobs: JobFolders) -> None:
        components = session.list_job_components(finished_job(session, jobs))
        assert isinstance(components, list)
        assert all(isinstance(name, str) for name in components)
        assert not {"workspace", "meta", "scheduled", "data"} & set(components)

    def test_queued_job_has_no_components(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = pending_job(session, jobs)
        assert session.list_job_components(job_id) == []
        with pytest.raises(InternalError, match="no_job_components"):
            session.download_job_components(job_id)

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    def test_failed_job_components_can_be_downloaded(
        self,
        harness: Harness,
        session: SessionSpec,
        jobs: JobFolders,
        flare_download_dir: Path,
    ) -> None:
        job_id = running_job(harness, session, jobs)
        harness.fail_job(job_id)
        session.wait_for_job(job_id, timeout=60)
        components = session.list_job_components(job_id)
        assert components, "a failed job leaves error-log components"
        assert all(name.startswith(("ERRORLOG_", "LOG_")) for name in components)
        path = Path(session.download_job_components(job_id))
        assert path.parent == flare_download_dir.resolve()
        assert path.name.startswith(job_id)
        assert path.is_dir()
        assert any(path.rglob("*"))


class JobIdContract(ContractBase):
    """Every job-addressed method rejects bad, unknown and foreign job ids (§11.1 #11)."""

    @pytest.mark.parametrize("method", JOB_METHODS)
    @pytest.mark.parametrize("bad_id", [None, 7, ""], ids=["none", "int", "empty"])
    def test_malformed_id_fails_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        method: str,
        bad_id: Any,
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(JobNotFound):
            call(session, method, bad_id)

    @pytest.mark.parametrize("method", JOB_METHODS)
    @pytest.mark.parametrize(
        "job_id", ["not-a-job-id", UUID1, "unknown"], ids=["not_uuid", "uuid1", "unknown_uuid4"]
    )
    def test_unknown_id_is_not_found(self, session: SessionSpec, method: str, job_id: str) -> None:
        target = unknown_job_id() if job_id == "unknown" else job_id
        with pytest.raises(JobNotFound):
            call(session, method, target)

    @pytest.mark.flare_requires(cap.STUDY_ADMIN, cap.QUICK_JOBS)
    @pytest.mark.parametrize("method", JOB_METHODS)
    def test_other_studys_job_is_not_found(
        self,
        harness: Harness,
        sessions: OpenSession,
        users: Users,
        jobs: JobFolders,
        method: str,
    ) -> None:
        harness.add_study("study-a", {users.server_org: list(harness.sites)}, [users.admin])
        foreign = finished_job(sessions(users.admin, "study-a"), jobs)
        with pytest.raises(JobNotFound):
            call(sessions(users.admin), method, foreign)

    def test_unhyphenated_id_is_not_found(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = pending_job(session, jobs)
        with pytest.raises(JobNotFound):
            session.get_job_meta(job_id.replace("-", ""))

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_get_job_meta_of_running_job(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = session.submit_job(str(jobs.hello()))
        meta = wait_status(session, job_id, "RUNNING", "FINISHED:COMPLETED")
        assert meta["job_id"] == job_id
