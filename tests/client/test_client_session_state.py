"""Session state in the drivers: closing, expiry, context managers (reference §0.4 step 1,
§10.2; DECISIONS §20) - for every method, sync and async."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import pytest

from flare_adapters.session import AsyncSession, Session
from flare_core import (
    GetJobMeta,
    ListJobs,
    Logout,
    NoConnection,
    SessionClosed,
    SessionExpired,
)
from flare_ports.session_spec import AsyncSessionSpec, SessionSpec
from tests.client.scripted import (
    ScriptedTransport,
    make_async_session,
    make_session,
    ok,
    problem,
)

JOB = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
EXPIRY = "Your session is closed due to inactivity or cert expiry."

CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("submit_job", ("job-folder",)),
    ("clone_job", (JOB,)),
    ("list_jobs", ()),
    ("get_job_meta", (JOB,)),
    ("download_job_result", (JOB,)),
    ("list_job_components", (JOB,)),
    ("download_job_components", (JOB,)),
    ("abort_job", (JOB,)),
    ("delete_job", (JOB,)),
    ("get_job_logs", (JOB,)),
    ("configure_job_log", (JOB, "DEBUG")),
    ("configure_site_log", ("DEBUG",)),
    ("wait_for_job", (JOB,)),
    ("monitor_job", (JOB,)),
    ("monitor_job_and_return_job_meta", (JOB,)),
    ("show_stats", (JOB, "server")),
    ("show_errors", (JOB, "server")),
    ("reset_errors", (JOB,)),
    ("get_system_info", ()),
    ("check_status", ("server",)),
    ("report_resources", ("server",)),
    ("report_version", ("server",)),
    ("get_client_job_status", ()),
    ("get_connected_client_list", ()),
    ("restart", ("server",)),
    ("shutdown", ("server",)),
    ("shutdown_system", ()),
    ("set_timeout", (5.0,)),
    ("unset_timeout", ()),
    ("get_available_apps_to_upload", ()),
    ("remove_client", ("site-1",)),
    ("disable_client", ("site-1",)),
    ("enable_client", ("site-1",)),
    ("ls_target", ("server",)),
    ("cat_target", ("server", None, "log.txt")),
    ("tail_target", ("server", None, "log.txt")),
    ("tail_target_log", ("server",)),
    ("head_target", ("server", None, "log.txt")),
    ("head_target_log", ("server",)),
    ("grep_target", ("server", None, "x", "log.txt")),
    ("get_working_directory", ("server",)),
    ("register_study", ("s", ["site-1"])),
    ("add_study_site", ("s", ["site-1"])),
    ("remove_study_site", ("s", ["site-1"])),
    ("remove_study", ("s",)),
    ("list_studies", ()),
    ("show_study", ("s",)),
    ("add_study_user", ("s", "u")),
    ("remove_study_user", ("s", "u")),
]


def test_the_call_table_covers_every_method() -> None:
    public = {
        name
        for name, value in inspect.getmembers(SessionSpec, inspect.isfunction)
        if not name.startswith("_")
    }
    # watch_jobs returns an iterator instead of a result: its own test below.
    assert {name for name, _ in CALLS} == public - {"close", "watch_jobs"}


def test_a_closed_session_refuses_to_watch_without_sending(tmp_path: Path) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    session.close()
    sent = list(transport.sent)
    with pytest.raises(SessionClosed, match=r"^session closed$"):
        session.watch_jobs()
    async_session = make_async_session(ScriptedTransport(), str(tmp_path))
    asyncio.run(async_session.aclose())
    with pytest.raises(SessionClosed, match=r"^session closed$"):
        async_session.watch_jobs(JOB)
    assert transport.sent == sent


def test_drivers_implement_every_abstract_method() -> None:
    assert not getattr(Session, "__abstractmethods__", frozenset())
    assert not getattr(AsyncSession, "__abstractmethods__", frozenset())


def test_close_logs_out_once_and_is_idempotent(tmp_path: Path) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    session.close()
    session.close()
    assert transport.sent == [Logout()]
    assert transport.close_count == 1
    assert session.closed


@pytest.mark.parametrize(("name", "args"), CALLS)
def test_every_method_of_a_closed_session_raises_without_sending(
    tmp_path: Path, name: str, args: tuple[Any, ...]
) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    session.close()
    sent = list(transport.sent)
    with pytest.raises(SessionClosed, match=r"^session closed$"):
        getattr(session, name)(*args)
    assert transport.sent == sent


def test_close_survives_a_failing_logout(tmp_path: Path) -> None:
    transport = ScriptedTransport(NoConnection("gone"))
    session = make_session(transport, str(tmp_path))
    session.close()
    assert session.closed
    assert transport.close_count == 1


def test_context_manager_closes(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok([]))
    with make_session(transport, str(tmp_path)) as session:
        assert session.list_jobs() == []
    assert transport.sent == [ListJobs(), Logout()]


def test_expiry_closes_the_session_and_sticks(tmp_path: Path) -> None:
    transport = ScriptedTransport(problem(SessionExpired(EXPIRY)))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(SessionExpired, match=EXPIRY) as info:
        session.get_job_meta(JOB)
    assert isinstance(info.value, SessionClosed)
    assert transport.sent == [GetJobMeta(job_id=JOB)]  # never retried
    assert session.closed
    assert transport.close_count == 1
    with pytest.raises(SessionExpired, match=EXPIRY):
        session.list_jobs()
    session.close()  # no logout for an expired session
    assert transport.sent == [GetJobMeta(job_id=JOB)]


@pytest.mark.parametrize(("name", "args"), CALLS)
def test_every_method_of_an_expired_session_raises_expired(
    tmp_path: Path, name: str, args: tuple[Any, ...]
) -> None:
    transport = ScriptedTransport(problem(SessionExpired(EXPIRY)))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(SessionExpired):
        session.list_jobs()
    with pytest.raises(SessionExpired, match=EXPIRY):
        getattr(session, name)(*args)
    assert len(transport.sent) == 1


def test_expiry_without_reason_uses_the_reference_text(tmp_path: Path) -> None:
    transport = ScriptedTransport(problem(SessionExpired("")))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(SessionExpired):
        session.list_jobs()
    with pytest.raises(SessionExpired, match=EXPIRY):
        session.list_jobs()


def test_a_failing_transport_close_is_ignored(tmp_path: Path) -> None:
    class Stubborn(ScriptedTransport):
        def close(self) -> None:
            raise OSError("cannot close")

    session = make_session(Stubborn(), str(tmp_path))
    session.close()
    assert session.closed


def test_driver_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    session = Session(ScriptedTransport())
    assert session.upload_dir == str(tmp_path)
    assert session.download_dir == str(tmp_path / "downloads")
    assert not (tmp_path / "downloads").exists()


# --- async ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_close_is_idempotent(tmp_path: Path) -> None:
    transport = ScriptedTransport()
    session = make_async_session(transport, str(tmp_path))
    await session.aclose()
    await session.aclose()
    assert transport.sent == [Logout()]
    assert transport.close_count == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(("name", "args"), CALLS)
async def test_every_async_method_of_a_closed_session_raises(
    tmp_path: Path, name: str, args: tuple[Any, ...]
) -> None:
    transport = ScriptedTransport()
    session = make_async_session(transport, str(tmp_path))
    await session.aclose()
    with pytest.raises(SessionClosed, match=r"^session closed$"):
        await getattr(session, name)(*args)
    assert transport.sent == [Logout()]


@pytest.mark.asyncio
async def test_async_context_manager_closes(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok([]))
    async with make_async_session(transport, str(tmp_path)) as session:
        assert isinstance(session, AsyncSessionSpec)
        assert await session.list_jobs() == []
    assert transport.sent == [ListJobs(), Logout()]


@pytest.mark.asyncio
async def test_async_expiry_sticks(tmp_path: Path) -> None:
    transport = ScriptedTransport(problem(SessionExpired(EXPIRY)))
    session = make_async_session(transport, str(tmp_path))
    with pytest.raises(SessionExpired):
        await session.check_status("server")
    with pytest.raises(SessionExpired, match=EXPIRY):
        await session.list_jobs()
    assert session.closed
    assert len(transport.sent) == 1


@pytest.mark.asyncio
async def test_async_shutdown_server_closes_the_session(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({}))
    session = make_async_session(transport, str(tmp_path))
    await session.shutdown("server", wait=False)
    assert session.closed
    with pytest.raises(SessionClosed):
        await session.list_jobs()
