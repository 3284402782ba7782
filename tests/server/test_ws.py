"""The WebSocket protocol with a raw ``websockets`` client: every frame type and close code."""

from __future__ import annotations

import asyncio
import base64
import io
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

import flare_core as fc
from flare_adapters.server.event_hub import EVENT_HUB
from flare_adapters.server.settings import ServerSettings
from flare_adapters.ws.protocol import JSON_PROTOCOL, MSGPACK_PROTOCOL
from tests.server.server_kit import Host, hello_zip, hosted

pytestmark = pytest.mark.asyncio

ADMIN = "admin@nvidia.com"
WAIT = 10.0  # generous bound on waits for frames the server must send


class Peer:
    """One raw WebSocket connection speaking the frame protocol."""

    def __init__(self, ws: ClientConnection, binary: bool) -> None:
        self.ws = ws
        self.binary = binary
        self.events: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        if self.binary:
            await self.ws.send(msgspec.msgpack.encode(frame))
        else:
            await self.ws.send(msgspec.json.encode(frame).decode())

    async def recv(self) -> dict[str, Any]:
        data = await asyncio.wait_for(self.ws.recv(), WAIT)
        if self.binary:
            assert isinstance(data, bytes)
            frame = msgspec.msgpack.decode(data)
        else:
            assert isinstance(data, str)
            frame = msgspec.json.decode(data)
        assert isinstance(frame, dict)
        if not self.binary and frame.get("op") == "chunk":
            frame["data"] = base64.b64decode(frame["data"])
        return frame

    async def reply(self, request_id: int) -> dict[str, Any]:
        """Receive frames until the reply to ``request_id`` (events are kept aside)."""
        while True:
            frame = await self.recv()
            if "event" in frame:
                self.events.append(frame["event"])
            elif frame.get("id") == request_id and "reply" in frame:
                return dict(frame["reply"])

    async def call(self, request_id: int, command: fc.Command) -> dict[str, Any]:
        await self.send({"id": request_id, "op": "call", "command": msgspec.to_builtins(command)})
        return await self.reply(request_id)

    async def login(self, user: str = ADMIN, study: str = "default") -> dict[str, Any]:
        await self.send({"id": 0, "op": "login", "user": user, "api_key": user, "study": study})
        reply = await self.reply(0)
        assert reply["kind"] == "ok", reply
        return dict(reply["value"])

    async def upload(self, request_id: int, archive: bytes, chunk: int = 1000) -> dict[str, Any]:
        command = msgspec.to_builtins(fc.SubmitJob(folder_name="hello"))
        await self.send({"id": request_id, "op": "upload_start", "command": command})
        ack = await self.recv()
        assert ack == {"id": request_id, "op": "ack", "n": 8}
        credit = ack["n"]
        for start in range(0, len(archive), chunk):
            while credit == 0:
                frame = await self.recv()
                assert frame["op"] == "ack"
                credit += frame["n"]
            await self.send(
                {"id": request_id, "op": "chunk", "data": archive[start : start + chunk]}
            )
            credit -= 1
        await self.send({"id": request_id, "op": "upload_end"})
        while True:
            frame = await self.recv()
            if "event" in frame:
                self.events.append(frame["event"])
            elif frame.get("op") != "ack":
                assert frame["id"] == request_id
                return dict(frame["reply"])

    async def close_code(self) -> int | None:
        """Wait for the server to close the connection; its close code."""
        while True:
            try:
                await asyncio.wait_for(self.ws.recv(), WAIT)
            except ConnectionClosed as closed:
                return None if closed.rcvd is None else closed.rcvd.code


@asynccontextmanager
async def peer(
    host: Host, *, binary: bool = False, token: str | None = None, protocol: bool = True
) -> AsyncIterator[Peer]:
    subprotocols = (
        [Subprotocol(MSGPACK_PROTOCOL if binary else JSON_PROTOCOL)] if protocol else None
    )
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with connect(
        host.ws_url,
        subprotocols=subprotocols,
        additional_headers=headers,
        proxy=None,
        compression=None,
        max_size=None,
    ) as ws:
        yield Peer(ws, binary)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_login_frame_then_calls(host: Host, binary: bool) -> None:
    async with peer(host, binary=binary) as client:
        assert client.ws.subprotocol == (MSGPACK_PROTOCOL if binary else JSON_PROTOCOL)
        grant = await client.login()
        assert grant["principal"]["name"] == ADMIN
        reply = await client.call(1, fc.ListJobs())
        assert reply == {"kind": "ok", "value": []}
        status = await client.call(2, fc.CheckStatus(target_type="server"))
        assert "server" in status["value"]


async def test_no_subprotocol_means_json(host: Host) -> None:
    async with peer(host, protocol=False) as client:
        await client.login()
        assert (await client.call(1, fc.ListStudies()))["kind"] == "ok"


async def test_bearer_handshake_authenticates(host: Host) -> None:
    api = await host.api()
    async with peer(host, binary=True, token=api.token) as client:
        assert (await client.call(5, fc.ListJobs()))["kind"] == "ok"


async def test_handshake_with_bad_bearer_is_refused_with_401(host: Host) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with peer(host, token="forged"):
            pass
    assert refused.value.response.status_code == 401


async def test_plain_get_of_the_ws_endpoint_is_a_400_problem(host: Host) -> None:
    api = await host.api()
    problem = await api.problem("GET", "/v1/ws", 400)
    assert problem["code"] == "bad_request"


async def test_calls_before_login_are_not_authenticated(host: Host) -> None:
    async with peer(host) as client:
        reply = await client.call(1, fc.ListJobs())
        assert reply["code"] == "not_authenticated"
        await client.send({"id": 2, "op": "login", "user": ADMIN, "api_key": "wrong"})
        assert (await client.reply(2))["code"] == "not_authenticated"


async def test_many_requests_in_flight_are_correlated(host: Host) -> None:
    async with peer(host, binary=True) as client:
        await client.login()
        ids = list(range(100, 140))
        for request_id in ids:
            command = fc.ListJobs() if request_id % 2 else fc.GetJobMeta(job_id="nope")
            frame = {"id": request_id, "op": "call", "command": msgspec.to_builtins(command)}
            await client.send(frame)
        replies = {}
        for _ in ids:
            frame = await client.recv()
            replies[frame["id"]] = frame["reply"]
        assert sorted(replies) == ids
        assert all(replies[i]["kind"] == "ok" for i in ids if i % 2)
        assert all(replies[i]["code"] == "job_not_found" for i in ids if not i % 2)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_upload_submits_a_job_and_events_are_pushed(host: Host, binary: bool) -> None:
    async with peer(host, binary=binary) as client:
        await client.login()
        await client.send({"id": 1, "op": "subscribe", "job_id": None})
        assert (await client.reply(1))["kind"] == "ok"
        reply = await client.upload(2, hello_zip(), chunk=300)
        assert reply["kind"] == "ok", reply
        job = reply["value"]
        assert (await client.call(3, fc.GetJobMeta(job_id=job)))["value"]["status"] == "RUNNING"
        host.system.clock.advance(60)
        while not any(e["status"] == "FINISHED:COMPLETED" for e in client.events):
            frame = await client.recv()
            client.events.append(frame["event"])
        statuses = [e["status"] for e in client.events if e["job_id"] == job]
        assert statuses[0] == "SUBMITTED"
        assert statuses[-1] == "FINISHED:COMPLETED"
        assert "RUNNING" in statuses
        assert all(e["study"] == "default" for e in client.events)


async def test_events_follow_subscriptions_and_study(host: Host) -> None:
    host.system.service.add_study("s1", {"nvidia": ["site-1", "site-2"]}, [ADMIN])
    api = await host.api()
    async with peer(host) as watcher, peer(host) as other_study:
        await watcher.login()
        await other_study.login(study="s1")
        first = await api.submit(hello_zip())
        await watcher.send({"id": 1, "op": "subscribe", "job_id": first})
        await other_study.send({"id": 1, "op": "subscribe", "job_id": None})
        await watcher.reply(1)
        await other_study.reply(1)
        second = await api.submit(hello_zip())
        await api.ok("POST", f"/v1/jobs/{first}/abort")
        event = (await watcher.recv())["event"]
        assert event == {"job_id": first, "study": "default", "status": "FINISHED:ABORTED"}
        await watcher.send({"id": 2, "op": "unsubscribe", "job_id": first})
        await watcher.reply(2)
        await api.ok("POST", f"/v1/jobs/{second}/abort")
        # A round trip after the abort: any event pushed for it would have arrived first.
        assert (await watcher.call(3, fc.ListStudies()))["kind"] == "ok"
        assert (await other_study.call(2, fc.ListStudies()))["kind"] == "ok"
        assert watcher.events == []
        assert other_study.events == []


async def test_a_job_subscribed_by_id_and_by_every_job_is_pushed_once(host: Host) -> None:
    api = await host.api()
    async with peer(host) as watcher:
        await watcher.login()
        job = await api.submit(hello_zip())
        await watcher.send({"id": 1, "op": "subscribe", "job_id": job})
        await watcher.send({"id": 2, "op": "subscribe", "job_id": None})
        await watcher.reply(1)
        await watcher.reply(2)
        await api.ok("POST", f"/v1/jobs/{job}/abort")
        assert (await watcher.call(3, fc.ListStudies()))["kind"] == "ok"
        assert [e["status"] for e in watcher.events] == ["FINISHED:ABORTED"]
        await watcher.send({"id": 4, "op": "unsubscribe", "job_id": None})
        await watcher.reply(4)
        await api.ok("DELETE", f"/v1/jobs/{job}")
        assert (await watcher.call(5, fc.ListStudies()))["kind"] == "ok"
        assert [e["status"] for e in watcher.events] == ["FINISHED:ABORTED", "DELETED"]
    # The closed connection lets go of its subscriptions (its cleanup may run just after the
    # close handshake): the hub stops listening.
    hub = host.server.app[EVENT_HUB]
    for _ in range(2000):
        if hub.listening == 0:
            break
        await asyncio.sleep(0.005)
    assert hub.listening == 0


async def _finished_job(host: Host) -> str:
    api = await host.api()
    job = await api.submit(hello_zip())
    host.system.clock.advance(60)
    return job


async def test_download_is_chunked_with_credit(tmp_path: Any) -> None:
    async with hosted(str(tmp_path), ServerSettings(chunk_bytes=64)) as host:
        job = await _finished_job(host)
        async with peer(host, binary=True) as client:
            await client.login()
            command = msgspec.to_builtins(fc.DownloadJobResult(job_id=job))
            await client.send({"id": 7, "op": "download", "command": command, "window": 2})
            first = [await client.recv(), await client.recv()]
            assert [f["op"] for f in first] == ["chunk", "chunk"]
            # The window is spent: a round trip passes without another chunk arriving.
            await client.send(
                {"id": 8, "op": "call", "command": msgspec.to_builtins(fc.ListStudies())}
            )
            assert "reply" in await client.recv()
            data = b"".join(f["data"] for f in first)
            while True:
                await client.send({"id": 7, "op": "ack", "n": 1})
                frame = await client.recv()
                if "reply" in frame:
                    break
                assert all(len(piece) <= 64 for piece in [frame["data"]])
                data += frame["data"]
            assert frame["reply"] == {"kind": "ok", "value": {"bytes": len(data)}}
            assert "meta.json" in zipfile.ZipFile(io.BytesIO(data)).namelist()


async def test_download_problem_and_wrong_ops(host: Host) -> None:
    api = await host.api()
    job = await api.submit(hello_zip())
    async with peer(host) as client:
        await client.login()
        command = msgspec.to_builtins(fc.DownloadJobResult(job_id=job))
        await client.send({"id": 1, "op": "download", "command": command})
        assert (await client.reply(1))["code"] == "job_not_done"
        assert (await client.call(2, fc.DownloadJobResult(job_id=job)))["code"] == (
            "invalid_argument"
        )
        await client.send(
            {"id": 3, "op": "download", "command": msgspec.to_builtins(fc.ListJobs())}
        )
        assert (await client.reply(3))["code"] == "invalid_argument"
        await client.send(
            {"id": 4, "op": "upload_start", "command": msgspec.to_builtins(fc.ListJobs())}
        )
        assert (await client.reply(4))["code"] == "invalid_argument"


async def test_cancel_a_download(tmp_path: Any) -> None:
    async with hosted(str(tmp_path), ServerSettings(chunk_bytes=64)) as host:
        job = await _finished_job(host)
        async with peer(host) as client:
            await client.login()
            command = msgspec.to_builtins(fc.DownloadJobResult(job_id=job))
            await client.send({"id": 1, "op": "download", "command": command, "window": 1})
            assert (await client.recv())["op"] == "chunk"
            await client.send({"id": 1, "op": "cancel"})
            reply = await client.reply(1)
            assert reply["code"] == "cancelled"
            assert (await client.call(2, fc.ListJobs()))["kind"] == "ok"


async def test_cancel_an_upload(host: Host) -> None:
    async with peer(host) as client:
        await client.login()
        command = msgspec.to_builtins(fc.SubmitJob(folder_name="hello"))
        await client.send({"id": 1, "op": "upload_start", "command": command})
        assert (await client.recv())["op"] == "ack"
        await client.send({"id": 1, "op": "chunk", "data": b"PK"})
        assert (await client.recv())["op"] == "ack"
        await client.send({"id": 1, "op": "cancel"})
        assert (await client.reply(1))["code"] == "cancelled"
        assert (await client.call(2, fc.ListJobs()))["value"] == []


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"id": 1, "op": "teleport"}, "invalid_argument"),
        ({"id": 1, "op": "call", "command": {"op": "no_such_command"}}, "invalid_argument"),
        ({"id": 1, "op": "call", "command": {"op": "get_job_meta"}}, "invalid_argument"),
        ({"id": 1, "op": "chunk", "data": b"x"}, "invalid_argument"),
        ({"id": 1, "op": "upload_end"}, "invalid_argument"),
    ],
    ids=["unknown-op", "unknown-command", "missing-field", "stray-chunk", "stray-end"],
)
async def test_bad_requests_get_problems_and_the_connection_survives(
    host: Host, frame: dict[str, Any], code: str
) -> None:
    async with peer(host) as client:
        await client.login()
        await client.send(frame)
        assert (await client.reply(1))["code"] == code
        assert (await client.call(2, fc.ListJobs()))["kind"] == "ok"


async def test_upload_over_the_limit_fails_and_remaining_chunks_are_ignored(
    tmp_path: Any,
) -> None:
    settings = ServerSettings(max_upload_bytes=500)
    async with hosted(str(tmp_path), settings) as host, peer(host) as client:
        await client.login()
        command = msgspec.to_builtins(fc.SubmitJob(folder_name="hello"))
        await client.send({"id": 1, "op": "upload_start", "command": command})
        assert (await client.recv())["op"] == "ack"
        for _ in range(3):
            await client.send({"id": 1, "op": "chunk", "data": b"x" * 300})
        await client.send({"id": 1, "op": "upload_end"})
        frames = [await client.recv(), await client.recv()]
        assert frames[0] == {"id": 1, "op": "ack", "n": 1}
        assert frames[1]["reply"]["code"] == "invalid_job_definition"
        assert (await client.call(2, fc.ListJobs()))["value"] == []
        assert list((tmp_path).iterdir()) == []


async def test_logout_and_expiry(host: Host) -> None:
    async with peer(host) as client, peer(host) as idle:
        await client.login()
        await idle.login()
        assert (await client.call(1, fc.Logout()))["kind"] == "ok"
        assert (await client.call(2, fc.ListJobs()))["code"] == "not_authenticated"
        host.system.clock.advance(1801)
        assert (await idle.call(1, fc.ListJobs()))["code"] == "session_expired"


async def test_a_refused_session_is_dropped_from_the_connection(host: Host) -> None:
    # Reads authenticate and serve in one worker job: a refused token still ends the
    # connection's session, as the separate check did.
    async with peer(host) as client:
        before = await client.call(1, fc.ListJobs())
        assert before["code"] == "not_authenticated"
        assert "not logged in" in before["message"]
        await client.login()
        assert (await client.call(2, fc.ListJobs()))["value"] == []
        host.system.clock.advance(1801)
        assert (await client.call(3, fc.GetJobMeta(job_id="j")))["code"] == "session_expired"
        after = await client.call(4, fc.ListJobs())
        assert after["code"] == "not_authenticated"
        assert "not logged in" in after["message"]


async def test_too_many_requests_in_flight(tmp_path: Any) -> None:
    settings = ServerSettings(ws_max_in_flight=1, chunk_bytes=64)
    async with hosted(str(tmp_path), settings) as host:
        job = await _finished_job(host)
        async with peer(host) as client:
            await client.login()
            command = msgspec.to_builtins(fc.DownloadJobResult(job_id=job))
            await client.send({"id": 1, "op": "download", "command": command, "window": 1})
            assert (await client.recv())["op"] == "chunk"
            reply = await client.call(2, fc.ListJobs())
            assert reply["code"] == "too_many_requests"


async def test_reusing_an_id_in_flight_closes_with_1008(tmp_path: Any) -> None:
    async with hosted(str(tmp_path), ServerSettings(chunk_bytes=64)) as host:
        job = await _finished_job(host)
        async with peer(host) as client:
            await client.login()
            command = msgspec.to_builtins(fc.DownloadJobResult(job_id=job))
            await client.send({"id": 1, "op": "download", "command": command, "window": 1})
            assert (await client.recv())["op"] == "chunk"
            await client.send(
                {"id": 1, "op": "call", "command": msgspec.to_builtins(fc.ListJobs())}
            )
            assert await client.close_code() == 1008


@pytest.mark.parametrize(
    "payload",
    [
        "not json at all",
        "[1, 2]",
        '{"op": "call"}',
        '{"id": "x", "op": "call"}',
        '{"id": -1, "op": "x"}',
    ],
    ids=["garbage", "array", "no-id", "string-id", "negative-id"],
)
async def test_undecodable_frames_close_with_1007(host: Host, payload: str) -> None:
    async with peer(host) as client:
        await client.ws.send(payload)
        assert await client.close_code() == 1007


@pytest.mark.parametrize(
    "payload",
    [b"\xc1", b"\x93\x01\x02\x03", b"\x82\xa2id\xa1x\xa2op\xa1y", b"\x81\xa2op"],
    ids=["invalid-byte", "array", "string-id", "truncated"],
)
async def test_undecodable_msgpack_frames_close_with_1007(host: Host, payload: bytes) -> None:
    async with peer(host, binary=True) as client:
        await client.ws.send(payload)
        assert await client.close_code() == 1007


async def test_wrong_frame_type_closes_with_1003(host: Host) -> None:
    async with peer(host, binary=True) as client:
        await client.ws.send('{"id": 1, "op": "call"}')
        assert await client.close_code() == 1003
    async with peer(host) as client:
        await client.ws.send(b"\x81\xa2id\x01")
        assert await client.close_code() == 1003


async def test_oversized_frame_closes_with_1009(tmp_path: Any) -> None:
    settings = ServerSettings(ws_max_frame_bytes=4096)
    async with (
        hosted(str(tmp_path), settings) as host,
        peer(host) as client,
        peer(host) as bystander,
    ):
        await bystander.login()
        await client.ws.send("x" * 10_000)
        assert await client.close_code() == 1009
        assert (await bystander.call(1, fc.ListJobs()))["kind"] == "ok"


async def test_server_shutdown_closes_with_1001(tmp_path: Any) -> None:
    async with hosted(str(tmp_path)) as host, peer(host) as client:
        await client.login()
        await host.server.close()
        assert await client.close_code() == 1001


async def test_missing_pongs_close_the_connection(tmp_path: Any) -> None:
    settings = ServerSettings(ws_heartbeat=0.05)
    async with hosted(str(tmp_path), settings) as host, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(host.ws_url, autoping=False, protocols=[JSON_PROTOCOL])
        saw_ping = False
        while True:
            message = await asyncio.wait_for(ws.receive(), WAIT)
            if message.type == aiohttp.WSMsgType.PING:
                saw_ping = True
                continue
            break
        assert saw_ping
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await ws.close()
