"""For operators: one structured log line per request, /v1/health, /v1/metrics."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

import flare_adapters
from tests.server.server_kit import Host, hello_zip, hosted


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
    samples = _samples(text)
    assert samples['flare_requests_total{command="login",status="201"}'] == 1.0
    assert samples['flare_requests_total{command="submit_job",status="200"}'] == 1.0
    assert samples['flare_request_duration_seconds_count{command="submit_job"}'] == 1.0
    assert samples["flare_open_websockets"] == 0.0


def _samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def _scrape(host: Host) -> dict[str, float]:
    async with host.http.get("/v1/metrics") as response:
        return _samples(await response.text())


def _jobs(samples: dict[str, float]) -> dict[str, float]:
    prefix = 'flare_jobs{status="'
    return {k[len(prefix) : -2]: v for k, v in samples.items() if k.startswith(prefix)}


@pytest.mark.asyncio
async def test_metrics_count_open_sessions_and_jobs_by_status_as_they_change(
    tmp_path: Path,
) -> None:
    async with hosted(str(tmp_path), duration=10.0) as host:
        admin = await host.api()
        other = await host.api("lead@nvidia.com")
        first = await admin.submit(hello_zip())
        await admin.submit(hello_zip("second"))
        samples = await _scrape(host)
        assert samples["flare_open_sessions"] == 2.0
        listed = Counter(row["status"] for row in await admin.ok("GET", "/v1/jobs"))
        assert _jobs(samples) == {status: float(n) for status, n in listed.items()}

        await other.ok("DELETE", "/v1/sessions/current")
        await admin.ok("POST", f"/v1/jobs/{first}/abort")
        host.system.clock.advance(60)
        samples = await _scrape(host)
        assert samples["flare_open_sessions"] == 1.0
        listed = Counter(row["status"] for row in await admin.ok("GET", "/v1/jobs"))
        assert "FINISHED:ABORTED" in listed
        assert _jobs(samples) == {status: float(n) for status, n in listed.items()}

        # Sessions that idled out are not open, though their records wait for a purge.
        host.system.clock.advance(1801)  # the idle timeout is 1800 s
        assert (await _scrape(host))["flare_open_sessions"] == 0.0
