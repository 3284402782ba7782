"""The servers a run needs, each in its own process on 127.0.0.1, always stopped.

``FlareServer`` is ``flare-core init --engine simulated`` (its function, in this process)
then ``flare-core serve`` on a temporary workspace (what an operator runs); ``RawServer`` is
one of ``bench.raw_servers``.
Both are stopped with SIGTERM, then SIGKILL by PID if they do not exit: never by name.
Memory is read from ``/proc/<pid>/status`` (no dependency).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Self

import msgspec

from flare_adapters.server.config import init_workspace, save_config

__all__ = ["FlareServer", "RawServer", "peak_rss_kib", "reset_peak_rss", "rss_kib"]

_STOP_TIMEOUT = 30.0


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def rss_kib(pid: int) -> int:
    """The resident set size of ``pid`` now, KiB."""
    return _status_kib(pid, "VmRSS")


def peak_rss_kib(pid: int) -> int:
    """The peak resident set size of ``pid`` since start or the last ``reset_peak_rss``, KiB."""
    return _status_kib(pid, "VmHWM")


def reset_peak_rss(pid: int) -> bool:
    """Reset ``pid``'s peak RSS to its current RSS (Linux ``clear_refs`` 5); False if refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


class _Child:
    """A child process that prints one line naming its port, then serves until SIGTERM."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None

    def _launch(self, argv: Sequence[str]) -> None:
        self.process = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def _ready(self, ready: str) -> str:
        """Wait for the line starting with ``ready``; the rest of it (the URL or port)."""
        process = self.process
        assert process is not None
        assert process.stdout is not None
        for _ in range(20):  # bounded: the child prints a few lines, then the ready line or exits
            line = process.stdout.readline()
            if not line:
                break
            if line.startswith(ready):
                return line[len(ready) :].strip()
        argv = process.args
        self.stop()
        raise RuntimeError(f"{argv!r} did not start")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM, then SIGKILL by PID after ``_STOP_TIMEOUT``; idempotent."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=_STOP_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class FlareServer(_Child):
    """``flare-core serve`` on a fresh workspace under ``root`` (simulated engine).

    Args:
        root: an empty scratch directory.
        job_duration: how long a simulated job runs; long, so a job stays live until the
            bench aborts it (the wait figure measures that change).
        max_upload_bytes: raised for the 1 GiB transfer.
    """

    def __init__(
        self, root: str, *, job_duration: float = 3600.0, max_upload_bytes: int = 2 << 30
    ) -> None:
        super().__init__()
        self.root = root
        # What `flare-core init ROOT --engine simulated` runs, called here rather than in a
        # child: a Python start-up less (seconds on a loaded machine, the unit test counts).
        config, self.api_key = init_workspace(root, engine="simulated")
        self.user = config.users[0].name
        settings = msgspec.structs.replace(
            config.server,
            max_upload_bytes=max_upload_bytes,
            max_zip_entry_bytes=max_upload_bytes,
        )
        save_config(
            root,
            msgspec.structs.replace(config, job_duration=job_duration, server=settings, port=0),
        )
        self.http_url = ""
        self.ws_url = ""

    def launch(self) -> FlareServer:
        """Start ``serve`` without waiting (other servers can start meanwhile)."""
        self._launch(
            [
                *(sys.executable, "-m", "flare_adapters.cli", "serve", self.root),
                *("--host", "127.0.0.1", "--port", "0"),
            ]
        )
        return self

    def ready(self) -> FlareServer:
        """Wait until it listens."""
        self.http_url = self._ready("serving on ")
        self.ws_url = self.http_url.replace("http://", "ws://", 1) + "/v1/ws"
        return self

    def start(self) -> FlareServer:
        return self.launch().ready()


class RawServer(_Child):
    """``python -m bench.raw_servers <kind>``: the raw aiohttp app or websockets echo."""

    def __init__(self, kind: str, *, bodies: str = "", file: str | None = None) -> None:
        super().__init__()
        self.kind = kind
        argv = [sys.executable, "-m", "bench.raw_servers", kind, "--bodies", bodies]
        if file is not None:
            argv += ["--file", file]
        self._launch(argv)
        self.port = 0
        self.url = ""

    def ready(self) -> RawServer:
        """Wait until it listens."""
        self.port = int(self._ready("listening on "))
        self.url = f"{'ws' if self.kind == 'ws' else 'http'}://127.0.0.1:{self.port}"
        return self
