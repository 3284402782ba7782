"""How many thread-pool jobs an HTTP command costs: one when the request has no body (the token
is checked in the job that serves it), two when it has one (the token is checked before the body
is read), none for a quick read (``test_quick_reads``)."""

from __future__ import annotations

import pytest

import flare_core as fc
from flare_adapters.http.openapi import build_openapi
from flare_adapters.http.routes import command_to_request
from flare_adapters.server import app as app_module
from tests.server.server_kit import Api, Host, hello_zip, pool_jobs

ADMIN = "admin@nvidia.com"


def _hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return pool_jobs(monkeypatch, app_module)


async def _running(host: Host) -> tuple[Api, str]:
    api = Api(host.http)
    await api.login(ADMIN, ADMIN)
    host.system.engine.hold_jobs_named("held")
    return api, await api.submit(hello_zip("held"), folder="held")


@pytest.mark.asyncio
async def test_a_command_without_a_body_takes_one_hop(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, job = await _running(host)
    hops = _hops(monkeypatch)
    assert isinstance(await api.ok("POST", f"/v1/jobs/{job}/clone"), str)
    await api.ok("POST", f"/v1/jobs/{job}/abort")
    await api.ok("GET", f"/v1/jobs/{job}/logs", params={"target": "all"})
    assert hops == ["_authenticate_and_serve"] * 3


@pytest.mark.asyncio
async def test_a_command_with_a_body_is_authenticated_before_the_body_is_read(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, job = await _running(host)
    hops = _hops(monkeypatch)
    await api.ok("POST", f"/v1/jobs/{job}/abort", json_body={})
    assert hops == ["authenticate", "serve_command"]
    hops.clear()
    stranger = Api(host.http, token="not-a-token")
    await stranger.problem("POST", f"/v1/jobs/{job}/abort", 401, json_body={})
    await stranger.problem("POST", f"/v1/jobs/{job}/abort", 401)
    assert hops == ["authenticate", "_authenticate_and_serve"]
    assert host.system.service.job_meta(job) is not None


def test_the_client_sends_no_body_when_a_command_has_nothing_to_send() -> None:
    assert command_to_request(fc.AbortJob(job_id="j")).json_body is None
    assert command_to_request(fc.CloneJob(job_id="j")).json_body is None
    paths = build_openapi()["paths"]
    assert paths["/v1/jobs/{job_id}/abort"]["post"]["requestBody"]["required"] is False
    # A command with fields of its own still sends them, in a body its route requires.
    configure = command_to_request(fc.ConfigureJobLog(job_id="j", config="DEBUG"))
    assert configure.json_body == {"config": "DEBUG", "target": "all"}
    assert paths["/v1/jobs/{job_id}/log-config"]["put"]["requestBody"]["required"] is True


@pytest.mark.asyncio
async def test_a_missing_body_with_required_fields_is_a_typed_400(host: Host) -> None:
    api = Api(host.http)
    await api.login(ADMIN, ADMIN)
    problem = await api.problem("POST", "/v1/studies", 400)
    assert problem["error"] == "InvalidArgumentError"
    assert "study" in problem["message"]
