"""Both network transports, sync and async, against the real application: every kind of call,
problems re-raised as exactly the server's exception, progress, deadlines and expiry."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from pathlib import Path
from typing import Any

import pytest

from flare_adapters.network import TransferProgress
from flare_core.errors import (
    AuthenticationError,
    CommandError,
    InvalidArgumentError,
    JobNotFound,
    NoConnection,
    SessionClosed,
    SessionExpired,
    SubmitTokenConflict,
)
from flare_testing.job_folders import JobFolders
from tests.transports.conftest import FAST_RETRY, factory
from tests.transports.proxy import LoopbackProxy
from tests.transports.servers import ADMIN, VirtualServer, virtual_server


@pytest.fixture
def jobs(tmp_path: Path) -> JobFolders:
    return JobFolders(tmp_path / "jobs")


def test_a_job_round_trip(open_session: Any, server: VirtualServer, jobs: JobFolders) -> None:
    session = open_session()
    job_id = session.submit_job(str(jobs.hello()))
    assert session.get_job_meta(job_id)["status"] in ("SUBMITTED", "DISPATCHED", "RUNNING")
    assert job_id in [row["job_id"] for row in session.list_jobs()]
    server.advance(100)
    assert session.wait_for_job(job_id, poll_interval=0.01)["status"] == "FINISHED:COMPLETED"
    assert "finished" in session.get_job_logs(job_id)["logs"]["server"]
    result = Path(session.download_job_result(job_id))
    assert result.name == job_id
    assert any(result.rglob("*"))
    assert session.get_system_info().server_info.status == "started"


@pytest.mark.asyncio
async def test_an_async_job_round_trip(
    open_async_session: Any, server: VirtualServer, jobs: JobFolders
) -> None:
    session = await open_async_session()
    job_id = await session.submit_job(str(jobs.hello()))
    server.advance(100)
    meta = await session.wait_for_job(job_id, poll_interval=0.01)
    assert meta["status"] == "FINISHED:COMPLETED"
    result = Path(await session.download_job_result(job_id))
    assert result.is_dir()


@pytest.mark.asyncio
async def test_many_calls_in_flight_on_one_async_session(
    open_async_session: Any, jobs: JobFolders
) -> None:
    session = await open_async_session()
    job_ids = [await session.submit_job(str(jobs.hello(name=f"n{i}"))) for i in range(3)]
    metas = await asyncio.gather(*(session.get_job_meta(j) for j in job_ids * 10))
    assert [meta["job_id"] for meta in metas] == job_ids * 10


def test_submit_token_conflict_keeps_its_attribute(open_session: Any, jobs: JobFolders) -> None:
    session = open_session()
    token = f"tok-{os.urandom(4).hex()}"
    first = session.submit_job(str(jobs.hello(num_rounds=3)), submit_token=token)
    assert session.submit_job(str(jobs.hello(num_rounds=3)), submit_token=token) == first
    with pytest.raises(SubmitTokenConflict) as caught:
        session.submit_job(str(jobs.hello(num_rounds=7)), submit_token=token)
    assert caught.value.existing_job_id == first


def test_command_error_keeps_its_attributes(open_session: Any) -> None:
    with pytest.raises(CommandError) as caught:
        open_session().show_study("no-such-study")
    assert caught.value.error_code == "STUDY_NOT_FOUND"
    assert isinstance(caught.value.exit_code, int)


@pytest.mark.parametrize("job_id", ["0" * 8, "..", ".", "a/b", "%2E%2E"])
def test_odd_job_ids_reach_their_route(open_session: Any, job_id: str) -> None:
    with pytest.raises(JobNotFound):
        open_session().abort_job(job_id)


def test_login_rejections_keep_the_auth_code(scheme: str, server: VirtualServer) -> None:
    with pytest.raises(AuthenticationError) as caught:
        factory(scheme).connect(
            server.url(scheme), user=ADMIN, api_key=ADMIN, study="nostudy", retry=FAST_RETRY
        )
    assert caught.value.auth_code
    with pytest.raises(AuthenticationError):
        factory(scheme).connect(server.url(scheme), user=ADMIN, api_key="wrong", study="default")


def test_an_unreachable_server_is_no_connection(scheme: str, proxy: LoopbackProxy) -> None:
    proxy.stop()
    with pytest.raises(NoConnection, match="cannot connect"):
        factory(scheme).connect(
            proxy.url(scheme), user=ADMIN, api_key=ADMIN, study="default", retry=FAST_RETRY
        )


def test_progress_is_reported_both_ways(
    open_session: Any, server: VirtualServer, jobs: JobFolders
) -> None:
    reports: list[TransferProgress] = []
    session = open_session(progress=reports.append, chunk_size=64 * 1024)
    big = os.urandom(3 * 1024 * 1024)  # incompressible, bigger than a WebSocket frame may be
    job_id = session.submit_job(str(jobs.hello(extra_files={"app/custom/blob.bin": big})))
    uploads = [r for r in reports if r.direction == "upload"]
    assert len(uploads) > 10
    assert [r.transferred for r in uploads] == sorted(r.transferred for r in uploads)
    # Every transport sends (and reports) pieces of at most the session's chunk size.
    sent = [0, *(r.transferred for r in uploads)]
    assert max(after - before for before, after in itertools.pairwise(sent)) <= 64 * 1024
    assert uploads[-1].done
    assert uploads[-1].op == "submit_job"
    assert uploads[-1].transferred > len(big)
    server.advance(100)
    session.wait_for_job(job_id, poll_interval=0.01)
    session.download_job_result(job_id)
    downloads = [r for r in reports if r.direction == "download"]
    assert downloads[-1].done
    assert downloads[-1].op == "download_job_result"
    assert downloads[-1].transferred > 0


def test_a_failing_progress_callback_surfaces_as_itself(
    open_session: Any, jobs: JobFolders
) -> None:
    def explode(report: TransferProgress) -> None:
        raise KeyError("progress went wrong")

    session = open_session(progress=explode)
    with pytest.raises(KeyError, match="progress went wrong"):
        session.submit_job(str(jobs.hello()))
    assert session.list_jobs() is not None  # the session is still usable


def test_a_call_past_its_deadline_is_no_connection(
    scheme: str, proxy: LoopbackProxy, tmp_path: Path
) -> None:
    session = factory(scheme).connect(
        proxy.url(scheme), user=ADMIN, api_key=ADMIN, study="default", retry=FAST_RETRY
    )
    try:
        session.set_timeout(0.2)
        proxy.hold()
        started = time.monotonic()
        with pytest.raises(NoConnection, match="no reply"):
            session.clone_job("0" * 32)  # not idempotent: a single attempt
        assert time.monotonic() - started < 5.0
        proxy.release()
        proxy.cut()
        session.set_timeout(10.0)
        assert isinstance(session.list_jobs(), list)
    finally:
        proxy.release()
        session.close()


def test_expired_sessions_raise_and_send_nothing(scheme: str) -> None:
    with virtual_server(idle_timeout=60.0) as running:
        session = factory(scheme).connect(
            running.url(scheme), user=ADMIN, api_key=ADMIN, study="default"
        )
        session.list_jobs()
        running.advance(61)
        with pytest.raises(SessionExpired, match="inactivity"):
            session.list_jobs()
        with pytest.raises(SessionExpired):
            session.get_system_info()
        session.close()


def test_a_closed_session_refuses_locally(open_session: Any) -> None:
    session = open_session()
    session.close()
    with pytest.raises(SessionClosed, match="session closed"):
        session.list_jobs()


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("timeout", 0, InvalidArgumentError),
        ("connect_timeout", -1.0, InvalidArgumentError),
        ("max_poll_interval", 0, InvalidArgumentError),
        ("ssl", "yes", InvalidArgumentError),
        ("progress", 3, InvalidArgumentError),
        ("chunk_size", 10, InvalidArgumentError),
        ("retry", {"attempts": 3}, InvalidArgumentError),
        ("frobnicate", True, TypeError),
    ],
)
def test_bad_options_are_refused_before_connecting(
    scheme: str, option: str, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        factory(scheme).connect(
            f"{scheme}://127.0.0.1:9", user=ADMIN, api_key=ADMIN, study="default", **{option: value}
        )


@pytest.mark.parametrize("url", ["ftp://host", "http://", "http://h:1/?q=1", "ws://h:1/#x"])
def test_bad_urls_are_invalid_arguments(url: str) -> None:
    for scheme in ("http", "ws"):
        with pytest.raises(InvalidArgumentError):
            factory(scheme).connect(url, user=ADMIN, api_key=ADMIN, study="default")


def test_a_session_that_cannot_be_built_releases_its_transport(
    scheme: str, server: VirtualServer
) -> None:
    import threading

    with pytest.raises(TypeError):
        factory(scheme).connect(
            server.url(scheme), user=ADMIN, api_key=ADMIN, study="default", upload_dir=123
        )
    assert f"flare-{scheme}" not in {thread.name for thread in threading.enumerate()}


def test_calling_back_into_a_sync_session_from_its_loop_is_refused(
    open_session: Any, jobs: JobFolders
) -> None:
    sessions: list[Any] = []

    def reenter(report: TransferProgress) -> None:
        sessions[0].list_jobs()  # runs on the transport's loop thread: would wait for itself

    session = open_session(progress=reenter)
    sessions.append(session)
    with pytest.raises(RuntimeError, match="own event loop thread"):
        session.submit_job(str(jobs.hello()))
    assert isinstance(session.list_jobs(), list)
