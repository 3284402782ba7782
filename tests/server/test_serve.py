"""``flare_testing.serve``: the real server (SQLite, blob directory, real clock) end to end."""

from __future__ import annotations

import io
import os
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import msgspec
import pytest
from websockets.asyncio.client import connect

import flare_core as fc
from flare_testing.server import ServedSystem, serve
from tests.server.server_kit import Api, hello_zip

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def server() -> Iterator[ServedSystem]:
    with serve(job_duration=60.0) as served:
        yield served


@asynccontextmanager
async def session(server: ServedSystem, user: str | None = None) -> AsyncIterator[Api]:
    name = user or server.admin_user
    async with aiohttp.ClientSession(server.http_url) as http:
        api = Api(http)
        await api.login(name, server.api_keys[name])
        yield api


async def test_serve_yields_loopback_urls_and_keys(server: ServedSystem) -> None:
    assert server.http_url.startswith("http://127.0.0.1:")
    assert server.ws_url == server.http_url.replace("http://", "ws://") + "/v1/ws"
    assert server.admin_user == "admin@nvidia.com"
    assert server.admin_key == server.api_keys["admin@nvidia.com"]
    assert len(set(server.api_keys.values())) == len(server.api_keys)
    assert os.path.isfile(os.path.join(server.workspace, "state", "flare.db"))


async def test_every_user_can_log_in(server: ServedSystem) -> None:
    for user in server.api_keys:
        async with session(server, user) as api:
            assert (await api.ok("GET", "/v1/jobs")) is not None


async def test_job_lifecycle_with_the_control_plane(server: ServedSystem) -> None:
    async with session(server) as api:
        server.hold_jobs_named("lifecycle")  # RUNNING until finished, whatever the load
        job = await api.submit(hello_zip("lifecycle"), folder="lifecycle")
        assert (await api.ok("GET", f"/v1/jobs/{job}"))["status"] == "RUNNING"
        server.finish_job(job)
        meta = await api.ok("GET", f"/v1/jobs/{job}")
        assert meta["status"] == "FINISHED:COMPLETED"
        assert server.job_meta(job) == meta
        response = await api.http.get(f"/v1/jobs/{job}/result", headers=api.headers())
        assert response.status == 200
        names = zipfile.ZipFile(io.BytesIO(await response.read())).namelist()
        assert "workspace/site-1/result.json" in names
        logs = await api.ok("GET", f"/v1/jobs/{job}/logs", params={"target": "all"})
        assert "finished with status FINISHED:COMPLETED" in logs["logs"]["server"]


async def test_fail_and_abort_through_the_control_plane(server: ServedSystem) -> None:
    async with session(server) as api:
        failing = await api.submit(hello_zip())
        server.fail_job(failing, reason="exploded")
        assert (await api.ok("GET", f"/v1/jobs/{failing}"))["status"] == (
            "FINISHED:EXECUTION_EXCEPTION"
        )
        assert "ERRORLOG_site-1" in await api.ok("GET", f"/v1/jobs/{failing}/components")
        aborted = await api.submit(hello_zip())
        await api.ok("POST", f"/v1/jobs/{aborted}/abort")
        assert (await api.ok("GET", f"/v1/jobs/{aborted}"))["status"] == "FINISHED:ABORTED"


async def test_sites_can_disconnect_and_come_back(server: ServedSystem) -> None:
    assert server.sites == ("site-1", "site-2")
    async with session(server) as api:
        server.disconnect_site("site-2")
        status = await api.ok("GET", "/v1/system/status", params={"target_type": "all"})
        assert "site-2" not in status
        server.connect_site("site-2")
        status = await api.ok("GET", "/v1/system/status", params={"target_type": "all"})
        assert "site-2" in status


async def test_websocket_on_the_real_server(server: ServedSystem) -> None:
    async with session(server) as api:
        headers = {"Authorization": f"Bearer {api.token}"}
        async with connect(server.ws_url, additional_headers=headers, proxy=None) as ws:
            command = msgspec.to_builtins(fc.CheckStatus(target_type="server"))
            frame = {"id": 1, "op": "call", "command": command}
            await ws.send(msgspec.json.encode(frame).decode())
            reply = msgspec.json.decode(await ws.recv())
            assert reply["id"] == 1
            assert reply["reply"]["kind"] == "ok"


async def test_hold_and_release(server: ServedSystem) -> None:
    async with session(server) as api:
        job = await api.submit(hello_zip())
        server.hold_job(job)
        server.release_job(job)
        server.finish_job(job, "FINISHED:ABORTED")
        assert (await api.ok("GET", f"/v1/jobs/{job}"))["status"] == "FINISHED:ABORTED"


async def test_state_survives_a_clean_restart(tmp_path: Path) -> None:
    with serve(workspace=str(tmp_path), job_duration=60.0) as first:
        async with session(first) as api:
            job = await api.submit(hello_zip(), token="keep-me")
            queued = await api.submit(hello_zip("queued", min_clients=3))  # never schedulable
            await api.ok(
                "POST", "/v1/studies", json_body={"study": "kept", "site_orgs": ["nvidia:site-1"]}
            )
            await api.ok("POST", "/v1/sites/site-2/disable")
            assert (await api.ok("GET", f"/v1/jobs/{job}"))["status"] == "RUNNING"
    with serve(workspace=str(tmp_path), job_duration=60.0) as second:
        async with session(second) as api:
            # A clean stop is a shutdown, not a crash: the running job was aborted, with why.
            meta = await api.ok("GET", f"/v1/jobs/{job}")
            assert meta["status"] == "FINISHED:ABORTED"
            assert meta["finish_reason"] == "the server was stopped while the job was live"
            assert second.runtime.recovered == []
            assert (await api.ok("GET", f"/v1/jobs/{queued}"))["status"] == "SUBMITTED"
            assert await api.submit(hello_zip(), token="keep-me") == job
            assert "kept" in (await api.ok("GET", "/v1/studies"))["studies"]
        assert "site-2" not in [s.name for s in second.service.sites() if s.connected]


async def test_serve_needs_an_admin() -> None:
    with pytest.raises(fc.InvalidArgumentError), serve(users=()):
        pass


async def test_harness_back_doors(server: ServedSystem) -> None:
    key = server.add_user("new@nvidia.com", "nvidia", "lead")
    assert server.api_keys["new@nvidia.com"] == key
    server.add_study("harnessed", {"nvidia": ["site-1"]}, ["new@nvidia.com"])
    async with session(server, "new@nvidia.com") as api:
        job = await api.submit(hello_zip())
        server.append_job_log(job, "site-1", b"planted line\n")
        server.put_file("site-1", "notes.txt", b"hello notes\n")
        text = await api.ok("GET", "/v1/sites/site-1/shell/cat", params={"path": "notes.txt"})
        assert text == "hello notes\n"
        logs = await api.ok("GET", f"/v1/jobs/{job}/logs", params={"target": "site-1"})
        assert logs["logs"]["site-1"].endswith("planted line\n")
        assert server.job_meta(job)["submitter_name"] == "new@nvidia.com"
        assert abs(server.now - time.time()) < 60
    async with aiohttp.ClientSession(server.http_url) as http:
        assert (await Api(http).login("new@nvidia.com", key, "harnessed"))["principal"]
    with pytest.raises(KeyError):
        server.job_meta("00000000-0000-4000-8000-000000000000")
