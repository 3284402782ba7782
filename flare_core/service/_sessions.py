"""Login, per-request authentication with idle expiry, and logout (reference §9.1, §10).

A session is created by ``login`` (API key checked, study bound for good) and named by an
opaque bearer token; the store keeps only the token's digest. Every request authenticates the
token, re-checks that the rights granted at login still hold (user, org, role, study
membership: a revocation takes effect on the next request) and refreshes the idle timer; a
session idle for longer than ``idle_timeout`` (measured on ``Clock.monotonic()``, no timers
needed) or revoked is removed and reported as ``SessionExpired``, after which the token is
simply unknown. Sessions nobody came back to are purged at a later login,
once idle for a week (or twice the idle timeout, if longer).

The idle timer is exact in the running service, but stored at most every
``idle_timeout / 100`` seconds (10 s at most) per session: a store write is a durable
commit, and one per request, under the service lock, was most of what every read cost under
load. The newer moments are kept in memory (``ServiceCore.seen``, pruned at login), so a
restart can only make a session look up to that much more idle than it was.
"""

from __future__ import annotations

import msgspec

from flare_core.errors import AuthenticationError, SessionExpired
from flare_core.principal import Grant, Principal
from flare_core.service._core import ServiceCore
from flare_core.service._credentials import (
    BAD_CREDENTIALS,
    require_api_key,
    verify_api_key,
)
from flare_core.service.ports import SessionRecord
from flare_core.studies import DEFAULT_STUDY, check_login_study

__all__ = [
    "EXPIRED_MESSAGE",
    "authenticate",
    "authenticate_read_only",
    "end_session",
    "login",
    "logout",
]

EXPIRED_MESSAGE = "Your session is closed due to inactivity or cert expiry."
# Sessions idle for this long are forgotten at the next login. Far longer than the idle timeout
# on purpose: an expired session must still answer SessionExpired (not "unknown token") when
# its owner comes back after a while.
_PURGE_AFTER = 7 * 24 * 3600.0
_STORE_SEEN_AT_MOST = 10.0  # seconds between stored idle-timer refreshes, at most


def login(core: ServiceCore, user: str, api_key: str | None, study: str) -> Grant:
    """Authenticate ``user`` with ``api_key`` and bind a new session to ``study``.

    Raises:
        NoConnection: the server was shut down.
        AuthenticationError: no API key, bad credentials (``auth_code`` None), or a study
            the user may not log in to (``auth_code`` per the §9.1 table).
    """
    with core.guard():
        core.require_running()
    key = require_api_key(user, api_key)
    with core.guard():
        account = core.users.get(user) if isinstance(user, str) else None
    # The key derivation is deliberately slow: run it outside the lock.
    stored = account.api_key_hash if account is not None else core.dummy_hash()
    if not (verify_api_key(key, stored) and account is not None):
        raise AuthenticationError(BAD_CREDENTIALS)
    with core.guard():
        core.require_running()
        check_login_study(core.registry(), study, account.name)
        token = core.ports.ids.secret()
        session_id = core.session_id(token)
        principal = Principal(
            name=account.name,
            org=account.org,
            role=account.role,
            study=study,
            session_id=session_id,
        )
        now = core.ports.clock.monotonic()
        core.ports.sessions.purge(now - max(_PURGE_AFTER, 2 * core.config.idle_timeout))
        _forget_idle(core, now)
        core.ports.sessions.put(
            SessionRecord(session_id=session_id, principal=principal, last_seen=now)
        )
        return Grant(token=token, principal=principal, idle_timeout=core.config.idle_timeout)


def authenticate(core: ServiceCore, token: str) -> Principal:
    """Resolve a bearer token and refresh its session's idle timer.

    Raises:
        NoConnection: the server was shut down.
        SessionExpired: the session idled out (it is removed).
        AuthenticationError: unknown or logged-out token.
    """
    with core.guard():
        core.require_running()
        principal = _resolve(core, token, may_write=True)
        assert principal is not None  # only a caller that may not write is told to retry
        return principal


def authenticate_read_only(core: ServiceCore, token: str) -> Principal | None:
    """``authenticate`` inside a section that writes nothing (``ServiceCore.try_guard``).

    Returns:
        The principal, or None when authenticating must write the session store: the
        session has to end (idled out, revoked), or its stored idle timer is due. Then
        ``authenticate`` does it.

    Raises:
        NoConnection: the server was shut down.
        AuthenticationError: unknown or logged-out token.
    """
    core.require_running()
    return _resolve(core, token, may_write=False)


def _resolve(core: ServiceCore, token: str, *, may_write: bool) -> Principal | None:
    session_id = core.session_id(token) if isinstance(token, str) else ""
    record = core.ports.sessions.get(session_id)
    if record is None:
        raise AuthenticationError("user not authenticated: unknown or closed session")
    now = core.ports.clock.monotonic()
    last_seen = max(record.last_seen, core.seen.get(session_id, record.last_seen))
    ended: str | None
    if now - last_seen > core.config.idle_timeout:
        ended = EXPIRED_MESSAGE
    else:
        revoked = _revoked(core, record.principal)
        ended = None if revoked is None else f"Your session was revoked: {revoked}."
    due = now - record.last_seen >= _store_every(core)
    if not may_write and (ended is not None or due):
        return None
    if ended is not None:
        _end(core, session_id)
        raise SessionExpired(ended)
    if due:
        core.ports.sessions.put(msgspec.structs.replace(record, last_seen=now))
        core.seen.pop(session_id, None)
    else:
        core.seen[session_id] = now
    return record.principal


def _store_every(core: ServiceCore) -> float:
    """How stale a session's stored ``last_seen`` may get (see the module docstring)."""
    return min(core.config.idle_timeout / 100, _STORE_SEEN_AT_MOST)


def _end(core: ServiceCore, session_id: str) -> None:
    core.ports.sessions.remove(session_id)
    core.seen.pop(session_id, None)


def _forget_idle(core: ServiceCore, now: float) -> None:
    # A session idle past the timeout is expired whatever its stored moment says: its entry
    # can go. What stays is bounded by the sessions active within one idle timeout.
    horizon = now - core.config.idle_timeout
    for session_id in [s for s, seen in core.seen.items() if seen < horizon]:
        del core.seen[session_id]


def _revoked(core: ServiceCore, principal: Principal) -> str | None:
    """Why a session may no longer act, or None: the rights it was granted at login must
    still hold at every request (issue 10: a user removed from a study kept listing its
    jobs). The user must still exist with the same org and role, and still be a member of
    the session's study; a client that logs in again gets whatever rights are current."""
    account = core.users.get(principal.name)
    if account is None:
        return f"user '{principal.name}' was removed"
    if (account.org, account.role) != (principal.org, principal.role):
        return f"the org or role of user '{principal.name}' changed"
    if principal.study != DEFAULT_STUDY:
        try:
            check_login_study(core.registry(), principal.study, principal.name)
        except AuthenticationError:
            return f"user '{principal.name}' is no longer a member of study '{principal.study}'"
    return None


def logout(core: ServiceCore, token: str) -> None:
    """End the session a token names (idempotent; unknown tokens are ignored)."""
    with core.guard():
        if isinstance(token, str):
            _end(core, core.session_id(token))


def end_session(core: ServiceCore, principal: Principal) -> None:
    """The ``Logout`` command: end the caller's own session."""
    if principal.session_id:
        _end(core, principal.session_id)
