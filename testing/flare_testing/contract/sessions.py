"""Contract: the session itself - closing, expiry, login errors, retries after connection
failures (reference §0.4, §10.1-§10.2, §11.1 #19, #20; DECISIONS §6-§8, §20)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flare_core.errors import (
    AuthenticationError,
    InvalidArgumentError,
    NoConnection,
    SessionClosed,
    SessionExpired,
)
from flare_ports.session_spec import SessionSpec
from flare_testing.contract import capabilities as cap
from flare_testing.contract.base import (
    ContractBase,
    OpenSession,
    Users,
    call,
    finished_job,
    nothing_sent,
    pending_job,
    unknown_job_id,
)
from flare_testing.contract.harness import Harness
from flare_testing.job_folders import JobFolders

__all__ = ["ClosedSessionContract", "RetryContract", "SessionExpiryContract"]

IDLE_TIMEOUT = 1800.0
"""The default idle timeout of a session, in seconds (reference §10.2)."""

Args = tuple[tuple[Any, ...], dict[str, Any]]

# method -> (job_id, folder) -> the arguments of a call that passes local validation
SENDING_CALLS: dict[str, Callable[[str, str], Args]] = {
    "submit_job": lambda j, f: ((f,), {}),
    "clone_job": lambda j, f: ((j,), {}),
    "list_jobs": lambda j, f: ((), {}),
    "get_job_meta": lambda j, f: ((j,), {}),
    "download_job_result": lambda j, f: ((j,), {}),
    "list_job_components": lambda j, f: ((j,), {}),
    "download_job_components": lambda j, f: ((j,), {}),
    "abort_job": lambda j, f: ((j,), {}),
    "delete_job": lambda j, f: ((j,), {}),
    "get_job_logs": lambda j, f: ((j,), {}),
    "configure_job_log": lambda j, f: ((j, "DEBUG"), {}),
    "configure_site_log": lambda j, f: (("DEBUG",), {}),
    "wait_for_job": lambda j, f: ((j,), {}),
    "monitor_job": lambda j, f: ((j,), {}),
    "monitor_job_and_return_job_meta": lambda j, f: ((j,), {}),
    "show_stats": lambda j, f: ((j, "server"), {}),
    "show_errors": lambda j, f: ((j, "server"), {}),
    "reset_errors": lambda j, f: ((j,), {}),
    "get_system_info": lambda j, f: ((), {}),
    "get_connected_client_list": lambda j, f: ((), {}),
    "check_status": lambda j, f: (("server",), {}),
    "report_resources": lambda j, f: (("server",), {}),
    "report_version": lambda j, f: (("server",), {}),
    "get_client_job_status": lambda j, f: ((), {}),
    "restart": lambda j, f: (("server",), {}),
    "shutdown": lambda j, f: (("server",), {}),
    "shutdown_system": lambda j, f: ((), {}),
    "remove_client": lambda j, f: (("site-1",), {}),
    "disable_client": lambda j, f: (("site-1",), {}),
    "enable_client": lambda j, f: (("site-1",), {}),
    "ls_target": lambda j, f: (("server",), {}),
    "cat_target": lambda j, f: (("server",), {"file": "log.txt"}),
    "head_target": lambda j, f: (("server",), {"file": "log.txt"}),
    "tail_target": lambda j, f: (("server",), {"file": "log.txt"}),
    "head_target_log": lambda j, f: (("server",), {}),
    "tail_target_log": lambda j, f: (("server",), {}),
    "grep_target": lambda j, f: (("server",), {"pattern": "x", "file": "log.txt"}),
    "get_working_directory": lambda j, f: (("server",), {}),
    "register_study": lambda j, f: (("s1",), {"site_orgs": ["nvidia:site-1"]}),
    "add_study_site": lambda j, f: (("s1",), {"site_orgs": ["nvidia:site-1"]}),
    "remove_study_site": lambda j, f: (("s1",), {"site_orgs": ["nvidia:site-1"]}),
    "remove_study": lambda j, f: (("s1",), {}),
    "list_studies": lambda j, f: ((), {}),
    "show_study": lambda j, f: (("s1",), {}),
    "add_study_user": lambda j, f: (("s1", "someone"), {}),
    "remove_study_user": lambda j, f: (("s1", "someone"), {}),
}
"""Every method that talks to the server (the local-only settings methods excluded)."""

READS: dict[str, Callable[[str], Args]] = {
    "list_jobs": lambda j: ((), {}),
    "get_job_meta": lambda j: ((j,), {}),
    "get_job_logs": lambda j: ((j,), {}),
    "list_job_components": lambda j: ((j,), {}),
    "get_system_info": lambda j: ((), {}),
    "check_status": lambda j: (("server",), {}),
    "report_version": lambda j: (("server",), {}),
    "list_studies": lambda j: ((), {}),
}
"""Idempotent reads, retried after connection failures (DECISIONS §7)."""


def _send(session: SessionSpec, method: str, job_id: str, folder: str) -> Any:
    args, kwargs = SENDING_CALLS[method](job_id, folder)
    return call(session, method, *args, **kwargs)


class ClosedSessionContract(ContractBase):
    """A closed session refuses everything locally (§10.2)."""

    @pytest.mark.parametrize("method", list(SENDING_CALLS))
    def test_closed_session_sends_nothing(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        jobs: JobFolders,
        method: str,
    ) -> None:
        folder = str(jobs.hello())
        session.close()
        with nothing_sent(harness, caps), pytest.raises(SessionClosed, match="session closed"):
            _send(session, method, unknown_job_id(), folder)

    def test_close_is_idempotent(self, session: SessionSpec) -> None:
        session.close()
        session.close()
        with pytest.raises(SessionClosed):
            session.list_jobs()

    @pytest.mark.flare_requires(cap.CONTEXT_MANAGER)
    def test_context_manager_closes(self, sessions: OpenSession) -> None:
        with sessions() as session:
            assert session.list_jobs() == []
        with pytest.raises(SessionClosed):
            session.list_jobs()

    @pytest.mark.flare_requires(cap.CONTEXT_MANAGER)
    def test_context_manager_closes_on_error(self, sessions: OpenSession) -> None:
        opened = sessions()
        with pytest.raises(KeyError), opened:
            raise KeyError("boom")
        with pytest.raises(SessionClosed):
            opened.list_jobs()

    def test_closing_one_session_leaves_others_open(
        self, sessions: OpenSession, users: Users
    ) -> None:
        first, second = sessions(), sessions(users.lead)
        first.close()
        assert second.list_jobs() == []

    @pytest.mark.flare_requires(cap.NAMED_LOGIN)
    def test_unknown_user_cannot_log_in(self, sessions: OpenSession) -> None:
        with pytest.raises(AuthenticationError):
            sessions("nobody@nowhere.example")

    def test_exception_families(self) -> None:
        assert issubclass(NoConnection, ConnectionError)
        assert issubclass(SessionExpired, SessionClosed)
        assert issubclass(InvalidArgumentError, ValueError)


@pytest.mark.flare_requires(cap.VIRTUAL_TIME)
class SessionExpiryContract(ContractBase):
    """Idle sessions expire on the server and then refuse everything (DECISIONS §20)."""

    def test_idle_session_expires(self, harness: Harness, session: SessionSpec) -> None:
        session.list_jobs()
        harness.advance(IDLE_TIMEOUT + 1)
        with pytest.raises(SessionExpired, match="inactivity") as caught:
            session.list_jobs()
        assert isinstance(caught.value, SessionClosed)

    @pytest.mark.parametrize("method", ["list_jobs", "get_system_info", "submit_job", "close"])
    def test_expired_session_sends_nothing(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        jobs: JobFolders,
        method: str,
    ) -> None:
        folder = str(jobs.hello())
        harness.advance(IDLE_TIMEOUT + 1)
        with pytest.raises(SessionExpired):
            session.check_status("server")
        with nothing_sent(harness, caps):
            if method == "close":
                session.close()
            else:
                with pytest.raises(SessionExpired):
                    _send(session, method, unknown_job_id(), folder)

    def test_activity_keeps_a_session_alive(self, harness: Harness, session: SessionSpec) -> None:
        for _ in range(4):
            harness.advance(IDLE_TIMEOUT - 100)
            assert session.list_jobs() == []

    def test_sessions_expire_independently(
        self, harness: Harness, sessions: OpenSession, users: Users
    ) -> None:
        idle, busy = sessions(), sessions(users.lead)
        harness.advance(IDLE_TIMEOUT - 100)
        busy.list_jobs()
        harness.advance(200)
        assert busy.list_jobs() == []
        with pytest.raises(SessionExpired):
            idle.list_jobs()

    def test_a_new_session_works_after_expiry(
        self, harness: Harness, sessions: OpenSession
    ) -> None:
        old = sessions()
        harness.advance(IDLE_TIMEOUT + 1)
        with pytest.raises(SessionExpired):
            old.list_jobs()
        assert sessions().list_jobs() == []

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_waiting_on_a_long_job_keeps_the_session_alive(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        start = harness.now
        job_id = session.submit_job(str(jobs.hello(sleep_time=1000.0)))
        meta = session.wait_for_job(job_id, timeout=0, poll_interval=60.0)
        assert meta["status"] == "FINISHED:COMPLETED"
        assert harness.now - start > IDLE_TIMEOUT


@pytest.mark.flare_requires(cap.FAULT_INJECTION)
class RetryContract(ContractBase):
    """Connection failures: which commands are retried, and which never are (DECISIONS §7)."""

    @pytest.fixture(autouse=True)
    def _no_failures_left(self, _flare_requirements: None, harness: Harness) -> Iterator[None]:
        # After the capability check (so skipped tests touch no system); whatever a test
        # leaves queued must not fail the closing of its sessions.
        yield
        harness.inject_failures(0)

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    @pytest.mark.flare_requires(cap.READ_RETRIES)
    @pytest.mark.parametrize("when", ["before", "after"])
    @pytest.mark.parametrize("method", list(READS))
    def test_reads_are_retried(
        self,
        harness: Harness,
        session: SessionSpec,
        jobs: JobFolders,
        method: str,
        when: Any,
    ) -> None:
        job_id = finished_job(session, jobs)
        args, kwargs = READS[method](job_id)
        expected = call(session, method, *args, **kwargs)
        harness.inject_failures(2, when)
        result = call(session, method, *args, **kwargs)
        assert type(result) is type(expected)

    @pytest.mark.flare_requires(cap.COMMAND_LOG, cap.READ_RETRIES)
    def test_lost_replies_are_resent(self, harness: Harness, session: SessionSpec) -> None:
        before = harness.requests_received
        harness.inject_failures(2, "after")
        assert session.list_jobs() == []
        assert harness.requests_received - before == 3

    def test_abort_is_retried(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = pending_job(session, jobs)
        harness.inject_failures(2, "before")
        session.abort_job(job_id)
        assert session.get_job_meta(job_id)["status"] == "FINISHED:ABORTED"

    @pytest.mark.flare_requires(cap.VIRTUAL_TIME)
    def test_retries_back_off(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = pending_job(session, jobs)
        start = harness.now
        harness.inject_failures(2, "before")
        session.abort_job(job_id)
        assert harness.now - start == pytest.approx(0.5 + 1.0)

    def test_persistent_failure_is_no_connection(
        self, harness: Harness, session: SessionSpec
    ) -> None:
        harness.inject_failures(1000, "before")
        with pytest.raises(NoConnection):
            session.list_jobs()
        harness.inject_failures(0)
        assert session.list_jobs() == []

    @pytest.mark.parametrize("when", ["before", "after"])
    def test_delete_is_never_replayed(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders, when: Any
    ) -> None:
        job_id = pending_job(session, jobs)
        harness.inject_failures(1, when)
        with pytest.raises(NoConnection):
            session.delete_job(job_id)
        harness.inject_failures(0)
        remaining = [row["job_id"] for row in session.list_jobs()]
        assert remaining == ([job_id] if when == "before" else [])

    @pytest.mark.parametrize("when", ["before", "after"])
    def test_clone_is_never_replayed(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders, when: Any
    ) -> None:
        source = pending_job(session, jobs)
        harness.inject_failures(1, when)
        with pytest.raises(NoConnection):
            session.clone_job(source)
        harness.inject_failures(0)
        assert len(session.list_jobs()) == (1 if when == "before" else 2)

    def test_study_mutation_is_never_replayed(
        self, harness: Harness, session: SessionSpec, users: Users
    ) -> None:
        harness.inject_failures(1, "after")
        with pytest.raises(NoConnection):
            session.register_study("retry-study", site_orgs=[f"{users.server_org}:site-1"])
        harness.inject_failures(0)
        assert session.show_study("retry-study")["users"] == [users.admin]

    @pytest.mark.parametrize("when", ["before", "after"])
    def test_untokened_submit_is_not_duplicated(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        jobs: JobFolders,
        when: Any,
    ) -> None:
        folder = str(jobs.hello())
        harness.inject_failures(1, when)
        if cap.EXACTLY_ONCE_SUBMIT in caps:
            job_id = session.submit_job(folder)
            assert [row["job_id"] for row in session.list_jobs()] == [job_id]
        else:
            with pytest.raises(NoConnection):
                session.submit_job(folder)
            assert len(session.list_jobs()) == (0 if when == "before" else 1)
