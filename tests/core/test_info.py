"""The info classes print exactly like the reference's."""

from __future__ import annotations

import time

import pytest

from flare_core import ClientInfo, JobInfo, MonitorReturnCode, ServerInfo, SystemInfo, TargetType


@pytest.mark.parametrize("epoch", [0.0, 1_700_000_000.5, 1_234_567.0, 1_700_020_000.0])
def test_server_info_formats_start_time_like_asctime(epoch: float) -> None:
    expected = time.asctime(time.localtime(epoch))
    assert str(ServerInfo("started", epoch)) == f"status: started, start_time: {expected}"


def test_server_info_str_handles_none_start_time() -> None:
    assert str(ServerInfo("stopped", None)) == "status: stopped, start_time: unknown"


def test_client_info_str_handles_none_last_connect_time() -> None:
    assert str(ClientInfo("site-1", None)) == "site-1 (last_connect_time: unknown)"


def test_client_info_str_with_time() -> None:
    expected = time.asctime(time.localtime(1_700_000_000))
    assert str(ClientInfo("site-1", 1_700_000_000)) == f"site-1 (last_connect_time: {expected})"


def test_job_info_str() -> None:
    assert str(JobInfo("j1", "app")) == "JobInfo:\n  job_id: j1\n  app_name: app"


def test_system_info_str() -> None:
    info = SystemInfo(
        ServerInfo("started", None),
        [ClientInfo("a", None), ClientInfo("b", None)],
        [JobInfo("j", "x")],
    )
    assert str(info) == (
        "SystemInfo\nserver_info:\nstatus: started, start_time: unknown\nclient_info:\n"
        "a (last_connect_time: unknown)\nb (last_connect_time: unknown)\njob_info:\n"
        "JobInfo:\n  job_id: j\n  app_name: x"
    )


def test_monitor_return_codes_and_target_types() -> None:
    assert [int(c) for c in MonitorReturnCode] == [0, 1, 2]
    assert MonitorReturnCode(2) is MonitorReturnCode.ENDED_BY_CB
    assert (TargetType.ALL, TargetType.SERVER, TargetType.CLIENT) == ("all", "server", "client")
