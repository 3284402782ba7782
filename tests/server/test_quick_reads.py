"""Quick reads are served on the event loop (issue 12): over HTTP and WebSocket, a job's meta,
a status or a short listing costs no thread-pool job, while the same read waits its turn in
the pool when the service lock is busy, and answers the same either way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.asyncio.client import connect

import flare_core as fc
from flare_adapters.nvflare.backend import NVFlareBackend
from flare_adapters.server import app as app_module
from flare_adapters.server import context
from flare_adapters.server import ws as ws_module
from flare_adapters.server.context import run_sync
from flare_adapters.server.rows import encode_raw
from flare_ports import ServesAtOnce
from tests.server.server_kit import Api, Host, hello_zip
from tests.server.test_ws import Peer
from tests.service.helpers import held_elsewhere

pytestmark = pytest.mark.asyncio

ADMIN = "admin@nvidia.com"


class Pool:
    """Counts the app's thread-pool jobs; ``on_submit`` runs on the loop before each one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.jobs: list[str] = []
        self.on_submit: Callable[[], None] = lambda: None

        async def counting(app: Any, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            self.jobs.append(getattr(func, "__name__", repr(func)))
            self.on_submit()
            return await run_sync(app, func, *args, **kwargs)

        for module in (app_module, ws_module):
            monkeypatch.setattr(module, "run_sync", counting)


@contextmanager
def _lock_busy(host: Host, pool: Pool) -> Iterator[None]:
    """The service lock held by another thread until the app submits a job to its pool:
    the read cannot be served at once, and the pool's job then takes the lock."""
    with held_elsewhere(lambda: host.system.ports.lock) as release:
        pool.on_submit = release
        yield


async def _submitted(host: Host) -> tuple[Api, str]:
    api = await host.api()
    return api, await api.submit(hello_zip("quick"), folder="quick")


async def test_quick_http_reads_take_no_pool_job(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, job = await _submitted(host)
    pool = Pool(monkeypatch)
    meta = await api.ok("GET", f"/v1/jobs/{job}")
    listing = await api.ok("GET", "/v1/jobs", params={"detailed": "true"})
    status = await api.ok("GET", "/v1/system/status", params={"target_type": "server"})
    assert pool.jobs == []
    assert meta["job_id"] == job
    assert [row["job_id"] for row in listing] == [job]
    assert "server" in status
    # The same reads from the pool answer the same (the lock busy for each).
    for path, params in [
        (f"/v1/jobs/{job}", {}),
        ("/v1/jobs", {"detailed": "true"}),
    ]:
        with _lock_busy(host, pool):
            again = await api.ok("GET", path, params=params)
        assert again == (meta if path.endswith(job) else listing)
    assert pool.jobs == ["_authenticate_and_serve"] * 2


async def test_quick_http_reads_keep_their_problems(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, _ = await _submitted(host)
    pool = Pool(monkeypatch)
    stranger = Api(host.http, token="not-a-token")
    assert (await stranger.problem("GET", "/v1/jobs", 401))["error"] == "AuthenticationError"
    missing = await api.problem("GET", f"/v1/jobs/{'0' * 8}-0000-4000-8000-{'0' * 12}", 404)
    assert missing["error"] == "JobNotFound"
    assert pool.jobs == []
    # A request that does not parse goes to the pool, where the token is checked first.
    await stranger.problem("GET", "/v1/jobs", 401, params={"limit": "many"})
    await api.problem("GET", "/v1/jobs", 400, params={"limit": "many"})
    assert pool.jobs == ["_authenticate_and_serve"] * 2


async def test_an_idle_session_expires_on_a_quick_read(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, _ = await _submitted(host)
    pool = Pool(monkeypatch)
    host.system.clock.advance(1801.0)
    problem = await api.problem("GET", "/v1/jobs", 401)
    assert problem["error"] == "SessionExpired"
    assert pool.jobs == ["_authenticate_and_serve"]  # ending it writes: from the pool
    await api.problem("GET", "/v1/jobs", 401)
    assert pool.jobs == ["_authenticate_and_serve"]  # unknown now: refused at once


async def test_quick_websocket_reads_take_no_pool_job(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, job = await _submitted(host)
    async with connect(host.ws_url, subprotocols=None) as ws:
        peer = Peer(ws, binary=False)
        await peer.login()
        pool = Pool(monkeypatch)
        meta = await peer.call(1, fc.GetJobMeta(job_id=job))
        listing = await peer.call(2, fc.ListJobs())
        assert pool.jobs == []
        assert meta["value"]["job_id"] == job
        assert [row["job_id"] for row in listing["value"]] == [job]
        with _lock_busy(host, pool):
            again = await peer.call(3, fc.GetJobMeta(job_id=job))
        assert again == meta
        assert pool.jobs == ["_authenticated_serve"]
        host.system.service.remove_user(ADMIN)
        revoked = await peer.call(4, fc.ListJobs())
        assert revoked["code"] == "session_expired", revoked
        pool.jobs.clear()
        refused = await peer.call(5, fc.ListJobs())  # logged out by the server: no pool job
        assert refused["code"] == "not_authenticated", refused
        assert pool.jobs == []


async def test_a_quick_websocket_read_is_answered_without_a_task(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Answered in the receive loop; a read the backend declines is asked once, then pooled.
    _, job = await _submitted(host)
    spawned: list[int] = []
    asked: list[str] = []
    spawn, at_once = ws_module._Connection._spawn, context.serve_at_once

    def counting_spawn(connection: Any, request_id: int, work: Any) -> None:
        spawned.append(request_id)
        spawn(connection, request_id, work)

    def counting_at_once(app: Any, token: str, command: fc.Command) -> Any:
        asked.append(type(command).__name__)
        return at_once(app, token, command)

    monkeypatch.setattr(ws_module._Connection, "_spawn", counting_spawn)
    monkeypatch.setattr(ws_module, "serve_at_once", counting_at_once)
    async with connect(host.ws_url, subprotocols=None) as ws:
        peer = Peer(ws, binary=False)
        await peer.login()
        spawned.clear()
        meta = await peer.call(1, fc.GetJobMeta(job_id=job))
        assert meta["value"]["job_id"] == job
        assert (spawned, asked) == ([], ["GetJobMeta"])
        pool = Pool(monkeypatch)
        with _lock_busy(host, pool):
            again = await peer.call(2, fc.GetJobMeta(job_id=job))
        assert again == meta
        assert (spawned, asked) == ([2], ["GetJobMeta"] * 2)
        assert pool.jobs == ["_authenticated_serve"]
        missing = await peer.call(3, fc.GetJobMeta(job_id=f"{'0' * 8}-0000-4000-8000-{'0' * 12}"))
        assert missing["code"] == "job_not_found", missing
        assert spawned == [2]  # a quick read's problem is answered in the loop too


async def test_a_quick_read_that_fails_answers_its_request_and_keeps_the_link(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, job = await _submitted(host)
    failures = [RuntimeError("cannot encode")]

    def failing_once(reply: fc.Reply, encoding: Any) -> Any:
        if failures:
            raise failures.pop()
        return encode_raw(reply, encoding)

    monkeypatch.setattr(ws_module, "encode_raw", failing_once)
    async with connect(host.ws_url, subprotocols=None) as ws:
        peer = Peer(ws, binary=False)
        await peer.login()
        failed = await peer.call(1, fc.GetJobMeta(job_id=job))
        assert failed["code"] == "internal_error", failed
        again = await peer.call(2, fc.GetJobMeta(job_id=job))
        assert again["value"]["job_id"] == job


async def test_the_gateway_does_not_serve_on_the_loop() -> None:
    # Every call of the gateway waits on a real NVFlare federation.
    assert not issubclass(NVFlareBackend, ServesAtOnce)
