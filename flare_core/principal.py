"""Who is calling: the authenticated identity a backend attaches to every command."""

from __future__ import annotations

import msgspec

__all__ = ["Principal"]


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated user bound to one study for the whole session.

    Attributes:
        name: user name (the submitter name recorded on jobs).
        org: the user's organisation.
        role: ``project_admin``, ``org_admin``, ``lead`` or ``member`` (or a custom role).
        study: the study the session was bound to at login.
        session_id: the server-side session this call belongs to (empty in pure tests).
    """

    name: str
    org: str
    role: str
    study: str = "default"
    session_id: str = ""


class Grant(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of a successful login.

    Attributes:
        token: opaque bearer token naming the server-side session.
        principal: the identity and study the session is bound to.
        idle_timeout: seconds of inactivity after which the session expires.
    """

    token: str
    principal: Principal
    idle_timeout: float
