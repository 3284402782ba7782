"""What the parts of one run share: the plan, a scratch directory, the servers and the loop.

The flare-core server is started once and shared by the network figures (as a dashboard
would find it); the raw baselines' servers are started beside it. Async sessions and raw
async clients all live on ``loop``, driven from the main thread between sync calls, so the
interleaved rounds can alternate sync and async candidates.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import ExitStack
from dataclasses import dataclass, field

import aiohttp

from bench.plan import Plan
from bench.processes import FlareServer, RawServer
from bench.results import Report
from flare_ports import SessionSpec, connect
from flare_testing import JobFolders

__all__ = ["READ_ROUTES", "Bench"]

READ_ROUTES = {
    "list_jobs": "/v1/jobs",
    "get_job_meta": "/v1/jobs/{job_id}",
    "get_system_info": "/v1/system/status?target_type=server",
}
"""The HTTP route each read figure's session call sends (captured for the raw baseline)."""


@dataclass
class Bench:
    """One run's shared state; ``start`` brings the servers up, ``close`` stops them all."""

    plan: Plan
    tmp: str
    report: Report
    stack: ExitStack = field(default_factory=ExitStack)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    flare: FlareServer | None = None
    raw_http: RawServer | None = None
    raw_ws: RawServer | None = None
    job_id: str = ""
    bodies: dict[str, bytes] = field(default_factory=dict)
    rtt: dict[str, float] = field(default_factory=dict)
    """Median read round trip per transport, seconds (the wait figures count in these)."""
    _folders: dict[str, JobFolders] = field(default_factory=dict)
    waits_ms: dict[str, float] = field(default_factory=dict)
    """Median wait reaction per transport at the default poll interval, ms (for NVFlare's)."""

    @property
    def transfer_file(self) -> str:
        return os.path.join(self.tmp, "transfer", "payload.bin")

    def folders(self, name: str) -> JobFolders:
        """One ``JobFolders`` per name (it numbers the folders it writes)."""
        if name not in self._folders:
            self._folders[name] = JobFolders(os.path.join(self.tmp, "folders", name))
        return self._folders[name]

    def server(self) -> FlareServer:
        assert self.flare is not None
        return self.flare

    def session(self, url: str) -> SessionSpec:
        server = self.server()
        return connect(url, user=server.user, api_key=server.api_key)

    def start(self) -> None:
        _write_random(self.transfer_file, self.plan.transfer_bytes)
        bodies = os.path.join(self.tmp, "bodies")
        os.makedirs(bodies, exist_ok=True)
        # All three start at once (Python start-ups overlap); the raw app reads the bodies
        # captured below when first asked for them.
        self.flare = self.stack.enter_context(FlareServer(os.path.join(self.tmp, "ws")).launch())
        self.raw_http = self.stack.enter_context(
            RawServer("http", bodies=bodies, file=self.transfer_file)
        )
        self.raw_ws = self.stack.enter_context(RawServer("ws"))
        self.flare.ready()
        self.raw_http.ready()
        self.raw_ws.ready()
        with self.session(self.flare.http_url) as session:
            folder = str(self.folders("seed").hello())
            for _ in range(self.plan.seed_jobs):  # list_jobs returns a realistic page
                self.job_id = session.submit_job(folder)
        self.bodies = self.loop.run_until_complete(self._capture())
        for name, body in self.bodies.items():
            with open(os.path.join(bodies, name), "wb") as out:
                out.write(body)

    async def _capture(self) -> dict[str, bytes]:
        """The bytes the server answers each read with (the raw app returns the same)."""
        server = self.server()
        out = {}
        async with aiohttp.ClientSession(base_url=server.http_url) as client:
            login = {"user": server.user, "api_key": server.api_key, "study": "default"}
            async with client.post("/v1/sessions", json=login) as response:
                token = (await response.json())["token"]
            headers = {"Authorization": f"Bearer {token}"}
            for name, route in READ_ROUTES.items():
                async with client.get(route.format(job_id=self.job_id), headers=headers) as got:
                    if got.status != 200:
                        raise RuntimeError(f"GET {route}: HTTP {got.status}")
                    out[name] = await got.read()
            async with client.delete("/v1/sessions/current", headers=headers):
                pass
        return out

    def raw_client(self) -> aiohttp.ClientSession:
        """An aiohttp client of the raw app, bound to ``loop`` (close it on ``loop``)."""
        assert self.raw_http is not None
        url = self.raw_http.url

        async def make() -> aiohttp.ClientSession:  # aiohttp binds a client to the running loop
            return aiohttp.ClientSession(base_url=url)

        return self.loop.run_until_complete(make())

    def close(self) -> None:
        try:
            self.stack.close()
        finally:
            self.loop.close()


def _write_random(path: str, size: int) -> None:
    # Random bytes: the zip the client builds cannot shrink them, so the upload is full size.
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        left = size
        while left > 0:
            chunk = min(left, 8 << 20)
            out.write(os.urandom(chunk))
            left -= chunk
