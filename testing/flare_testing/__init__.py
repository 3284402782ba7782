"""flare-testing: FakeFlare, the contract suite, the pytest plugin and ``serve()``.

``FakeFlare`` is the whole system in memory (virtual clock, simulated engine) for downstream
unit tests; ``flare_testing.contract`` certifies any ``SessionSpec`` implementation; ``serve()``
runs the real HTTP/WebSocket server on an ephemeral loopback port (needs the ``http`` and ``ws``
extras, so it is imported on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flare_testing.fake import DEFAULT_ADMIN, FakeFlare
from flare_testing.job_folders import EXAMPLE, JobFolders

if TYPE_CHECKING:
    from flare_testing.server import ServedSystem, serve

__all__ = ["DEFAULT_ADMIN", "EXAMPLE", "FakeFlare", "JobFolders", "ServedSystem", "serve"]


def __getattr__(name: str) -> Any:
    # serve() pulls in aiohttp; keep ``import flare_testing`` light for FakeFlare users.
    if name in ("serve", "ServedSystem"):
        from flare_testing import server

        return getattr(server, name)
    raise AttributeError(f"module 'flare_testing' has no attribute {name!r}")
