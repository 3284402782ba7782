"""Static types of the public API (checked by mypy, which ``make test`` runs over tests/).

The functions are never called: their bodies only state the types a user gets back.
"""

from __future__ import annotations

from typing import Any, assert_type

from flare_ports import (
    AsyncSessionSpec,
    ClientInfo,
    MonitorReturnCode,
    SessionSpec,
    SystemInfo,
    connect,
    connect_async,
)


def _sync_api(session: SessionSpec) -> None:
    assert_type(session.submit_job("job"), str)
    assert_type(session.list_jobs(limit=3), list[dict[str, Any]])
    assert_type(session.get_job_meta("j"), dict[str, Any])
    assert_type(session.download_job_result("j"), str)
    assert_type(session.abort_job("j"), None)
    assert_type(session.wait_for_job("j", timeout=5), dict[str, Any])
    assert_type(session.monitor_job("j"), MonitorReturnCode)
    assert_type(
        session.monitor_job_and_return_job_meta("j"),
        tuple[MonitorReturnCode, dict[str, Any] | None],
    )
    assert_type(session.get_system_info(), SystemInfo)
    assert_type(session.get_connected_client_list(), list[ClientInfo])
    assert_type(session.get_client_job_status(), list[dict[str, Any]] | None)
    assert_type(session.cat_target("server", file="log.txt"), str)
    assert_type(session.list_studies(), dict[str, Any])


async def _async_api(session: AsyncSessionSpec) -> None:
    assert_type(await session.submit_job("job"), str)
    assert_type(await session.get_system_info(), SystemInfo)
    assert_type(await session.monitor_job("j"), MonitorReturnCode)
    await session.aclose()


async def _connect() -> None:
    assert_type(connect("memory://x", user="u"), SessionSpec)
    assert_type(await connect_async("memory://x", user="u"), AsyncSessionSpec)


def test_typing_module_imports() -> None:
    # The real check is mypy's; this keeps the module collected and importable.
    assert callable(_sync_api)
    assert callable(_async_api)
