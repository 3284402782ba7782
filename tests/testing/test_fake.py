"""FakeFlare's control plane: sessions, virtual time, job control, sites, users, studies,
fault injection, request counting, workspace files, the memory URL and closing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from flare_adapters.memory.clock import DEFAULT_EPOCH
from flare_adapters.memory.ids import SeededIds
from flare_adapters.session import AsyncSession, Session
from flare_core.errors import (
    AuthenticationError,
    InvalidArgumentError,
    JobNotFound,
    NoConnection,
)
from flare_ports import connect
from flare_ports.session_spec import SessionSpec
from flare_testing.fake import DEFAULT_ADMIN, FakeFlare
from flare_testing.job_folders import JobFolders

if TYPE_CHECKING:
    # Only for the static check that FakeFlare satisfies the Harness protocol; importing the
    # contract package at run time needs its markers registered (the pytest plugin).
    from flare_testing.contract.harness import Harness


@pytest.fixture
def fake() -> Iterator[FakeFlare]:
    with FakeFlare() as system:
        yield system


@pytest.fixture
def jobs(tmp_path: Path) -> JobFolders:
    return JobFolders(tmp_path / "jobs")


@pytest.fixture
def session(fake: FakeFlare, tmp_path: Path) -> Iterator[Session]:
    opened = fake.session(download_dir=str(tmp_path / "downloads"))
    yield opened
    opened.close()


def _submit(session: SessionSpec, jobs: JobFolders) -> str:
    return session.submit_job(str(jobs.hello()))


# --- sessions -------------------------------------------------------------------------------------


def test_fake_is_a_harness(fake: FakeFlare) -> None:
    harness: Harness = fake
    assert harness.sites == ("site-1", "site-2")


def test_session_is_the_production_driver(fake: FakeFlare) -> None:
    session = fake.session()
    assert isinstance(session, Session)
    assert session.list_jobs() == []
    session.close()


async def _async_roundtrip(fake: FakeFlare) -> list[dict[str, object]]:
    session = fake.async_session()
    assert isinstance(session, AsyncSession)
    async with session:
        return await session.list_jobs()


def test_async_session_is_the_production_driver(fake: FakeFlare) -> None:
    assert asyncio.run(_async_roundtrip(fake)) == []


@pytest.mark.parametrize(
    "user",
    [
        "admin@nvidia.com",
        "lead@nvidia.com",
        "member@nvidia.com",
        "orgadmin@nvidia.com",
        "lead@other.org",
        "orgadmin@other.org",
    ],
)
def test_default_users_log_in_with_their_name_as_key(fake: FakeFlare, user: str) -> None:
    session = fake.session(user)
    assert session.list_studies()["identity"]["name"] == user
    session.close()


def test_wrong_key_is_rejected(fake: FakeFlare) -> None:
    with pytest.raises(AuthenticationError):
        fake.session(DEFAULT_ADMIN, api_key="not-the-key")


def test_unknown_user_is_rejected(fake: FakeFlare) -> None:
    with pytest.raises(AuthenticationError):
        fake.session("nobody@example.com")


def test_malformed_study_fails_before_login(fake: FakeFlare) -> None:
    with pytest.raises(InvalidArgumentError, match="study"):
        fake.session(study="Not A Study")


def test_unknown_session_option_is_a_type_error(fake: FakeFlare) -> None:
    with pytest.raises(TypeError):
        fake.session(colour="blue")


def test_custom_users(tmp_path: Path) -> None:
    with FakeFlare(users=[("ops@acme.io", "acme", "project_admin")]) as fake:
        assert fake.session("ops@acme.io").list_jobs() == []
        with pytest.raises(AuthenticationError):
            fake.session(DEFAULT_ADMIN)


def test_custom_sites() -> None:
    with FakeFlare(sites=("alpha", "beta", "gamma")) as fake:
        names = [c.name for c in fake.session().get_connected_client_list()]
        assert sorted(names) == ["alpha", "beta", "gamma"]
        assert fake.sites == ("alpha", "beta", "gamma")


# --- the memory URL -------------------------------------------------------------------------------


def test_url_reaches_the_fake(fake: FakeFlare, jobs: JobFolders) -> None:
    job_id = _submit(fake.session(), jobs)
    remote = connect(fake.url, user=DEFAULT_ADMIN, api_key=DEFAULT_ADMIN)
    assert [row["job_id"] for row in remote.list_jobs()] == [job_id]
    remote.close()


def test_explicit_name() -> None:
    with FakeFlare(name="named-fake") as fake:
        assert fake.url == "memory://named-fake"
        connect("memory://named-fake", user=DEFAULT_ADMIN, api_key=DEFAULT_ADMIN).close()


def test_generated_names_are_unique() -> None:
    with FakeFlare() as first, FakeFlare() as second:
        assert first.name != second.name


# --- time and jobs --------------------------------------------------------------------------------


def test_ids_source_makes_job_ids_reproducible(jobs: JobFolders) -> None:
    # Two fakes on the same seeded source number their jobs alike (side-by-side comparisons
    # and reproducible test output need that; the default is random, as a real server).
    folder = str(jobs.hello())
    ids = []
    for _ in range(2):
        with FakeFlare(ids=SeededIds(7)) as system, system.session() as session:
            ids.append(session.submit_job(folder))
    assert ids[0] == ids[1]


def test_clock_starts_at_the_default_epoch_and_advances(fake: FakeFlare) -> None:
    assert fake.now == DEFAULT_EPOCH
    fake.advance(12.5)
    assert fake.now == DEFAULT_EPOCH + 12.5


def test_wait_for_job_runs_in_virtual_time(
    fake: FakeFlare, session: Session, jobs: JobFolders
) -> None:
    job_id = _submit(session, jobs)
    meta = session.wait_for_job(job_id, timeout=3600)
    assert meta["status"] == "FINISHED:COMPLETED"
    assert 10.0 <= fake.now - DEFAULT_EPOCH < 60.0


def test_job_duration_is_configurable(jobs: JobFolders) -> None:
    with FakeFlare(job_duration=500.0) as fake:
        session = fake.session()
        session.wait_for_job(_submit(session, jobs), timeout=0)
        assert fake.now - DEFAULT_EPOCH >= 500.0


def test_finish_job_dispatches_a_waiting_job(
    fake: FakeFlare, session: Session, jobs: JobFolders
) -> None:
    job_id = _submit(session, jobs)
    fake.finish_job(job_id)
    assert session.get_job_meta(job_id)["status"] == "FINISHED:COMPLETED"


def test_finish_job_with_a_status(fake: FakeFlare, session: Session, jobs: JobFolders) -> None:
    job_id = _submit(session, jobs)
    fake.finish_job(job_id, "FINISHED:ABNORMAL")
    assert session.get_job_meta(job_id)["status"] == "FINISHED:ABNORMAL"


def test_finish_job_rejects_a_live_status(
    fake: FakeFlare, session: Session, jobs: JobFolders
) -> None:
    job_id = _submit(session, jobs)
    with pytest.raises(InvalidArgumentError):
        fake.finish_job(job_id, "RUNNING")


def test_finish_unknown_job(fake: FakeFlare) -> None:
    with pytest.raises(KeyError):
        fake.finish_job("00000000-0000-4000-8000-000000000000")


def test_fail_job_logs_the_reason(fake: FakeFlare, session: Session, jobs: JobFolders) -> None:
    job_id = _submit(session, jobs)
    fake.fail_job(job_id, reason="GPU on fire")
    meta = session.wait_for_job(job_id, timeout=60)
    assert meta["status"] == "FINISHED:EXECUTION_EXCEPTION"
    assert "GPU on fire" in session.get_job_logs(job_id)["logs"]["server"]


def test_hold_and_release(fake: FakeFlare, session: Session, jobs: JobFolders) -> None:
    job_id = _submit(session, jobs)
    fake.hold_job(job_id)
    fake.advance(500.0)
    assert session.get_job_meta(job_id)["status"] == "RUNNING"
    fake.release_job(job_id)
    assert session.get_job_meta(job_id)["status"] == "FINISHED:COMPLETED"


def test_job_meta_back_door_ignores_studies(fake: FakeFlare, jobs: JobFolders) -> None:
    fake.add_study("hidden", {"nvidia": ["site-1", "site-2"]}, [DEFAULT_ADMIN])
    job_id = _submit(fake.session(study="hidden"), jobs)
    with pytest.raises(JobNotFound):
        fake.session().get_job_meta(job_id)
    meta = fake.job_meta(job_id)
    assert meta["study"] == "hidden"
    meta["status"] = "tampered"
    assert fake.job_meta(job_id)["status"] != "tampered"


def test_job_meta_of_unknown_job(fake: FakeFlare) -> None:
    with pytest.raises(KeyError):
        fake.job_meta("00000000-0000-4000-8000-000000000000")


# --- sites, users, studies ------------------------------------------------------------------------


def test_connect_and_disconnect_sites(fake: FakeFlare, session: Session) -> None:
    fake.connect_site("site-3", org="other")
    fake.disconnect_site("site-1")
    fake.disconnect_site("never-connected")
    names = sorted(c.name for c in session.get_connected_client_list())
    assert names == ["site-2", "site-3"]
    orgs = {site.name: site.org for site in fake.service.sites()}
    assert orgs["site-3"] == "other"


def test_waiting_job_runs_when_sites_connect(
    fake: FakeFlare, session: Session, jobs: JobFolders
) -> None:
    fake.disconnect_site("site-2")
    job_id = _submit(session, jobs)
    fake.advance(60.0)
    assert session.get_job_meta(job_id)["status"] == "SUBMITTED"
    fake.connect_site("site-2")
    assert session.wait_for_job(job_id, timeout=600)["status"] == "FINISHED:COMPLETED"


def test_add_user(fake: FakeFlare) -> None:
    fake.add_user("new@nvidia.com", "nvidia", "lead")
    fake.add_user("keyed@nvidia.com", "nvidia", "member", api_key="s3cret")
    assert fake.session("new@nvidia.com").list_jobs() == []
    assert fake.session("keyed@nvidia.com", api_key="s3cret").list_jobs() == []
    with pytest.raises(AuthenticationError):
        fake.session("keyed@nvidia.com")


def test_add_study(fake: FakeFlare) -> None:
    fake.add_study("trial", {"nvidia": ["site-1"]}, ["lead@nvidia.com"])
    lead = fake.session("lead@nvidia.com", "trial")
    assert lead.list_studies()["studies"] == ["trial"]
    with pytest.raises(AuthenticationError):
        fake.session(DEFAULT_ADMIN, "trial")


def test_add_study_checks_the_registry_rules(fake: FakeFlare) -> None:
    with pytest.raises(ValueError, match="site"):
        fake.add_study("broken", {"a": ["site-1"], "b": ["site-1"]}, [])


# --- faults and counters --------------------------------------------------------------------------


def test_requests_are_counted(fake: FakeFlare) -> None:
    session = fake.session()
    before = fake.requests_received
    session.list_jobs()
    session.check_status("server")
    assert fake.requests_received == before + 2
    session.close()
    assert fake.requests_received == before + 3


def test_failure_before_the_system(fake: FakeFlare, session: Session, jobs: JobFolders) -> None:
    job_id = _submit(session, jobs)
    before = fake.requests_received
    fake.inject_failures(1, "before")
    with pytest.raises(NoConnection):
        session.delete_job(job_id)
    assert fake.requests_received == before
    assert session.get_job_meta(job_id)["job_id"] == job_id


def test_failure_after_the_system(fake: FakeFlare, session: Session, jobs: JobFolders) -> None:
    job_id = _submit(session, jobs)
    fake.inject_failures(1, "after")
    with pytest.raises(NoConnection):
        session.delete_job(job_id)
    with pytest.raises(JobNotFound):
        session.get_job_meta(job_id)


def test_failures_are_shared_by_all_sessions(fake: FakeFlare) -> None:
    first, second = fake.session(), fake.session("lead@nvidia.com")
    fake.inject_failures(1, "before")
    with pytest.raises(NoConnection):
        second.clone_job("00000000-0000-4000-8000-000000000000")
    assert first.list_jobs() == []


def test_inject_replaces_and_clears(fake: FakeFlare, session: Session) -> None:
    fake.inject_failures(50)
    fake.inject_failures(0)
    assert session.list_jobs() == []


@pytest.mark.parametrize(("n", "when"), [(-1, "before"), (1, "during")])
def test_inject_rejects_bad_arguments(fake: FakeFlare, n: int, when: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        fake.inject_failures(n, when)


# --- workspace files ------------------------------------------------------------------------------


def test_put_file_is_visible_to_the_shell(fake: FakeFlare, session: Session) -> None:
    fake.put_file("site-1", "data/notes.txt", b"hello site\n")
    fake.put_file("server", "readme.txt", b"hello server\n")
    assert session.cat_target("site-1", file="data/notes.txt") == "hello site\n"
    assert session.cat_target("server", file="readme.txt") == "hello server\n"


def test_put_file_refuses_escaping_paths(fake: FakeFlare) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the workspace's own message
        fake.put_file("server", "../outside.txt", b"x")


def test_append_job_log(fake: FakeFlare, session: Session, jobs: JobFolders) -> None:
    job_id = _submit(session, jobs)
    fake.hold_job(job_id)
    fake.advance(5.0)
    fake.append_job_log(job_id, "site-2", b"custom line\n")
    logs = session.get_job_logs(job_id, target="site-2")["logs"]
    assert logs["site-2"].endswith("custom line\n")


# --- closing --------------------------------------------------------------------------------------


def test_close_stops_everything(jobs: JobFolders) -> None:
    fake = FakeFlare()
    session = fake.session()
    remote = connect(fake.url, user=DEFAULT_ADMIN, api_key=DEFAULT_ADMIN)
    fake.close()
    fake.close()
    with pytest.raises(NoConnection):
        session.list_jobs()
    with pytest.raises(NoConnection):
        remote.list_jobs()
    with pytest.raises(NoConnection):
        fake.session()
    with pytest.raises(NoConnection):
        connect(fake.url, user=DEFAULT_ADMIN, api_key=DEFAULT_ADMIN)
    session.close()
    remote.close()


def test_repr_names_the_system() -> None:
    with FakeFlare(name="shown") as fake:
        assert "shown" in repr(fake)


def test_jobs_submitted_at_one_instant_list_in_a_total_order(
    session: Session, jobs: JobFolders
) -> None:
    # Issue 10, item 10: no clock advance between the submits, so every submit time ties.
    submitted = [_submit(session, jobs) for _ in range(3)]
    forward = [row["job_id"] for row in session.list_jobs()]
    backward = [row["job_id"] for row in session.list_jobs(reverse=True)]
    assert forward == submitted
    assert backward == submitted[::-1]
    assert [row["job_id"] for row in session.list_jobs(limit=2)] == submitted[1:]
    assert [row["job_id"] for row in session.list_jobs(limit=2, reverse=True)] == [
        submitted[2],
        submitted[1],
    ]
