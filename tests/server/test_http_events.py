"""``GET /v1/events``: the study's job events as JSON lines, behind the bearer token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.server.server_kit import hello_zip, hosted


@pytest.mark.asyncio
async def test_the_stream_needs_a_token(tmp_path: Path) -> None:
    async with hosted(str(tmp_path)) as host, host.http.get("/v1/events") as response:
        assert response.status == 401


@pytest.mark.asyncio
async def test_the_stream_says_subscribed_then_carries_the_study_events(tmp_path: Path) -> None:
    async with hosted(str(tmp_path)) as host:
        api = await host.api()
        other = await host.api()
        job_id = await api.submit(hello_zip())
        async with host.http.get(
            "/v1/events", params={"job_id": job_id}, headers=api.headers()
        ) as response:
            assert response.status == 200
            assert response.content_type == "application/x-ndjson"
            assert json.loads(await response.content.readline()) == {"subscribed": True}
            await other.submit(hello_zip())  # another job: filtered out by ?job_id=
            host.system.clock.advance(60)  # the job runs and ends
            statuses: list[str] = []
            while not statuses or not statuses[-1].startswith("FINISHED"):
                line = await response.content.readline()
                event = json.loads(line)["event"]
                assert (event["job_id"], event["study"]) == (job_id, "default")
                statuses.append(event["status"])
            assert statuses[-1] == "FINISHED:COMPLETED"
