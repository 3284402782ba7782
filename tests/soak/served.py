"""A ``flare-core serve`` subprocess on a soak workspace: start, SIGKILL, restart, peak RSS.

The campaign attacks the real server the way an operator runs it: its own process, SQLite
state on disk, real clock. Users of several roles and orgs are written into the workspace's
config so that fairness, load and authorization phases have distinct principals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from flare_adapters.server.config import (
    EngineSection,
    SiteConfig,
    WorkspaceConfig,
    new_user,
    save_config,
)
from flare_adapters.server.settings import ServerSettings

__all__ = ["USERS", "ServerProcess", "make_workspace"]

USERS: tuple[tuple[str, str, str], ...] = (
    ("admin@nvidia.com", "nvidia", "project_admin"),
    ("lead@nvidia.com", "nvidia", "lead"),
    ("member@nvidia.com", "nvidia", "member"),
    ("orgadmin@nvidia.com", "nvidia", "org_admin"),
    ("lead@other.org", "other", "lead"),
)
"""The soak workspace's users: ``(name, org, role)``."""

_SCRYPT_N = 16  # test-only cost: hundreds of logins must not each cost a real scrypt


def make_workspace(
    root: str,
    *,
    job_duration: float = 0.05,
    idle_timeout: float = 1800.0,
    users: Sequence[tuple[str, str, str]] = USERS,
    settings: ServerSettings | None = None,
) -> dict[str, str]:
    """Write a workspace config under ``root``; returns each user's API key."""
    keys: dict[str, str] = {}
    accounts = []
    for name, org, role in users:
        account, keys[name] = new_user(name, org, role, scrypt_n=_SCRYPT_N)
        accounts.append(account)
    config = WorkspaceConfig(
        server_org="nvidia",
        port=0,
        users=accounts,
        sites=[SiteConfig(name="site-1", org="nvidia"), SiteConfig(name="site-2", org="nvidia")],
        scrypt_n=_SCRYPT_N,
        job_duration=job_duration,
        idle_timeout=idle_timeout,
        server=settings or ServerSettings(),
        engine=EngineSection(kind="simulated"),  # the campaign measures the server, not NVFlare
    )
    save_config(root, config)
    os.makedirs(os.path.join(root, "state"), exist_ok=True)
    return keys


class ServerProcess:
    """``flare-core serve <root>`` as a child process, restartable on the same port."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server (on the port of the first start, after a kill) and wait until it
        listens."""
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flare_adapters.cli",
                "serve",
                self.root,
                "--port",
                str(self.port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert process.stdout is not None
        engine = process.stdout.readline()  # bounded: the process prints these or exits
        line = process.stdout.readline() if engine.startswith("engine: ") else engine
        if not line.startswith("serving on "):
            process.kill()
            process.wait(timeout=30)
            raise RuntimeError(f"server did not start: {line!r}")
        self.port = int(line.split()[-1].rsplit(":", 1)[1])
        self.process = process
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL the server (a crash: nothing is flushed, nothing cleaned up)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self._release()

    def stop(self) -> int | None:
        """Stop the server cleanly; its exit code."""
        code = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            code = self.process.wait(timeout=60)
        self._release()
        return code

    def _release(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def peak_rss_mib(self) -> float:
        """The running server's peak resident set size (``VmHWM``), MiB."""
        assert self.process is not None
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc status")
