"""FakeFlare's friendlier controls: jobs named by ``NEXT_JOB``, name or token; the record of
sent commands; the async fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

import flare_core as fc
from flare_adapters.session import AsyncSession
from flare_ports import SessionSpec
from flare_testing import NEXT_JOB, FakeFlare, JobFolders, JobName, SubmitToken


def _submit_in_code_under_test(session: SessionSpec, folder: Path) -> str:
    # Stands for downstream code that submits a job and never tells the test its id.
    return session.submit_job(str(folder))


def test_a_control_can_target_the_next_job(tmp_path: Path) -> None:
    with FakeFlare() as fake, fake.session() as session:
        fake.fail_job(NEXT_JOB, reason="out of memory")
        job_id = _submit_in_code_under_test(session, JobFolders(tmp_path).hello())
        meta = session.wait_for_job(job_id)
        assert meta["status"] == "FINISHED:EXECUTION_EXCEPTION"
        assert "out of memory" in session.get_job_logs(job_id)["logs"]["server"]
        # Used up: the job after it runs normally.
        second = session.submit_job(str(JobFolders(tmp_path / "b").hello()))
        assert session.wait_for_job(second)["status"] == "FINISHED:COMPLETED"


def test_hold_next_job_keeps_it_running_until_released(tmp_path: Path) -> None:
    with FakeFlare() as fake, fake.session() as session:
        fake.hold_job(NEXT_JOB)
        job_id = session.submit_job(str(JobFolders(tmp_path).hello()))
        with pytest.raises(fc.JobTimeout):
            session.wait_for_job(job_id, timeout=3600)
        assert session.get_job_meta(job_id)["status"] == "RUNNING"
        fake.release_job(job_id)
        assert session.wait_for_job(job_id)["status"] == "FINISHED:COMPLETED"


def test_controls_by_name_and_by_token(tmp_path: Path) -> None:
    jobs = JobFolders(tmp_path)
    with FakeFlare() as fake, fake.session() as session:
        by_name = session.submit_job(str(jobs.hello(name="train")))
        by_token = session.submit_job(str(jobs.hello()), submit_token="nightly-1")
        assert fake.job_id(JobName("train")) == by_name
        assert fake.job_id(SubmitToken("nightly-1")) == by_token
        fake.finish_job(JobName("train"), "FINISHED:ABORTED")
        fake.fail_job(SubmitToken("nightly-1"))
        assert session.get_job_meta(by_name)["status"] == "FINISHED:ABORTED"
        assert session.get_job_meta(by_token)["status"] == "FINISHED:EXECUTION_EXCEPTION"
        with pytest.raises(KeyError):
            fake.job_id(JobName("nope"))
        with pytest.raises(KeyError):
            fake.job_id(SubmitToken("nope"))
        with pytest.raises(fc.InvalidArgumentError):
            fake.job_id(NEXT_JOB)


def test_the_record_of_sent_commands(tmp_path: Path) -> None:
    with FakeFlare() as fake:
        with fake.session() as admin, fake.session("lead@nvidia.com") as lead:
            job_id = admin.submit_job(str(JobFolders(tmp_path).hello()))
            lead.list_jobs()
            admin.get_job_meta(job_id)
        ops = [(sent.user, sent.op) for sent in fake.commands()]
        assert ops[:3] == [
            ("admin@nvidia.com", "submit_job"),
            ("lead@nvidia.com", "list_jobs"),
            ("admin@nvidia.com", "get_job_meta"),
        ]
        assert [s.op for s in fake.commands(user="lead@nvidia.com")] == ["list_jobs"]
        submitted = fake.commands()[0].command
        assert isinstance(submitted, fc.SubmitJob)


@pytest.mark.asyncio
async def test_the_async_fixture(flare_async_session: AsyncSession, tmp_path: Path) -> None:
    job_id = await flare_async_session.submit_job(str(JobFolders(tmp_path).hello()))
    meta = await flare_async_session.wait_for_job(job_id, timeout=3600)
    assert meta["status"] == "FINISHED:COMPLETED"


def test_a_site_lost_while_its_job_runs_fails_the_job(tmp_path: Path) -> None:
    jobs = JobFolders(tmp_path)
    with FakeFlare(sites=("site-1", "site-2", "site-3")) as fake, fake.session() as session:
        fake.hold_job(NEXT_JOB)
        on_two = session.submit_job(
            str(jobs.hello(deploy_map={"app": ["server", "site-1", "site-2"]}))
        )
        fake.hold_job(NEXT_JOB)
        elsewhere = session.submit_job(
            str(jobs.hello(deploy_map={"app": ["server", "site-1", "site-3"]}))
        )
        fake.advance(5)
        assert session.get_job_meta(on_two)["status"] == "RUNNING"
        fake.disconnect_site("site-2")
        meta = session.get_job_meta(on_two)
        assert meta["status"] == "FINISHED:EXECUTION_EXCEPTION"
        log = session.get_job_logs(on_two)["logs"]["server"]
        assert "lost connection to client site-2" in log
        assert session.get_job_meta(elsewhere)["status"] == "RUNNING"  # site-2 is not in it
