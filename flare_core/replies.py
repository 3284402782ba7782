"""Replies: a command either succeeds with a JSON-able value or fails with a ``Problem``.

A ``Problem`` carries the exception's class name, message and attributes, so any adapter on
either side of any transport can re-raise exactly the domain exception the backend raised
(``raise problem.to_exception()``), with ``SubmitTokenConflict.existing_job_id`` and friends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from flare_core import errors as e

__all__ = ["PROBLEM_CODES", "Ok", "Problem", "Reply", "Rows", "whole"]


class Rows:
    """A reply value that is a JSON array too long to build whole (a full ``list_jobs``):
    its rows are made as they are read, so a host sends them a piece at a time instead of
    holding every row at once.

    Iterable **once**. Reading it may do I/O (the store's pages) and raise, so a host reads
    it where it may block (the server's thread pool) and treats a failure midway as a reply
    lost. Hosts that hand the value on whole (the in-process transports) call ``whole``.
    """

    __slots__ = ("_rows",)

    def __init__(self, rows: Iterator[Any]) -> None:
        self._rows: Iterator[Any] | None = rows

    def __iter__(self) -> Iterator[Any]:
        rows, self._rows = self._rows, None
        if rows is None:
            raise RuntimeError("the rows of a reply can be read only once")
        return rows


class Ok(msgspec.Struct, frozen=True, kw_only=True, tag="ok", tag_field="kind"):
    """A successful reply; ``value`` is the JSON-able result, or ``Rows`` of one."""

    value: Any = None


def whole(reply: Reply) -> Reply:
    """``reply`` with a ``Rows`` value read into a list (any other reply as it is)."""
    if isinstance(reply, Ok) and isinstance(reply.value, Rows):
        return Ok(value=list(reply.value))
    return reply


# Exception class -> stable problem code; the order matters only for subclasses (most
# specific first), which ``Problem.from_exception`` relies on.
PROBLEM_CODES: dict[type[BaseException], str] = {
    e.SessionExpired: "session_expired",
    e.SessionClosed: "session_closed",
    e.NoConnection: "no_connection",
    e.InvalidArgumentError: "invalid_argument",
    e.InvalidJobDefinition: "invalid_job_definition",
    e.SubmitTokenConflict: "submit_token_conflict",
    e.SubmitTokenJobDeleted: "submit_token_job_deleted",
    e.JobNotFound: "job_not_found",
    e.JobNotRunning: "job_not_running",
    e.JobNotDone: "job_not_done",
    e.JobTimeout: "job_timeout",
    e.AuthenticationError: "not_authenticated",
    e.AuthorizationError: "not_authorized",
    e.NoClientsAvailable: "no_clients",
    e.ClientsStillRunning: "clients_running",
    e.InvalidTarget: "invalid_target",
    e.NoReply: "no_reply",
    e.CommandError: "command_error",
    e.InternalError: "internal_error",
}
_BY_CODE: dict[str, type[BaseException]] = {code: cls for cls, code in PROBLEM_CODES.items()}

# The attributes each exception carries beyond its message (constructor keyword names).
_ATTRS: dict[type[BaseException], tuple[str, ...]] = {
    e.SubmitTokenConflict: ("existing_job_id",),
    e.SubmitTokenJobDeleted: ("job_id", "state", "deleted_time"),
    e.AuthenticationError: ("auth_code",),
    e.CommandError: ("hint", "exit_code"),
}

ProblemAttr = str | int | None


class Problem(msgspec.Struct, frozen=True, kw_only=True, tag="problem", tag_field="kind"):
    """A failed reply.

    Attributes:
        code: stable machine-readable code (``PROBLEM_CODES``), e.g. ``job_not_found``.
        error: the domain exception's class name, e.g. ``JobNotFound``.
        message: the exception message, safe to show (never a traceback or a server path).
        attrs: the exception's extra attributes (``existing_job_id``, ``auth_code``, ...).
    """

    code: str
    error: str
    message: str
    attrs: dict[str, ProblemAttr] = msgspec.field(default_factory=dict)

    @classmethod
    def from_exception(cls, exc: BaseException) -> Problem:
        """Describe a domain exception; anything else becomes an opaque ``InternalError``."""
        # Walk the MRO so that a subclass of a domain exception keeps its family's code.
        exc_type = next((k for k in type(exc).__mro__ if k in PROBLEM_CODES), None)
        if exc_type is None:
            exc, exc_type = e.InternalError("server internal error"), e.InternalError
        code = PROBLEM_CODES[exc_type]
        if isinstance(exc, e.CommandError):
            message = exc.error_code
            attrs: dict[str, ProblemAttr] = {
                "message": exc.message,
                "hint": exc.hint,
                "exit_code": exc.exit_code,
            }
        else:
            message = str(exc.args[0]) if exc.args else ""
            attrs = {name: getattr(exc, name) for name in _ATTRS.get(exc_type, ())}
        return cls(code=code, error=exc_type.__name__, message=message, attrs=attrs)

    def to_exception(self) -> Exception:
        """Rebuild the domain exception this problem describes (unknown codes: InternalError)."""
        exc_type = _BY_CODE.get(self.code)
        if exc_type is None:
            return e.InternalError(f"{self.code}: {self.message}")
        if exc_type is e.CommandError:
            exit_code = self.attrs.get("exit_code")
            return e.CommandError(
                self.message,
                str(self.attrs.get("message") or ""),
                str(self.attrs.get("hint") or ""),
                exit_code if isinstance(exit_code, int) else 1,
            )
        kwargs = {name: self.attrs.get(name) for name in _ATTRS.get(exc_type, ())}
        exc = exc_type(self.message, **kwargs)
        assert isinstance(exc, Exception)
        return exc


Reply = Ok | Problem
