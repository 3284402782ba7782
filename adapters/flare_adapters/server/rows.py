"""Sending a ``Rows`` reply (a full ``list_jobs``): its array encoded a row at a time.

``AdminService`` answers a listing longer than one store page with ``Ok(Rows)``, whose rows
are read from the store as they are consumed (``flare_core.replies.Rows``). The hosts here
encode it without ever holding the rows as Python objects:

- HTTP sends the reply as a chunked body, one piece of about ``chunk_bytes`` (a server
  setting) at a time (``reply_pieces``), so the server holds one piece and one store page
  per request;
- a WebSocket reply is one message (aiohttp sends a message whole), so ``encode_raw``
  builds its value as encoded bytes, a quarter of the rows' size as Python objects, which
  the frame then carries as ``msgspec.Raw``.

Both read the rows, and so the store, and must run in the server's thread pool.
"""

from __future__ import annotations

import collections
import struct
from collections.abc import Iterable, Iterator
from typing import Any, Final

import msgspec

from flare_adapters.ws.protocol import Encoding
from flare_core.replies import Ok, Reply, Rows

__all__ = ["encode_raw", "reply_pieces"]

_JSON: Final = msgspec.json.Encoder()
_MSGPACK: Final = msgspec.msgpack.Encoder()
# What an ``Ok`` reply's JSON holds around its value (``{"kind":"ok","value":`` and ``}``),
# taken from the encoder itself so that a streamed reply has the bytes of an unstreamed one.
_OK_HEAD, _OK_TAIL = _JSON.encode(Ok(value=msgspec.Raw(b"[]"))).rsplit(b"[]", 1)
_ARRAY32_HEADER: Final = struct.Struct(">BI")  # MessagePack ``array 32``: 0xdd, the count


def reply_pieces(rows: Iterable[Any], piece_bytes: int) -> Iterator[bytes]:
    """The JSON of ``Ok(value=[*rows])``, in pieces of about ``piece_bytes`` (the last one
    may be shorter), reading ``rows`` as the pieces are taken.

    Raises:
        Exception: whatever reading the rows raised (the store failed midway).
    """
    buffer = bytearray(_OK_HEAD)
    yield from _json_array(rows, buffer, piece_bytes)
    buffer += _OK_TAIL
    yield bytes(buffer)


def _json_array(
    rows: Iterable[Any], buffer: bytearray, piece_bytes: int | None = None
) -> Iterator[bytes]:
    """Append the JSON array of ``rows`` to ``buffer``, a row at a time; with ``piece_bytes``,
    yield (and empty) the buffer whenever it holds that much."""
    buffer += b"["
    separator = b""
    for row in rows:
        buffer += separator
        _JSON.encode_into(row, buffer, -1)
        separator = b","
        if piece_bytes is not None and len(buffer) >= piece_bytes:
            yield bytes(buffer)
            buffer.clear()
    buffer += b"]"


def encode_raw(reply: Reply, encoding: Encoding) -> Reply:
    """``reply`` with a ``Rows`` value encoded in the frame's ``encoding`` as ``msgspec.Raw``
    (any other reply as it is).

    Raises:
        Exception: whatever reading the rows raised (the store failed midway).
    """
    if not (isinstance(reply, Ok) and isinstance(reply.value, Rows)):
        return reply
    if encoding == "json":
        buffer = bytearray()
        # Without a piece size nothing is yielded: run it through (itertools' ``consume``).
        collections.deque(_json_array(reply.value, buffer), maxlen=0)
        return Ok(value=msgspec.Raw(buffer))
    # MessagePack puts the count first: leave room for an ``array 32`` header (any count may
    # use it), fill it in at the end, and so never copy the rows' bytes.
    buffer = bytearray(_ARRAY32_HEADER.size)
    count = 0
    for row in reply.value:
        _MSGPACK.encode_into(row, buffer, -1)
        count += 1
    _ARRAY32_HEADER.pack_into(buffer, 0, 0xDD, count)
    return Ok(value=msgspec.Raw(buffer))
