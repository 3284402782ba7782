"""The exception hierarchy of the public API (the seed's classes, plus ``SessionExpired``).

Every exception the library raises on purpose is defined here, with the seed's constructor
signature and attributes, so ``except`` clauses written for NVIDIA FLARE keep working.
``InvalidArgumentError`` also subclasses ``ValueError`` (DECISIONS §4).
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "ClientsStillRunning",
    "CommandError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidJobDefinition",
    "InvalidTarget",
    "JobNotDone",
    "JobNotFound",
    "JobNotRunning",
    "JobTimeout",
    "NoClientsAvailable",
    "NoConnection",
    "NoReply",
    "SessionClosed",
    "SessionExpired",
    "SubmitTokenConflict",
    "SubmitTokenJobDeleted",
]


class NoConnection(ConnectionError):
    """The server could not be reached, or did not answer within the call's deadline."""


class SessionClosed(Exception):
    """The session was closed (by ``close()``, shutdown or restart); nothing was sent."""


class SessionExpired(SessionClosed):
    """The server ended the session (idle timeout or credential expiry); nothing was sent."""


class InvalidArgumentError(ValueError):
    """An argument failed local validation; nothing was sent."""


class InvalidJobDefinition(Exception):
    """The job folder or its meta violates a job-definition rule."""


class SubmitTokenConflict(Exception):
    """The submit token was already used, in this scope, for different job content.

    Attributes:
        existing_job_id: the id of the job the token already refers to, if known.
    """

    def __init__(self, message: str, existing_job_id: str | None = None) -> None:
        super().__init__(message)
        self.existing_job_id = existing_job_id


class SubmitTokenJobDeleted(Exception):
    """The submit token refers to a job that has been deleted; the token cannot be reused.

    Attributes:
        job_id: the deleted job's id.
        state: the token record's state (``"job_deleted"``).
        deleted_time: when the job was deleted, as a UTC ISO-8601 string, if known.
    """

    def __init__(
        self,
        message: str,
        job_id: str | None = None,
        state: str | None = None,
        deleted_time: str | None = None,
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.state = state
        self.deleted_time = deleted_time


class JobNotFound(Exception):
    """No such job in the session's study (bad id, unknown id, or another study's job)."""


class JobNotRunning(Exception):
    """The operation needs a running job."""


class JobNotDone(Exception):
    """The operation needs a finished job (or no running jobs)."""


class InternalError(Exception):
    """The server failed, or replied with something the client cannot interpret."""


class JobTimeout(Exception):
    """``wait_for_job`` gave up before the job reached a terminal state."""


class AuthenticationError(Exception):
    """Login was rejected, or the credentials are no longer valid.

    Attributes:
        auth_code: a stable reason code such as ``AUTH_UNKNOWN_STUDY``, when the server gave one.
    """

    def __init__(self, message: str = "", auth_code: str | None = None) -> None:
        super().__init__(message)
        self.auth_code = auth_code


class AuthorizationError(Exception):
    """The caller's role may not perform this action (on this job)."""


class NoClientsAvailable(Exception):
    """The command targets clients but none is connected."""


class ClientsStillRunning(Exception):
    """The server cannot shut down while clients are still connected."""


class InvalidTarget(Exception):
    """A named target is unknown, disconnected, or not enrolled in the study."""


class NoReply(Exception):
    """The server reported that a target did not reply."""


class CommandError(Exception):
    """A command was refused with a stable error code (study commands).

    Attributes:
        error_code: stable code, e.g. ``STUDY_NOT_FOUND``.
        message: human-readable text (defaults to ``error_code``); ``str(err)`` equals it.
        hint: a suggestion for the caller, or ``""``.
        exit_code: the process exit code a CLI should use.
    """

    def __init__(self, error_code: str, message: str = "", hint: str = "", exit_code: int = 1):
        super().__init__(message or error_code)
        self.error_code = error_code
        self.message = message or error_code
        self.hint = hint or ""
        self.exit_code = exit_code
