"""The instructions a client flow yields to its driver (the sans-I/O seam).

A flow is a generator: it yields a step, the driver performs it with real I/O (a transport, a
clock, the local file system) and sends the outcome back in; a transport failure is thrown
into the flow as ``NoConnection``. The flow's return value is the method's result. Sync and
async drivers run the same flows, so every behaviour is written once.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import msgspec

from flare_core.commands import Command

__all__ = [
    "ANY_JOB",
    "Call",
    "CloseSession",
    "Download",
    "Emit",
    "InspectPath",
    "ListDirs",
    "Now",
    "PathInfo",
    "Sleep",
    "Step",
    "Upload",
    "WallClock",
]


class Call(msgspec.Struct, frozen=True, kw_only=True):
    """Send ``command``; the driver sends back the ``Reply`` (``Ok`` or ``Problem``).

    ``timeout`` bounds this one attempt (None: the session default).
    """

    command: Command
    timeout: float | None = None


class Upload(msgspec.Struct, frozen=True, kw_only=True):
    """Send ``command`` with the folder at ``folder`` (an existing absolute directory) as a
    streamed zip archive whose single top-level entry is the folder's base name; sends back
    the ``Reply``."""

    command: Command
    folder: str
    timeout: float | None = None


class Download(msgspec.Struct, frozen=True, kw_only=True):
    """Send ``command``; stream the archive it returns into a fresh directory.

    The directory is ``<parent>/<name>``, or ``<parent>/<name>__N`` (N = 1, 2, ...) when that
    exists; it is created only once the archive arrived whole. The driver sends back the
    ``Reply``: ``Ok(value=<absolute path of the new directory>)`` or the server's ``Problem``.
    """

    command: Command
    parent: str
    name: str
    timeout: float | None = None


ANY_JOB = "*"
"""``Sleep.wake_on`` for "any job of the session's study" (never a job id: those are UUIDs)."""


class Sleep(msgspec.Struct, frozen=True, kw_only=True):
    """Wait ``seconds`` on the clock port; return early (sending back True) when
    ``wake_on`` names a job whose status the transport reports as changed (``ANY_JOB``: any
    job of the session's study)."""

    seconds: float
    wake_on: str | None = None


class Now(msgspec.Struct, frozen=True):
    """Read the clock port's monotonic time (seconds, float)."""


class PathInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the driver found at a local path."""

    path: str  # absolute, normalised
    is_dir: bool


class InspectPath(msgspec.Struct, frozen=True, kw_only=True):
    """Look at a local path; sends back a ``PathInfo``."""

    path: str


class ListDirs(msgspec.Struct, frozen=True, kw_only=True):
    """List the sub-directories of a local directory (``[]`` when it does not exist)."""

    path: str


class WallClock(msgspec.Struct, frozen=True):
    """Read the wall clock (epoch seconds, float): when something was seen."""


class Emit(msgspec.Struct, frozen=True, kw_only=True):
    """Hand ``event`` to the caller of a streaming flow (``watch_jobs``); sends back None.

    Only streaming drivers accept it; the flow resumes when the caller asks for the next
    event.
    """

    event: Any


class CloseSession(msgspec.Struct, frozen=True):
    """Close this session (as ``close()`` would, errors ignored); sends back None."""


Step: TypeAlias = (
    Call
    | Upload
    | Download
    | Sleep
    | Now
    | WallClock
    | InspectPath
    | ListDirs
    | CloseSession
    | Emit
)
