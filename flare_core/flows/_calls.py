"""The shared sub-flow every command goes through: send, retry if safe, map the reply.

Retries follow DECISIONS §7: only commands whose class is ``idempotent`` are replayed, only
after a connection failure (``NoConnection`` thrown in by the driver, or a ``no_connection``
problem from a backend that lost its own upstream), with capped exponential back-off from
tenacity and a deadline measured on the session's clock (``Now`` steps). tenacity decides;
the flow does the waiting by yielding ``Sleep``, so virtual clocks and async drivers work.
"""

from __future__ import annotations

from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)
from tenacity.stop import stop_base

from flare_core.commands import Command
from flare_core.errors import InternalError, NoConnection
from flare_core.flows._context import ClientFlow, FlowContext, RetryPolicy
from flare_core.replies import Ok, Problem, Reply
from flare_core.steps import Call, Download, Now, Sleep, Upload

__all__ = ["call", "download", "exchange", "unwrap", "upload"]

_NO_CONNECTION = "no_connection"


class _Deadline(stop_base):
    """Stops retrying when the next wait would end past the call's deadline.

    ``now`` is refreshed by the flow (from a ``Now`` step) after every failed attempt.
    """

    def __init__(self, now: float, deadline: float) -> None:
        self.now = now
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.now + retry_state.upcoming_sleep > self.deadline


def unwrap(reply: object) -> Any:
    """Return an ``Ok`` reply's value, or raise the exception a ``Problem`` describes.

    Raises:
        Exception: the domain exception the backend reported.
        InternalError: the reply is neither ``Ok`` nor ``Problem``.
    """
    if isinstance(reply, Ok):
        return reply.value
    if isinstance(reply, Problem):
        raise reply.to_exception()
    raise InternalError(f"unexpected reply {type(reply).__name__}")


def exchange(ctx: FlowContext, step: Call | Upload | Download) -> ClientFlow[Reply]:
    """Perform one transfer step, retrying it when its command is idempotent.

    Returns:
        The reply of the last attempt.

    Raises:
        NoConnection: every allowed attempt failed to reach the backend.
    """
    command: Command = step.command
    policy = ctx.retry
    if not command.idempotent or policy.attempts == 1:
        reply: Reply = yield step
        return reply
    started: float = yield Now()
    # The first attempt runs without tenacity: it nearly always succeeds, and building and
    # driving a ``Retrying`` costs more than a whole in-process call (~100 us). Only after a
    # failure is tenacity built, and that failure becomes its first attempt, so it decides
    # every retry (count, waits, deadline) exactly as if it had made the first attempt.
    failure: Exception
    try:
        first: Reply = yield step
    except NoConnection as exc:
        failure = exc
    else:
        if not (isinstance(first, Problem) and first.code == _NO_CONNECTION):
            return first
        failure = first.to_exception()
    return (yield from _retry(policy, step, started, failure))


def _retry(
    policy: RetryPolicy, step: Call | Upload | Download, started: float, failure: Exception
) -> ClientFlow[Reply]:
    """The attempts after a failed first one (``failure``; the call began at ``started``),
    as tenacity decides them."""
    deadline = _Deadline(started, started + policy.deadline)
    delays: list[float] = []
    retrying = Retrying(
        sleep=delays.append,
        stop=stop_after_attempt(policy.attempts) | deadline,
        wait=wait_exponential(multiplier=policy.initial_delay, max=policy.max_delay),
        retry=retry_if_exception_type(NoConnection),
        reraise=True,
    )
    made: Exception | None = failure
    result: Reply | None = None
    for attempt in retrying:
        if delays:
            yield Sleep(seconds=delays.pop())
        with attempt:
            if made is not None:  # the first attempt, already made by ``exchange``
                failed, made = made, None
                deadline.now = yield Now()
                raise failed
            try:
                result = yield step
            except NoConnection:
                deadline.now = yield Now()
                raise
            if isinstance(result, Problem) and result.code == _NO_CONNECTION:
                deadline.now = yield Now()
                raise result.to_exception()
    assert result is not None  # the loop ends only after a successful attempt
    return result


def call(ctx: FlowContext, command: Command) -> ClientFlow[Any]:
    """Send ``command`` (with retries when idempotent) and return the reply's value.

    Raises:
        Exception: the domain exception the backend reported.
        NoConnection: the backend could not be reached.
    """
    reply = yield from exchange(ctx, Call(command=command, timeout=ctx.command_timeout))
    return unwrap(reply)


def upload(ctx: FlowContext, command: Command, folder: str) -> ClientFlow[Any]:
    """Send ``command`` with ``folder`` streamed as a zip archive; return the reply's value.

    Raises:
        Exception: the domain exception the backend reported.
        NoConnection: the backend could not be reached.
    """
    step = Upload(command=command, folder=folder, timeout=ctx.command_timeout)
    reply = yield from exchange(ctx, step)
    return unwrap(reply)


def download(ctx: FlowContext, command: Command, parent: str, name: str) -> ClientFlow[str]:
    """Stream the archive ``command`` produces into ``<parent>/<name>[__N]``.

    Returns:
        The absolute path of the new directory.

    Raises:
        Exception: the domain exception the backend reported.
        NoConnection: the backend could not be reached.
    """
    step = Download(command=command, parent=parent, name=name, timeout=ctx.command_timeout)
    reply = yield from exchange(ctx, step)
    path = unwrap(reply)
    if not isinstance(path, str) or not path:
        raise InternalError("download produced no directory")
    return path
