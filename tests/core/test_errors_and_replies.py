"""Exceptions keep the seed's shapes, and survive a trip through a Problem unchanged."""

from __future__ import annotations

import pytest

import flare_core as fc
from flare_core import Ok, Problem


def test_no_connection_is_connection_error() -> None:
    assert issubclass(fc.NoConnection, ConnectionError)


def test_session_expired_is_session_closed() -> None:
    assert issubclass(fc.SessionExpired, fc.SessionClosed)


def test_invalid_argument_is_value_error() -> None:
    assert issubclass(fc.InvalidArgumentError, ValueError)


def test_job_timeout_is_not_internal_error() -> None:
    assert not issubclass(fc.JobTimeout, fc.InternalError)


def test_token_exceptions_are_independent() -> None:
    assert not issubclass(fc.SubmitTokenConflict, fc.SubmitTokenJobDeleted)
    assert not issubclass(fc.SubmitTokenJobDeleted, fc.SubmitTokenConflict)
    assert not issubclass(fc.SubmitTokenConflict, fc.InvalidJobDefinition)


def test_command_error_defaults() -> None:
    err = fc.CommandError("STUDY_NOT_FOUND")
    assert (err.error_code, err.message, err.hint, err.exit_code) == (
        "STUDY_NOT_FOUND",
        "STUDY_NOT_FOUND",
        "",
        1,
    )
    assert str(err) == "STUDY_NOT_FOUND"
    assert str(fc.CommandError("X", "text", "do y", 4)) == "text"


def test_authentication_error_defaults() -> None:
    err = fc.AuthenticationError()
    assert err.auth_code is None
    assert str(err) == ""


ROUND_TRIPS = [
    fc.SubmitTokenConflict("conflict", existing_job_id="j-1"),
    fc.SubmitTokenConflict("conflict"),
    fc.SubmitTokenJobDeleted("gone", job_id="j", state="job_deleted", deleted_time="t"),
    fc.AuthenticationError("bad", auth_code="AUTH_UNKNOWN_STUDY"),
    fc.CommandError("STUDY_NOT_FOUND", "no study", "check", 1),
    fc.CommandError("INVALID_ARGS", "", "", 4),
    fc.SessionExpired("idle"),
    fc.SessionClosed("closed"),
    fc.NoConnection("down"),
    fc.InvalidArgumentError("bad arg"),
    fc.InvalidJobDefinition("invalid job definition: x"),
    fc.JobNotFound("no such job: x"),
    fc.JobNotRunning("job x is not running"),
    fc.JobNotDone("job x is still running"),
    fc.JobTimeout("slow"),
    fc.AuthorizationError("denied"),
    fc.NoClientsAvailable("no clients available"),
    fc.ClientsStillRunning("one or more clients are still running"),
    fc.InvalidTarget("invalid client(s): x"),
    fc.NoReply("silence"),
    fc.InternalError("boom"),
]


@pytest.mark.parametrize("exc", ROUND_TRIPS, ids=lambda e: type(e).__name__)
def test_problem_round_trip_rebuilds_the_exact_exception(exc: Exception) -> None:
    rebuilt = Problem.from_exception(exc).to_exception()
    assert type(rebuilt) is type(exc)
    assert str(rebuilt) == str(exc)
    assert vars(rebuilt) == vars(exc)


def test_every_problem_code_is_unique_and_covers_every_exception() -> None:
    assert len(set(fc.PROBLEM_CODES.values())) == len(fc.PROBLEM_CODES)
    exported = [getattr(fc, n) for n in fc.__all__]
    exception_types = {t for t in exported if isinstance(t, type) and issubclass(t, Exception)}
    assert exception_types == set(fc.PROBLEM_CODES)


def test_foreign_exceptions_become_opaque_internal_errors() -> None:
    problem = Problem.from_exception(KeyError("/srv/secret/path.json"))
    assert problem.code == "internal_error"
    assert "/srv" not in problem.message
    assert isinstance(problem.to_exception(), fc.InternalError)


def test_subclass_of_domain_exception_keeps_its_family() -> None:
    class Special(fc.JobNotFound):
        pass

    assert Problem.from_exception(Special("x")).code == "job_not_found"


def test_unknown_problem_code_becomes_internal_error() -> None:
    exc = Problem(code="brand_new", error="Brand", message="m").to_exception()
    assert isinstance(exc, fc.InternalError)
    assert str(exc) == "brand_new: m"


def test_ok_carries_any_json_value() -> None:
    assert Ok(value={"a": [1, 2]}).value == {"a": [1, 2]}
    assert Ok().value is None
