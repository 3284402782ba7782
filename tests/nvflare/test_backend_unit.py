"""The nvflare backend over a stand-in NVFlare session: translation, normalisation, the session
pool's serialisation, deadlines and rebuilds, transfers, the watcher and ``nvflare://`` URLs.

These run without NVFlare; ``make test-nvflare`` certifies the same code on a real POC.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from flare_adapters.inprocess import LocalTransport
from flare_adapters.nvflare import KitUser, NVFlareBackend, NVFlareConfig
from flare_adapters.nvflare import commands as nvflare_commands
from flare_adapters.nvflare.connect import kit_of
from flare_adapters.nvflare.errors import same_name, translate
from flare_adapters.nvflare.replies import job_components, resources_by_site, status_by_site
from flare_adapters.nvflare.watcher import JobWatcher
from flare_adapters.session import AsyncSession, Session
from flare_adapters.zipsafe import stream_zip
from flare_core import (
    AuthenticationError,
    DownloadJobResult,
    Gauges,
    GetJobMeta,
    InternalError,
    InvalidArgumentError,
    JobEvent,
    JobNotFound,
    NoConnection,
    Ok,
    Problem,
    SubmitJob,
    SubmitTokenConflict,
)
from flare_core.flows import RetryPolicy
from flare_core.service import hash_api_key
from flare_ports import ReportsGauges, connect
from tests.nvflare import fake_nvflare as fake

KIT = "/kits/admin@nvidia.com"


@pytest.fixture
def federation() -> fake.FakeFederation:
    return fake.FakeFederation()


def _backend(federation: fake.FakeFederation, tmp_path: Path, **config: object) -> NVFlareBackend:
    users = (KitUser(name="admin@nvidia.com", kit=KIT),)
    settings = NVFlareConfig(users=users, scratch_dir=str(tmp_path), **config)  # type: ignore[arg-type]
    return NVFlareBackend(settings, opener=federation.opener)


@pytest.fixture
def backend(federation: fake.FakeFederation, tmp_path: Path) -> Iterator[NVFlareBackend]:
    backend = _backend(federation, tmp_path)
    yield backend
    backend.close()


@pytest.fixture
def session(backend: NVFlareBackend, tmp_path: Path) -> Iterator[Session]:
    transport = LocalTransport(backend, user="admin@nvidia.com")
    with Session(
        transport,
        download_dir=str(tmp_path / "downloads"),
        retry=RetryPolicy(attempts=1),
    ) as opened:
        yield opened


def _job(tmp_path: Path, name: str = "hello") -> str:
    folder = tmp_path / "jobs" / name
    (folder / "app" / "config").mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps({"name": name, "deploy_map": {"app": ["@ALL"]}}))
    (folder / "app" / "config" / "config_fed_server.json").write_text("{}")
    return str(folder)


# --- translation ---------------------------------------------------------------------------


def test_nvflare_exceptions_become_ours_with_their_attributes() -> None:
    exc = translate(fake.SubmitTokenConflict("content changed", existing_job_id="j-1"))
    assert type(exc) is SubmitTokenConflict
    assert exc.existing_job_id == "j-1"
    assert str(exc) == "content changed"
    assert type(translate(fake.JobNotFound("no such job: x"))) is JobNotFound


def test_builtin_argument_errors_become_invalid_argument_errors() -> None:
    for raised in (ValueError("bad"), TypeError("bad"), SyntaxError("bad"), AssertionError("bad")):
        exc = translate(raised)
        assert type(exc) is InvalidArgumentError
        assert str(exc) == "bad"


def test_unknown_foreign_errors_become_opaque_internal_errors() -> None:
    exc = translate(KeyError("x"))
    assert type(exc) is InternalError
    assert "KeyError" in str(exc)
    assert type(translate(ConnectionResetError("reset"))) is NoConnection


def test_same_name_leaves_built_ins_alone() -> None:
    error = ValueError("bad")
    assert same_name(error) is error
    assert type(same_name(fake.JobNotFound("x"))) is JobNotFound


# --- normalisation -------------------------------------------------------------------------


def test_check_status_is_keyed_by_site_and_the_server_is_started() -> None:
    raw = {
        "status": "ok",
        "server_status": "stopped",
        "server_start_time": 10.0,
        "jobs": [],
        "clients": [{"client_name": "site-1", "client_last_conn_time": 11.0}],
        "client_status": [
            {"client_name": "site-1", "app_name": "app", "job_id": "j", "status": "started"},
            {"client_name": "site-2", "status": "no_jobs"},
        ],
    }
    value = status_by_site(raw, "all")
    assert value["server"] == {"status": "started", "start_time": 10.0, "jobs": []}
    assert value["server_status"] == "started"
    assert value["site-1"]["last_connect_time"] == 11.0
    assert value["site-1"]["jobs"] == [{"job_id": "j", "app_name": "app", "status": "started"}]
    assert value["site-2"]["jobs"] == []
    assert value["client_status"] == raw["client_status"]  # the reference keys stay
    assert "status" not in value


def test_resources_are_dicts_and_never_evaluated_as_code() -> None:
    value = resources_by_site({"server": "{'cpus': 2}", "site-1": "__import__('os')", "x": "7"})
    assert value == {
        "server": {"cpus": 2},
        "site-1": {"report": "__import__('os')"},
        "x": {"report": "7"},
    }


def test_half_written_system_components_are_not_listed() -> None:
    # NVFlare's file store writes "<name>_<uuid4>" and renames it (a queued job's meta, mid-write).
    temp = "meta_355c0af4-fbaf-47a8-b05a-93e91977ff1e"
    assert job_components([temp, "ERRORLOG_site-1", "log_server"]) == [
        "ERRORLOG_site-1",
        "log_server",
    ]
    assert job_components(None) == []
    # A user's component that merely looks alike stays.
    assert job_components(["report_355c0af4-fbaf-47a8-b05a-93e91977ff1e"]) == [
        "report_355c0af4-fbaf-47a8-b05a-93e91977ff1e"
    ]


# --- the backend through a session -----------------------------------------------------------


def test_submit_list_meta_and_download_round_trip(
    session: Session, tmp_path: Path, federation: fake.FakeFederation
) -> None:
    job_id = session.submit_job(_job(tmp_path))
    assert federation.jobs[job_id]["files"] == ["app", "meta.json"]  # the folder, unwrapped
    assert [row["job_id"] for row in session.list_jobs()] == [job_id]
    assert session.get_job_meta(job_id)["study"] == "default"
    federation.set_status(job_id, "FINISHED:COMPLETED")
    path = session.download_job_result(job_id)
    # NVFlare named its folder <job_id>__1; the session's folder is named after the job.
    assert os.path.basename(path) == job_id
    assert (Path(path) / "workspace" / "log.txt").read_text() == "round 1 finished\n"


def test_downloads_leave_no_scratch_files(
    session: Session,
    backend: NVFlareBackend,
    federation: fake.FakeFederation,
    tmp_path: Path,
) -> None:
    job_id = session.submit_job(_job(tmp_path))
    federation.set_status(job_id, "FINISHED:COMPLETED")
    session.download_job_result(job_id)
    scratch = backend._transfers.root
    assert os.listdir(scratch) == []


def test_abort_returns_none_and_delete_aborts_a_live_job_first(
    session: Session, tmp_path: Path, federation: fake.FakeFederation
) -> None:
    job_id = session.submit_job(_job(tmp_path))
    session.abort_job(job_id)  # returns None (DECISIONS §11): the type says so
    other = session.submit_job(_job(tmp_path, "other"))
    federation.set_status(other, "RUNNING")
    assert session.delete_job(other) == {"job_id": other, "submit_records_marked_deleted": 0}
    assert other not in federation.jobs


_RACED = "server internal error: exception <class 'OSError'>"


@pytest.fixture
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend's pause before a raced call runs again or its outcome is read, made zero."""
    monkeypatch.setattr(nvflare_commands, "SETTLE_POLL", 0.0)


def test_a_delete_that_lost_nvflares_scheduler_race_is_run_again(
    session: Session, tmp_path: Path, federation: fake.FakeFederation, no_pause: None
) -> None:
    job_id = session.submit_job(_job(tmp_path))
    federation.fail_delete = [fake.InternalError(_RACED), fake.InternalError(_RACED)]
    assert session.delete_job(job_id)["job_id"] == job_id
    assert job_id not in federation.jobs
    assert not federation.fail_delete


def test_a_raced_delete_that_removed_the_job_after_all_is_a_delete(
    session: Session, tmp_path: Path, federation: fake.FakeFederation, no_pause: None
) -> None:
    # The raced try removed the job; the next finds no such job: deleted, not JobNotFound.
    job_id = session.submit_job(_job(tmp_path))
    federation.fail_delete = [
        fake.InternalError(_RACED),
        fake.JobNotFound(f"no such job: {job_id}"),
    ]
    assert session.delete_job(job_id)["job_id"] == job_id
    assert not federation.fail_delete
    federation.fail_delete = [fake.JobNotFound(f"no such job: {job_id}")]
    with pytest.raises(JobNotFound):  # not found at the first try: the caller's error
        session.delete_job(job_id)


def test_a_delete_that_keeps_losing_or_fails_otherwise_is_reported(
    session: Session, tmp_path: Path, federation: fake.FakeFederation, no_pause: None
) -> None:
    job_id = session.submit_job(_job(tmp_path))
    federation.fail_delete = [fake.InternalError(_RACED)] * 3
    with pytest.raises(InternalError, match="OSError"):
        session.delete_job(job_id)
    federation.fail_delete = [fake.InternalError("server internal error: disk full")]
    with pytest.raises(InternalError, match="disk full"):
        session.delete_job(job_id)
    assert job_id in federation.jobs  # no second try for another failure
    assert session.delete_job(job_id)["job_id"] == job_id


def test_check_status_and_resources_reach_the_session_normalised(
    session: Session,
) -> None:
    info = session.get_system_info()
    assert info.server_info.status == "started"
    assert [c.name for c in info.client_info] == ["site-1"]
    assert session.report_resources("all")["server"] == {"num_cpus": 2, "gpus": []}


def test_unknown_job_is_job_not_found(session: Session) -> None:
    with pytest.raises(JobNotFound):
        session.get_job_meta("0b0c1a2e-4f5a-4b6c-8d7e-9f0a1b2c3d4e")


# --- login and keys --------------------------------------------------------------------------


def test_login_needs_a_configured_user(backend: NVFlareBackend) -> None:
    with pytest.raises(AuthenticationError):
        backend.login("nobody@nvidia.com", None, "default")


def test_gauges_count_open_gateway_sessions_and_no_jobs(backend: NVFlareBackend) -> None:
    assert isinstance(backend, ReportsGauges)
    assert backend.gauges() == Gauges(open_sessions=0)
    first = backend.login("admin@nvidia.com", None, "default")
    backend.login("admin@nvidia.com", None, "default")
    assert backend.gauges() == Gauges(open_sessions=2, jobs_by_status=None)
    backend.logout(first.token)
    assert backend.gauges().open_sessions == 1


def test_gateway_users_need_their_api_key(federation: fake.FakeFederation, tmp_path: Path) -> None:
    digest = hash_api_key("s3cret", b"0123456789abcdef", n=2**4)
    users = (KitUser(name="admin@nvidia.com", kit=KIT, api_key_hash=digest),)
    backend = NVFlareBackend(NVFlareConfig(users=users), opener=federation.opener)
    try:
        with pytest.raises(AuthenticationError):
            backend.login("admin@nvidia.com", "wrong", "default")
        with pytest.raises(AuthenticationError):
            backend.login("admin@nvidia.com", None, "default")
        assert backend.login("admin@nvidia.com", "s3cret", "default").principal.study == "default"
    finally:
        backend.close()


def test_sessions_of_one_user_and_study_share_one_nvflare_login(
    backend: NVFlareBackend, federation: fake.FakeFederation
) -> None:
    backend.login("admin@nvidia.com", None, "default")
    backend.login("admin@nvidia.com", None, "default")
    backend.login("admin@nvidia.com", None, "other")
    assert federation.opened == [("admin@nvidia.com", "default"), ("admin@nvidia.com", "other")]


def test_a_failed_nvflare_login_is_reported_and_not_kept(
    federation: fake.FakeFederation, tmp_path: Path
) -> None:
    calls = []

    def opener(user: KitUser, study: str, timeout: float) -> fake.FakeSession:
        calls.append(study)
        if len(calls) == 1:
            raise fake.NoConnection("cannot connect to server")
        return federation.opener(user, study, timeout)

    users = (KitUser(name="admin@nvidia.com", kit=KIT),)
    backend = NVFlareBackend(NVFlareConfig(users=users), opener=opener)
    try:
        with pytest.raises(NoConnection):
            backend.login("admin@nvidia.com", None, "default")
        backend.login("admin@nvidia.com", None, "default")
        assert calls == ["default", "default"]
    finally:
        backend.close()


# --- the session pool ------------------------------------------------------------------------


def test_a_session_nvflare_closed_is_rebuilt_and_the_command_runs(
    backend: NVFlareBackend, federation: fake.FakeFederation
) -> None:
    grant = backend.login("admin@nvidia.com", None, "default")
    federation.fail_next.append(fake.SessionClosed("the session is closed on server"))
    reply = backend.handle(grant.principal, GetJobMeta(job_id="nope"))
    assert isinstance(reply, Problem)
    assert reply.error == "JobNotFound"
    assert len(federation.opened) == 2


def test_a_call_past_its_deadline_abandons_the_session(
    federation: fake.FakeFederation, tmp_path: Path
) -> None:
    backend = _backend(federation, tmp_path, command_timeout=0.2)
    try:
        grant = backend.login("admin@nvidia.com", None, "default")
        federation.block = threading.Event()
        reply = backend.handle(grant.principal, GetJobMeta(job_id="nope"))
        assert isinstance(reply, Problem)
        assert reply.code == "no_connection"
        federation.block.set()
        federation.block = None
        # The next call runs on a fresh session instead of queueing behind the late one.
        reply = backend.handle(grant.principal, GetJobMeta(job_id="nope"))
        assert isinstance(reply, Problem)
        assert reply.error == "JobNotFound"
        assert len(federation.opened) == 2
    finally:
        backend.close()


# --- transfers -------------------------------------------------------------------------------


def test_an_unsafe_upload_is_an_invalid_job_definition(backend: NVFlareBackend) -> None:
    grant = backend.login("admin@nvidia.com", None, "default")
    archive = b"".join(stream_zip([("job/meta.json", [b"{}"])]))
    broken = archive[: len(archive) // 2]
    reply = backend.handle(grant.principal, SubmitJob(folder_name="job"), [broken])
    assert isinstance(reply, Problem)
    assert reply.error == "InvalidJobDefinition"
    assert os.listdir(backend._transfers.root) == []


def test_an_upload_over_the_limit_is_refused(
    federation: fake.FakeFederation, tmp_path: Path
) -> None:
    backend = _backend(federation, tmp_path, max_upload_bytes=100)
    try:
        grant = backend.login("admin@nvidia.com", None, "default")
        reply = backend.handle(grant.principal, SubmitJob(folder_name="job"), [b"x" * 101])
        assert isinstance(reply, Problem)
        assert "larger than 100 bytes" in reply.message
    finally:
        backend.close()


def test_download_stream_is_a_zip_of_the_folder(
    session: Session,
    backend: NVFlareBackend,
    tmp_path: Path,
    federation: fake.FakeFederation,
) -> None:
    job_id = session.submit_job(_job(tmp_path))
    federation.set_status(job_id, "FINISHED:COMPLETED")
    grant = backend.login("admin@nvidia.com", None, "default")
    reply = backend.handle(grant.principal, DownloadJobResult(job_id=job_id))
    assert isinstance(reply, Ok)
    data = b"".join(backend.open_download(grant.principal, reply.value["download_id"]))
    (tmp_path / "result.zip").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "result.zip") as archive:
        assert archive.namelist() == ["workspace/log.txt"]
    with pytest.raises(JobNotFound):
        backend.open_download(grant.principal, reply.value["download_id"])


# --- job events ------------------------------------------------------------------------------


def test_the_watcher_publishes_changes_after_its_baseline(
    backend: NVFlareBackend, federation: fake.FakeFederation, tmp_path: Path
) -> None:
    events: list[JobEvent] = []
    backend.login("admin@nvidia.com", None, "default")
    slot = backend._pool.slots()[0]
    watcher = JobWatcher(lambda: [("default", slot)], events.append)
    session = fake.FakeSession(federation, "default")
    job_id = session.submit_job(_job(tmp_path))
    watcher.poll_once()
    assert events == []
    federation.set_status(job_id, "RUNNING")
    watcher.poll_once()
    del federation.jobs[job_id]
    watcher.poll_once()
    assert [(e.job_id, e.status) for e in events] == [(job_id, "RUNNING"), (job_id, "DELETED")]


def test_a_waiting_session_wakes_on_the_watchers_event(
    federation: fake.FakeFederation, tmp_path: Path
) -> None:
    backend = _backend(federation, tmp_path, watch_interval=0.02)
    try:
        transport = LocalTransport(backend, user="admin@nvidia.com")
        with Session(transport) as session:
            job_id = session.submit_job(_job(tmp_path))
            threading.Timer(0.1, federation.set_status, (job_id, "FINISHED:COMPLETED")).start()
            # poll_interval 3600: only an event can end this wait in time.
            meta = session.wait_for_job(job_id, timeout=30, poll_interval=3600)
            assert meta["status"] == "FINISHED:COMPLETED"
    finally:
        backend.close()


# --- nvflare:// URLs -------------------------------------------------------------------------


def test_nvflare_urls_name_an_absolute_kit() -> None:
    assert kit_of("nvflare:///ws/prod_00/admin%40nvidia.com") == "/ws/prod_00/admin@nvidia.com"
    for bad in ("nvflare://host/kit", "nvflare:relative/kit", "http:///kit"):
        with pytest.raises(InvalidArgumentError):
            kit_of(bad)


def test_a_user_without_a_kit_cannot_log_in(tmp_path: Path) -> None:
    # NVFlare knows an admin only by a startup kit: no kit, no user.
    with pytest.raises(AuthenticationError, match="not an NVFlare admin startup kit"):
        connect(f"nvflare://{tmp_path}/nobody@nvidia.com", user="nobody@nvidia.com")


def test_the_async_driver_runs_over_the_local_transport(
    federation: fake.FakeFederation, tmp_path: Path
) -> None:
    backend = _backend(federation, tmp_path, watch_interval=0.02)

    async def scenario() -> None:
        transport = LocalTransport(backend, user="admin@nvidia.com")
        async with AsyncSession(transport, download_dir=str(tmp_path / "dl")) as session:
            job_id = await session.submit_job(_job(tmp_path))  # the upload is pulled off-loop
            threading.Timer(0.1, federation.set_status, (job_id, "FINISHED:COMPLETED")).start()
            meta = await session.wait_for_job(job_id, timeout=30, poll_interval=3600)
            assert meta["status"] == "FINISHED:COMPLETED"
            path = await session.download_job_result(job_id)
            assert (Path(path) / "workspace" / "log.txt").is_file()

    try:
        asyncio.run(scenario())
    finally:
        backend.close()


def test_an_abort_that_nvflares_scheduler_undid_is_run_again(
    session: Session, tmp_path: Path, federation: fake.FakeFederation, no_pause: None
) -> None:
    job_id = session.submit_job(_job(tmp_path))
    federation.lost_aborts = 2
    session.abort_job(job_id)
    assert session.get_job_meta(job_id)["status"] == "FINISHED:ABORTED"
    assert (federation.lost_aborts, federation.aborts) == (0, 3)


def test_an_abort_undone_every_time_is_reported_and_others_are_sent_once(
    session: Session, tmp_path: Path, federation: fake.FakeFederation, no_pause: None
) -> None:
    job_id = session.submit_job(_job(tmp_path))
    federation.lost_aborts = 3
    with pytest.raises(InternalError, match="undid the abort 3 times: the job is SUBMITTED"):
        session.abort_job(job_id)
    assert federation.aborts == 3
    running = session.submit_job(_job(tmp_path, "running"))
    federation.set_status(running, "RUNNING")
    federation.lost_aborts = 1  # only an unstarted job's abort is a meta write NVFlare can lose
    session.abort_job(running)
    session.abort_job(running)  # finished now: NVFlare says so, nothing is read back
    assert federation.aborts == 5
    assert session.get_job_meta(running)["status"] == "FINISHED:ABORTED"
