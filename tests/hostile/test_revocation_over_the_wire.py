"""Item 3 of issue 10 over HTTP and WebSocket: a user removed from a study loses it at the
next request on every transport (both re-authenticate every call)."""

from __future__ import annotations

import pytest

import flare_core as fc
from tests.server.server_kit import Host, hello_zip
from tests.server.test_ws import peer

pytestmark = pytest.mark.asyncio

ADMIN, LEAD = "admin@nvidia.com", "lead@nvidia.com"


async def test_http_and_websocket_sessions_lose_a_revoked_study(host: Host) -> None:
    host.system.service.add_study("s1", {"nvidia": ["site-1"]}, [ADMIN, LEAD])
    http_lead = await host.api(LEAD, "s1")
    assert await http_lead.ok("GET", "/v1/jobs") == []
    async with peer(host) as ws_lead:
        await ws_lead.login(LEAD, "s1")
        assert (await ws_lead.call(1, fc.ListJobs()))["kind"] == "ok"
        admin = await host.api(ADMIN, "s1")
        await admin.ok("DELETE", "/v1/studies/s1/users/" + LEAD)
        problem = await http_lead.problem("GET", "/v1/jobs", 401)
        assert problem["code"] == "session_expired"
        reply = await ws_lead.call(2, fc.ListJobs())
        assert reply["code"] == "session_expired", reply


async def test_a_revoked_websocket_session_gets_no_more_events(host: Host) -> None:
    host.system.service.add_study("s2", {"nvidia": ["site-1"]}, [ADMIN, LEAD])
    async with peer(host) as watcher:
        await watcher.login(LEAD, "s2")
        await watcher.send({"id": 1, "op": "subscribe", "job_id": None})
        assert (await watcher.reply(1))["kind"] == "ok"
        admin = await host.api(ADMIN, "s2")
        await admin.ok("DELETE", "/v1/studies/s2/users/" + LEAD)
        assert (await watcher.call(2, fc.ListJobs()))["code"] == "session_expired"
        await admin.submit(hello_zip())  # an event of the study the watcher lost
        await watcher.send({"id": 3, "op": "subscribe", "job_id": None})
        assert (await watcher.reply(3))["code"] == "not_authenticated"
        assert watcher.events == []
