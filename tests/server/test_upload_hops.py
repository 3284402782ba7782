"""How many thread-pool jobs an upload costs: the token checked when it starts, then one job that
finishes the spool, re-checks the token, checks the archive, serves the command and discards
the spool (plus one per mebibyte of a large upload). Each job is two thread wake-ups; a small
submit over WebSocket once took eight."""

from __future__ import annotations

import pytest

from flare_adapters.server import app as app_module
from flare_adapters.server import uploads as uploads_module
from flare_adapters.server import ws as ws_module
from tests.server.server_kit import Api, Host, hello_zip, pool_jobs
from tests.server.test_ws import peer

pytestmark = pytest.mark.asyncio

ADMIN = "admin@nvidia.com"


def _pool_jobs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return pool_jobs(monkeypatch, app_module, uploads_module, ws_module)


async def test_a_small_http_upload_takes_two_jobs(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = Api(host.http)
    await api.login(ADMIN, ADMIN)
    jobs = _pool_jobs(monkeypatch)
    job_id = await api.submit(hello_zip("small"), folder="small")
    assert jobs == ["authenticate", "serve_upload"]
    assert host.system.service.job_meta(job_id) is not None
    refused = await api.problem(
        "POST",
        "/v1/jobs",
        422,
        params={"folder_name": "small"},
        data=b"not a zip",
        headers={"Content-Type": "application/zip"},
    )
    assert "zip" in refused["message"]
    assert jobs[2:] == ["authenticate", "serve_upload"]  # a refused archive too


async def test_a_small_websocket_upload_takes_two_jobs(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with peer(host) as client:
        await client.login()
        jobs = _pool_jobs(monkeypatch)
        reply = await client.upload(1, hello_zip())
        assert reply["kind"] == "ok", reply
        assert jobs == ["authenticate", "serve_upload"]
        assert host.system.service.job_meta(reply["value"]) is not None
