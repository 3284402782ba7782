"""The CLI's exit codes, one per outcome, so a CI step can branch on them.

A job that ends in any terminal status but ``FINISHED:COMPLETED`` is a failure (``1``), as is
every error class below; ``2`` is click's own code for usage errors and is reused for a bad
profile or option value. The table is documented in ``flare-core --help`` and the docs.
"""

from __future__ import annotations

from enum import IntEnum

import flare_core as fc

__all__ = ["ExitCode", "exit_code_for", "exit_code_help"]


class ExitCode(IntEnum):
    """What the ``flare-core`` process exit status means."""

    OK = 0
    JOB_FAILED = 1
    USAGE = 2
    TIMEOUT = 3
    AUTH = 4
    NOT_FOUND = 5
    REFUSED = 6
    NO_CONNECTION = 7
    SERVER_ERROR = 8
    INTERRUPTED = 130


_MEANING: dict[ExitCode, str] = {
    ExitCode.OK: "success (wait: the job ended FINISHED:COMPLETED)",
    ExitCode.JOB_FAILED: "the job ended in another terminal status (aborted, failed, abnormal)",
    ExitCode.USAGE: "bad command line, option value or profile",
    ExitCode.TIMEOUT: "the wait timed out before the job ended",
    ExitCode.AUTH: "not authenticated, session expired, or not authorized",
    ExitCode.NOT_FOUND: "no such job",
    ExitCode.REFUSED: "the request was refused (invalid argument, job definition, target, ...)",
    ExitCode.NO_CONNECTION: "the server could not be reached",
    ExitCode.SERVER_ERROR: "the server failed or replied with something unexpected",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}

# Most specific first: the first class in an exception's MRO found here decides.
_BY_ERROR: dict[type[BaseException], ExitCode] = {
    fc.JobTimeout: ExitCode.TIMEOUT,
    fc.AuthenticationError: ExitCode.AUTH,
    fc.AuthorizationError: ExitCode.AUTH,
    fc.SessionExpired: ExitCode.AUTH,
    fc.JobNotFound: ExitCode.NOT_FOUND,
    fc.InvalidArgumentError: ExitCode.REFUSED,
    fc.InvalidJobDefinition: ExitCode.REFUSED,
    fc.SubmitTokenConflict: ExitCode.REFUSED,
    fc.SubmitTokenJobDeleted: ExitCode.REFUSED,
    fc.JobNotRunning: ExitCode.REFUSED,
    fc.JobNotDone: ExitCode.REFUSED,
    fc.NoClientsAvailable: ExitCode.REFUSED,
    fc.ClientsStillRunning: ExitCode.REFUSED,
    fc.InvalidTarget: ExitCode.REFUSED,
    fc.CommandError: ExitCode.REFUSED,
    fc.NoConnection: ExitCode.NO_CONNECTION,
    fc.SessionClosed: ExitCode.NO_CONNECTION,
}


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code of a command that failed with ``error``."""
    for cls in type(error).__mro__:
        code = _BY_ERROR.get(cls)
        if code is not None:
            return code
    return ExitCode.SERVER_ERROR


def exit_code_help() -> str:
    """The exit-code table as help text."""
    return "\n".join(f"{int(code):>3}  {_MEANING[code]}" for code in ExitCode)
