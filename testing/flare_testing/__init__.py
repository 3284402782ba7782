"""flare-testing: FakeFlare, the contract suite, the pytest plugin and ``serve()``.

``FakeFlare`` is the whole system in memory (virtual clock, simulated engine) for downstream
unit tests; ``flare_testing.contract`` certifies any ``SessionSpec`` implementation; ``serve()``
runs the real HTTP/WebSocket server on an ephemeral loopback port (imported on first use, so
``import flare_testing`` stays light). ``JobFolders`` writes real job folders, copies of the
shipped ``hello-numpy-sag`` example and variants of it, into any scratch directory: the way
to get example jobs after ``pip install`` (``JobFolders(tmp_path).hello()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flare_testing.fake import DEFAULT_ADMIN, FakeFlare, SentCommand
from flare_testing.job_folders import EXAMPLE, JobFolders
from flare_testing.job_refs import NEXT_JOB, JobName, SubmitToken

if TYPE_CHECKING:
    from flare_testing.server import ServedSystem, serve

__all__ = [
    "DEFAULT_ADMIN",
    "EXAMPLE",
    "NEXT_JOB",
    "FakeFlare",
    "JobFolders",
    "JobName",
    "SentCommand",
    "ServedSystem",
    "SubmitToken",
    "serve",
]


def __getattr__(name: str) -> Any:
    # serve() pulls in aiohttp; keep ``import flare_testing`` light for FakeFlare users.
    if name in ("serve", "ServedSystem"):
        from flare_testing import server

        return getattr(server, name)
    raise AttributeError(f"module 'flare_testing' has no attribute {name!r}")
