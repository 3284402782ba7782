"""The WebSocket client transport: ``AsyncWsTransport``, ``WsTransport`` and the ``ws``/``wss``
transport factory (``ws_transport``)."""

from flare_adapters.ws.client import (
    JSON_PROTOCOL,
    MSGPACK_PROTOCOL,
    AsyncWsTransport,
    WsOptions,
    WsTransport,
    ws_transport,
)

__all__ = [
    "JSON_PROTOCOL",
    "MSGPACK_PROTOCOL",
    "AsyncWsTransport",
    "WsOptions",
    "WsTransport",
    "ws_transport",
]
