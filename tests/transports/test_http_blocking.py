"""The HTTP transport's plain calls: kept-alive connections parsed with httptools.

Both pools, ``BlockingConnections`` (the sync caller's thread) and ``AsyncConnections`` (the
loop), are driven against a scripted loopback server (a thread per connection answering
exactly the bytes a test gives), so every framing and connection case is deterministic; the
transports are then checked against an aiohttp server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

from flare_adapters.http.async_pool import AsyncConnections
from flare_adapters.http.blocking import BlockingConnections
from flare_adapters.http.client import AsyncHttpTransport, HttpTransport
from flare_adapters.http.plain import PlainCall, PlainReply
from flare_adapters.loop_thread import BorrowedLoop, LoopThread
from flare_adapters.network import NetworkOptions, TransferProgress
from flare_core.commands import GetJobMeta, ListJobs, SubmitJob
from flare_core.errors import InvalidArgumentError, NoConnection
from flare_core.replies import Ok
from tests.transports.servers import StubHttpServer

_WAIT = 10.0  # bounds a failing test only; a passing one never waits for it
_OK = b'{"kind":"ok","value":[]}'
_GET = PlainCall("GET", "/v1/jobs", None, {"Accept": "application/json"})


def _reply(body: bytes = _OK, extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    return head + b"Content-Length: %d\r\n" % len(body) + extra + b"\r\n" + body


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
            while len(rest) < length:
                rest += conn.recv(65536)
    return data


Script = Callable[[socket.socket, list[bytes]], None]
"""One connection's server side: read requests (append them) and answer."""


class _Scripted:
    """A loopback server running ``script`` on each accepted connection, in a thread."""

    def __init__(self, script: Script) -> None:
        self.requests: list[bytes] = []
        self.connections = 0
        self.hung_up = threading.Semaphore(0)  # released as each connection is closed
        self._script = script
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            self._script(conn, self.requests)
        self.hung_up.release()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()
        self._accepting.join(_WAIT)
        for thread in self._threads:
            thread.join(_WAIT)


class _OnLoop:
    """An ``AsyncConnections`` driven from the test's thread, on a loop thread of its own."""

    def __init__(self, base_url: str) -> None:
        self._loop = LoopThread("async-pool-test")
        self.pool = self._loop.run(self._make(base_url))

    async def _make(self, base_url: str) -> AsyncConnections:
        return AsyncConnections(base_url, tls=None, connect_timeout=_WAIT)

    @property
    def _idle(self) -> list[Any]:
        return self.pool._idle

    def exchange(self, call: PlainCall, limit: float) -> PlainReply:
        return self._loop.run(self.pool.exchange(call, limit))

    def close(self) -> None:
        async def close() -> None:
            self.pool.close()

        if not self._loop.closed:
            self._loop.run(close())
            self._loop.close()


@pytest.fixture(params=["blocking", "async"])
def scripted(request: pytest.FixtureRequest) -> Iterator[Callable[[Script], tuple[_Scripted, Any]]]:
    opened: list[tuple[_Scripted, Any]] = []

    def start(script: Script) -> tuple[_Scripted, Any]:
        server = _Scripted(script)
        url = f"http://127.0.0.1:{server.port}"
        pool: Any
        if request.param == "blocking":
            pool = BlockingConnections(url, tls=None, connect_timeout=_WAIT)
        else:
            pool = _OnLoop(url)
        opened.append((server, pool))
        return server, pool

    yield start
    for server, pool in opened:
        pool.close()
        server.close()


def _answer_each(*replies: bytes) -> Script:
    """Answer the connection's requests with ``replies`` in turn, then close it."""

    def script(conn: socket.socket, requests: list[bytes]) -> None:
        for reply in replies:
            request = _read_request(conn)
            if not request:
                return
            requests.append(request)
            conn.sendall(reply)

    return script


def test_calls_share_one_kept_alive_connection(scripted: Any) -> None:
    server, pool = scripted(_answer_each(*[_reply()] * 5))
    for _ in range(5):
        assert pool.exchange(_GET, _WAIT).body == _OK
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:")


def test_the_request_carries_its_body_and_length(scripted: Any) -> None:
    server, pool = scripted(_answer_each(_reply(), _reply()))
    pool.exchange(PlainCall("POST", "/v1/x", b'{"a":1}', {"Content-Type": "j"}), _WAIT)
    pool.exchange(PlainCall("POST", "/v1/y", None, {}), _WAIT)
    assert server.requests[0].endswith(b"Content-Length: 7\r\n\r\n" + b'{"a":1}')
    assert server.requests[1].endswith(b"Content-Length: 0\r\n\r\n")  # nothing to read


def test_a_connection_the_server_closed_while_idle_is_replaced(scripted: Any) -> None:
    # Each connection answers once and is closed: the next call sees it readable (EOF) and
    # opens another, without an error and without resending anything.
    server, pool = scripted(_answer_each(_reply()))
    assert pool.exchange(_GET, _WAIT).status == 200
    assert server.hung_up.acquire(timeout=_WAIT)  # the server closed it; the pool kept it
    assert len(pool._idle) == 1
    assert pool.exchange(_GET, _WAIT).status == 200
    assert server.connections == 2
    assert len(server.requests) == 2


def test_a_request_is_never_resent(scripted: Any) -> None:
    def read_then_hang_up(conn: socket.socket, requests: list[bytes]) -> None:
        requests.append(_read_request(conn))

    server, pool = scripted(read_then_hang_up)
    with pytest.raises(ConnectionResetError):
        pool.exchange(_GET, _WAIT)
    assert server.hung_up.acquire(timeout=_WAIT)
    assert len(server.requests) == 1
    assert server.connections == 1
    assert pool._idle == []


@pytest.mark.parametrize(
    ("reply", "reused"),
    [
        # Chunked: decoded, and the connection carries on.
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n4\r\n{"ki\r\n14\r\nnd":"ok","value":[]}\r\n'
            b"0\r\n\r\n",
            True,
        ),
        # An interim 100 Continue is skipped.
        (b"HTTP/1.1 100 Continue\r\n\r\n" + _reply(), True),
        # The server says it closes: the connection is not kept.
        (_reply(extra=b"Connection: close\r\n"), False),
        # Bytes after the reply: the connection is out of step, not kept, and the reply is
        # the first one's.
        (_reply() + b"HTTP/1.1 500 Oops\r\nContent-Type: text/plain\r\n", False),
    ],
    ids=["chunked", "interim", "close", "trailing"],
)
def test_replies_are_framed_by_the_parser(scripted: Any, reply: bytes, reused: bool) -> None:
    _, pool = scripted(_answer_each(reply, _reply()))
    got = pool.exchange(_GET, _WAIT)
    assert (got.status, got.content_type, got.body) == (200, "application/json", _OK)
    assert len(pool._idle) == (1 if reused else 0)


def test_a_reply_framed_by_the_end_of_the_connection_ends_there(scripted: Any) -> None:
    def unframed(conn: socket.socket, requests: list[bytes]) -> None:
        requests.append(_read_request(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + _OK)

    _, pool = scripted(unframed)
    assert pool.exchange(_GET, _WAIT).body == _OK
    assert pool._idle == []


def test_a_malformed_reply_fails_and_drops_the_connection(scripted: Any) -> None:
    import httptools

    _, pool = scripted(_answer_each(b"NOT HTTP AT ALL\r\n\r\n"))
    with pytest.raises(httptools.HttpParserError):
        pool.exchange(_GET, _WAIT)
    assert pool._idle == []


def test_a_silent_server_times_out_within_the_limit(scripted: Any) -> None:
    answer = threading.Event()

    def silent(conn: socket.socket, requests: list[bytes]) -> None:
        requests.append(_read_request(conn))
        answer.wait(_WAIT)

    _, pool = scripted(silent)
    try:
        with pytest.raises(TimeoutError):
            pool.exchange(_GET, 0.2)
    finally:
        answer.set()


@pytest.mark.parametrize(
    "call",
    [
        PlainCall("GET", "/v1/jobs", None, {"X-Key": "a\r\nInjected: 1"}),
        PlainCall("GET", "/v1/jobs HTTP/1.1\r\nInjected: 1\r\nX:", None, {}),
        PlainCall("GET", "/v1/jobs", None, {"X-Key": "snow\u2603"}),
    ],
    ids=["crlf-header", "crlf-target", "not-latin-1"],
)
def test_a_head_that_would_split_is_refused_unsent(scripted: Any, call: PlainCall) -> None:
    server, pool = scripted(_answer_each(_reply()))
    with pytest.raises(InvalidArgumentError):
        pool.exchange(call, _WAIT)
    assert server.connections == 0


def test_closed_connections_refuse_calls(scripted: Any) -> None:
    _, pool = scripted(_answer_each(_reply()))
    pool.close()
    with pytest.raises(NoConnection, match="closed"):
        pool.exchange(_GET, _WAIT)


# --- BorrowedLoop.borrow -------------------------------------------------------------------


def test_borrow_holds_the_loop_and_yields_to_a_runner() -> None:
    loop = BorrowedLoop("borrow-test")
    try:
        assert loop.borrow()
        assert not loop.borrow()  # held: a second borrow (any thread) is refused
        loop.give_back()
        assert loop.borrow()
        loop.give_back()
    finally:
        loop.close()
    assert not loop.borrow()  # closed


# --- the sync transport ------------------------------------------------------------------


class _Counting:
    """A stub server noting the client port of every command request."""

    def __init__(self) -> None:
        self.peers: list[int] = []
        self.bodies: list[tuple[bytes, str | None]] = []  # body, Transfer-Encoding

        async def command(request: web.Request) -> web.StreamResponse:
            peer = request.transport.get_extra_info("peername") if request.transport else None
            assert peer is not None
            self.peers.append(int(peer[1]))
            if request.body_exists:
                body = await request.read()
                self.bodies.append((body, request.headers.get("Transfer-Encoding")))
            assert request.headers["Authorization"] == "Bearer t"
            return web.Response(body=_OK, content_type="application/json")

        self.stub = StubHttpServer(command)
        self.port = self.stub.port

    def close(self) -> None:
        self.stub.close()


@pytest.fixture
def counting() -> Iterator[tuple[_Counting, HttpTransport]]:
    server = _Counting()
    transport = HttpTransport.connect(
        f"http://127.0.0.1:{server.port}", user="u", options=NetworkOptions(timeout=_WAIT)
    )
    try:
        yield server, transport
    finally:
        transport.close()
        server.close()


def _forbid_the_loop(monkeypatch: Any, transport: HttpTransport) -> None:
    def no_loop(coro: Any) -> Any:
        coro.close()
        raise AssertionError("the call ran the event loop")

    monkeypatch.setattr(transport._runner, "run", no_loop)


def test_sync_calls_skip_the_event_loop(counting: Any, monkeypatch: Any) -> None:
    server, transport = counting
    _forbid_the_loop(monkeypatch, transport)
    for _ in range(5):
        assert transport.call(ListJobs(), None) == Ok(value=[])
    monkeypatch.undo()
    assert len(server.peers) == 5
    assert len(set(server.peers)) == 1  # one kept connection carried them all


def test_a_call_while_another_thread_holds_the_loop_goes_through_it(counting: Any) -> None:
    server, transport = counting
    transport.call(ListJobs(), None)  # on the caller's own connection
    held = threading.Event()
    release = threading.Event()

    async def hold() -> None:
        held.set()
        while not release.is_set():
            await asyncio.sleep(0.001)

    holder = threading.Thread(target=lambda: transport.submit(hold()))
    holder.start()
    try:
        assert held.wait(_WAIT)
        assert transport.call(GetJobMeta(job_id="j"), None) == Ok(value=[])
    finally:
        release.set()
        holder.join(_WAIT)
    # The second went through the loop: on its kept connection (the login's), not the first.
    assert len(set(server.peers)) == 2


def test_async_calls_share_one_kept_alive_connection(counting: Any) -> None:
    server, _ = counting

    async def calls() -> None:
        transport = await AsyncHttpTransport.open(
            f"http://127.0.0.1:{server.port}", user="u", options=NetworkOptions(timeout=_WAIT)
        )
        try:
            for _ in range(5):
                assert await transport.acall(ListJobs(), None) == Ok(value=[])
        finally:
            await transport.aclose()

    asyncio.run(calls())
    assert len(server.peers) == 5
    assert len(set(server.peers)) == 1  # the login's connection carried every call


def test_concurrent_threads_share_the_transport(counting: Any) -> None:
    server, transport = counting
    failures: list[BaseException] = []

    def calls() -> None:
        try:
            for _ in range(25):
                assert transport.call(ListJobs(), None) == Ok(value=[])
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=calls) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(_WAIT)
    assert failures == []
    assert len(server.peers) == 100


def test_after_close_a_call_is_no_connection(counting: Any) -> None:
    _, transport = counting
    transport.close()
    with pytest.raises(NoConnection, match="closed"):
        transport.call(ListJobs(), None)


def _upload(transport: HttpTransport, *pieces: bytes) -> Any:
    return transport.upload(SubmitJob(folder_name="f"), iter(pieces), None)


def test_a_small_archive_goes_out_as_a_plain_call(counting: Any, monkeypatch: Any) -> None:
    server, transport = counting
    _forbid_the_loop(monkeypatch, transport)
    assert _upload(transport, b"PK" * 100) == Ok(value=[])
    monkeypatch.undo()
    assert server.bodies == [(b"PK" * 100, None)]  # one body with its length, not chunked


def test_a_longer_archive_streams_through_the_loop(counting: Any) -> None:
    server, transport = counting
    chunk = transport._http.options.chunk_size
    assert _upload(transport, b"a" * 10, b"b" * 10) == Ok(value=[])  # two pieces
    assert _upload(transport, b"c" * (chunk + 1)) == Ok(value=[])  # one, over a chunk
    assert [(len(body), coding) for body, coding in server.bodies] == [
        (20, "chunked"),
        (chunk + 1, "chunked"),
    ]


def test_a_failing_progress_callback_stops_a_small_upload_unsent() -> None:
    server = _Counting()

    def explode(report: TransferProgress) -> None:
        raise KeyError("progress went wrong")

    transport = HttpTransport.connect(
        f"http://127.0.0.1:{server.port}",
        user="u",
        options=NetworkOptions(timeout=_WAIT, progress=explode),
    )
    try:
        with pytest.raises(KeyError, match="progress went wrong"):
            _upload(transport, b"PK")
        assert server.bodies == []
        assert transport.call(ListJobs(), None) == Ok(value=[])
    finally:
        transport.close()
        server.close()
