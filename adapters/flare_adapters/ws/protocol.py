"""The WebSocket protocol at ``/v1/ws``, sans I/O: the vocabulary both ends speak.

As ``websockets``' own ``protocol.py`` separates the WebSocket state machine from the sockets,
this module holds everything about flare-core's protocol that is not a socket: the subprotocol
names, op names and close codes; the frame structs of both directions; the credit of a chunk
stream; and the rule deciding when a waiter on a job has news. The client
(``flare_adapters.ws.client``), the server (``flare_adapters.server.ws``) and the memory
transport (the wake rule) all use it, so a frame or a rule changes in one place.

The protocol itself is described once, in ``docs/protocol.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal

import msgspec

from flare_core.commands import Command
from flare_core.events import JobEvent
from flare_core.replies import Ok, Problem
from flare_core.steps import ANY_JOB

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_INVALID_PAYLOAD",
    "CLOSE_NORMAL",
    "CLOSE_POLICY_VIOLATION",
    "CLOSE_TOO_BIG",
    "CLOSE_UNSUPPORTED_DATA",
    "JSON_PROTOCOL",
    "MSGPACK_PROTOCOL",
    "REQUEST_OPS",
    "SUBPROTOCOLS",
    "AckFrame",
    "CallFrame",
    "CancelFrame",
    "ChunkFrame",
    "ClientFrame",
    "Credit",
    "DownloadFrame",
    "Encoding",
    "EventFrame",
    "FrameCodec",
    "LoginFrame",
    "ReplyFrame",
    "ServerFrame",
    "SubscribeFrame",
    "UnsubscribeFrame",
    "UploadEndFrame",
    "UploadStartFrame",
    "WakeRule",
    "wire_job_id",
]

# --- subprotocols, ops, close codes -----------------------------------------------------------

JSON_PROTOCOL: Final = "flare-core.v1.json"
"""Every frame is a JSON text frame; ``bytes`` fields are base64 (also: no subprotocol)."""
MSGPACK_PROTOCOL: Final = "flare-core.v1.msgpack"
"""Every frame is a msgpack binary frame; ``bytes`` fields are raw."""
SUBPROTOCOLS: Final = (JSON_PROTOCOL, MSGPACK_PROTOCOL)
"""What the server offers, in its order of preference."""

Encoding = Literal["msgpack", "json"]

REQUEST_OPS: Final = frozenset(
    {"login", "call", "upload_start", "download", "subscribe", "unsubscribe"}
)
"""The client ops that open a request (its ``id`` is then in flight until the reply); the
others (``chunk``, ``upload_end``, ``ack``, ``cancel``) continue or end one."""

CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
"""The server is shutting down."""
CLOSE_UNSUPPORTED_DATA: Final = 1003
"""A text frame on the msgpack subprotocol, or a binary frame on the JSON one."""
CLOSE_INVALID_PAYLOAD: Final = 1007
"""A frame that does not decode (as a request map with an integer ``id`` >= 0 and an ``op``)."""
CLOSE_POLICY_VIOLATION: Final = 1008
"""A request ``id`` reused while in flight."""
CLOSE_TOO_BIG: Final = 1009
CLOSE_INTERNAL_ERROR: Final = 1011


def wire_job_id(job_id: str) -> str | None:
    """A subscription's ``job_id`` on the wire: ``null`` means every job of the study."""
    return None if job_id == ANY_JOB else job_id


# --- client -> server frames --------------------------------------------------------------------
# Each struct encodes exactly the map the protocol documents, in the same key order (``id``
# first, then ``op``): defaults are encoded, never omitted.


class LoginFrame(msgspec.Struct, kw_only=True):
    """Log the connection in -> reply ``Ok({token, idle_timeout, principal})``."""

    id: int
    op: Literal["login"] = "login"
    user: str
    api_key: str | None
    study: str


class CallFrame(msgspec.Struct, kw_only=True):
    """Run one command (not an upload or download) -> its reply."""

    id: int
    op: Literal["call"] = "call"
    command: Command


class UploadStartFrame(msgspec.Struct, kw_only=True):
    """Begin an upload command -> ``AckFrame`` granting the first credit (or a problem)."""

    id: int
    op: Literal["upload_start"] = "upload_start"
    command: Command


class UploadEndFrame(msgspec.Struct, kw_only=True):
    """The upload's last chunk was sent -> the backend's reply to the command."""

    id: int
    op: Literal["upload_end"] = "upload_end"


class DownloadFrame(msgspec.Struct, kw_only=True):
    """Run a download command -> ``ChunkFrame`` s, then the reply; ``window`` is the credit."""

    id: int
    op: Literal["download"] = "download"
    command: Command
    window: int


class CancelFrame(msgspec.Struct, kw_only=True):
    """Abandon request ``id`` -> reply code ``cancelled`` (if it was still running)."""

    id: int
    op: Literal["cancel"] = "cancel"


class SubscribeFrame(msgspec.Struct, kw_only=True):
    """Push the events of one job (``None``: every job of the study) -> reply ``Ok(null)``."""

    id: int
    op: Literal["subscribe"] = "subscribe"
    job_id: str | None


class UnsubscribeFrame(msgspec.Struct, kw_only=True):
    """Stop pushing the events of ``job_id`` -> reply ``Ok(null)``."""

    id: int
    op: Literal["unsubscribe"] = "unsubscribe"
    job_id: str | None


# --- both directions ----------------------------------------------------------------------------


class ChunkFrame(msgspec.Struct, kw_only=True):
    """A piece of an archive (download from the server, upload from the client)."""

    id: int
    op: Literal["chunk"] = "chunk"
    data: bytes


class AckFrame(msgspec.Struct, kw_only=True):
    """Credit: ``n`` more chunk frames of transfer ``id`` may be sent."""

    id: int
    op: Literal["ack"] = "ack"
    n: int


# --- server -> client frames --------------------------------------------------------------------


class ReplyFrame(msgspec.Struct, kw_only=True):
    """The final answer to request ``id``."""

    id: int
    reply: Ok | Problem


class EventFrame(msgspec.Struct, kw_only=True):
    """A pushed job event (a hint: the server drops the oldest past a backlog bound)."""

    event: JobEvent


# --- what each end decodes ----------------------------------------------------------------------


class ClientFrame(msgspec.Struct, kw_only=True):
    """Any frame a client sends, as the server reads it (fields unused by its ``op`` keep
    their defaults; unknown keys are ignored; ``command`` stays raw until the op is known)."""

    id: int
    op: str
    command: msgspec.Raw = msgspec.Raw()
    data: bytes = b""
    n: int = 0
    window: int = 0
    job_id: str | None = None
    user: str = ""
    api_key: str | None = None
    study: str = "default"


class ServerFrame(msgspec.Struct, kw_only=True):
    """Any frame the server sends, as the client reads it: a reply (``reply`` set), a chunk
    or an ack (``op``), or an event (``event`` set, no ``id``)."""

    id: int | None = None
    op: str = ""
    reply: Ok | Problem | None = None
    data: bytes = b""
    n: int = 0
    event: JobEvent | None = None


class FrameCodec:
    """Encode and decode frames of one subprotocol (``text``: JSON text frames).

    Args:
        encoding: ``"msgpack"`` or ``"json"``.
    """

    def __init__(self, encoding: Encoding) -> None:
        self.encoding: Encoding = encoding
        self.text = encoding == "json"
        self.subprotocol: str = JSON_PROTOCOL if self.text else MSGPACK_PROTOCOL
        module: Any = msgspec.json if self.text else msgspec.msgpack
        self.encode: Callable[[msgspec.Struct], bytes] = module.Encoder().encode
        self.decode_client: Callable[[bytes], ClientFrame] = module.Decoder(ClientFrame).decode
        self.decode_server: Callable[[bytes], ServerFrame] = module.Decoder(ServerFrame).decode

    @classmethod
    def for_subprotocol(cls, subprotocol: str | None) -> FrameCodec:
        """The codec of a negotiated subprotocol (none, or an unknown one, means JSON)."""
        return cls("msgpack" if subprotocol == MSGPACK_PROTOCOL else "json")


# --- credit -------------------------------------------------------------------------------------


class Credit:
    """How many chunk frames a sender may still send before the receiver acks more.

    Both transfers use it: an upload's client starts with the ``n`` of the server's first
    ``AckFrame``, a download's server with the request's ``window``; each chunk sent spends
    one, each ``AckFrame`` grants its ``n``. A grant that is not positive grants nothing, so
    a confused peer can only slow a transfer down, never let it run ahead.

    Args:
        window: the credit granted at the start (may be 0: wait for the first ack).
    """

    def __init__(self, window: int) -> None:
        self._available = window

    @property
    def available(self) -> int:
        """Chunk frames that may be sent now."""
        return max(0, self._available)

    def grant(self, n: int) -> None:
        """The receiver acked ``n`` more chunks."""
        self._available += max(0, n)

    def spend(self) -> bool:
        """Take the credit for one chunk frame.

        Returns:
            True when the chunk may be sent now; False when the sender must wait for an ack
            (nothing was taken).
        """
        if self._available <= 0:
            return False
        self._available -= 1
        return True


# --- the waiters' wake-up rule ------------------------------------------------------------------


class WakeRule:
    """What counts as news for a session sleeping with ``wake_on=key`` (sans I/O).

    The rule, the same for every transport:

    - an event about job ``J`` is news for waiters on ``J`` and on ``ANY_JOB``;
    - a command about job ``J`` (its ``job_id``), once sent, has seen every event about
      ``J`` heard so far: its reply reflects them, so they are no news to the next sleep;
    - a command about no particular job (``list_jobs``, ``check_status``, ``submit_job``...)
      has seen every event heard so far: it may reflect any job, and every flow polls its
      own job right before sleeping on it, so a missed wake costs at most one interval
      while a spurious one costs a poll (``watch_jobs`` sleeps on ``ANY_JOB`` right after
      its ``list_jobs``);
    - ``news(key)`` answers whether something new was heard since the last look, and that
      answer is itself a look (a waiter is woken once per batch of events);
    - after a reconnect (``missed``) every key has news: events may have been lost.

    Only the keys ``listen`` named are counted (a network client hears only the jobs it
    subscribed to, and its subscriptions are bounded); ``every_job=True`` counts every job
    and ``ANY_JOB`` without subscribing (an in-process transport hears every event).

    Not thread-safe: the caller serialises access.

    Args:
        every_job: count every key's events, listened to or not.
    """

    def __init__(self, every_job: bool = False) -> None:
        self._every_job = every_job
        self._heard: dict[str, int] = {}
        self._seen: dict[str, int] = {}

    def listening(self, key: str) -> bool:
        """True when events about ``key`` are counted."""
        return self._every_job or key in self._heard

    def listen(self, key: str) -> None:
        """Start counting ``key``'s events; nothing heard before is news."""
        count = self._heard.setdefault(key, 0)
        self._seen[key] = count

    def forget(self, key: str) -> None:
        """Stop counting ``key``'s events (its subscription was dropped)."""
        self._heard.pop(key, None)
        self._seen.pop(key, None)

    def heard(self, job_id: str) -> bool:
        """An event about ``job_id`` arrived.

        Returns:
            True when it is news for some counted key (sleepers should re-check).
        """
        hit = False
        for key in (job_id, ANY_JOB):
            if key in self._heard:
                self._heard[key] += 1
                hit = True
            elif self._every_job:
                self._heard[key] = 1
                hit = True
        return hit

    def asked(self, job_id: str | None) -> None:
        """A command about ``job_id`` (None: no particular job) is being sent."""
        if job_id is None:
            self._seen.update(self._heard)
        elif job_id in self._heard:
            self._seen[job_id] = self._heard[job_id]

    def missed(self) -> None:
        """Events may have been lost (a reconnect): every counted key has news."""
        for key in self._heard:
            self._heard[key] += 1

    def news(self, key: str) -> bool:
        """True when an event about ``key`` was heard since the last look (this is a look)."""
        count = self._heard.get(key, 0)
        if count > self._seen.get(key, 0):
            self._seen[key] = count
            return True
        return False
