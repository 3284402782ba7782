"""Helpers for the AdminService tests: a wired memory system, job archives, reply checks, a
lock held by another thread, a call counter."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Literal

import pytest

from flare_adapters.memory.system import MemorySystem, build_memory_system
from flare_core import Command, Ok, Principal, Problem, Reply, SubmitJob

ADMIN = "admin@nvidia.com"
LEAD = "lead@nvidia.com"
MEMBER = "member@nvidia.com"
ORG_ADMIN = "orgadmin@nvidia.com"
OTHER_LEAD = "lead@other.org"
OTHER_ORG_ADMIN = "orgadmin@other.org"

FOLDER = "hello-numpy-sag"

SERVER_CONFIG: dict[str, Any] = {
    "format_version": 2,
    "components": [
        {"id": "persistor", "path": "nvflare.app_common.np.np_model_persistor.NPModelPersistor"}
    ],
    "workflows": [
        {
            "id": "scatter_and_gather",
            "path": "nvflare.app_common.workflows.scatter_and_gather.ScatterAndGather",
            "args": {"min_clients": 2, "num_rounds": 3},
        }
    ],
}

CLIENT_CONFIG: dict[str, Any] = {
    "format_version": 2,
    "executors": [
        {
            "tasks": ["train"],
            "executor": {
                "path": "nvflare.app_common.np.np_trainer.NPTrainer",
                "args": {"sleep_time": 0},
            },
        }
    ],
}

DEFAULT_META: dict[str, Any] = {
    "name": FOLDER,
    "resource_spec": {},
    "min_clients": 2,
    "deploy_map": {"app": ["@ALL"]},
}


def job_files(
    *,
    meta: Mapping[str, Any] | None = None,
    server_config: Mapping[str, Any] | None = None,
    client_config: Mapping[str, Any] | None = None,
    extra: Mapping[str, bytes] | None = None,
) -> dict[str, bytes]:
    """The files of a hello-numpy-sag-like job folder (relative paths -> bytes)."""
    files = {
        "meta.json": json.dumps(DEFAULT_META if meta is None else meta).encode(),
        "app/config/config_fed_server.json": json.dumps(server_config or SERVER_CONFIG).encode(),
        "app/config/config_fed_client.json": json.dumps(client_config or CLIENT_CONFIG).encode(),
    }
    files.update(extra or {})
    return files


def make_zip(files: Mapping[str, bytes], folder: str | None = FOLDER) -> bytes:
    """Zip ``files`` under ``folder/`` (or at the top level when None)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(f"{folder}/{name}" if folder else name, data)
    return buffer.getvalue()


def job_zip(folder: str = FOLDER, **kwargs: Any) -> bytes:
    """A job archive (see ``job_files`` for the keyword arguments)."""
    return make_zip(job_files(**kwargs), folder)


def unzip(data: bytes) -> dict[str, bytes]:
    """The members of a zip archive."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


class Harness:
    """A memory system plus shortcuts for driving its ``AdminService`` directly."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("seed", 7)
        self.system: MemorySystem = build_memory_system(**options)
        self.service = self.system.service
        self.engine = self.system.engine
        self.clock = self.system.clock

    def login(self, user: str = ADMIN, study: str = "default") -> Principal:
        grant = self.service.login(user, user, study)
        return self.service.authenticate(grant.token)

    def reply(
        self, principal: Principal, command: Command, upload: Iterable[bytes] | None = None
    ) -> Reply:
        return self.service.handle(principal, command, upload)

    def ok(
        self, principal: Principal, command: Command, upload: Iterable[bytes] | None = None
    ) -> Any:
        reply = self.reply(principal, command, upload)
        assert isinstance(reply, Ok), reply
        return reply.value

    def problem(
        self, principal: Principal, command: Command, upload: Iterable[bytes] | None = None
    ) -> Problem:
        reply = self.reply(principal, command, upload)
        assert isinstance(reply, Problem), reply
        return reply

    def submit(
        self,
        principal: Principal,
        data: bytes | None = None,
        *,
        folder: str = FOLDER,
        token: str | None = None,
        scope: Literal["user", "session"] = "user",
    ) -> str:
        command = SubmitJob(folder_name=folder, submit_token=token, token_scope=scope)
        value = self.ok(principal, command, [job_zip(folder) if data is None else data])
        assert isinstance(value, str)
        return value

    def status(self, job_id: str) -> str:
        meta = self.service.job_meta(job_id)
        assert meta is not None
        return str(meta["status"])

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def finished(self, *, fail: bool = False) -> str:
        """A job submitted by a new admin session, run to its end (or failed by its engine)."""
        job_id = self.submit(self.login())
        self.advance(1.0)
        if fail:
            self.engine.fail_job(job_id, reason="executor crashed")
        else:
            self.advance(10.0)
        return job_id


@contextmanager
def held_elsewhere(
    hold: Callable[[], AbstractContextManager[object]],
) -> Iterator[Callable[[], None]]:
    """Enter ``hold()`` in another thread and stay inside it until the body ends, or until
    the function this yields is called (from any thread): a lock that is busy for a while,
    released at a point the test picks."""
    taken, done = threading.Event(), threading.Event()

    def keep() -> None:
        with hold():
            taken.set()
            done.wait()

    thread = threading.Thread(target=keep)
    thread.start()
    taken.wait()
    try:
        yield done.set
    finally:
        done.set()
        thread.join()


def count_calls(monkeypatch: pytest.MonkeyPatch, target: object, name: str) -> Callable[[], int]:
    """Count the calls of ``target.name`` (a store's method, say) from now on; the function
    returned tells how many there were."""
    calls = 0
    method = getattr(target, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return method(*args, **kwargs)

    monkeypatch.setattr(target, name, counting)
    return lambda: calls
