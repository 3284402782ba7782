"""The wire: codecs for commands, replies and job events, built once per type.

Commands and replies are the core's msgspec structs (tagged unions: ``op`` for commands,
``kind`` for replies). HTTP carries them as JSON; WebSocket frames as JSON or msgpack. Decoders
are strict about types but ignore unknown fields, so newer peers can add optional fields
(msgspec schema evolution). Sizes are bounded by the transports, not here.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import msgspec

from flare_core import COMMAND_TYPES, Command, JobEvent, Ok, Problem
from flare_core.nesting import MAX_NESTING, NestingTooDeep, check_nesting

__all__ = [
    "PROBLEM_HTTP_STATUS",
    "AnyCommand",
    "AnyReply",
    "Codec",
    "WireError",
    "http_status_for",
    "json_codec",
    "msgpack_codec",
]

if TYPE_CHECKING:
    AnyCommand: TypeAlias = Command
else:
    # Built from the one list of commands: a new command joins the wire union by itself.
    # (A union computed at run time is no type to mypy, which sees the common base.)
    AnyCommand = functools.reduce(operator.or_, COMMAND_TYPES)
"""The tagged union of every command in ``COMMAND_TYPES``, which the decoders accept."""

AnyReply: TypeAlias = Ok | Problem

# Stable HTTP status per problem code (problem+json responses; clients map back by code).
PROBLEM_HTTP_STATUS: Final[dict[str, int]] = {
    "invalid_argument": 400,
    "invalid_job_definition": 422,
    "not_authenticated": 401,
    "session_expired": 401,
    "session_closed": 401,
    "not_authorized": 403,
    "job_not_found": 404,
    "submit_token_conflict": 409,
    "job_not_done": 409,
    "job_not_running": 409,
    "clients_running": 409,
    "submit_token_job_deleted": 410,
    "invalid_target": 422,
    "no_clients": 503,
    "no_reply": 504,
    "job_timeout": 504,
    "no_connection": 503,
    "command_error": 422,
    "internal_error": 500,
}


def http_status_for(problem: Problem) -> int:
    """The HTTP status a problem is served with (500 for unknown codes)."""
    return PROBLEM_HTTP_STATUS.get(problem.code, 500)


class WireError(ValueError):
    """Bytes that do not decode to the expected message; ``str()`` says why, safely."""


class Codec:
    """Encoders/decoders for one format, built once and reused (msgspec perf tip)."""

    def __init__(self, fmt: Literal["json", "msgpack"]) -> None:
        self.format = fmt
        module: Any = msgspec.json if fmt == "json" else msgspec.msgpack
        self._encode: Callable[[Any], bytes] = module.Encoder().encode
        self._command: Callable[[bytes], AnyCommand] = module.Decoder(AnyCommand).decode
        self._reply: Callable[[bytes], AnyReply] = module.Decoder(AnyReply).decode
        self._event: Callable[[bytes], JobEvent] = module.Decoder(JobEvent).decode

    def encode(self, message: Any) -> bytes:
        """Encode a command, reply, event or any msgspec-compatible value."""
        return self._encode(message)

    def decode_command(self, data: bytes) -> AnyCommand:
        """Decode a command, raising ``WireError`` on malformed or mistyped input, or input
        nested deeper than ``MAX_NESTING`` (a config value may hold any JSON)."""
        try:
            command = self._command(data)
            check_nesting(command, "command")
        except RecursionError:
            raise WireError(f"malformed command: nested deeper than {MAX_NESTING} levels") from None
        except NestingTooDeep as exc:
            raise WireError(f"malformed command: {exc}") from None
        except msgspec.DecodeError as exc:
            raise WireError(f"malformed command: {exc}") from exc
        return command

    def decode_reply(self, data: bytes) -> AnyReply:
        """Decode a reply, raising ``WireError`` on malformed or mistyped input."""
        try:
            return self._reply(data)
        except RecursionError:
            raise WireError(f"malformed reply: nested deeper than {MAX_NESTING} levels") from None
        except msgspec.DecodeError as exc:
            raise WireError(f"malformed reply: {exc}") from exc

    def decode_event(self, data: bytes) -> JobEvent:
        """Decode a job event, raising ``WireError`` on malformed or mistyped input."""
        try:
            return self._event(data)
        except RecursionError:
            raise WireError(f"malformed event: nested deeper than {MAX_NESTING} levels") from None
        except msgspec.DecodeError as exc:
            raise WireError(f"malformed event: {exc}") from exc


json_codec: Final = Codec("json")
msgpack_codec: Final = Codec("msgpack")
