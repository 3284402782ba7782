"""The server's offload worker: shell work in a process of its own (issue 10's fairness)."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flare_adapters.disk_workspaces import DiskFileTree
from flare_adapters.http.client import http_transport
from flare_adapters.server.offload import ProcessOffload
from flare_core import InternalError, InvalidArgumentError, ShellCommand
from flare_core.shell import run_shell
from flare_testing.server import serve


@pytest.fixture
def offload() -> Iterator[ProcessOffload]:
    worker = ProcessOffload()
    try:
        yield worker
    finally:
        worker.close()


def _shell(tree: DiskFileTree, verb: str, **fields: str) -> functools.partial[str]:
    command = ShellCommand(verb=verb, target="server", **fields)  # type: ignore[arg-type]
    return functools.partial(run_shell, command, tree)


def test_work_runs_in_another_process_and_its_errors_come_back_typed(
    offload: ProcessOffload, tmp_path: Path
) -> None:
    tree = DiskFileTree(str(tmp_path / "ws"))
    tree.write("log.txt", b"alpha\nbeta\n", 0.0)
    assert offload.run(os.getpid) != os.getpid()
    assert offload.run(_shell(tree, "grep", pattern="bet", path="log.txt")) == "beta\n"
    with pytest.raises(InvalidArgumentError, match="unrecognized arguments"):
        offload.run(_shell(tree, "cat", options="-X", path="log.txt"))
    assert offload.run(os.getpid) == offload.run(os.getpid)  # one worker, kept


def test_a_call_that_cannot_be_pickled_runs_here(offload: ProcessOffload) -> None:
    assert offload.run(lambda: os.getpid()) == os.getpid()


def test_a_dead_worker_fails_its_call_and_the_next_call_gets_a_new_one(
    offload: ProcessOffload,
) -> None:
    first = offload.run(os.getpid)
    with pytest.raises(InternalError, match="worker process"):
        offload.run(functools.partial(os.kill, first, signal.SIGKILL))
    second = offload.run(os.getpid)
    assert second not in (first, os.getpid())


def test_a_closed_offload_refuses_work(offload: ProcessOffload) -> None:
    worker = offload.run(os.getpid)
    offload.close()
    with pytest.raises(InternalError, match="stopping"):
        offload.run(os.getpid)
    assert not _alive(worker)


_ORPHAN_SCRIPT = """
import os, sys, time
from flare_adapters.server.offload import ProcessOffload
offload = ProcessOffload()  # kept: a collected pool shuts its worker down at once
print(offload.run(os.getpid), flush=True)
time.sleep(600)
"""


def test_the_worker_leaves_when_the_server_process_is_killed() -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        worker = int(server.stdout.readline())
        assert _alive(worker)
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
    # The worker polls the server once a second: wait for the end state, bounded.
    deadline = time.monotonic() + 15.0
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker), _describe(worker)


def test_the_served_system_runs_shell_commands_in_the_worker() -> None:
    with serve() as served:
        offload = served.runtime.offload
        assert offload.worker_calls == 0  # no worker until a shell command needs one
        with http_transport.connect(
            served.http_url, user=served.admin_user, api_key=served.admin_key, study="default"
        ) as session:
            assert session.cat_target("server", file="missing.txt").startswith("cat: ")
            session.list_jobs()  # not shell work: stays in the server process
        assert offload.worker_calls == 1


def _describe(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError as exc:
        return f"pid {pid}: {exc}"
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return f"pid {pid} state {fields['State'].strip()} ppid {fields['PPid'].strip()}: {command!r}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (the test's own child, not yet reaped) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
