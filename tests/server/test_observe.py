"""For operators: one structured log line per request, /v1/health, /v1/metrics."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import flare_adapters
from tests.server.server_kit import hello_zip, hosted


def test_the_library_logs_nowhere_unless_the_application_says_so() -> None:
    logger = logging.getLogger("flare_adapters")
    assert any(isinstance(handler, logging.NullHandler) for handler in logger.handlers)
    assert flare_adapters.__name__ == "flare_adapters"


@pytest.mark.asyncio
async def test_one_log_line_per_request_with_user_command_status_and_duration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flare_adapters.server.access")
    async with hosted(str(tmp_path)) as host:
        api = await host.api()
        caplog.clear()
        await api.submit(hello_zip())
        await api.problem("GET", "/v1/jobs/nope", 404)
    lines = [r.getMessage() for r in caplog.records if r.name == "flare_adapters.server.access"]
    assert len(lines) == 2
    fields = [dict(part.split("=", 1) for part in line.split()) for line in lines]
    assert fields[0]["command"] == "submit_job"
    assert fields[0]["user"] == "admin@nvidia.com"
    assert fields[0]["study"] == "default"
    assert fields[0]["status"] in ("200", "201")
    assert float(fields[0]["duration_ms"]) >= 0
    assert (fields[1]["command"], fields[1]["status"]) == ("get_job_meta", "404")
    assert all("Bearer" not in line and "api_key" not in line for line in lines)


@pytest.mark.asyncio
async def test_health_and_metrics_are_public_and_count_requests(tmp_path: Path) -> None:
    async with hosted(str(tmp_path)) as host:
        api = await host.api()
        await api.submit(hello_zip())
        async with host.http.get("/v1/health") as response:
            assert (response.status, await response.json()) == (200, {"status": "ok"})
        async with host.http.get("/v1/metrics") as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            text = await response.text()
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['flare_requests_total{command="login",status="201"}'] == 1.0
    assert samples['flare_requests_total{command="submit_job",status="200"}'] == 1.0
    assert samples['flare_request_duration_seconds_count{command="submit_job"}'] == 1.0
    assert samples["flare_open_websockets"] == 0.0
