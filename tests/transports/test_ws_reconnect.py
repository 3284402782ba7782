"""WebSocket-only behaviour: reconnecting, replaying idempotent calls, pushed job events."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from flare_adapters.loop_thread import LoopThread
from flare_adapters.server.settings import ServerSettings
from flare_adapters.session import Session
from flare_adapters.ws.client import (
    MSGPACK_PROTOCOL,
    AsyncWsTransport,
    WsOptions,
    WsTransport,
    ws_transport,
)
from flare_core.commands import GetJobMeta, ListJobs
from flare_core.errors import InternalError, NoConnection, SessionExpired
from flare_core.replies import Ok
from flare_testing.job_folders import JobFolders
from tests.transports.conftest import FAST_RETRY
from tests.transports.proxy import LoopbackProxy
from tests.transports.servers import ADMIN, VirtualServer, virtual_server


@pytest.fixture
def jobs(tmp_path: Path) -> JobFolders:
    return JobFolders(tmp_path / "jobs")


@pytest.fixture
def via_proxy(proxy: LoopbackProxy) -> Iterator[WsTransport]:
    transport = WsTransport.connect(proxy.url("ws"), user=ADMIN, api_key=ADMIN)
    try:
        yield transport
    finally:
        proxy.release()
        transport.close()


def _inner(transport: WsTransport) -> AsyncWsTransport:
    inner = transport.inner
    assert isinstance(inner, AsyncWsTransport)
    return inner


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_both_frame_encodings_work(server: VirtualServer, encoding: str, jobs: JobFolders) -> None:
    with ws_transport.connect(
        server.ws_url, user=ADMIN, api_key=ADMIN, study="default", encoding=encoding
    ) as session:
        job_id = session.submit_job(str(jobs.hello()))
        assert session.get_job_meta(job_id)["job_id"] == job_id


def test_a_dropped_connection_is_reopened_on_the_same_session(
    proxy: LoopbackProxy, via_proxy: WsTransport
) -> None:
    token = _inner(via_proxy).grant
    proxy.cut()
    assert isinstance(via_proxy.call(ListJobs(), 5.0), Ok)
    assert _inner(via_proxy).connections_opened == 2
    assert _inner(via_proxy).grant == token  # resumed, not a new login


def test_a_pending_idempotent_call_survives_a_drop(
    proxy: LoopbackProxy, via_proxy: WsTransport
) -> None:
    outcome: list[object] = []
    proxy.hold()
    worker = threading.Thread(target=lambda: outcome.append(via_proxy.call(ListJobs(), 10.0)))
    worker.start()
    assert proxy.held.wait(5.0)
    proxy.cut()
    proxy.release()
    worker.join(10.0)
    assert len(outcome) == 1
    assert isinstance(outcome[0], Ok)
    assert _inner(via_proxy).connections_opened == 2


def test_a_pending_mutation_is_not_replayed(
    proxy: LoopbackProxy, server: VirtualServer, jobs: JobFolders
) -> None:
    with ws_transport.connect(
        proxy.url("ws"), user=ADMIN, api_key=ADMIN, study="default", retry=FAST_RETRY
    ) as session:
        source = session.submit_job(str(jobs.hello()))
        before = len(session.list_jobs())
        errors: list[BaseException] = []

        def clone() -> None:
            try:
                session.clone_job(source)
            except BaseException as exc:
                errors.append(exc)

        proxy.hold()
        worker = threading.Thread(target=clone)
        worker.start()
        assert proxy.held.wait(5.0)
        proxy.cut()
        proxy.release()
        worker.join(10.0)
        assert len(errors) == 1
        assert isinstance(errors[0], NoConnection)
        assert len(session.list_jobs()) == before + 1  # the server cloned once, never twice


def test_a_session_expired_while_disconnected_stays_expired() -> None:
    with virtual_server(idle_timeout=60.0) as running:
        proxy = LoopbackProxy(running.port)
        try:
            session = ws_transport.connect(
                proxy.url("ws"), user=ADMIN, api_key=ADMIN, study="default"
            )
            session.list_jobs()
            proxy.cut()
            running.advance(61)
            with pytest.raises(SessionExpired):
                session.list_jobs()
            session.close()
        finally:
            proxy.close()


def test_a_forgotten_token_logs_in_again(proxy: LoopbackProxy, via_proxy: WsTransport) -> None:
    grant = _inner(via_proxy).grant
    assert grant is not None
    # The server loses the session (e.g. its session store was reset) while disconnected.
    proxy.cut()
    _ = via_proxy.submit(_forget_session(_inner(via_proxy)))
    assert isinstance(via_proxy.call(ListJobs(), 5.0), Ok)
    assert _inner(via_proxy).grant != grant


async def _forget_session(transport: AsyncWsTransport) -> None:
    grant = transport.grant
    assert grant is not None
    transport._grant = msgspec.structs.replace(grant, token="forgotten-" + grant.token)


def test_pushed_events_wake_a_waiting_session(server: VirtualServer, jobs: JobFolders) -> None:
    with ws_transport.connect(server.ws_url, user=ADMIN, api_key=ADMIN, study="default") as s:
        job_id = s.submit_job(str(jobs.hello()))
        timer = threading.Timer(0.2, server.advance, args=(100,))
        timer.start()
        started = time.monotonic()
        meta = s.wait_for_job(job_id, poll_interval=30.0)
        timer.join()
        assert meta["status"] == "FINISHED:COMPLETED"
        assert time.monotonic() - started < 10.0  # woken by the event, not by 30 s polls


def test_subscriptions_are_renewed_after_a_reconnect(
    proxy: LoopbackProxy, server: VirtualServer, via_proxy: WsTransport, jobs: JobFolders
) -> None:
    session = Session(via_proxy)
    job_id = session.submit_job(str(jobs.hello()))
    assert via_proxy.sleep(30.0, job_id) is True  # fresh subscription: poll now
    proxy.cut()
    assert via_proxy.sleep(30.0, job_id) is True  # reconnected: events may have been missed
    assert _inner(via_proxy).subscriptions == [job_id]
    via_proxy.call(GetJobMeta(job_id=job_id), 5.0)
    threading.Timer(0.1, server.advance, args=(100,)).start()
    assert via_proxy.sleep(30.0, job_id) is True  # the renewed subscription delivers


def test_sleep_without_events_runs_out(via_proxy: WsTransport) -> None:
    assert via_proxy.sleep(0.01, None) is False


def test_a_dead_server_during_a_wait_falls_back_to_sleeping(
    proxy: LoopbackProxy, via_proxy: WsTransport, jobs: JobFolders
) -> None:
    session = Session(via_proxy)
    job_id = session.submit_job(str(jobs.hello()))
    assert via_proxy.sleep(30.0, job_id) is True
    proxy.stop()
    assert via_proxy.sleep(0.3, job_id) is False
    proxy.start()
    assert isinstance(via_proxy.call(ListJobs(), 5.0), Ok)


@pytest.mark.parametrize(
    "options",
    [
        {"encoding": "xml"},
        {"reconnect_attempts": 0},
        {"reconnect_delay": -1.0},
        {"ping_interval": 0.0},
        {"encoding": 3},
        {"replays": -1},
    ],
)
def test_bad_ws_options_are_invalid_arguments(options: dict[str, Any]) -> None:
    from flare_core.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        ws_transport.connect("ws://127.0.0.1:9", user=ADMIN, api_key=ADMIN, study="x", **options)
    with pytest.raises(InvalidArgumentError):
        WsOptions(**options)


# --- a misbehaving server ----------------------------------------------------------------------


class _RogueServer:
    """A WebSocket server that answers a login, then sends ``garbage`` for any other frame."""

    def __init__(self, garbage: bytes) -> None:
        self.garbage = garbage
        self.loop = LoopThread("rogue-ws")
        self.port = self.loop.run(self._start())

    async def _start(self) -> int:
        self.server = await serve(
            self._handle, "127.0.0.1", 0, subprotocols=[Subprotocol(MSGPACK_PROTOCOL)]
        )
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, ws: ServerConnection) -> None:
        async for message in ws:
            assert isinstance(message, bytes)
            frame: Any = msgspec.msgpack.decode(message)
            if frame["op"] == "login":
                grant = {
                    "token": "t",
                    "idle_timeout": 10.0,
                    "principal": {"name": ADMIN, "org": "nvidia", "role": "project_admin"},
                }
                reply = {"kind": "ok", "value": grant}
                await ws.send(msgspec.msgpack.encode({"id": frame["id"], "reply": reply}))
            else:
                await ws.send(self.garbage)

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        self.loop.run(stop())
        self.loop.close()


@pytest.mark.parametrize("garbage", [b"\xc1", msgspec.msgpack.encode({"id": "x"})])
def test_malformed_frames_fail_the_call_not_the_process(garbage: bytes) -> None:
    rogue = _RogueServer(garbage)
    try:
        transport = WsTransport.connect(
            f"ws://127.0.0.1:{rogue.port}",
            user=ADMIN,
            api_key=ADMIN,
            ws_options=WsOptions(reconnect_attempts=1),
        )
        with pytest.raises(InternalError, match="unreadable frame"):
            transport.call(GetJobMeta(job_id="j"), 10.0)
        transport.close()
    finally:
        rogue.close()


@pytest.mark.asyncio
async def test_async_transport_reconnects_too(proxy: LoopbackProxy) -> None:
    transport = await AsyncWsTransport.open(proxy.url("ws"), user=ADMIN, api_key=ADMIN)
    try:
        await asyncio.to_thread(proxy.cut)
        assert isinstance(await transport.acall(ListJobs(), 5.0), Ok)
        assert transport.connections_opened == 2
    finally:
        await transport.aclose()
    with pytest.raises(NoConnection, match="closed"):
        await transport.acall(ListJobs(), 1.0)


def test_replays_after_drops_are_bounded(proxy: LoopbackProxy) -> None:
    transport = WsTransport.connect(
        proxy.url("ws"), user=ADMIN, api_key=ADMIN, ws_options=WsOptions(replays=2)
    )
    try:
        proxy.drop_requests = 100
        with pytest.raises(NoConnection):
            transport.call(ListJobs(), 5.0)
        assert proxy.drop_requests == 100 - 3  # sent once, then replayed twice
        proxy.drop_requests = 0
        assert isinstance(transport.call(ListJobs(), 5.0), Ok)
    finally:
        transport.close()


def test_an_idle_sync_session_keeps_answering_the_servers_pings() -> None:
    # Nobody calls for two server heartbeats: the sync transport's pump thread turns the idle
    # loop (``BorrowedLoop``), so the pongs go out in time and the server keeps the
    # connection; a missing pong would close it, and the next call would reconnect.
    with virtual_server(settings=ServerSettings(ws_heartbeat=2.0)) as server:
        transport = WsTransport.connect(server.ws_url, user=ADMIN, api_key=ADMIN)
        try:
            assert isinstance(transport.call(ListJobs(), 5.0), Ok)
            time.sleep(4.5)  # two pings, each pong due within a second
            assert isinstance(transport.call(ListJobs(), 5.0), Ok)
            assert _inner(transport).connections_opened == 1
        finally:
            transport.close()
