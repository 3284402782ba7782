"""The flare-core server: any ``Backend`` over HTTP + WebSocket, and its durable runtime.

``build_app`` makes the aiohttp application; ``run_server`` opens a workspace (SQLite stores,
blob directory, simulated engine, real clock) and serves it; ``flare-core init``/``serve``
(``flare_adapters.cli``) and ``flare_testing.serve`` are built on them.
"""

from flare_adapters.server.app import build_app
from flare_adapters.server.runtime import RunningServer, ServerRuntime, run_server
from flare_adapters.server.settings import ServerSettings

__all__ = ["RunningServer", "ServerRuntime", "ServerSettings", "build_app", "run_server"]
