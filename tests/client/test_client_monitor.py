"""monitor_job / monitor_job_and_return_job_meta / wait_for_job: reference §5.2-§5.3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flare_core import (
    GetJobMeta,
    InternalError,
    InvalidArgumentError,
    JobNotFound,
    JobTimeout,
    MonitorReturnCode,
)
from flare_ports.session_spec import AsyncSessionSpec, SessionSpec
from tests.client.scripted import (
    ScriptedTransport,
    make_async_session,
    make_session,
    ok,
    problem,
)

JOB = "0b9d7c0e-5a43-4f8e-8f51-3b9a7d9e2c11"


def meta(status: str | None) -> dict[str, Any]:
    return {"job_id": JOB} if status is None else {"job_id": JOB, "status": status}


@pytest.mark.parametrize(
    "status",
    ["FINISHED:COMPLETED", "FINISHED:ABORTED", "FINISHED_OK", "ABORTED", "ABANDONED", "FAILED"],
)
def test_terminal_first_poll_returns_without_sleeping(tmp_path: Path, status: str) -> None:
    transport = ScriptedTransport(ok(meta(status)))
    session = make_session(transport, str(tmp_path))
    rc, final = session.monitor_job_and_return_job_meta(JOB)
    assert rc is MonitorReturnCode.JOB_FINISHED
    assert final == meta(status)
    assert transport.of(GetJobMeta) == [GetJobMeta(job_id=JOB)]
    assert transport.sleeps == []


def test_polls_until_terminal_sleeping_on_the_job(tmp_path: Path) -> None:
    transport = ScriptedTransport(
        ok(meta("SUBMITTED")), ok(meta("RUNNING")), ok(meta("FINISHED:COMPLETED"))
    )
    session = make_session(transport, str(tmp_path))
    rc, final = session.monitor_job_and_return_job_meta(JOB, poll_interval=3.0)
    assert rc is MonitorReturnCode.JOB_FINISHED
    assert final is not None
    assert final["status"] == "FINISHED:COMPLETED"
    assert transport.sleeps == [(3.0, JOB), (3.0, JOB)]


def test_callback_runs_before_the_terminal_check(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok(meta("FINISHED:COMPLETED")))
    session = make_session(transport, str(tmp_path))
    seen: list[tuple[Any, ...]] = []

    def stop(s: SessionSpec, job_id: str, job_meta: dict[str, Any], tag: str, *, n: int) -> bool:
        seen.append((s, job_id, job_meta["status"], tag, n))
        return False

    rc, final = session.monitor_job_and_return_job_meta(JOB, 0, 2.0, stop, "t", n=1)
    assert (rc, final) == (MonitorReturnCode.ENDED_BY_CB, None)
    assert seen == [(session, JOB, "FINISHED:COMPLETED", "t", 1)]


def test_callback_sees_every_poll_and_can_keep_going(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok(meta("RUNNING")), ok(meta("FINISHED:COMPLETED")))
    session = make_session(transport, str(tmp_path))
    counter = {"count": 0}

    def count(
        s: SessionSpec, job_id: str, job_meta: dict[str, Any], cb_run_counter: dict[str, int]
    ) -> bool:
        cb_run_counter["count"] += 1
        return True

    assert session.monitor_job(JOB, 0, 1.0, count, cb_run_counter=counter) is (
        MonitorReturnCode.JOB_FINISHED
    )
    assert counter["count"] == 2


def test_timeout_only_after_a_poll(tmp_path: Path) -> None:
    transport = ScriptedTransport(default=ok(meta("RUNNING")))
    session = make_session(transport, str(tmp_path))
    rc, final = session.monitor_job_and_return_job_meta(JOB, timeout=3, poll_interval=2.0)
    assert (rc, final) == (MonitorReturnCode.TIMEOUT, None)
    # t=0 poll, sleep 2, t=2 (2 <= 3) poll, sleep 2, t=4 > 3: timeout.
    assert len(transport.of(GetJobMeta)) == 2
    assert transport.sleeps == [(2.0, JOB), (2.0, JOB)]


def test_tiny_timeout_still_polls_once(tmp_path: Path) -> None:
    transport = ScriptedTransport(default=ok(meta("RUNNING")))
    transport.latency = 5.0
    session = make_session(transport, str(tmp_path))
    rc, _ = session.monitor_job_and_return_job_meta(JOB, timeout=0.001, poll_interval=1.0)
    assert rc is MonitorReturnCode.TIMEOUT
    assert len(transport.of(GetJobMeta)) == 1


def test_zero_timeout_waits_until_the_end(tmp_path: Path) -> None:
    transport = ScriptedTransport(*([ok(meta("RUNNING"))] * 50), ok(meta("FINISHED:ABORTED")))
    session = make_session(transport, str(tmp_path))
    assert session.monitor_job(JOB, timeout=0, poll_interval=100.0) is (
        MonitorReturnCode.JOB_FINISHED
    )
    assert len(transport.sleeps) == 50


@pytest.mark.parametrize(
    ("timeout", "poll", "message"),
    [(-1, 2.0, "timeout must be >= 0"), (0, 0, "poll_interval must be > 0"), (5, -2, "> 0")],
)
def test_bad_arguments_fail_before_any_poll(
    tmp_path: Path, timeout: float, poll: float, message: str
) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidArgumentError, match=message):
        session.monitor_job(JOB, timeout, poll)
    with pytest.raises(InvalidArgumentError, match=message):
        session.wait_for_job(JOB, timeout, poll)
    assert transport.sent == []


def test_missing_status_is_an_internal_error(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok(meta(None)))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InternalError, match=f"missing status in job {JOB}"):
        session.monitor_job(JOB)


@pytest.mark.parametrize("bad", ["", None, 17])
def test_bad_job_id_raises_job_not_found_without_sending(tmp_path: Path, bad: object) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(JobNotFound):
        session.wait_for_job(bad)  # type: ignore[arg-type]  # the wrong type is the point
    assert transport.sent == []


def test_poll_errors_propagate(tmp_path: Path) -> None:
    transport = ScriptedTransport(problem(JobNotFound(f"no such job: {JOB}")))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(JobNotFound):
        session.monitor_job(JOB)


def test_wait_for_job_returns_the_final_meta(tmp_path: Path) -> None:
    final = meta("FINISHED:COMPLETED") | {"name": "hello"}
    transport = ScriptedTransport(ok(meta("RUNNING")), ok(final))
    session = make_session(transport, str(tmp_path))
    assert session.wait_for_job(JOB, poll_interval=0.5) == final


def test_wait_for_job_times_out_with_job_timeout(tmp_path: Path) -> None:
    transport = ScriptedTransport(default=ok(meta("RUNNING")))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(JobTimeout, match=f"job {JOB} did not finish within 3s") as info:
        session.wait_for_job(JOB, timeout=3, poll_interval=1.0)
    assert not isinstance(info.value, InternalError)


def test_early_wake_polls_again_at_once(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok(meta("RUNNING")), ok(meta("FINISHED:COMPLETED")))
    transport.wake_after[JOB] = 0.25
    session = make_session(transport, str(tmp_path))
    start = transport.now
    session.wait_for_job(JOB, poll_interval=60.0)
    assert transport.now - start == pytest.approx(0.25)


@pytest.mark.asyncio
async def test_async_monitor_accepts_coroutine_callbacks(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok(meta("RUNNING")), ok(meta("RUNNING")))
    session = make_async_session(transport, str(tmp_path))
    calls: list[str] = []

    async def stop_second(s: AsyncSessionSpec, job_id: str, job_meta: dict[str, Any]) -> bool:
        calls.append(job_meta["status"])
        return len(calls) < 2

    rc = await session.monitor_job(JOB, 0, 1.0, stop_second)
    assert rc is MonitorReturnCode.ENDED_BY_CB
    assert calls == ["RUNNING", "RUNNING"]


@pytest.mark.asyncio
async def test_async_wait_for_job(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok(meta("DISPATCHED")), ok(meta("FINISHED:COMPLETED")))
    session = make_async_session(transport, str(tmp_path))
    final = await session.wait_for_job(JOB, poll_interval=1.0)
    assert final["status"] == "FINISHED:COMPLETED"
    assert transport.sleeps == [(1.0, JOB)]


@pytest.mark.asyncio
async def test_async_wait_for_job_timeout(tmp_path: Path) -> None:
    transport = ScriptedTransport(default=ok(meta("RUNNING")))
    session = make_async_session(transport, str(tmp_path))
    with pytest.raises(JobTimeout):
        await session.wait_for_job(JOB, timeout=1, poll_interval=1.0)
