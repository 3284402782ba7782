"""submit_job: the pipeline, new-job fields, validation, enrollment and submit tokens."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import msgspec
import pytest

from flare_adapters.memory.blobs import zip_view
from flare_core import DeleteJob, GetJobMeta, ListJobs, SubmitJob
from flare_core.tokens import TokenScope, content_hash, new_record
from tests.service.helpers import (
    ADMIN,
    DEFAULT_META,
    FOLDER,
    LEAD,
    MEMBER,
    ORG_ADMIN,
    OTHER_LEAD,
    Harness,
    job_files,
    job_zip,
    make_zip,
)

TOKEN = "retry.01:A_b-c"


def _count(h: Harness, user: str = ADMIN, study: str = "default") -> int:
    return len(h.ok(h.login(user, study), ListJobs()))


def test_submit_creates_a_submitted_job_with_the_reference_fields() -> None:
    h = Harness()
    admin = h.login()
    meta_in = {**DEFAULT_META, "job_id": "smuggled", "submit_token": "x", "custom": 1}
    job_id = h.submit(admin, job_zip(meta=meta_in))
    assert uuid.UUID(job_id).version == 4
    meta = h.ok(admin, GetJobMeta(job_id=job_id))
    assert meta["job_id"] == job_id
    assert meta["status"] == "SUBMITTED"
    assert isinstance(meta["submit_time"], float)
    assert datetime.fromisoformat(meta["submit_time_iso"]).timestamp() == meta["submit_time"]
    assert meta["start_time"] == ""
    assert meta["duration"] == "N/A"
    assert meta["study"] == "default"
    assert (meta["submitter_name"], meta["submitter_org"], meta["submitter_role"]) == (
        ADMIN,
        "nvidia",
        "project_admin",
    )
    assert meta["job_folder_name"] == FOLDER
    assert meta["data_storage_format"] == 2
    assert meta["custom"] == 1
    assert "submit_token" not in meta
    assert "byoc" not in meta


def test_byoc_is_derived_from_custom_folders() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin, job_zip(extra={"app/custom/trainer.py": b"pass\n"}))
    assert h.ok(admin, GetJobMeta(job_id=job_id))["byoc"] is True


def test_a_submitted_job_is_dispatched_on_the_next_tick_and_completes() -> None:
    h = Harness(duration=10.0)
    job_id = h.submit(h.login())
    assert h.status(job_id) == "SUBMITTED"
    h.advance(1.0)
    assert h.status(job_id) == "RUNNING"
    meta = h.service.job_meta(job_id)
    assert meta is not None
    assert meta["job_deploy_detail"] == ["server: OK", "site-1: OK", "site-2: OK"]
    h.advance(10.0)
    meta = h.service.job_meta(job_id)
    assert meta is not None
    assert meta["status"] == "FINISHED:COMPLETED"
    assert meta["duration"] == "0:00:10"


def test_submit_without_upload_is_an_internal_error() -> None:
    h = Harness()
    problem = h.problem(h.login(), SubmitJob(folder_name=FOLDER), None)
    assert (problem.code, problem.message) == (
        "internal_error",
        "server internal error: missing upload file",
    )


@pytest.mark.parametrize("token", ["", "bad token", "bad/token", "x" * 129])
def test_malformed_tokens_are_refused(token: str) -> None:
    h = Harness()
    problem = h.problem(h.login(), SubmitJob(folder_name=FOLDER, submit_token=token), [job_zip()])
    assert problem.code == "invalid_argument"
    assert "submit_token" in problem.message


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"app/config/config_fed_server.json": b"{}"}, "not existing for job"),
        (job_files(meta={**DEFAULT_META, "deploy_map": {"app": ["site-1"]}}), "Missing server"),
        (job_files(meta={**DEFAULT_META, "min_clients": 0}), ""),
    ],
)
def test_invalid_definitions_are_refused(files: dict[str, bytes], fragment: str) -> None:
    h = Harness()
    problem = h.problem(h.login(), SubmitJob(folder_name=FOLDER), [make_zip(files)])
    assert problem.code == "invalid_job_definition"
    assert problem.message.startswith("invalid job definition: ")
    assert fragment in problem.message
    assert _count(h) == 0


def test_bad_folder_names_and_non_zips_are_invalid_definitions() -> None:
    h = Harness()
    admin = h.login()
    assert h.problem(admin, SubmitJob(folder_name=".hidden"), [job_zip()]).code == (
        "invalid_job_definition"
    )
    assert h.problem(admin, SubmitJob(folder_name=FOLDER), [b"PK junk"]).code == (
        "invalid_job_definition"
    )
    assert h.system.blobs.keys("uploads/") == []


@pytest.mark.parametrize("user", [MEMBER, ORG_ADMIN])
def test_roles_without_the_submit_right_are_refused(user: str) -> None:
    h = Harness()
    problem = h.problem(h.login(user), SubmitJob(folder_name=FOLDER), [job_zip()])
    assert problem.code == "not_authorized"
    assert problem.message == f"user '{user}' is not authorized for 'submit_job'"


def test_a_lead_may_submit() -> None:
    h = Harness()
    job_id = h.submit(h.login(LEAD))
    assert h.ok(h.login(LEAD), GetJobMeta(job_id=job_id))["submitter_role"] == "lead"


def test_enrollment_names_every_unenrolled_site_in_order() -> None:
    h = Harness(sites=("site-1", "site-2", "site-3"))
    h.service.add_study("cancer", {"nvidia": ["site-1"]}, [ADMIN])
    admin = h.login(study="cancer")
    meta = {**DEFAULT_META, "deploy_map": {"a": ["server", "site-3"], "b": ["site-2", "site-1"]}}
    meta.pop("min_clients")
    files = job_files(meta=meta)
    files["a/config/config_fed_server.json"] = files["app/config/config_fed_server.json"]
    files["a/config/config_fed_client.json"] = files["app/config/config_fed_client.json"]
    files["b/config/config_fed_client.json"] = files["app/config/config_fed_client.json"]
    problem = h.problem(admin, SubmitJob(folder_name=FOLDER), [make_zip(files)])
    assert problem.message == (
        "invalid job definition: sites 'site-3', 'site-2' are not enrolled in study 'cancer'"
    )
    job_id = h.submit(admin)  # @ALL is exempt
    assert h.ok(admin, GetJobMeta(job_id=job_id))["study"] == "cancer"


# --- submit tokens ---------------------------------------------------------------------------


def test_token_replay_returns_the_same_job_even_with_another_folder_name() -> None:
    h = Harness()
    admin = h.login()
    first = h.submit(admin, token=TOKEN)
    h.advance(20.0)  # the job's status does not matter
    second = h.submit(admin, job_zip("renamed"), folder="renamed", token=TOKEN)
    assert second == first
    assert _count(h) == 1


def test_token_conflict_reports_the_existing_job_and_creates_nothing() -> None:
    h = Harness()
    admin = h.login()
    first = h.submit(admin, token=TOKEN)
    changed = job_zip(extra={"notes.txt": b"changed"})
    problem = h.problem(admin, SubmitJob(folder_name=FOLDER, submit_token=TOKEN), [changed])
    assert problem.code == "submit_token_conflict"
    assert problem.message == "submit token was already used for different job content"
    assert problem.attrs == {"existing_job_id": first}
    assert _count(h) == 1


def test_signature_files_and_empty_dirs_do_not_change_the_content() -> None:
    h = Harness()
    admin = h.login()
    first = h.submit(admin, token=TOKEN)
    signed = job_zip(extra={".__nvfl_sig.json": b"{}", "app/.__nvfl_submitter.crt": b"cert"})
    assert h.submit(admin, signed, token=TOKEN) == first


def test_token_after_deletion_is_refused_for_any_content() -> None:
    h = Harness()
    admin = h.login()
    first = h.submit(admin, token=TOKEN)
    deleted = h.ok(admin, DeleteJob(job_id=first))
    assert deleted == {"job_id": first, "submit_records_marked_deleted": 1}
    for data in (job_zip(), job_zip(extra={"x.txt": b"new"})):
        problem = h.problem(admin, SubmitJob(folder_name=FOLDER, submit_token=TOKEN), [data])
        assert problem.code == "submit_token_job_deleted"
        assert problem.message == "submit token refers to a deleted job"
        assert problem.attrs["job_id"] == first
        assert problem.attrs["state"] == "job_deleted"
        deleted_time = problem.attrs["deleted_time"]
        assert isinstance(deleted_time, str)
        assert deleted_time.endswith("+00:00")
    listing = h.problem(admin, ListJobs(submit_token=TOKEN))
    assert listing.code == "submit_token_job_deleted"
    records = h.system.ports.tokens.for_job(first)
    assert [r.deleted_by for r in records] == [
        {"name": ADMIN, "org": "nvidia", "role": "project_admin"}
    ]


def test_token_scopes_are_independent() -> None:
    h = Harness()
    h.service.add_study("cancer", {"nvidia": ["site-1", "site-2"]}, [LEAD])
    mine = h.submit(h.login(LEAD), token=TOKEN)
    other_user = h.submit(h.login(OTHER_LEAD), token=TOKEN)
    other_study = h.submit(h.login(LEAD, "cancer"), token=TOKEN)
    session_scope = h.submit(h.login(LEAD), token=TOKEN, scope="session")
    assert len({mine, other_user, other_study, session_scope}) == 4
    assert h.submit(h.login(LEAD), token=TOKEN, scope="session") == session_scope


def test_identical_submits_without_a_token_create_distinct_jobs() -> None:
    h = Harness()
    admin = h.login()
    assert h.submit(admin) != h.submit(admin)
    assert _count(h) == 2


def test_list_jobs_by_token_finds_the_job_in_the_callers_scope_only() -> None:
    h = Harness()
    lead = h.login(LEAD)
    job_id = h.submit(lead, token=TOKEN)
    rows = h.ok(lead, ListJobs(submit_token=TOKEN))
    assert [r["job_id"] for r in rows] == [job_id]
    assert h.ok(h.login(OTHER_LEAD), ListJobs(submit_token=TOKEN)) == []
    assert h.ok(lead, ListJobs(submit_token="unknown-token")) == []
    assert h.ok(lead, ListJobs(submit_token=TOKEN, name_prefix="zzz")) == []
    assert h.problem(lead, ListJobs(submit_token="bad token")).code == "invalid_argument"


def test_a_record_left_creating_without_its_job_is_recovered_with_the_reserved_id() -> None:
    h = Harness()
    admin = h.login()
    digest = _content_hash(job_zip())
    reserved = "4b2a3c1d-0e5f-4a6b-8c7d-9e0f1a2b3c4d"
    record = new_record(
        TokenScope.for_principal(admin, TOKEN),
        job_id=reserved,
        job_name=FOLDER,
        job_folder_name=FOLDER,
        content_hash=digest,
        submit_time="2023-11-14T22:13:20+00:00",
    )
    h.system.ports.tokens.put(record)
    assert h.submit(admin, token=TOKEN) == reserved
    stored = h.system.ports.tokens.get(TokenScope.for_principal(admin, TOKEN))
    assert stored is not None
    assert stored.state == "created"
    assert h.status(reserved) == "SUBMITTED"


def test_a_record_left_creating_whose_job_exists_is_replayed_and_marked_created() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin, token=TOKEN)
    scope = TokenScope.for_principal(admin, TOKEN)
    created = h.system.ports.tokens.get(scope)
    assert created is not None
    h.system.ports.tokens.put(msgspec.structs.replace(created, state="creating"))
    assert h.submit(admin, token=TOKEN) == job_id
    again = h.system.ports.tokens.get(scope)
    assert again is not None
    assert again.state == "created"


def _content_hash(data: bytes) -> str:
    return content_hash(zip_view(data))


def test_token_is_never_written_into_the_meta() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin, token=TOKEN)
    meta = h.ok(admin, GetJobMeta(job_id=job_id))
    assert TOKEN not in json.dumps(meta)


def test_delete_tombstones_private_tokens_without_counting_them() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin, token="session.abc", scope="session")
    h.advance(20.0)
    deleted = h.ok(admin, DeleteJob(job_id=job_id))
    assert deleted == {"job_id": job_id, "submit_records_marked_deleted": 0}
    assert [r.state for r in h.system.ports.tokens.for_job(job_id)] == ["job_deleted"]
