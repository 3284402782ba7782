"""``application/problem+json`` bodies (RFC 9457) that also decode as a ``Problem`` reply.

Every failed HTTP request answers a ``ProblemDetails`` document: the RFC members ``type``,
``title``, ``status`` and ``detail``, plus the ``Problem`` fields ``kind``/``code``/``error``/
``message``/``attrs``. A client therefore decodes any error body with
``flare_ports.wire.json_codec.decode_reply`` and re-raises ``problem.to_exception()``: the
domain exception with its attributes (``existing_job_id``, ``auth_code``, ...).

Domain failures use the codes of ``flare_core.PROBLEM_CODES``. Failures of the HTTP protocol
itself (no such endpoint, wrong method, oversized body) use the ``PROTOCOL_STATUS`` codes below;
clients turn unknown codes into ``InternalError("<code>: <message>")``.
"""

from __future__ import annotations

from typing import Final

import msgspec

import flare_core as fc
from flare_core.replies import ProblemAttr
from flare_ports.wire import http_status_for

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "PROTOCOL_STATUS",
    "ProblemDetails",
    "encode_problem",
    "protocol_problem",
    "status_for",
]

PROBLEM_CONTENT_TYPE: Final = "application/problem+json"

PROTOCOL_STATUS: Final[dict[str, int]] = {
    "bad_request": 400,
    "not_found": 404,
    "method_not_allowed": 405,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "too_many_requests": 429,
    "service_unavailable": 503,
    "cancelled": 499,  # WebSocket only: the client cancelled the request
}
"""Problem codes of HTTP-level failures (not domain exceptions) and their status."""


class ProblemDetails(msgspec.Struct, frozen=True, kw_only=True, tag="problem", tag_field="kind"):
    """An RFC 9457 problem document carrying a ``Problem``.

    Attributes:
        type: ``urn:flare-core:problem:<code>``.
        title: the exception class name (same as ``error``).
        status: the HTTP status code.
        detail: the human-readable message (same as ``message``).
        code: the stable problem code.
        error: the domain exception's class name.
        message: the exception message.
        attrs: the exception's extra attributes.
    """

    type: str
    title: str
    status: int
    detail: str
    code: str
    error: str
    message: str
    attrs: dict[str, ProblemAttr] = msgspec.field(default_factory=dict)


_ENCODE = msgspec.json.Encoder().encode


def protocol_problem(code: str, message: str) -> fc.Problem:
    """A problem for an HTTP-level failure (``code`` from ``PROTOCOL_STATUS``)."""
    return fc.Problem(code=code, error="InternalError", message=message)


def status_for(problem: fc.Problem) -> int:
    """The HTTP status of a domain or protocol problem."""
    return PROTOCOL_STATUS.get(problem.code) or http_status_for(problem)


def encode_problem(problem: fc.Problem, status: int | None = None) -> tuple[int, bytes]:
    """Render ``problem`` as a problem+json body.

    Args:
        problem: the problem to send.
        status: override the status derived from the code (e.g. 413 for an oversized archive).

    Returns:
        ``(status, body)``.
    """
    code = status if status is not None else status_for(problem)
    details = ProblemDetails(
        type=f"urn:flare-core:problem:{problem.code}",
        title=problem.error,
        status=code,
        detail=problem.message,
        code=problem.code,
        error=problem.error,
        message=problem.message,
        attrs=dict(problem.attrs),
    )
    return code, _ENCODE(details)
