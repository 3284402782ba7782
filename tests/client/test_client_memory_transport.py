"""MemoryTransport: login, per-call authentication, faults, downloads and virtual sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator

import pytest

from flare_adapters.memory.clock import VirtualClock
from flare_adapters.memory.transport import MemoryTransport
from flare_core import (
    AuthenticationError,
    CheckStatus,
    Command,
    DownloadJobResult,
    Grant,
    JobEvent,
    JobNotFound,
    ListJobs,
    Logout,
    NoConnection,
    Ok,
    Principal,
    Problem,
    Reply,
    SessionExpired,
    SubmitJob,
)
from flare_ports.transport import AsyncTransport, Transport

ADMIN = Principal(name="admin@nvidia.com", org="nvidia", role="project_admin")


class FakeBackend:
    """A scripted Backend: records calls, publishes events on demand."""

    def __init__(self) -> None:
        self.handled: list[Command] = []
        self.uploads: list[bytes] = []
        self.logged_out: list[str] = []
        self.listeners: list[Callable[[JobEvent], None]] = []
        self.auth_error: Exception | None = None
        self.reply: Reply = Ok(value="done")
        self.archive = [b"PK", b"data"]

    def login(self, user: str, api_key: str | None, study: str) -> Grant:
        if api_key != user:
            raise AuthenticationError("Incorrect user name or password")
        return Grant(token="tok", principal=ADMIN, idle_timeout=1800.0)

    def authenticate(self, token: str) -> Principal:
        if self.auth_error is not None:
            raise self.auth_error
        assert token == "tok"
        return ADMIN

    def logout(self, token: str) -> None:
        self.logged_out.append(token)

    def handle(
        self, principal: Principal, command: Command, upload: Iterable[bytes] | None = None
    ) -> Reply:
        self.handled.append(command)
        if upload is not None:
            self.uploads.append(b"".join(upload))
        return self.reply

    def open_download(self, principal: Principal, download_id: str) -> Iterator[bytes]:
        if download_id != "dl-1":
            raise JobNotFound("unknown download")
        return iter(self.archive)

    def subscribe(self, listener: Callable[[JobEvent], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def publish(self, job_id: str, status: str = "RUNNING") -> None:
        for listener in list(self.listeners):
            listener(JobEvent(job_id=job_id, study="default", status=status))


def make(backend: FakeBackend | None = None) -> tuple[MemoryTransport, FakeBackend, VirtualClock]:
    backend = backend or FakeBackend()
    clock = VirtualClock()
    transport = MemoryTransport(backend, clock, user="admin@nvidia.com", api_key="admin@nvidia.com")
    return transport, backend, clock


def test_it_serves_both_transport_ports() -> None:
    transport, _, _ = make()
    assert isinstance(transport, Transport)
    assert isinstance(transport, AsyncTransport)


def test_login_happens_at_construction() -> None:
    with pytest.raises(AuthenticationError, match="Incorrect user name"):
        MemoryTransport(FakeBackend(), VirtualClock(), user="admin@nvidia.com", api_key="nope")


def test_calls_are_authenticated_and_handled() -> None:
    transport, backend, _ = make()
    assert transport.call(ListJobs(), None) == Ok(value="done")
    assert backend.handled == [ListJobs()]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            SessionExpired("Your session is closed due to inactivity or cert expiry."),
            "session_expired",
        ),
        (AuthenticationError("unknown token"), "not_authenticated"),
    ],
)
def test_authentication_failures_become_problems(error: Exception, code: str) -> None:
    transport, backend, _ = make()
    backend.auth_error = error
    reply = transport.call(ListJobs(), None)
    assert isinstance(reply, Problem)
    assert reply.code == code
    assert backend.handled == []


def test_a_stopped_backend_is_no_connection() -> None:
    transport, backend, _ = make()
    backend.auth_error = NoConnection("cannot connect to server: the server is shut down")
    with pytest.raises(NoConnection, match="shut down"):
        transport.call(ListJobs(), None)


def test_no_connection_problems_are_raised() -> None:
    transport, backend, _ = make()
    backend.reply = Problem.from_exception(NoConnection("server gone"))
    with pytest.raises(NoConnection, match="server gone"):
        transport.call(ListJobs(), None)


def test_logout_goes_to_the_backend() -> None:
    transport, backend, _ = make()
    assert transport.call(Logout(), None) == Ok()
    assert backend.logged_out == ["tok"]
    assert backend.handled == []


def test_fail_before_never_reaches_the_backend() -> None:
    transport, backend, _ = make()
    transport.fail_next(2)
    for _ in range(2):
        with pytest.raises(NoConnection, match="injected connection failure"):
            transport.call(ListJobs(), None)
    assert backend.handled == []
    assert transport.pending_failures == 0
    assert transport.call(ListJobs(), None) == Ok(value="done")


def test_fail_after_loses_the_reply() -> None:
    transport, backend, _ = make()
    transport.fail_next(1, when="after")
    with pytest.raises(NoConnection, match="loss of the reply"):
        transport.upload(SubmitJob(folder_name="j"), [b"a", b"b"], None)
    assert backend.handled == [SubmitJob(folder_name="j")]
    assert backend.uploads == [b"ab"]


@pytest.mark.parametrize(("n", "when"), [(-1, "before"), (1, "sometime")])
def test_fail_next_rejects_nonsense(n: int, when: str) -> None:
    transport, _, _ = make()
    with pytest.raises(ValueError, match="must be"):
        transport.fail_next(n, when)  # type: ignore[arg-type]  # the wrong value is the point


def test_download_streams_into_the_sink() -> None:
    transport, backend, _ = make()
    backend.reply = Ok(value={"download_id": "dl-1"})
    received: list[bytes] = []
    reply = transport.download(DownloadJobResult(job_id="j"), received.append, None)
    assert isinstance(reply, Ok)
    assert received == [b"PK", b"data"]


def test_download_problems_do_not_touch_the_sink() -> None:
    transport, backend, _ = make()
    received: list[bytes] = []
    backend.reply = Problem.from_exception(JobNotFound("no such job: j"))
    assert isinstance(
        transport.download(DownloadJobResult(job_id="j"), received.append, None), Problem
    )
    backend.reply = Ok(value={"download_id": "gone"})
    reply = transport.download(DownloadJobResult(job_id="j"), received.append, None)
    assert isinstance(reply, Problem)
    assert reply.code == "job_not_found"
    backend.reply = Ok(value="no id")
    reply = transport.download(DownloadJobResult(job_id="j"), received.append, None)
    assert isinstance(reply, Problem)
    assert reply.code == "internal_error"
    assert received == []


def test_sleep_without_wake_advances_the_whole_time() -> None:
    transport, _, clock = make()
    fired: list[float] = []
    clock.call_later(2.0, lambda: fired.append(clock.monotonic()))
    assert transport.sleep(5.0, None) is False
    assert transport.monotonic() == 5.0
    assert fired == [2.0]


def test_sleep_wakes_when_the_job_changes() -> None:
    transport, backend, clock = make()
    clock.call_later(3.0, lambda: backend.publish("job-1"))
    assert transport.sleep(10.0, "job-1") is True
    assert transport.monotonic() == 3.0


def test_sleep_ignores_other_jobs() -> None:
    transport, backend, clock = make()
    clock.call_later(1.0, lambda: backend.publish("other"))
    assert transport.sleep(4.0, "job-1") is False
    assert transport.monotonic() == 4.0


def test_events_from_before_a_call_do_not_wake_a_later_sleep() -> None:
    transport, backend, _ = make()
    backend.publish("job-1")
    transport.call(CheckStatus(target_type="server"), None)
    assert transport.sleep(2.0, "job-1") is False


def test_events_after_the_last_call_wake_at_once() -> None:
    transport, backend, _ = make()
    transport.call(CheckStatus(target_type="server"), None)
    backend.publish("job-1")
    assert transport.sleep(2.0, "job-1") is True
    assert transport.monotonic() == 0.0


def test_close_unsubscribes_and_refuses_later_calls() -> None:
    transport, backend, _ = make()
    transport.close()
    transport.close()
    assert transport.closed
    assert backend.listeners == []
    with pytest.raises(NoConnection, match="closed"):
        transport.call(ListJobs(), None)


@pytest.mark.asyncio
async def test_async_side() -> None:
    transport, backend, clock = make()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"x"
        yield b"y"

    assert await transport.acall(ListJobs(), None) == Ok(value="done")
    assert await transport.aupload(SubmitJob(folder_name="j"), chunks(), None) == Ok(value="done")
    assert backend.uploads == [b"xy"]
    clock.call_later(1.5, lambda: backend.publish("j"))
    assert await transport.asleep(5.0, "j") is True
    backend.reply = Ok(value={"download_id": "dl-1"})
    received: list[bytes] = []
    await transport.adownload(DownloadJobResult(job_id="j"), received.append, None)
    assert received == [b"PK", b"data"]
    await transport.aclose()
    assert transport.closed
