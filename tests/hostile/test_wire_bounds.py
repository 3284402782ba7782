"""Items 4, 5 and 6 of issue 10: nesting, integers and per-connection structures are bounded
on every transport, and a client's mistake is a 400 / 1007 / problem reply, never a 500."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import msgspec
import pytest

import flare_core as fc
from flare_adapters.http.routes import LOGIN_PATH, ROUTES, Route
from flare_adapters.server.settings import ServerSettings
from flare_core.commands import MAX_LIST_LIMIT
from flare_core.nesting import MAX_NESTING, NestingTooDeep, check_nesting, decode_json
from flare_ports.wire import WireError, json_codec, msgpack_codec
from tests.server.server_kit import Host, hosted
from tests.server.test_ws import peer
from tests.service.helpers import Harness

DEEP = "[" * 100_000 + "]" * 100_000
"""Past msgspec's own recursion bound."""

SHALLOW_BUT_TOO_DEEP = "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1)
"""Decodes, but nests one level past the bound."""

JSON_BODY_ROUTES = [r for r in ROUTES if not r.fields_in_query and r.transfer is None]


def _concrete(path: str) -> str:
    return (
        path.replace("{job_id}", "7f0e7a9e-1a4b-4c1e-9a51-2f0e7a9e1a4b")
        .replace("{study}", "s1")
        .replace("{client_name}", "site-1")
    )


def test_nesting_bound_is_exact() -> None:
    ok = "[" * MAX_NESTING + "]" * MAX_NESTING
    assert decode_json(ok, "doc") is not None
    for text in (SHALLOW_BUT_TOO_DEEP, DEEP):
        with pytest.raises(NestingTooDeep):
            decode_json(text, "doc")
    with pytest.raises(NestingTooDeep):
        check_nesting({"a": json.loads(SHALLOW_BUT_TOO_DEEP)}, "doc")


def _deep_command(binary: bool, levels: int = 100_000) -> bytes:
    """``{"op": "list_jobs", "x": [[[...]]]}``: an unknown field, still parsed to be skipped."""
    if binary:
        return (
            b"\x82\xa2op"
            + msgspec.msgpack.encode("list_jobs")
            + b"\xa1x"
            + b"\x91" * (levels - 1)
            + b"\x90"
        )
    return b'{"op": "list_jobs", "x": ' + b"[" * levels + b"]" * levels + b"}"


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
def test_codecs_refuse_deep_commands(binary: bool) -> None:
    codec = msgpack_codec if binary else json_codec
    with pytest.raises(WireError, match="nested deeper"):
        codec.decode_command(_deep_command(binary))
    assert isinstance(codec.decode_command(_deep_command(binary, 10)), fc.ListJobs)


@pytest.mark.asyncio
@pytest.mark.parametrize("route", JSON_BODY_ROUTES, ids=lambda r: r.op)
@pytest.mark.parametrize("body", [DEEP, SHALLOW_BUT_TOO_DEEP], ids=["deep", "just-too-deep"])
async def test_every_json_body_route_answers_deep_bodies_with_400(
    tmp_path: Path, route: Route, body: str
) -> None:
    async with hosted(str(tmp_path)) as host:
        api = await host.api()
        method, path = route.method, _concrete(route.path)
        response = await host.http.request(
            method,
            path,
            data='{"x": ' + body + "}",
            headers=api.headers({"Content-Type": "application/json"}),
        )
        assert response.status == 400, await response.text()
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "invalid_argument"


@pytest.mark.asyncio
@pytest.mark.parametrize("body", [DEEP, SHALLOW_BUT_TOO_DEEP], ids=["deep", "just-too-deep"])
async def test_login_answers_deep_bodies_with_400(host: Host, body: str) -> None:
    response = await host.http.post(
        LOGIN_PATH,
        data='{"user": "u", "x": ' + body + "}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400, await response.text()
    assert response.content_type == "application/problem+json"
    assert (await response.json())["code"] == "invalid_argument"


@pytest.mark.asyncio
@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
@pytest.mark.parametrize("where", ["frame", "command"])
async def test_a_deep_websocket_frame_closes_with_1007(
    host: Host, binary: bool, where: str
) -> None:
    async with peer(host, binary=binary) as client:
        await client.login()
        if binary:
            head = b"\x83\xa2id\x01\xa2op\xa4call"
            deep = b"\x91" * 100_000 + b"\x90"
            await client.ws.send(
                head
                + (b"\xa1x" + deep if where == "frame" else b"\xa7command" + _deep_command(True))
            )
        else:
            inner = DEEP if where == "frame" else _deep_command(False).decode()
            key = "x" if where == "frame" else "command"
            await client.ws.send(f'{{"id": 1, "op": "call", "{key}": {inner}}}')
        assert await client.close_code() == 1007


# --- integers from the wire (item 6) ----------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("limit", [2**31, 2**63, 2**64 - 1, 2**70, -1])
async def test_http_list_limit_out_of_range_is_400(host: Host, limit: int) -> None:
    api = await host.api()
    problem = await api.problem("GET", "/v1/jobs", 400, params={"limit": str(limit)})
    assert problem["code"] == "invalid_argument"
    assert await api.ok("GET", "/v1/jobs", params={"limit": str(MAX_LIST_LIMIT)}) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
@pytest.mark.parametrize("limit", [2**63, 2**64 - 1])
async def test_websocket_list_limit_out_of_range_is_a_problem(
    host: Host, binary: bool, limit: int
) -> None:
    async with peer(host, binary=binary) as client:
        await client.login()
        await client.send({"id": 1, "op": "call", "command": {"op": "list_jobs", "limit": limit}})
        assert (await client.reply(1))["code"] == "invalid_argument"


def test_the_service_bounds_the_limit_whatever_the_caller() -> None:
    h = Harness()
    problem = h.problem(h.login(), fc.ListJobs(limit=2**63))
    assert problem.code == "invalid_argument"


def test_the_client_refuses_a_huge_limit_before_sending() -> None:
    from flare_core.listing import build_list_jobs

    with pytest.raises(fc.InvalidArgumentError, match="limit must be <="):
        build_list_jobs(limit=2**63)


# --- per-connection structures (item 4) -------------------------------------------------------


@pytest.mark.asyncio
async def test_subscriptions_are_bounded_per_connection(tmp_path: Path) -> None:
    settings = ServerSettings(ws_max_subscriptions=3)
    async with hosted(str(tmp_path), settings) as host, peer(host) as client:
        await client.login()
        for i in range(3):
            await client.send({"id": i + 1, "op": "subscribe", "job_id": f"job-{i}"})
            assert (await client.reply(i + 1))["kind"] == "ok"
        await client.send({"id": 9, "op": "subscribe", "job_id": "job-1"})  # already held
        assert (await client.reply(9))["kind"] == "ok"
        await client.send({"id": 10, "op": "subscribe", "job_id": "job-4"})
        reply = await client.reply(10)
        assert reply["code"] == "invalid_argument"
        assert "at most 3 subscriptions" in reply["message"]
        await client.send({"id": 11, "op": "unsubscribe", "job_id": "job-0"})
        assert (await client.reply(11))["kind"] == "ok"
        await client.send({"id": 12, "op": "subscribe", "job_id": "job-4"})
        assert (await client.reply(12))["kind"] == "ok"


@pytest.mark.asyncio
async def test_a_huge_subscription_job_id_is_refused(host: Host) -> None:
    async with peer(host) as client:
        await client.login()
        await client.send({"id": 1, "op": "subscribe", "job_id": "x" * (1024 * 1024)})
        reply = await client.reply(1)
        assert reply["code"] == "invalid_argument"
        assert (await client.call(2, fc.ListJobs()))["kind"] == "ok"


@pytest.mark.asyncio
async def test_event_streams_are_bounded_per_session(tmp_path: Path) -> None:
    settings = ServerSettings(http_max_event_streams=2)
    async with hosted(str(tmp_path), settings) as host, contextlib.AsyncExitStack() as held:
        api, other = await host.api(), await host.api()
        for _ in range(2):
            stream = await held.enter_async_context(
                host.http.get("/v1/events", headers=api.headers())
            )
            assert json.loads(await stream.content.readline()) == {"subscribed": True}
        async with host.http.get("/v1/events", headers=api.headers()) as refused:
            assert refused.status == 429
            problem = await refused.json(content_type=None)
            assert problem["code"] == "too_many_requests"
            assert "at most 2 event streams per session" in problem["message"]
        # Another session (here the same user's) is not held back by the first one's streams.
        async with host.http.get("/v1/events", headers=other.headers()) as own:
            assert json.loads(await own.content.readline()) == {"subscribed": True}
