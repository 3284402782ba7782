"""The HTTP transport's event streams have connections of their own.

A ``GET /v1/events`` stream holds its connection (and one closed unread closes it). Taken
from the call pool, it was the warm connection the waiter's next call would have used: the
poll an event asks for then paid a new TCP connection (``make bench``'s HTTP wait reaction).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flare_adapters.http.client import AsyncHttpTransport, http_transport
from flare_core.commands import ListJobs
from flare_core.replies import Ok
from flare_core.steps import ANY_JOB
from flare_testing.job_folders import JobFolders
from tests.transports.proxy import LoopbackProxy
from tests.transports.servers import ADMIN, virtual_server

pytestmark = pytest.mark.asyncio

BOUND = 10.0  # generous bound on what must happen


async def test_the_call_after_an_event_reuses_the_warm_connection(tmp_path: Path) -> None:
    with virtual_server() as running:
        proxy = LoopbackProxy(running.port)
        folder = str(JobFolders(tmp_path).hello())
        submitter = http_transport.connect(
            running.http_url, user=ADMIN, api_key=ADMIN, study="default"
        )  # straight to the server: its connections are not counted
        transport = await AsyncHttpTransport.open(proxy.url("http"), user=ADMIN, api_key=ADMIN)
        try:
            assert isinstance(await transport.acall(ListJobs(), BOUND), Ok)  # the warm connection
            assert await transport.asleep(BOUND, wake_on=ANY_JOB) is True  # a fresh stream
            sleep = asyncio.ensure_future(transport.asleep(BOUND, wake_on=ANY_JOB))
            while not sleep.done():  # events until the stream, once subscribed, sees one
                await asyncio.get_running_loop().run_in_executor(None, submitter.submit_job, folder)
                await asyncio.wait({sleep}, timeout=0.05)
            assert sleep.result() is True  # woken by an event, not by the time running out
            before = proxy.connections
            assert isinstance(await transport.acall(ListJobs(), BOUND), Ok)
            assert proxy.connections == before  # no new connection for the poll
        finally:
            await transport.aclose()
            submitter.close()
            proxy.close()
