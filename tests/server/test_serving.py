"""serve_command: the routine the HTTP routes, the WebSocket and the in-process hosts share."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pytest

from flare_adapters.serving import serve_command
from flare_core.commands import Command, DownloadJobResult, GetJobMeta, Logout
from flare_core.errors import InternalError, SessionExpired
from flare_core.events import JobEvent
from flare_core.principal import Grant, Principal
from flare_core.replies import Ok, Problem, Reply

ADMIN = Principal(name="u", org="o", role="project_admin")


class RecordingBackend:
    """A ``Backend`` that records what the routine asked of it."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.calls: list[str] = []
        self.expired = False

    def login(self, user: str, api_key: str | None, study: str) -> Grant:
        return Grant(token="t", principal=ADMIN, idle_timeout=60.0)

    def authenticate(self, token: str) -> Principal:
        self.calls.append(f"authenticate {token}")
        if self.expired:
            raise SessionExpired("idle")
        return ADMIN

    def logout(self, token: str) -> None:
        self.calls.append(f"logout {token}")

    def handle(
        self, principal: Principal, command: Command, upload: Iterable[bytes] | None = None
    ) -> Reply:
        self.calls.append(f"handle {type(command).__name__}")
        return self.reply

    def open_download(self, principal: Principal, download_id: str) -> Iterator[bytes]:
        self.calls.append(f"open {download_id}")
        return iter([b"PK"])

    def subscribe(self, listener: Callable[[JobEvent], None]) -> Callable[[], None]:
        return lambda: None


def test_a_call_is_authenticated_then_handled() -> None:
    backend = RecordingBackend(Ok(value=1))
    served = serve_command(backend, "t", GetJobMeta(job_id="j"))
    assert served.reply == Ok(value=1)
    assert served.open_download is None
    assert backend.calls == ["authenticate t", "handle GetJobMeta"]


def test_a_host_that_authenticated_already_is_not_asked_again() -> None:
    backend = RecordingBackend(Ok(value=1))
    serve_command(backend, "t", GetJobMeta(job_id="j"), principal=ADMIN)
    assert backend.calls == ["handle GetJobMeta"]


def test_an_expired_session_raises_for_the_host_to_report() -> None:
    backend = RecordingBackend(Ok(value=1))
    backend.expired = True
    with pytest.raises(SessionExpired):
        serve_command(backend, "t", GetJobMeta(job_id="j"))
    assert backend.calls == ["authenticate t"]


def test_logout_is_not_authenticated_first() -> None:
    backend = RecordingBackend(Ok(value=1))
    backend.expired = True
    served = serve_command(backend, "t", Logout())
    assert served.reply == Ok(value=None)
    assert backend.calls == ["logout t"]


def test_a_prepared_download_is_opened_only_when_the_host_asks() -> None:
    backend = RecordingBackend(Ok(value={"download_id": "d1"}))
    served = serve_command(backend, "t", DownloadJobResult(job_id="j"), principal=ADMIN)
    assert backend.calls == ["handle DownloadJobResult"]
    assert served.open_download is not None
    assert list(served.open_download()) == [b"PK"]
    assert backend.calls[-1] == "open d1"


def test_a_refused_download_has_nothing_to_open() -> None:
    problem = Problem(code="job_not_found", error="JobNotFound", message="no job")
    served = serve_command(
        RecordingBackend(problem), "t", DownloadJobResult(job_id="j"), principal=ADMIN
    )
    assert served == (problem, None)


def test_a_download_without_an_id_fails_when_opened() -> None:
    backend = RecordingBackend(Ok(value={"bytes": 3}))
    served = serve_command(backend, "t", DownloadJobResult(job_id="j"), principal=ADMIN)
    assert served.open_download is not None
    with pytest.raises(InternalError, match="download not prepared"):
        served.open_download()
