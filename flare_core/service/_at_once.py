"""Reads a host may serve where it stands, without a thread hop (``AdminService.serve_at_once``).

The server runs every command in its thread pool, so that a command that waits (for the
service lock, the disk, an upload) never stalls the event loop. For a short read that costs
more than the read itself: two thread wake-ups, 0.2-0.3 ms on this machine. A read qualifies
for the loop only when its work is bounded and it can take the service lock without waiting:

- the command is one of ``_READS``, and its handler answers without writing anything: not
  the session store either (``authenticate_read_only`` declines a session whose stored idle
  timer is due, or that must end);
- the service lock, and whatever it guards (the SQLite connection), is free at this moment
  (``ServiceCore.try_guard``); a read never waits on the loop;
- a listing reads at most ``QUICK_ROWS`` of the study's jobs, and no more than one listing
  page (``ServiceConfig.list_page_size``): a longer one is streamed from the pool.

Whatever does not qualify answers None, and the host serves it the usual way, which gives
the same reply: every read here runs the very handlers ``AdminService.handle`` runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flare_core import commands as c
from flare_core.principal import Principal
from flare_core.replies import Ok, Problem, Reply
from flare_core.service import _jobs, _sessions, _system
from flare_core.service._core import ServiceCore

__all__ = ["QUICK_ROWS", "serve_at_once"]

QUICK_ROWS = 64
"""The most job rows a listing served at once reads (one store page; ~0.1 ms of SQLite)."""

_Read = Callable[[ServiceCore, Principal, Any], Any]
"""``(core, principal, command) -> value``, or None when it cannot answer at once."""


def _short_listing(core: ServiceCore, principal: Principal, command: c.ListJobs) -> Any:
    at_most = min(QUICK_ROWS, core.config.list_page_size)
    return _jobs.list_jobs_read_only(core, principal, command, at_most)


_READS: Mapping[type[c.Command], _Read] = {
    c.GetJobMeta: _jobs.get_job_meta,
    c.CheckStatus: _system.check_status,
    c.ListJobs: _short_listing,
}


def serve_at_once(
    core: ServiceCore, token: str, command: c.Command
) -> tuple[Principal, Reply] | None:
    """Authenticate ``token`` and serve ``command`` now, if both are quick reads.

    Returns:
        The caller's principal and the reply ``AdminService.handle`` would give, or None:
        then ``authenticate`` and ``handle`` serve the command (the same outcome, later).

    Raises:
        NoConnection: the server was shut down.
        AuthenticationError: the token is unknown or was logged out.
    """
    read = _READS.get(type(command))
    if read is None:
        return None
    with core.try_guard() as held:
        if not held:
            return None
        principal = _sessions.authenticate_read_only(core, token)
        if principal is None:
            return None
        try:
            value = read(core, principal, command)
        except Exception as exc:  # the reply carries the failure, as from ``handle``
            return principal, Problem.from_exception(exc)
    if value is None:
        return None
    return principal, Ok(value=value)
