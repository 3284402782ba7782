"""The HTTP transport holds its ``GET /v1/events`` streams across sleeps (``event_streams``).

A stream per sleep missed a change that landed between the poll and the next sleep's
subscription: the waiter saw it only at its next poll, up to ``poll_interval`` later.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from flare_adapters.http import event_streams
from flare_adapters.http.client import AsyncHttpTransport, HttpTransport
from flare_adapters.session import Session
from flare_core.commands import GetJobMeta
from flare_core.replies import Ok
from flare_testing.job_folders import JobFolders
from tests.transports.proxy import LoopbackProxy
from tests.transports.servers import ADMIN, VirtualServer

pytestmark = pytest.mark.asyncio

BOUND = 10.0  # generous bound on what must happen
LONG = 60.0  # a sleep that only an event ends within BOUND


@pytest_asyncio.fixture
async def transport(proxy: LoopbackProxy) -> AsyncIterator[AsyncHttpTransport]:
    transport = await AsyncHttpTransport.open(proxy.url("http"), user=ADMIN, api_key=ADMIN)
    yield transport
    await transport.aclose()


@pytest.fixture
def submitter(server: VirtualServer) -> Iterator[Session]:
    # Straight to the server: its connections are not counted by the proxy.
    session = Session(HttpTransport.connect(server.http_url, user=ADMIN, api_key=ADMIN))
    yield session
    session.close()


def _submit(submitter: Session, tmp_path: Path) -> str:
    return submitter.submit_job(str(JobFolders(tmp_path).hello()))


async def test_a_change_between_the_poll_and_the_next_sleep_wakes_that_sleep(
    transport: AsyncHttpTransport, server: VirtualServer, submitter: Session, tmp_path: Path
) -> None:
    job_id = _submit(submitter, tmp_path)
    assert await transport.asleep(LONG, job_id) is True  # a fresh stream: poll now
    assert isinstance(await transport.acall(GetJobMeta(job_id=job_id), BOUND), Ok)  # the poll
    server.advance(100)  # the job ends while nobody sleeps: its events come now
    # A stream opened by this sleep would come after them and wait out the whole minute.
    assert await asyncio.wait_for(transport.asleep(LONG, job_id), BOUND) is True


async def test_the_stream_is_held_across_sleeps_and_polls(
    transport: AsyncHttpTransport,
    proxy: LoopbackProxy,
    server: VirtualServer,
    submitter: Session,
    tmp_path: Path,
) -> None:
    job_id = _submit(submitter, tmp_path)
    assert await transport.asleep(LONG, job_id) is True
    opened = proxy.connections
    for _ in range(3):
        assert isinstance(await transport.acall(GetJobMeta(job_id=job_id), BOUND), Ok)
        assert await transport.asleep(0.01, job_id) is False  # no news: the time runs out
    server.advance(100)
    assert await asyncio.wait_for(transport.asleep(LONG, job_id), BOUND) is True
    assert proxy.connections == opened  # one stream, one call connection, all along


async def test_streams_are_bounded_and_closed_with_the_transport(
    proxy: LoopbackProxy, submitter: Session, tmp_path: Path
) -> None:
    transport = await AsyncHttpTransport.open(proxy.url("http"), user=ADMIN, api_key=ADMIN)
    jobs = [_submit(submitter, tmp_path / str(n)) for n in range(event_streams.MAX_STREAMS + 3)]
    for job_id in jobs:
        assert await transport.asleep(LONG, job_id) is True
    assert transport._events.held == event_streams.MAX_STREAMS  # the oldest idle were closed
    await transport.aclose()
    assert transport._events.held == 0  # and no unclosed connection warns (errors here)


@pytest.mark.parametrize("young", [False, True], ids=["lived", "young"])
async def test_a_cut_stream_wakes_its_sleeper_unless_it_was_young(
    transport: AsyncHttpTransport,
    proxy: LoopbackProxy,
    submitter: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    young: bool,
) -> None:
    monkeypatch.setattr(event_streams, "_YOUNG", 3600.0 if young else 0.0)
    job_id = _submit(submitter, tmp_path)
    assert await transport.asleep(LONG, job_id) is True
    sleeping = asyncio.ensure_future(transport.asleep(0.3 if young else LONG, job_id))
    await asyncio.get_running_loop().run_in_executor(None, proxy.cut)
    if young:  # a server cutting every stream is polled at the sleeps' pace, not in a loop
        assert await sleeping is False
        assert await transport.asleep(0.3, job_id) is False  # opened again, and no wake
    else:
        assert await asyncio.wait_for(sleeping, BOUND) is True  # events may be lost: poll
        assert await transport.asleep(LONG, job_id) is True  # a fresh stream again
    assert transport._events.held == 1
