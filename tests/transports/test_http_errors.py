"""HTTP-only error mapping: whatever a server or a gateway answers, the caller gets a domain
exception (or the server's problem), never an aiohttp, ssl or msgspec error."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

from flare_adapters.http.client import AsyncHttpTransport, HttpTransport
from flare_adapters.network import NetworkOptions
from flare_adapters.session import Session
from flare_core.commands import DownloadJobResult, ListJobs
from flare_core.errors import InternalError, JobNotFound, NoConnection
from flare_core.replies import Ok, Problem
from flare_ports.wire import json_codec
from tests.transports.conftest import FAST_RETRY
from tests.transports.servers import Handler, StubHttpServer


@pytest.fixture
def stub() -> Iterator[Callable[[Handler], HttpTransport]]:
    stubs: list[StubHttpServer] = []
    transports: list[HttpTransport] = []

    def start(handler: Handler) -> HttpTransport:
        running = StubHttpServer(handler)
        stubs.append(running)
        transport = HttpTransport.connect(
            f"http://127.0.0.1:{running.port}",
            user="u",
            options=NetworkOptions(timeout=2.0, chunk_size=1024),
        )
        transports.append(transport)
        return transport

    yield start
    for transport in transports:
        transport.close()
    for running in stubs:
        running.close()


def _answer(status: int, body: bytes, content_type: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, content_type=content_type)

    return handler


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_gateway_error_page_is_no_connection(stub: Any, status: int) -> None:
    transport = stub(_answer(status, b"<html>bad gateway</html>", "text/html"))
    with pytest.raises(NoConnection, match=str(status)):
        transport.call(ListJobs(), None)


def test_a_problem_document_is_returned_as_the_problem(stub: Any) -> None:
    problem = Problem.from_exception(JobNotFound("no such job: x"))
    body = json_codec.encode(problem)
    transport = stub(_answer(404, body, "application/problem+json"))
    reply = transport.call(ListJobs(), None)
    assert reply == problem
    assert isinstance(problem.to_exception(), JobNotFound)


def test_an_unexpected_status_is_an_internal_error_problem(stub: Any) -> None:
    transport = stub(_answer(418, b"teapot", "text/plain"))
    reply = transport.call(ListJobs(), None)
    assert isinstance(reply, Problem)
    assert isinstance(reply.to_exception(), InternalError)


@pytest.mark.parametrize("body", [b"{not json", b'{"kind": "weird"}', b"[1, 2]"])
def test_an_unreadable_reply_is_an_internal_error(stub: Any, body: bytes) -> None:
    transport = stub(_answer(200, body, "application/json"))
    with pytest.raises(InternalError, match="unreadable"):
        transport.call(ListJobs(), None)


def test_a_truncated_download_is_no_connection(stub: Any) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/zip"})
        response.content_length = 10_000
        await response.prepare(request)
        await response.write(b"PK" + b"\0" * 100)
        assert request.transport is not None
        request.transport.close()  # the connection dies mid-body
        return response

    transport = stub(handler)
    received: list[bytes] = []
    with pytest.raises(NoConnection, match=r"broke off|cannot connect"):
        transport.download(DownloadJobResult(job_id="j"), received.append, None)


def test_a_download_sink_failure_surfaces_as_itself(stub: Any) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"PK" * 5000, content_type="application/zip")

    def full_disk(chunk: bytes) -> None:
        raise OSError(28, "No space left on device")

    transport = stub(handler)
    with pytest.raises(OSError, match="No space left"):
        transport.download(DownloadJobResult(job_id="j"), full_disk, None)


def test_a_failing_upload_source_surfaces_as_itself(stub: Any) -> None:
    from flare_core.commands import SubmitJob

    def chunks() -> Iterator[bytes]:
        yield b"PK"
        raise PermissionError("cannot read the job folder")

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(body=b'{"kind":"ok","value":"x"}', content_type="application/json")

    transport = stub(handler)
    with pytest.raises(PermissionError, match="cannot read"):
        transport.upload(SubmitJob(folder_name="f"), chunks(), None)


def test_a_download_reports_its_size(stub: Any) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"z" * 5000, content_type="application/zip")

    received: list[bytes] = []
    reply = stub(handler).download(DownloadJobResult(job_id="j"), received.append, None)
    assert reply == Ok(value={"bytes": 5000})
    assert b"".join(received) == b"z" * 5000


def test_a_slow_server_is_no_connection_within_the_deadline(stub: Any) -> None:
    import asyncio
    import threading

    answered = threading.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.to_thread(answered.wait, 10.0)
        return web.Response(body=b'{"kind":"ok"}', content_type="application/json")

    transport = stub(handler)
    try:
        with pytest.raises(NoConnection, match=r"within 0\.2s"):
            transport.call(ListJobs(), 0.2)
    finally:
        answered.set()


def test_tls_to_a_plain_server_is_no_connection(stub: Any) -> None:
    transport = stub(_answer(200, b"{}", "application/json"))
    port = transport.submit(_port_of(transport))
    with pytest.raises(NoConnection, match="cannot connect"):
        HttpTransport.connect(
            f"https://127.0.0.1:{port}",
            user="u",
            options=NetworkOptions(
                ssl=ssl.create_default_context(), connect_timeout=2.0, retry=FAST_RETRY
            ),
        )


async def _port_of(transport: HttpTransport) -> int:
    inner = transport.inner
    assert isinstance(inner, AsyncHttpTransport)
    return int(inner._base.rsplit(":", 1)[1])


def test_a_session_over_a_stub_maps_problems_to_exceptions(stub: Any) -> None:
    problem = Problem.from_exception(JobNotFound("no such job: x"))
    transport = stub(_answer(404, json_codec.encode(problem), "application/problem+json"))
    with Session(transport) as session, pytest.raises(JobNotFound, match="no such job: x"):
        session.get_job_meta("x")
