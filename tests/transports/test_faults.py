"""Network faults through a loopback proxy: killed servers, dropped connections, lost replies,
slow links - over HTTP and WebSocket, sync and async."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from flare_core.errors import NoConnection
from flare_core.flows import RetryPolicy
from flare_testing.job_folders import JobFolders
from tests.transports.conftest import FAST_RETRY
from tests.transports.proxy import LoopbackProxy
from tests.transports.servers import VirtualServer

BOUNDED = RetryPolicy(attempts=1000, initial_delay=0.05, max_delay=0.2, deadline=1.0)
"""Retry for ever, were it not for the 1 s deadline."""


@pytest.fixture
def jobs(tmp_path: Path) -> JobFolders:
    return JobFolders(tmp_path / "jobs")


def _named(session: Any, name: str) -> list[str]:
    return [row["job_id"] for row in session.list_jobs(detailed=False) if row["job_name"] == name]


def test_a_killed_server_gives_no_connection_within_the_deadline(
    scheme: str, proxy: LoopbackProxy, open_session: Any
) -> None:
    session = open_session(proxy.url(scheme), retry=BOUNDED, timeout=0.5)
    assert isinstance(session.list_jobs(), list)
    proxy.stop()
    started = time.monotonic()
    with pytest.raises(NoConnection):
        session.list_jobs()
    elapsed = time.monotonic() - started
    assert elapsed < BOUNDED.deadline + 0.5 + 1.0, elapsed
    proxy.start()
    assert isinstance(session.list_jobs(), list)  # the server is back: so is the session


@pytest.mark.asyncio
async def test_a_killed_server_gives_no_connection_within_the_deadline_async(
    scheme: str, proxy: LoopbackProxy, open_async_session: Any
) -> None:
    session = await open_async_session(proxy.url(scheme), retry=BOUNDED, timeout=0.5)
    proxy.stop()
    started = time.monotonic()
    with pytest.raises(NoConnection):
        await session.get_system_info()
    assert time.monotonic() - started < BOUNDED.deadline + 0.5 + 1.0


def test_a_read_is_retried_after_a_dropped_connection(
    scheme: str, proxy: LoopbackProxy, open_session: Any
) -> None:
    session = open_session(proxy.url(scheme))
    session.list_jobs()
    before = proxy.connections
    proxy.drop_requests = 1
    assert isinstance(session.list_jobs(), list)
    assert proxy.drop_requests == 0
    assert proxy.connections > before  # the retry went out on a new connection


@pytest.mark.asyncio
async def test_a_read_is_retried_after_a_dropped_connection_async(
    scheme: str, proxy: LoopbackProxy, open_async_session: Any
) -> None:
    session = await open_async_session(proxy.url(scheme))
    proxy.drop_requests = 2
    assert (await session.check_status("server"))["server"]
    assert proxy.drop_requests == 0


def test_a_read_whose_reply_is_lost_is_sent_again(
    scheme: str, proxy: LoopbackProxy, open_session: Any
) -> None:
    session = open_session(proxy.url(scheme))
    proxy.lose_replies = 2
    assert session.get_system_info().server_info.status == "started"
    assert proxy.lose_replies == 0


def test_a_submit_whose_reply_is_lost_creates_exactly_one_job(
    scheme: str, proxy: LoopbackProxy, open_session: Any, jobs: JobFolders
) -> None:
    session = open_session(proxy.url(scheme))
    name = f"lost-reply-{scheme}-sync"
    proxy.lose_replies = 1
    job_id = session.submit_job(str(jobs.hello(name=name)))
    assert proxy.lose_replies == 0  # the first reply really was lost
    assert _named(session, name) == [job_id]


@pytest.mark.asyncio
async def test_a_submit_whose_reply_is_lost_creates_exactly_one_job_async(
    scheme: str, proxy: LoopbackProxy, open_async_session: Any, jobs: JobFolders
) -> None:
    session = await open_async_session(proxy.url(scheme))
    name = f"lost-reply-{scheme}-async"
    proxy.lose_replies = 1
    job_id = await session.submit_job(str(jobs.hello(name=name)))
    assert proxy.lose_replies == 0
    rows = await session.list_jobs()
    assert [row["job_id"] for row in rows if row["job_name"] == name] == [job_id]


def test_a_submit_with_a_user_token_survives_a_lost_reply(
    scheme: str, proxy: LoopbackProxy, open_session: Any, jobs: JobFolders
) -> None:
    session = open_session(proxy.url(scheme))
    name = f"lost-reply-token-{scheme}"
    proxy.lose_replies = 1
    job_id = session.submit_job(str(jobs.hello(name=name)), submit_token=f"user-{scheme}")
    assert _named(session, name) == [job_id]


def test_a_mutation_whose_reply_is_lost_is_not_replayed(
    scheme: str, proxy: LoopbackProxy, open_session: Any, jobs: JobFolders
) -> None:
    session = open_session(proxy.url(scheme))
    name = f"clone-lost-{scheme}"
    source = session.submit_job(str(jobs.hello(name=name)))
    proxy.lose_replies = 1
    with pytest.raises(NoConnection):
        session.clone_job(source)
    assert len(_named(session, name)) == 2  # the source and the one clone the server made


def test_a_slow_link_within_the_timeout_still_answers(
    scheme: str, proxy: LoopbackProxy, open_session: Any
) -> None:
    session = open_session(proxy.url(scheme), timeout=5.0)
    proxy.delay = 0.05
    assert isinstance(session.list_jobs(), list)


def test_a_link_slower_than_the_timeout_is_no_connection(
    scheme: str, proxy: LoopbackProxy, open_session: Any
) -> None:
    session = open_session(proxy.url(scheme), timeout=0.1, retry=FAST_RETRY)
    session.list_jobs()
    proxy.delay = 0.5
    with pytest.raises(NoConnection, match="no reply"):
        session.list_jobs()
    proxy.delay = 0.0  # let the session log out quickly


def test_waiting_over_a_dead_link_ends_in_no_connection(
    scheme: str, proxy: LoopbackProxy, open_session: Any, server: VirtualServer, jobs: JobFolders
) -> None:
    session = open_session(proxy.url(scheme), retry=BOUNDED, timeout=0.5)
    job_id = session.submit_job(str(jobs.hello()))
    proxy.stop()
    with pytest.raises(NoConnection):
        session.wait_for_job(job_id, timeout=30.0, poll_interval=0.05)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_delete_is_never_replayed_by_the_transport(
    scheme: str, proxy: LoopbackProxy, open_session: Any, jobs: JobFolders, when: str
) -> None:
    session = open_session(proxy.url(scheme))
    name = f"delete-{when}-{scheme}"
    job_id = session.submit_job(str(jobs.hello(name=name)))
    session.list_jobs()  # a kept-alive connection is reused for the delete
    if when == "before":
        proxy.drop_requests = 1
    else:
        proxy.lose_replies = 1
    with pytest.raises(NoConnection):
        session.delete_job(job_id)
    assert _named(session, name) == ([job_id] if when == "before" else [])
