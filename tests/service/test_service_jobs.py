"""Job commands: id checks, study scoping, listing, abort, delete, clone, authorization."""

from __future__ import annotations

import pytest

from flare_core import (
    AbortJob,
    CloneJob,
    Command,
    DeleteJob,
    DownloadJobResult,
    GetJobLogs,
    GetJobMeta,
    JobEvent,
    ListJobComponents,
    ListJobs,
    Ok,
)
from tests.service.helpers import (
    ADMIN,
    DEFAULT_META,
    LEAD,
    MEMBER,
    ORG_ADMIN,
    OTHER_LEAD,
    OTHER_ORG_ADMIN,
    Harness,
    job_zip,
)

UNKNOWN = "4b2a3c1d-0e5f-4a6b-8c7d-9e0f1a2b3c4d"
JOB_COMMANDS = (GetJobMeta, AbortJob, DeleteJob, CloneJob, DownloadJobResult, GetJobLogs)


@pytest.mark.parametrize("command", JOB_COMMANDS)
@pytest.mark.parametrize(
    "job_id",
    [
        "not-a-uuid",
        "4b2a3c1d-0e5f-1a6b-8c7d-9e0f1a2b3c4d",  # version 1
        UNKNOWN,
        UNKNOWN.replace("-", ""),  # parses, but jobs are keyed by the hyphenated form
    ],
)
def test_bad_or_unknown_job_ids_are_not_found(command: type[Command], job_id: str) -> None:
    h = Harness()
    problem = h.problem(h.login(), command(job_id=job_id))
    assert problem.code == "job_not_found"
    assert problem.message == f"no such job: {job_id}"


def test_job_ids_match_case_insensitively() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    assert h.ok(admin, GetJobMeta(job_id=job_id.upper()))["job_id"] == job_id


def test_other_studies_jobs_are_hidden_and_legacy_jobs_count_as_default() -> None:
    h = Harness()
    h.service.add_study("cancer", {"nvidia": ["site-1", "site-2"]}, [ADMIN])
    in_cancer = h.submit(h.login(study="cancer"))
    admin = h.login()
    assert h.problem(admin, GetJobMeta(job_id=in_cancer)).code == "job_not_found"
    assert h.ok(admin, ListJobs()) == []
    legacy = {"job_id": UNKNOWN, "name": "old", "status": "FINISHED:COMPLETED", "study": ""}
    h.system.ports.jobs.add(legacy)
    rows = h.ok(admin, ListJobs())
    assert [(r["job_id"], r["study"]) for r in rows] == [(UNKNOWN, "default")]
    assert h.ok(admin, GetJobMeta(job_id=UNKNOWN))["study"] == "default"
    cancer_rows = h.ok(h.login(study="cancer"), ListJobs())
    assert [r["job_id"] for r in cancer_rows] == [in_cancer]


def test_list_jobs_orders_limits_and_filters() -> None:
    h = Harness()
    admin = h.login()
    ids = []
    for name in ("alpha", "beta", "gamma"):
        ids.append(h.submit(admin, job_zip(meta={**DEFAULT_META, "name": name})))
        h.advance(5.0)
    rows = h.ok(admin, ListJobs())
    assert [r["job_id"] for r in rows] == ids
    assert set(rows[0]) == {"job_id", "job_name", "status", "submit_time", "duration", "study"}
    assert [r["job_id"] for r in h.ok(admin, ListJobs(reverse=True))] == ids[::-1]
    assert [r["job_id"] for r in h.ok(admin, ListJobs(limit=2))] == ids[1:]
    assert [r["job_id"] for r in h.ok(admin, ListJobs(limit=2, reverse=True))] == ids[:0:-1]
    assert [r["job_name"] for r in h.ok(admin, ListJobs(name_prefix="BE"))] == ["beta"]
    assert [r["job_id"] for r in h.ok(admin, ListJobs(id_prefix=ids[2][:8].upper()))] == [ids[2]]
    detailed = h.ok(admin, ListJobs(detailed=True, limit=1))
    assert detailed[0]["submitter_name"] == ADMIN
    running = [r for r in h.ok(admin, ListJobs()) if r["status"] == "RUNNING"]
    assert running
    assert all(r["duration"] != "N/A" for r in running)


def test_list_jobs_mine_only_keeps_the_callers_jobs() -> None:
    h = Harness()
    mine = h.submit(h.login(LEAD))
    h.submit(h.login(ADMIN))
    assert [r["job_id"] for r in h.ok(h.login(LEAD), ListJobs(mine_only=True))] == [mine]


# --- abort ------------------------------------------------------------------------------------


def test_abort_a_submitted_job_cancels_it_and_a_repeat_is_a_no_op() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    assert h.ok(admin, AbortJob(job_id=job_id)) == f"Aborted the job {job_id} before running it."
    meta = h.service.job_meta(job_id)
    assert meta is not None
    assert (meta["status"], meta["duration"]) == ("FINISHED:ABORTED", "N/A")
    assert h.ok(admin, AbortJob(job_id=job_id)) == f"Job for {job_id} is already completed."
    h.advance(5.0)
    assert h.status(job_id) == "FINISHED:ABORTED"


def test_abort_a_running_job_signals_the_engine() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    h.advance(4.0)
    assert h.ok(admin, AbortJob(job_id=job_id)) == "Abort signal has been sent to the server app."
    meta = h.service.job_meta(job_id)
    assert meta is not None
    assert (meta["status"], meta["duration"]) == ("FINISHED:ABORTED", "0:00:03")
    assert h.engine.running_jobs() == []


def test_abort_a_dispatched_job_stops_the_engine_copy() -> None:
    h = Harness(start_delay=5.0)
    admin = h.login()
    job_id = h.submit(admin)
    h.advance(1.0)
    assert h.status(job_id) == "DISPATCHED"
    assert h.ok(admin, AbortJob(job_id=job_id)) == f"Aborted the job {job_id} before running it."
    assert h.status(job_id) == "FINISHED:ABORTED"
    h.advance(10.0)
    assert h.engine.running_jobs() == []
    assert h.status(job_id) == "FINISHED:ABORTED"


def test_abort_of_a_running_job_the_engine_lost_is_an_internal_error() -> None:
    h = Harness()
    h.system.ports.jobs.add({"job_id": UNKNOWN, "status": "RUNNING", "study": "default"})
    problem = h.problem(h.login(), AbortJob(job_id=UNKNOWN))
    assert (problem.code, problem.message) == (
        "internal_error",
        f"server internal error: Job {UNKNOWN} is not running.",
    )


# --- delete ----------------------------------------------------------------------------------


def test_delete_removes_the_job_its_blobs_and_publishes_deleted() -> None:
    h = Harness()
    events: list[JobEvent] = []
    h.service.subscribe(events.append)
    admin = h.login()
    job_id = h.submit(admin)
    h.advance(20.0)
    assert h.system.blobs.keys(f"jobs/{job_id}/")
    assert h.ok(admin, DeleteJob(job_id=job_id)) == {
        "job_id": job_id,
        "submit_records_marked_deleted": 0,
    }
    assert h.system.blobs.keys(f"jobs/{job_id}/") == []
    assert h.problem(admin, GetJobMeta(job_id=job_id)).code == "job_not_found"
    assert [e.status for e in events] == [
        "SUBMITTED",
        "DISPATCHED",
        "RUNNING",
        "FINISHED:COMPLETED",
        "DELETED",
    ]


def test_delete_a_running_job_aborts_it_first() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    h.advance(2.0)
    assert h.status(job_id) == "RUNNING"
    h.ok(admin, DeleteJob(job_id=job_id))
    assert h.service.job_meta(job_id) is None
    assert h.engine.running_jobs() == []


def test_delete_waits_for_an_engine_that_stops_asynchronously(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    h.advance(2.0)
    monkeypatch.setattr(h.engine, "abort", lambda job_id: True)  # signal sent, job still alive
    h.ok(admin, DeleteJob(job_id=job_id))
    assert h.status(job_id) == "RUNNING"
    h.engine.finish_job(job_id, "FINISHED:ABORTED")
    assert h.service.job_meta(job_id) is None


# --- clone -----------------------------------------------------------------------------------


def test_clone_copies_the_clone_keys_and_runs() -> None:
    h = Harness()
    h.service.add_study("cancer", {"nvidia": ["site-1", "site-2"]}, [ADMIN, LEAD])
    lead = h.login(LEAD, "cancer")
    source = h.submit(lead, job_zip(meta={**DEFAULT_META, "custom_props": {"a": 1}, "x": 2}))
    h.advance(20.0)
    admin = h.login(study="cancer")
    clone = h.ok(admin, CloneJob(job_id=source))
    assert clone != source
    meta = h.ok(admin, GetJobMeta(job_id=clone))
    assert meta["status"] == "SUBMITTED"
    assert meta["cloned_from"] == source
    assert meta["study"] == "cancer"
    assert (meta["submitter_name"], meta["submitter_role"]) == (ADMIN, "project_admin")
    assert meta["deploy_map"] == DEFAULT_META["deploy_map"]
    assert meta["start_time"] == ""
    assert "custom_props" not in meta
    assert "x" not in meta
    h.advance(20.0)
    assert h.status(clone) == "FINISHED:COMPLETED"


# --- authorization by role -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "allowed"),
    [
        (ADMIN, True),
        (LEAD, True),  # the submitter
        (OTHER_LEAD, False),
        (ORG_ADMIN, True),  # same org as the submitter
        (OTHER_ORG_ADMIN, False),
        (MEMBER, False),
    ],
)
def test_manage_job_rights_follow_the_submitter(user: str, allowed: bool) -> None:
    h = Harness()
    job_id = h.submit(h.login(LEAD))
    reply = h.reply(h.login(user), AbortJob(job_id=job_id))
    assert isinstance(reply, Ok) is allowed
    if not allowed:
        assert h.problem(h.login(user), DeleteJob(job_id=job_id)).code == "not_authorized"


@pytest.mark.parametrize(
    ("user", "allowed"),
    [(ADMIN, True), (LEAD, True), (OTHER_LEAD, False), (ORG_ADMIN, False), (MEMBER, False)],
)
def test_clone_rights(user: str, allowed: bool) -> None:
    h = Harness()
    job_id = h.submit(h.login(LEAD))
    reply = h.reply(h.login(user), CloneJob(job_id=job_id))
    assert isinstance(reply, Ok) is allowed


@pytest.mark.parametrize(
    ("user", "allowed"),
    [(ADMIN, True), (LEAD, True), (OTHER_LEAD, False), (ORG_ADMIN, True), (MEMBER, False)],
)
def test_logs_and_components_follow_the_download_rule(user: str, allowed: bool) -> None:
    h = Harness()
    job_id = h.submit(h.login(LEAD))
    principal = h.login(user)
    for command in (GetJobLogs(job_id=job_id), ListJobComponents(job_id=job_id)):
        assert isinstance(h.reply(principal, command), Ok) is allowed


def test_members_can_view_but_not_manage() -> None:
    h = Harness()
    job_id = h.submit(h.login())
    member = h.login(MEMBER)
    assert h.ok(member, GetJobMeta(job_id=job_id))["job_id"] == job_id
    assert len(h.ok(member, ListJobs())) == 1
    problem = h.problem(member, AbortJob(job_id=job_id))
    assert problem.message == f"user '{MEMBER}' is not authorized for 'abort_job'"


def test_limited_mine_only_listing_is_not_cut_before_the_submitter_filter() -> None:
    h = Harness()
    admin, lead = h.login(ADMIN), h.login(LEAD)
    mine = h.submit(lead)
    h.advance(1.0)
    for _ in range(3):
        h.submit(admin)
        h.advance(1.0)
    rows = h.ok(lead, ListJobs(limit=1, mine_only=True))
    assert [row["job_id"] for row in rows] == [mine]
    assert len(h.ok(lead, ListJobs(limit=2))) == 2


def test_delete_removes_the_jobs_files_from_every_site_workspace() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    keep = h.submit(admin)
    h.advance(20.0)
    workspaces = h.system.workspaces
    assert workspaces.tree("site-1").files(job_id)
    h.ok(admin, DeleteJob(job_id=job_id))
    for site in workspaces.sites():
        assert workspaces.tree(site).files(job_id) == []
        assert workspaces.tree(site).stat(job_id) is None
    assert workspaces.tree("site-1").files(keep)
