"""Both transports against the real server (``flare_testing.serve()``: SQLite, real clock)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flare_core.info import MonitorReturnCode
from flare_testing.job_folders import JobFolders
from flare_testing.server import ServedSystem, serve
from tests.transports.conftest import FAST_RETRY, factory


@pytest.fixture(scope="module")
def served() -> Iterator[ServedSystem]:
    with serve(job_duration=0.3) as system:
        yield system


@pytest.fixture
def jobs(tmp_path: Path) -> JobFolders:
    return JobFolders(tmp_path / "jobs")


def _url(served: ServedSystem, scheme: str) -> str:
    return served.http_url if scheme == "http" else served.ws_url


def test_a_job_runs_end_to_end(scheme: str, served: ServedSystem, jobs: JobFolders) -> None:
    with factory(scheme).connect(
        _url(served, scheme),
        user=served.admin_user,
        api_key=served.admin_key,
        study="default",
        retry=FAST_RETRY,
        max_poll_interval=0.05,
    ) as session:
        job_id = session.submit_job(str(jobs.hello()))
        statuses: list[str] = []

        def follow(_session: object, _job_id: str, meta: dict[str, object]) -> bool:
            statuses.append(str(meta["status"]))
            return True

        rc = session.monitor_job(job_id, timeout=30.0, poll_interval=5.0, cb=follow)
        assert rc is MonitorReturnCode.JOB_FINISHED
        assert statuses[-1] == "FINISHED:COMPLETED"
        assert "job finished" in session.get_job_logs(job_id)["logs"]["server"]


def test_waiting_over_websocket_wakes_on_the_pushed_event(
    served: ServedSystem, jobs: JobFolders
) -> None:
    with factory("ws").connect(
        served.ws_url, user=served.admin_user, api_key=served.admin_key, study="default"
    ) as session:
        job_id = session.submit_job(str(jobs.hello()))
        started = time.monotonic()
        meta = session.wait_for_job(job_id, timeout=60.0, poll_interval=30.0)
        assert meta["status"] == "FINISHED:COMPLETED"
        assert time.monotonic() - started < 10.0  # not 30 s: the job's event woke the wait


def test_every_user_key_works(scheme: str, served: ServedSystem) -> None:
    for user, key in served.api_keys.items():
        with factory(scheme).connect(
            _url(served, scheme), user=user, api_key=key, study="default"
        ) as session:
            assert isinstance(session.list_studies(), dict)
