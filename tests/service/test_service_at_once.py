"""``AdminService.serve_at_once`` (issue 12): a quick read served on the caller's thread gives
exactly what ``authenticate`` then ``handle`` give, writes nothing, never waits, and declines
(None) whatever it cannot serve so."""

from __future__ import annotations

from typing import Any

import pytest

from flare_core import (
    AbortJob,
    AuthenticationError,
    CheckStatus,
    Command,
    GetJobMeta,
    ListJobs,
    NoConnection,
    Ok,
    SessionExpired,
    ShowStats,
)
from flare_core.replies import whole
from flare_core.service._at_once import QUICK_ROWS
from flare_core.service._jobs import list_jobs_read_only
from tests.service.helpers import ADMIN, MEMBER, Harness, held_elsewhere
from tests.service.test_service_listing_pages import COMMANDS, _meta

JOB = "00000000-0000-4000-8000-000000000003"
READS: list[Command] = [
    *COMMANDS,
    ListJobs(limit=QUICK_ROWS),
    ListJobs(limit=-1),  # a typed failure, as from ``handle``
    GetJobMeta(job_id=JOB),
    GetJobMeta(job_id=JOB.upper()),
    GetJobMeta(job_id="not-a-job"),
    CheckStatus(target_type="server"),
    CheckStatus(target_type="client"),
    CheckStatus(target_type="client", targets=["nobody"]),
    CheckStatus(target_type="all"),
]


def _harness(count: int) -> tuple[Harness, str]:
    h = Harness()
    for n in range(count):
        h.system.ports.jobs.add(_meta(n, submitter=MEMBER if n % 2 else ADMIN))
    h.system.ports.jobs.add(_meta(count, study="other"))
    return h, h.service.login(ADMIN, ADMIN).token


def _handled(h: Harness, token: str, command: Command) -> Any:
    return whole(h.service.handle(h.service.authenticate(token), command))


@pytest.mark.parametrize("command", READS, ids=repr)
def test_a_quick_read_is_what_authenticate_and_handle_give(command: Command) -> None:
    h, token = _harness(17)
    quick = h.service.serve_at_once(token, command)
    assert quick is not None
    principal, reply = quick
    assert principal == h.service.authenticate(token)
    assert reply == _handled(h, token, command)


@pytest.mark.parametrize("count", [0, 5, 6, 7, 12, 13])
@pytest.mark.parametrize("command", COMMANDS, ids=repr)
def test_a_listing_read_at_once_is_whole_or_declined(count: int, command: ListJobs) -> None:
    # Around the bound (6 rows here): every answer equals the full listing, and one that
    # fits is never declined.
    h, token = _harness(count)
    principal = h.service.authenticate(token)
    core = h.service._core
    with core.try_guard() as held:
        assert held
        rows = list_jobs_read_only(core, principal, command, at_most=6)
    expected = _handled(h, token, command)
    assert isinstance(expected, Ok)
    if count <= 6:
        assert rows is not None
    if rows is None:
        assert (command.limit or 0) > 6 or len(h.system.ports.jobs.query(study="default")) > 6
    else:
        assert rows == expected.value


def test_a_listing_beyond_the_bound_is_declined() -> None:
    h, token = _harness(QUICK_ROWS + 1)
    assert h.service.serve_at_once(token, ListJobs()) is None
    assert h.service.serve_at_once(token, ListJobs(limit=QUICK_ROWS + 1)) is None
    assert h.service.serve_at_once(token, ListJobs(limit=QUICK_ROWS)) is not None


def test_a_listing_longer_than_a_page_is_declined_since_it_is_streamed() -> None:
    h = Harness(list_page_size=4)
    for n in range(5):
        h.system.ports.jobs.add(_meta(n))
    token = h.service.login(ADMIN, ADMIN).token
    assert h.service.serve_at_once(token, ListJobs()) is None
    assert h.service.serve_at_once(token, ListJobs(limit=4)) is not None


@pytest.mark.parametrize(
    "command", [AbortJob(job_id=JOB), ShowStats(job_id=JOB, target_type="server")], ids=repr
)
def test_other_commands_are_declined(command: Command) -> None:
    h, token = _harness(3)
    assert h.service.serve_at_once(token, command) is None
    assert h.status(JOB) == "FINISHED:COMPLETED"


def test_a_read_never_waits_for_the_lock() -> None:
    h, token = _harness(3)
    with held_elsewhere(lambda: h.system.ports.lock):
        assert h.service.serve_at_once(token, GetJobMeta(job_id=JOB)) is None
    assert h.service.serve_at_once(token, GetJobMeta(job_id=JOB)) is not None


def test_a_session_whose_stored_timer_is_due_is_declined_then_refreshed() -> None:
    h, token = _harness(3)
    h.advance(10.0)  # the stored last_seen is due a write
    assert h.service.serve_at_once(token, ListJobs()) is None
    h.service.authenticate(token)  # writes it
    assert h.service.serve_at_once(token, ListJobs()) is not None


def test_an_ending_session_is_declined_and_ended_by_authenticate() -> None:
    h, token = _harness(3)
    h.advance(1801.0)
    assert h.service.serve_at_once(token, ListJobs()) is None
    with pytest.raises(SessionExpired):
        h.service.authenticate(token)
    with pytest.raises(AuthenticationError):
        h.service.serve_at_once(token, ListJobs())  # ended: unknown now


def test_a_revoked_session_is_declined_and_ended_by_authenticate() -> None:
    h, token = _harness(3)
    h.service.remove_user(ADMIN)
    assert h.service.serve_at_once(token, ListJobs()) is None
    with pytest.raises(SessionExpired, match="revoked"):
        h.service.authenticate(token)


def test_an_unknown_token_and_a_stopped_server_raise_as_authenticate_does() -> None:
    h, token = _harness(3)
    with pytest.raises(AuthenticationError, match="unknown or closed"):
        h.service.serve_at_once("not-a-token", ListJobs())
    h.service.abort_live_jobs("stopping")
    with pytest.raises(NoConnection):
        h.service.serve_at_once(token, ListJobs())


def test_a_quick_read_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    h, token = _harness(3)
    ports = h.system.ports

    def refused(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a quick read wrote")

    for store, method in [
        (ports.sessions, "put"),
        (ports.sessions, "remove"),
        (ports.jobs, "update"),
        (ports.jobs, "add"),
    ]:
        monkeypatch.setattr(store, method, refused)
    for command in READS:
        assert h.service.serve_at_once(token, command) is not None
