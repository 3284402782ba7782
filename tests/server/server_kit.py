"""Shared helpers of the server tests: job archives, a raw HTTP API client, an app host."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from flare_adapters.memory.system import MemorySystem, build_memory_system
from flare_adapters.server.app import build_app
from flare_adapters.server.context import run_sync
from flare_adapters.server.settings import ServerSettings

WORKFLOW_PATH = "nvflare.app_common.workflows.scatter_and_gather.ScatterAndGather"
CLIENT_CONFIG = {
    "format_version": 2,
    "executors": [
        {"tasks": ["train"], "executor": {"path": "nvflare.app_common.np.np_trainer.NPTrainer"}}
    ],
}


def job_files(name: str = "hello", *, rounds: int = 1, **meta: Any) -> dict[str, bytes]:
    """A minimal valid job folder (one app on every site), as relative path -> content."""
    server = {
        "format_version": 2,
        "workflows": [
            {"id": "sag", "path": WORKFLOW_PATH, "args": {"num_rounds": rounds}},
        ],
        "components": [],
    }
    full_meta = {"name": name, "deploy_map": {"app": ["@ALL"]}, "min_clients": 1, **meta}
    return {
        "meta.json": json.dumps(full_meta).encode(),
        "app/config/config_fed_server.json": json.dumps(server).encode(),
        "app/config/config_fed_client.json": json.dumps(CLIENT_CONFIG).encode(),
    }


def make_zip(
    files: Mapping[str, bytes], folder: str | None = "hello", *, symlinks: Mapping[str, str] = {}
) -> bytes:
    """Zip ``files`` under ``folder/`` (or at the top when None); optional symlink entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rel, data in files.items():
            archive.writestr(f"{folder}/{rel}" if folder else rel, data)
        for rel, target in symlinks.items():
            info = zipfile.ZipInfo(f"{folder}/{rel}" if folder else rel)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def hello_zip(name: str = "hello", **kwargs: Any) -> bytes:
    """The zip of ``job_files(name, ...)`` wrapped in a ``name/`` folder."""
    return make_zip(job_files(name, **kwargs), name)


class Api:
    """A raw HTTP client for one session (bearer token) of the server."""

    def __init__(self, http: aiohttp.ClientSession, token: str | None = None) -> None:
        self.http = http
        self.token = token

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    async def login(self, user: str, api_key: str, study: str = "default") -> dict[str, Any]:
        response = await self.http.post(
            "/v1/sessions", json={"user": user, "api_key": api_key, "study": study}
        )
        body = await response.json(content_type=None)
        assert response.status == 201, body
        self.token = body["token"]
        return dict(body)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json_body: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send a request; returns ``(status, decoded JSON body or raw bytes)``."""
        response = await self.http.request(
            method,
            path,
            params=params,
            json=json_body,
            data=data,
            headers=self.headers(headers),
        )
        raw = await response.read()
        if response.content_type in ("application/json", "application/problem+json"):
            return response.status, json.loads(raw)
        return response.status, raw

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request that must succeed; returns the Ok value."""
        status, body = await self.request(method, path, **kwargs)
        assert status == 200, (status, body)
        assert body["kind"] == "ok"
        return body["value"]

    async def problem(self, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
        """A request that must fail with ``status``; returns the problem document."""
        got, body = await self.request(method, path, **kwargs)
        assert got == status, (got, body)
        assert body["kind"] == "problem", body
        assert body["status"] == status
        return dict(body)

    async def submit(self, archive: bytes, folder: str = "hello", token: str | None = None) -> str:
        headers = {"Content-Type": "application/zip"}
        if token:
            headers["Idempotency-Key"] = token
        value = await self.ok(
            "POST", "/v1/jobs", params={"folder_name": folder}, data=archive, headers=headers
        )
        assert isinstance(value, str)
        return value


class Host:
    """The app over an in-memory system on an ephemeral loopback port."""

    def __init__(self, system: MemorySystem, server: TestServer, http: aiohttp.ClientSession):
        self.system = system
        self.server = server
        self.http = http

    @property
    def ws_url(self) -> str:
        return str(self.server.make_url("/v1/ws")).replace("http://", "ws://")

    async def api(self, user: str = "admin@nvidia.com", study: str = "default") -> Api:
        """A logged-in session (memory system keys equal the user names)."""
        api = Api(self.http)
        await api.login(user, user, study)
        return api


@asynccontextmanager
async def hosted(
    tmp_dir: str,
    settings: ServerSettings | None = None,
    **system_options: Any,
) -> AsyncIterator[Host]:
    """Serve a fresh memory system (virtual clock, dispatch at once) for one test."""
    options: dict[str, Any] = {"dispatch_delay": 0.0, "duration": 10.0, **system_options}
    system = build_memory_system(**options)
    app: web.Application = build_app(system.service, settings, spool_dir=tmp_dir)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession(str(server.make_url(""))) as http:
            yield Host(system, server, http)
    finally:
        await server.close()


def pool_jobs(monkeypatch: pytest.MonkeyPatch, *modules: ModuleType) -> list[str]:
    """The names of the functions the server runs in its thread pool (through ``run_sync``
    as each of ``modules`` imported it), in order."""
    seen: list[str] = []

    async def counting(app: Any, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(func, "__name__", repr(func)))
        return await run_sync(app, func, *args, **kwargs)

    for module in modules:
        monkeypatch.setattr(module, "run_sync", counting)
    return seen
