"""The HTTP/WebSocket server's limits and knobs (part of the workspace config)."""

from __future__ import annotations

import msgspec

from flare_adapters.zipsafe import ZipLimits

__all__ = ["WS_MAX_JOB_ID_CHARS", "ServerSettings"]

WS_MAX_JOB_ID_CHARS = 64
"""The longest job id a subscription may name (job ids are 36-character UUIDs)."""

_MIB = 1024 * 1024


class ServerSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Bounds on everything a client can send, and protocol timings.

    Attributes:
        max_json_bytes: largest JSON request body (HTTP) accepted.
        max_upload_bytes: largest job-folder archive accepted (HTTP body or WebSocket upload).
        max_zip_entries: most members an uploaded archive may have.
        max_zip_entry_bytes: largest uncompressed member.
        max_zip_total_bytes: largest total uncompressed size.
        max_zip_ratio: largest compression ratio of a member bigger than 1 MiB.
        chunk_bytes: the size of a WebSocket download's chunk frames, of the pieces an HTTP
            upload's body is read in, and of each piece of a streamed listing's HTTP body
            (an HTTP download sends the archive's pieces as they are read).
        ws_max_frame_bytes: largest WebSocket frame accepted (bigger: close 1009).
        ws_heartbeat: seconds between WebSocket pings; a missing pong closes the connection.
        ws_max_in_flight: most concurrent requests on one WebSocket connection.
        ws_window: chunk frames a peer may send ahead of acknowledgement (both directions).
        ws_event_backlog: most undelivered job events kept per connection (oldest dropped).
        ws_max_subscriptions: most job subscriptions one connection may hold (a job id is at
            most ``WS_MAX_JOB_ID_CHARS`` characters).
        http_max_event_streams: most ``GET /v1/events`` streams one session (bearer token)
            may hold open at once; more are refused with 429. An HTTP client holds at most 8,
            but a stream it closed counts until the server's next keepalive write (15 s)
            finds the connection gone, so the bound leaves room for that churn.
        worker_threads: threads running the synchronous backend calls and file I/O.
    """

    max_json_bytes: int = _MIB
    max_upload_bytes: int = 1024 * _MIB
    max_zip_entries: int = 10_000
    max_zip_entry_bytes: int = 1024 * _MIB
    max_zip_total_bytes: int = 4096 * _MIB
    max_zip_ratio: float = 200.0
    chunk_bytes: int = 256 * 1024
    ws_max_frame_bytes: int = 2 * _MIB
    ws_heartbeat: float = 20.0
    ws_max_in_flight: int = 64
    ws_window: int = 8
    ws_event_backlog: int = 1000
    ws_max_subscriptions: int = 1000
    http_max_event_streams: int = 256
    worker_threads: int = 8

    def zip_limits(self) -> ZipLimits:
        """The zipsafe bounds these settings describe."""
        return ZipLimits(
            max_entries=self.max_zip_entries,
            max_entry_size=self.max_zip_entry_bytes,
            max_total_size=self.max_zip_total_bytes,
            max_ratio=self.max_zip_ratio,
        )
