"""What every client flow needs besides its arguments: the session's settings.

A ``FlowContext`` belongs to one session. The driver builds it (resolving directories to
absolute paths) and hands it to each flow; ``set_timeout`` / ``unset_timeout`` change it.
Flows never read clocks, files or randomness themselves: time comes from ``Now``/``Sleep``
steps, files from ``InspectPath``/``ListDirs``/``Upload``/``Download`` steps, and private
submit tokens from ``mint_token``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

import msgspec

from flare_core.errors import InvalidArgumentError
from flare_core.steps import Step

__all__ = ["ClientFlow", "FlowContext", "FlowStep", "Notify", "RetryPolicy"]

T = TypeVar("T")


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How idempotent commands are retried after a connection failure (DECISIONS §7).

    The n-th retry waits ``min(initial_delay * 2 ** (n - 1), max_delay)`` seconds; retrying
    stops after ``attempts`` attempts in all, or when the next wait would end after
    ``deadline`` seconds from the call's start. The defaults reproduce the reference: 3
    attempts, waiting 0.5 s then 1.0 s.

    Attributes:
        attempts: attempts in all (1 disables retries).
        initial_delay: the first wait, in seconds.
        max_delay: the cap on any single wait, in seconds.
        deadline: the whole call's budget, in seconds, waits included.
    """

    attempts: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    deadline: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise InvalidArgumentError("attempts must be >= 1")
        if self.initial_delay < 0 or self.max_delay < 0 or self.deadline <= 0:
            raise InvalidArgumentError("retry delays must be >= 0 and deadline > 0")


@dataclass(frozen=True)
class Notify:
    """Flow step: call the monitor callback with ``job_meta``; the driver sends back its
    result (awaited first by async drivers when it is awaitable)."""

    callback: Callable[[dict[str, Any]], object]
    job_meta: dict[str, Any]


FlowStep: TypeAlias = Step | Notify
ClientFlow: TypeAlias = Generator[FlowStep, Any, T]
"""A client flow: yields steps, receives their outcomes, returns the method's result."""


@dataclass
class FlowContext:
    """The settings one session's flows share.

    Attributes:
        upload_dir: absolute directory relative job folders are looked up in.
        download_dir: absolute directory downloads land in by default.
        mint_token: returns a fresh private submit token (``[A-Za-z0-9._:-]{1,128}``).
        retry: the retry policy of idempotent commands.
        command_timeout: per-request timeout set by ``set_timeout``; None means the
            transport's default.
    """

    upload_dir: str
    download_dir: str
    mint_token: Callable[[], str]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    command_timeout: float | None = None
