"""Wire codecs: every command and reply round-trips in both formats; bad bytes fail clearly."""

from __future__ import annotations

import typing
from typing import Any

import msgspec
import pytest

import flare_core as fc
from flare_ports.wire import (
    AnyCommand,
    Codec,
    WireError,
    http_status_for,
    json_codec,
    msgpack_codec,
)

CODECS = [json_codec, msgpack_codec]


def _sample(command_type: type[fc.Command]) -> fc.Command:
    # Fill required fields with plausible values derived from their annotations.
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(command_type):
        if field.required:
            values[field.name] = "site-1" if field.name != "verb" else "ls"
    return command_type(**values)


def test_union_lists_every_command_type() -> None:
    assert set(typing.get_args(AnyCommand)) == set(fc.COMMAND_TYPES)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.format)
@pytest.mark.parametrize("command_type", fc.COMMAND_TYPES, ids=lambda t: t.__name__)
def test_every_command_round_trips(codec: Codec, command_type: type[fc.Command]) -> None:
    command = _sample(command_type)
    assert codec.decode_command(codec.encode(command)) == command


def test_command_tags_are_snake_case_and_unique() -> None:
    tags = [json_codec.encode(_sample(t)).split(b'"')[3].decode() for t in fc.COMMAND_TYPES]
    assert len(set(tags)) == len(tags)
    assert "download_job_components" in tags


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.format)
def test_replies_round_trip(codec: Codec) -> None:
    for reply in [
        fc.Ok(value={"jobs": [{"job_id": "x"}]}),
        fc.Problem.from_exception(fc.SubmitTokenConflict("c", existing_job_id="j")),
    ]:
        assert codec.decode_reply(codec.encode(reply)) == reply


def test_unknown_fields_are_ignored() -> None:
    decoded = json_codec.decode_command(b'{"op":"abort_job","job_id":"j","future":1}')
    assert decoded == fc.AbortJob(job_id="j")


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b'{"op":"nope"}', b'{"op":"abort_job"}', b'{"op":"abort_job","job_id":3}', b"[]"],
)
def test_malformed_commands_raise_wire_error(data: bytes) -> None:
    with pytest.raises(WireError, match="malformed command"):
        json_codec.decode_command(data)


def test_malformed_reply_and_event_raise_wire_error() -> None:
    with pytest.raises(WireError):
        msgpack_codec.decode_reply(b"\xc1")
    with pytest.raises(WireError):
        json_codec.decode_event(b'{"job_id": 1}')


def test_events_round_trip() -> None:
    event = fc.JobEvent(job_id="j", study="default", status="RUNNING")
    assert msgpack_codec.decode_event(msgpack_codec.encode(event)) == event


def test_http_status_per_problem() -> None:
    assert http_status_for(fc.Problem.from_exception(fc.JobNotFound("x"))) == 404
    assert http_status_for(fc.Problem.from_exception(fc.SubmitTokenJobDeleted("x"))) == 410
    assert http_status_for(fc.Problem(code="???", error="X", message="")) == 500
    assert set(fc.PROBLEM_CODES.values()) <= set(
        __import__("flare_ports.wire", fromlist=["x"]).PROBLEM_HTTP_STATUS
    )
