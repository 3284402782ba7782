"""Item 9 of issue 10: a test never races a job's end on a real clock.

``running_job`` holds the job by a unique name before the submit is sent. On a served system
whose jobs end the instant they start, a hold placed after the submit replied (by id) would
come too late; the name hold cannot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from flare_adapters.http.client import http_transport
from flare_adapters.session import Session
from flare_testing.contract.base import running_job
from flare_testing.job_folders import JobFolders
from flare_testing.server import serve
from tests.contract.test_contract_network import RETRY, ServedHarness
from tests.transports.proxy import LoopbackProxy


@pytest.fixture
def instant() -> Iterator[tuple[ServedHarness, Session]]:
    with serve(job_duration=0.0) as served:
        port = urlsplit(served.http_url).port
        assert port is not None
        proxy = LoopbackProxy(port)
        try:
            harness = ServedHarness(served, proxy)
            with http_transport.connect(
                proxy.url("http"),
                user=served.admin_user,
                api_key=served.admin_key,
                study="default",
                retry=RETRY,
                max_poll_interval=0.05,
            ) as session:
                yield harness, session
        finally:
            proxy.close()


def test_running_job_is_held_even_when_jobs_end_at_once(
    instant: tuple[ServedHarness, Session], tmp_path: Path
) -> None:
    harness, session = instant
    jobs = JobFolders(tmp_path / "jobs")
    job_id = running_job(harness, session, jobs)
    assert session.get_job_meta(job_id)["status"] == "RUNNING"
    harness.release_job(job_id)
    assert session.wait_for_job(job_id, timeout=30)["status"] == "FINISHED:COMPLETED"


def test_a_name_hold_spares_other_jobs(
    instant: tuple[ServedHarness, Session], tmp_path: Path
) -> None:
    harness, session = instant
    jobs = JobFolders(tmp_path / "jobs")
    harness.hold_jobs_named("held-only-this")
    other = session.submit_job(str(jobs.hello(name="free")))
    assert session.wait_for_job(other, timeout=30)["status"] == "FINISHED:COMPLETED"
