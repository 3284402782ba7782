"""A full listing longer than one store page goes out as it is read (issue 12).

The service answers it with ``Ok(Rows)``; HTTP sends a chunked body a piece at a time, a
WebSocket reply carries the array encoded row by row. Either way the client receives the
bytes of the unstreamed reply, and a store failing midway is a typed problem while nothing
was sent, a broken body (a lost reply) once the headers are out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

import flare_core as fc
from flare_adapters.server.settings import ServerSettings
from flare_core.listing import select_jobs
from flare_core.service.ports import JobPage
from tests.server.server_kit import Host, hosted
from tests.server.test_ws import peer

pytestmark = pytest.mark.asyncio

ADMIN = "admin@nvidia.com"
PAGE = 2
JOBS = 7


def _add_jobs(host: Host, count: int = JOBS) -> None:
    jobs = host.system.ports.jobs
    for n in range(count):
        jobs.add(
            {
                "job_id": f"00000000-0000-4000-8000-{n:012d}",
                "name": f"job-{n}",
                "status": "FINISHED:COMPLETED",
                "submit_time": 1_764_583_200.0 + n // 2,  # pairs share an instant
                "submit_time_iso": "2025-12-01T10:00:00+00:00",
                "submitter_name": ADMIN,
                "study": "default",
            }
        )


def _expected(host: Host, command: fc.ListJobs) -> list[dict[str, Any]]:
    """The rows an unstreamed listing gives: ``select_jobs`` over every job at once."""
    jobs = host.system.ports.jobs.query(study="default")
    return select_jobs(jobs, command, study="default", caller_name=ADMIN, now=0.0)


def _fail_from_page(host: Host, monkeypatch: pytest.MonkeyPatch, failing: int) -> None:
    """Make the store's ``page`` raise from its ``failing``-th call on (1-based)."""
    jobs = host.system.ports.jobs
    page, calls = jobs.page, [0]

    def flaky(**options: Any) -> JobPage:
        calls[0] += 1
        if calls[0] >= failing:
            raise OSError("disk I/O error")
        return page(**options)

    monkeypatch.setattr(jobs, "page", flaky)


@pytest.mark.parametrize("detailed", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
async def test_http_sends_a_long_listing_chunked_with_the_bytes_of_a_whole_one(
    tmp_path: Path, detailed: bool, reverse: bool
) -> None:
    async with hosted(str(tmp_path), list_page_size=PAGE) as host:
        _add_jobs(host)
        api = await host.api()
        params = {"detailed": str(detailed).lower(), "reverse": str(reverse).lower()}
        response = await host.http.get("/v1/jobs", params=params, headers=api.headers())
        body = await response.read()
        assert response.status == 200
        assert response.headers.get("Transfer-Encoding") == "chunked"
        assert response.content_type == "application/json"
        expected = _expected(host, fc.ListJobs(detailed=detailed, reverse=reverse))
        assert len(expected) == JOBS
        # Durations of finished jobs do not depend on the listing time: the same bytes.
        assert body == msgspec.json.encode(fc.Ok(value=expected))


async def test_http_sends_a_listing_within_one_page_whole(tmp_path: Path) -> None:
    async with hosted(str(tmp_path), list_page_size=PAGE) as host:
        _add_jobs(host, PAGE)
        api = await host.api()
        response = await host.http.get("/v1/jobs", headers=api.headers())
        await response.read()
        assert response.status == 200
        assert "Transfer-Encoding" not in response.headers
        assert response.content_length is not None


async def test_http_streams_in_pieces_of_the_chunk_size(tmp_path: Path) -> None:
    settings = ServerSettings(chunk_bytes=64)
    async with hosted(str(tmp_path), settings, list_page_size=PAGE) as host:
        _add_jobs(host)
        api = await host.api()
        response = await host.http.get("/v1/jobs", headers=api.headers())
        pieces = [piece async for piece, _ in response.content.iter_chunks()]
        assert len(pieces) > 2
        assert msgspec.json.decode(b"".join(pieces)) == {
            "kind": "ok",
            "value": _expected(host, fc.ListJobs()),
        }


async def test_http_store_failure_before_the_first_piece_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hosted(str(tmp_path), list_page_size=PAGE) as host:
        _add_jobs(host)
        api = await host.api()
        _fail_from_page(host, monkeypatch, failing=3)  # the service itself reads two pages
        problem = await api.problem("GET", "/v1/jobs", 500)
        assert problem["code"] == "internal_error"
        assert "disk" not in problem["message"]


async def test_http_store_failure_mid_stream_breaks_the_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ServerSettings(chunk_bytes=64)
    async with hosted(str(tmp_path), settings, list_page_size=PAGE) as host:
        _add_jobs(host)
        api = await host.api()
        _fail_from_page(host, monkeypatch, failing=4)  # after the first pieces went out
        response = await host.http.get("/v1/jobs", headers=api.headers())
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


@pytest.mark.parametrize("binary", [False, True])
async def test_ws_replies_a_long_listing_in_one_frame_of_every_row(
    tmp_path: Path, binary: bool
) -> None:
    async with hosted(str(tmp_path), list_page_size=PAGE) as host:
        _add_jobs(host)
        async with peer(host, binary=binary) as ws:
            await ws.login()
            for command in (fc.ListJobs(), fc.ListJobs(detailed=True, reverse=True)):
                reply = await ws.call(1, command)
                assert reply == {"kind": "ok", "value": _expected(host, command)}


@pytest.mark.parametrize("binary", [False, True])
async def test_ws_store_failure_midway_is_a_problem_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, binary: bool
) -> None:
    async with hosted(str(tmp_path), list_page_size=PAGE) as host:
        _add_jobs(host)
        async with peer(host, binary=binary) as ws:
            await ws.login()
            _fail_from_page(host, monkeypatch, failing=4)
            reply = await ws.call(1, fc.ListJobs())
            assert (reply["kind"], reply["code"]) == ("problem", "internal_error")
            assert "disk" not in reply["message"]
            monkeypatch.undo()
            # The connection is still good.
            assert len((await ws.call(2, fc.ListJobs()))["value"]) == JOBS
