"""Item 3 of issue 10 over HTTP and WebSocket: a user removed from a study loses it at the
next request on every transport (both re-authenticate every call)."""

from __future__ import annotations

import pytest

import flare_core as fc
from tests.server.server_kit import Host
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
