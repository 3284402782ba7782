"""``watch_jobs``: typed job status changes for one job or the study, over every transport.

Memory runs on the virtual clock; the network runs use ``serve()`` with a poll interval far
longer than a job, so finishing in time proves the waits were woken by the transport's event
source (WebSocket pushes, HTTP's ``/v1/events`` stream), not by polling.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import flare_core as fc
from flare_core import JobChange, JobNotFound
from flare_ports import connect, connect_async
from flare_testing import FakeFlare, JobFolders, ServedSystem, serve

LIFE = [None, "SUBMITTED", "RUNNING", "FINISHED:COMPLETED"]


def _path(changes: list[JobChange]) -> list[str | None]:
    return [changes[0].old_status, *(change.new_status for change in changes)]


def test_one_job_from_submit_to_its_end_then_the_iterator_stops(tmp_path: Path) -> None:
    with FakeFlare() as fake, fake.session() as session:
        job_id = session.submit_job(str(JobFolders(tmp_path).hello()))
        changes = list(session.watch_jobs(job_id))
    assert _path(changes) == LIFE
    assert all(change.job_id == job_id for change in changes)
    assert all(change.job_name == "hello-numpy-sag" for change in changes)
    for before, after in itertools.pairwise(changes):
        assert after.old_status == before.new_status
        assert after.time >= before.time
    assert [change.terminal for change in changes] == [False, False, True]


def test_a_finished_job_is_reported_once_and_the_watch_ends(tmp_path: Path) -> None:
    with FakeFlare() as fake, fake.session() as session:
        job_id = session.submit_job(str(JobFolders(tmp_path).hello()))
        fake.finish_job(job_id, "FINISHED:ABORTED")
        (change,) = session.watch_jobs(job_id)
    assert (change.old_status, change.new_status) == (None, "FINISHED:ABORTED")


def test_an_unknown_job_is_job_not_found(tmp_path: Path) -> None:
    with FakeFlare() as fake, fake.session() as session:
        stream = session.watch_jobs("00000000-0000-4000-8000-000000000000")
        with pytest.raises(JobNotFound):
            next(stream)
        with pytest.raises(fc.InvalidArgumentError):
            next(session.watch_jobs(poll_interval=0))


def test_the_study_watch_sees_every_job_and_deletions(tmp_path: Path) -> None:
    jobs = JobFolders(tmp_path)
    with FakeFlare() as fake, fake.session() as session:
        first = session.submit_job(str(jobs.hello()))
        stream = session.watch_jobs()
        assert next(stream).job_id == first  # already there: reported as first seen
        second = session.submit_job(str(jobs.hello(name="second")))
        seen: dict[str, list[str]] = {}
        for change in stream:
            seen.setdefault(change.job_id, []).append(change.new_status)
            ended = [jid for jid, statuses in seen.items() if statuses[-1].startswith("FINI")]
            if len(ended) == 2:
                break
        assert seen[second][0] == "SUBMITTED"
        assert seen[first][-1] == seen[second][-1] == "FINISHED:COMPLETED"
        session.delete_job(first)
        deleted = next(stream)
        assert (deleted.job_id, deleted.new_status, deleted.terminal) == (first, "DELETED", True)
        stream.close()  # stopping a study watch is the caller's call


def test_other_studies_jobs_are_not_seen(tmp_path: Path) -> None:
    with FakeFlare() as fake:
        fake.add_study("s1", {"nvidia": ["site-1", "site-2"]}, ["admin@nvidia.com"])
        with fake.session() as default, fake.session(study="s1") as other:
            jobs = JobFolders(tmp_path)
            mine = default.submit_job(str(jobs.hello()))
            other.submit_job(str(jobs.hello()))
            stream = default.watch_jobs()
            assert {next(stream).job_id} == {mine}
            fake.finish_job(mine)
            assert next(stream).job_id == mine
            stream.close()


@pytest.mark.asyncio
async def test_async_watch_is_an_async_iterator(tmp_path: Path) -> None:
    with FakeFlare() as fake:
        async with fake.async_session() as session:
            job_id = await session.submit_job(str(JobFolders(tmp_path).hello()))
            changes = [change async for change in session.watch_jobs(job_id)]
    assert _path(changes) == LIFE


@pytest.fixture(scope="module")
def server() -> Iterator[ServedSystem]:
    with serve(job_duration=0.2) as system:
        yield system


@pytest.mark.parametrize("kind", ["http", "ws"])
def test_network_watches_wake_on_the_servers_events(
    server: ServedSystem, tmp_path: Path, kind: str
) -> None:
    url = server.http_url if kind == "http" else server.ws_url
    with connect(url, user=server.admin_user, api_key=server.admin_key) as session:
        job_id = session.submit_job(str(JobFolders(tmp_path).hello()))
        started = time.monotonic()
        changes = list(session.watch_jobs(job_id, poll_interval=60))
        elapsed = time.monotonic() - started
    assert changes[-1].new_status == "FINISHED:COMPLETED"
    assert changes[0].old_status is None
    assert elapsed < 30  # far below one poll interval: an event woke the wait


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["http", "ws"])
async def test_async_network_study_watch(server: ServedSystem, tmp_path: Path, kind: str) -> None:
    url = server.http_url if kind == "http" else server.ws_url
    session = await connect_async(url, user=server.admin_user, api_key=server.admin_key)
    async with session:
        job_id = await session.submit_job(str(JobFolders(tmp_path).hello()))
        started = time.monotonic()
        async for change in session.watch_jobs(poll_interval=60):
            if change.job_id == job_id and change.terminal:
                break
        assert time.monotonic() - started < 30
