"""``flare_adapters.server.rows``: a ``Rows`` reply encodes to the bytes of the same reply
built whole, in both WebSocket encodings and as HTTP body pieces."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from flare_adapters.server.rows import encode_raw, reply_pieces
from flare_adapters.ws.protocol import Encoding
from flare_core import Ok, Problem, Rows


def _rows(count: int) -> list[dict[str, Any]]:
    return [{"job_id": f"j{n}", "n": n, "tags": ["a"] * (n % 3)} for n in range(count)]


@pytest.mark.parametrize("count", [0, 1, 15, 16, 65_536])
@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_a_raw_value_decodes_to_the_rows(count: int, encoding: Encoding) -> None:
    rows = _rows(count)
    module: Any = msgspec.json if encoding == "json" else msgspec.msgpack
    reply = encode_raw(Ok(value=Rows(iter(rows))), encoding)
    assert isinstance(reply, Ok)
    assert isinstance(reply.value, msgspec.Raw)
    assert module.decode(module.encode(reply)) == {"kind": "ok", "value": rows}


def test_other_replies_pass_through() -> None:
    plain = Ok(value=[1, 2])
    problem = Problem(code="job_not_found", error="JobNotFound", message="no such job")
    assert encode_raw(plain, "json") is plain
    assert encode_raw(problem, "msgpack") is problem


@pytest.mark.parametrize("piece_bytes", [1, 100, 1 << 20])
@pytest.mark.parametrize("count", [0, 1, 200])
def test_body_pieces_join_to_the_whole_reply(piece_bytes: int, count: int) -> None:
    rows = _rows(count)
    pieces = list(reply_pieces(iter(rows), piece_bytes))
    assert b"".join(pieces) == msgspec.json.encode(Ok(value=rows))
    # Each piece but the last reaches the piece size, and no piece holds more than one row
    # beyond it: the server holds about a piece at a time.
    largest_row = max((len(msgspec.json.encode(row)) for row in rows), default=0)
    for piece in pieces[:-1]:
        assert piece_bytes <= len(piece) <= max(piece_bytes, 32) + largest_row + 1
