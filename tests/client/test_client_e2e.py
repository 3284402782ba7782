"""End to end: every SessionSpec method through Session and AsyncSession, over the memory
transport, against the real AdminService with the simulated engine on a virtual clock.

Each test runs twice: ``sync`` drives a ``Session``; ``async`` drives an ``AsyncSession``
through a blocking facade that runs each coroutine on a private event loop, so the same test
body exercises both drivers.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, cast

import pytest

from flare_adapters.engines.simulated import SimulatedEngine
from flare_adapters.examples import example
from flare_adapters.memory.clock import VirtualClock
from flare_adapters.memory.system import build_memory_service
from flare_adapters.memory.transport import MemoryTransport
from flare_adapters.session import AsyncSession, Session
from flare_core import (
    AuthorizationError,
    ClientsStillRunning,
    CommandError,
    InvalidJobDefinition,
    InvalidTarget,
    JobNotDone,
    JobNotFound,
    JobNotRunning,
    JobTimeout,
    MonitorReturnCode,
    NoClientsAvailable,
    NoConnection,
    SessionClosed,
    SessionExpired,
    SubmitTokenConflict,
    SubmitTokenJobDeleted,
)
from flare_core.service import AdminService
from flare_ports.session_spec import SessionSpec

ADMIN = "admin@nvidia.com"
MEMBER = "member@nvidia.com"
LEAD = "lead@nvidia.com"
EXAMPLE = "hello-numpy-sag"


def _copy(source: Traversable, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_dir():
            _copy(item, target / item.name)
        else:
            (target / item.name).write_bytes(item.read_bytes())


class _Blocking:
    """Runs an AsyncSession's coroutines to completion on a private loop (the async flavour)."""

    def __init__(self, session: AsyncSession, runner: asyncio.Runner) -> None:
        self._session = session
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._session, "aclose" if name == "close" else name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._runner.run(attribute(*args, **kwargs))

        return call


class World:
    """One in-memory FL system plus a way to open sessions on it."""

    def __init__(self, root: Path, flavour: str, runner: asyncio.Runner) -> None:
        self.service: AdminService
        self.engine: SimulatedEngine
        self.clock: VirtualClock
        self.service, self.engine, self.clock = build_memory_service()
        self.root = root
        self.flavour = flavour
        self.runner = runner
        self.upload = root / "upload"
        _copy(example(EXAMPLE), self.upload / EXAMPLE)
        self.transports: list[MemoryTransport] = []

    def transport(self, user: str = ADMIN, study: str = "default") -> MemoryTransport:
        transport = MemoryTransport(self.service, self.clock, user=user, api_key=user, study=study)
        self.transports.append(transport)
        return transport

    def session(self, user: str = ADMIN, study: str = "default") -> SessionSpec:
        options: dict[str, Any] = {
            "upload_dir": str(self.upload),
            "download_dir": str(self.root / "downloads"),
        }
        if self.flavour == "sync":
            return Session(self.transport(user, study), **options)
        blocking = _Blocking(AsyncSession(self.transport(user, study), **options), self.runner)
        return cast(SessionSpec, blocking)

    def variant(self, name: str, num_rounds: int) -> str:
        """A copy of the example job with a different ``num_rounds`` (different content)."""
        folder = self.upload / name
        shutil.copytree(self.upload / EXAMPLE, folder)
        config = folder / "app" / "config" / "config_fed_server.json"
        data = json.loads(config.read_text())
        data["workflows"][0]["args"]["num_rounds"] = num_rounds
        config.write_text(json.dumps(data))
        return str(folder)


@pytest.fixture(params=["sync", "async"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    with asyncio.Runner() as runner:
        yield World(tmp_path, request.param, runner)


@pytest.fixture
def admin(world: World) -> Iterator[SessionSpec]:
    session = world.session()
    yield session
    session.close()


# --- jobs -------------------------------------------------------------------------------------


def test_job_lifecycle(world: World, admin: SessionSpec) -> None:
    job_id = admin.submit_job(EXAMPLE)
    meta = admin.get_job_meta(job_id)
    assert meta["status"] == "SUBMITTED"
    assert meta["submitter_name"] == ADMIN
    assert "submit_token" not in meta
    rows = admin.list_jobs()
    assert [(r["job_id"], r["job_name"], r["status"]) for r in rows] == [
        (job_id, EXAMPLE, "SUBMITTED")
    ]
    final = admin.wait_for_job(job_id, poll_interval=2.0)
    assert final["status"] == "FINISHED:COMPLETED"
    # The sleep woke on the job's events: it ended at the job's end, not a poll later.
    assert world.clock.monotonic() == pytest.approx(11.0)
    path = Path(admin.download_job_result(job_id))
    assert path == world.root / "downloads" / job_id
    assert json.loads((path / "meta.json").read_text())["status"] == "FINISHED:COMPLETED"
    # job.zip unzipped: the job folder is the single directory under job/ (reference §1.3).
    assert [p.relative_to(path) for p in (path / "job").glob("*/meta.json")] == [
        Path("job", json.loads((path / "meta.json").read_text())["job_folder_name"], "meta.json")
    ]
    assert (path / "workspace" / "site-1" / "log.txt").exists()
    logs = admin.get_job_logs(job_id, target="all")
    assert set(logs["logs"]) == {"server", "site-1", "site-2"}
    tail = admin.get_job_logs(job_id, "site-1", tail_lines=1)
    assert tail["logs"]["site-1"].endswith("FINISHED:COMPLETED\n")
    assert tail["logs"]["site-1"].count("\n") == 1
    grep = admin.get_job_logs(job_id, grep_pattern="round 1")
    assert grep["logs"]["server"].count("\n") == 1


def test_download_of_a_running_job_is_refused(world: World, admin: SessionSpec) -> None:
    job_id = admin.submit_job(EXAMPLE)
    with pytest.raises(JobNotDone):
        admin.download_job_result(job_id)


def test_abort_clone_and_delete(world: World, admin: SessionSpec) -> None:
    job_id = admin.submit_job(EXAMPLE)
    admin.abort_job(job_id)
    assert admin.get_job_meta(job_id)["status"] == "FINISHED:ABORTED"
    admin.abort_job(job_id)  # aborting a finished job is a no-op
    clone = admin.clone_job(job_id)
    clone_meta = admin.get_job_meta(clone)
    assert (clone_meta["status"], clone_meta["cloned_from"]) == ("SUBMITTED", job_id)
    world.engine.hold_job(clone)
    world.clock.advance(5)
    assert admin.get_job_meta(clone)["status"] == "RUNNING"
    result = admin.delete_job(clone)  # DECISIONS §10: a live job is aborted first
    assert result == {"job_id": clone, "submit_records_marked_deleted": 0}
    with pytest.raises(JobNotFound):
        admin.get_job_meta(clone)
    assert [row["job_id"] for row in admin.list_jobs()] == [job_id]


def test_failed_jobs_have_components(world: World, admin: SessionSpec) -> None:
    job_id = admin.submit_job(EXAMPLE)
    world.engine.hold_job(job_id)
    world.clock.advance(2)
    world.engine.fail_job(job_id)
    assert admin.wait_for_job(job_id)["status"] == "FINISHED:EXECUTION_EXCEPTION"
    components = admin.list_job_components(job_id)
    assert "ERRORLOG_site-1" in components
    path = Path(admin.download_job_components(job_id))
    assert (path / "ERRORLOG_site-1").exists()


def test_submit_token_replay_conflict_and_deletion(world: World, admin: SessionSpec) -> None:
    first = admin.submit_job(EXAMPLE, submit_token="retry.01:A_b-c")
    renamed = world.upload / "renamed-copy"
    shutil.copytree(world.upload / EXAMPLE, renamed)
    assert admin.submit_job(str(renamed), submit_token="retry.01:A_b-c") == first
    assert len(admin.list_jobs()) == 1
    changed = world.variant("changed", 5)
    with pytest.raises(SubmitTokenConflict) as conflict:
        admin.submit_job(changed, submit_token="retry.01:A_b-c")
    assert conflict.value.existing_job_id == first
    assert [r["job_id"] for r in admin.list_jobs(submit_token="retry.01:A_b-c")] == [first]
    assert admin.delete_job(first)["submit_records_marked_deleted"] == 1
    with pytest.raises(SubmitTokenJobDeleted) as deleted:
        admin.submit_job(EXAMPLE, submit_token="retry.01:A_b-c")
    assert (deleted.value.job_id, deleted.value.state) == (first, "job_deleted")
    with pytest.raises(SubmitTokenJobDeleted):
        admin.list_jobs(submit_token="retry.01:A_b-c")


@pytest.mark.parametrize("when", ["before", "after"])
def test_submit_is_exactly_once_across_lost_replies(world: World, when: str) -> None:
    session = world.session()
    world.transports[-1].fail_next(2, when=when)  # type: ignore[arg-type]  # parametrized
    job_id = session.submit_job(EXAMPLE)
    assert [row["job_id"] for row in session.list_jobs()] == [job_id]
    # Two separate calls without a token still create two jobs.
    session.submit_job(EXAMPLE)
    assert len(session.list_jobs()) == 2


def test_lost_replies_of_reads_are_retried(world: World, admin: SessionSpec) -> None:
    world.transports[-1].fail_next(2, when="after")
    assert admin.list_jobs() == []
    assert world.transports[-1].pending_failures == 0


def test_invalid_definitions_are_refused(world: World, admin: SessionSpec) -> None:
    broken = world.upload / "broken"
    shutil.copytree(world.upload / EXAMPLE, broken)
    (broken / "meta.json").write_text(
        json.dumps({"name": "broken", "deploy_map": {"app": ["site-1"]}})
    )
    with pytest.raises(InvalidJobDefinition, match="invalid job definition"):
        admin.submit_job(str(broken))
    with pytest.raises(InvalidJobDefinition, match="not a valid folder"):
        admin.submit_job("missing")


def test_monitor_with_callback(world: World, admin: SessionSpec) -> None:
    job_id = admin.submit_job(EXAMPLE)
    statuses: list[str] = []

    def record(session: Any, polled_id: str, meta: dict[str, Any]) -> bool:
        statuses.append(meta["status"])
        return True

    assert admin.monitor_job(job_id, 0, 5.0, record) is MonitorReturnCode.JOB_FINISHED
    assert statuses[0] == "SUBMITTED"
    assert statuses[-1] == "FINISHED:COMPLETED"
    rc, meta = admin.monitor_job_and_return_job_meta(job_id)
    assert rc is MonitorReturnCode.JOB_FINISHED
    assert meta is not None
    assert meta["job_id"] == job_id


def test_wait_times_out_on_a_held_job(world: World, admin: SessionSpec) -> None:
    job_id = admin.submit_job(EXAMPLE)
    world.engine.hold_job(job_id)
    with pytest.raises(JobTimeout):
        admin.wait_for_job(job_id, timeout=30, poll_interval=5)
    assert admin.monitor_job(job_id, timeout=10) is MonitorReturnCode.TIMEOUT


def test_running_job_stats_and_log_configuration(world: World, admin: SessionSpec) -> None:
    job_id = admin.submit_job(EXAMPLE)
    world.engine.hold_job(job_id)
    with pytest.raises(JobNotRunning):
        admin.show_stats(job_id, "server")
    world.clock.advance(3)
    stats = admin.show_stats(job_id, "all")
    assert set(stats) == {"server", "site-1", "site-2"}
    world.engine.inject_error(job_id, "site-1", "boom")
    errors = admin.show_errors(job_id, "client", ["site-1"])
    assert errors["site-1"] == {"error": ["boom"]}
    admin.reset_errors(job_id)
    assert admin.show_errors(job_id, "client", ["site-1"])["site-1"] == {}
    assert admin.configure_job_log(job_id, {"version": 1}, "server") == {
        "server": "log config updated"
    }
    assert world.engine.job_log_config(job_id, "server") == '{"version": 1}'
    assert admin.configure_site_log("DEBUG", "site-2") == {"site-2": "log config updated"}
    assert world.engine.site_log_config("site-2") == "DEBUG"


# --- system -----------------------------------------------------------------------------------


def test_system_views(world: World, admin: SessionSpec) -> None:
    job_id = admin.submit_job(EXAMPLE)
    world.engine.hold_job(job_id)
    world.clock.advance(3)
    info = admin.get_system_info()
    assert info.server_info.status == "started"
    assert info.server_info.start_time == world.service.start_time
    assert [c.name for c in info.client_info] == ["site-1", "site-2"]
    assert [j.job_id for j in info.job_info] == [job_id]
    assert [c.name for c in admin.get_connected_client_list()] == ["site-1", "site-2"]
    status = admin.check_status("client", ["site-1"])
    assert status["site-1"]["jobs"][0]["job_id"] == job_id
    rows = admin.get_client_job_status()
    assert rows is not None
    assert {(r["client_name"], r["job_id"]) for r in rows} == {
        ("site-1", job_id),
        ("site-2", job_id),
    }
    resources = admin.report_resources("all")
    assert set(resources) == {"server", "site-1", "site-2"}
    assert all(isinstance(value, dict) for value in resources.values())
    assert admin.report_version("server") == {"server": {"version": "0.1.0"}}
    with pytest.raises(InvalidTarget, match="site-9"):
        admin.check_status("client", ["site-9"])


def test_no_clients(world: World, admin: SessionSpec) -> None:
    world.service.disconnect_site("site-1")
    world.service.disconnect_site("site-2")
    assert admin.get_client_job_status() is None
    with pytest.raises(NoClientsAvailable):
        admin.check_status("client")
    assert admin.get_connected_client_list() == []


def test_client_administration(world: World, admin: SessionSpec) -> None:
    admin.remove_client("site-2")
    assert [c.name for c in admin.get_connected_client_list()] == ["site-1"]
    disabled = admin.disable_client("site-2")
    assert disabled["clients"][0]["state"] == "disabled"
    assert admin.disable_client("site-2")["clients"][0]["already_disabled"] is True
    enabled = admin.enable_client("site-2")
    assert enabled["clients"][0]["was_disabled"] is True
    with pytest.raises(InvalidTarget):
        admin.remove_client("site-9")


def test_restart_server_closes_the_session(world: World, admin: SessionSpec) -> None:
    before = world.service.start_time
    result = admin.restart("server")
    assert result["server_status"] == "ok"
    assert world.service.start_time > before
    with pytest.raises(SessionClosed):
        admin.list_jobs()
    assert world.session().list_jobs() == []


def test_restart_all_and_clients(world: World, admin: SessionSpec) -> None:
    admin.restart("client", ["site-1"])
    assert admin.list_jobs() == []  # a client restart keeps the session
    result = admin.restart("all", timeout=10)
    assert set(result["client_status"]) == {"site-1", "site-2"}
    with pytest.raises(SessionClosed):
        admin.list_jobs()


def test_restart_is_refused_while_a_job_runs(world: World, admin: SessionSpec) -> None:
    job_id = admin.submit_job(EXAMPLE)
    world.engine.hold_job(job_id)
    world.clock.advance(3)
    with pytest.raises(JobNotDone):
        admin.restart("server")
    assert admin.get_job_meta(job_id)["status"] == "RUNNING"


def test_shutdown_clients_then_server(world: World, admin: SessionSpec) -> None:
    with pytest.raises(ClientsStillRunning):
        admin.shutdown("server")
    admin.shutdown("client", ["site-1"])
    assert [c.name for c in admin.get_connected_client_list()] == ["site-2"]
    admin.shutdown("all")
    with pytest.raises(SessionClosed):
        admin.list_jobs()
    with pytest.raises(NoConnection):
        world.session()


def test_shutdown_system(world: World, admin: SessionSpec) -> None:
    admin.shutdown_system()
    with pytest.raises(NoConnection):
        admin.list_jobs()
    admin.close()


def test_timeouts_and_local_apps(world: World, admin: SessionSpec) -> None:
    admin.set_timeout(2.5)
    assert admin.list_jobs() == []
    admin.unset_timeout()
    assert admin.get_available_apps_to_upload() == [EXAMPLE]


# --- shell ------------------------------------------------------------------------------------


def test_shell_commands(world: World, admin: SessionSpec) -> None:
    job_id = admin.submit_job(EXAMPLE)
    admin.wait_for_job(job_id)
    log = f"{job_id}/log.txt"
    assert admin.get_working_directory("site-1").endswith("\n")
    assert job_id in admin.ls_target("site-1")
    assert "log.txt" in admin.ls_target("server", "-l", job_id)
    text = admin.cat_target("site-1", file=log)
    assert "FINISHED:COMPLETED" in text
    assert admin.head_target("site-1", "-n 1", log) == text.splitlines(keepends=True)[0]
    assert admin.tail_target("site-1", "-n 1", log) == text.splitlines(keepends=True)[-1]
    assert "round 2" in admin.grep_target("site-1", None, "round 2", log)
    assert "No such file" in admin.tail_target_log("server")
    assert "No such file" in admin.head_target_log("site-2", "-n 2")
    with pytest.raises(InvalidTarget):
        admin.ls_target("site-9")


# --- studies ------------------------------------------------------------------------------------


def test_study_administration(world: World, admin: SessionSpec) -> None:
    created = admin.register_study("cancer-research", site_orgs=["nvidia:site-1"])
    assert created["sites"] == ["site-1"]
    added = admin.add_study_site("cancer-research", site_orgs=["nvidia:site-2"])
    assert added["added"] == ["site-2"]
    removed = admin.remove_study_site("cancer-research", site_orgs=["nvidia:site-2"])
    assert removed["removed"] == ["site-2"]
    assert admin.add_study_user("cancer-research", LEAD) == {
        "study": "cancer-research",
        "user": LEAD,
    }
    assert admin.show_study("cancer-research")["users"] == [ADMIN, LEAD]
    assert admin.list_studies()["studies"] == ["cancer-research"]
    with pytest.raises(CommandError) as duplicate:
        admin.add_study_user("cancer-research", LEAD)
    assert duplicate.value.error_code == "USER_ALREADY_IN_STUDY"
    lead = world.session(LEAD, study="cancer-research")
    job_id = lead.submit_job(EXAMPLE)
    assert lead.get_job_meta(job_id)["study"] == "cancer-research"
    with pytest.raises(JobNotFound):
        admin.get_job_meta(job_id)  # another study's job is hidden
    with pytest.raises(CommandError) as busy:
        admin.remove_study("cancer-research")
    assert busy.value.error_code == "STUDY_HAS_JOBS"
    lead.delete_job(job_id)
    lead.close()
    assert admin.remove_study_user("cancer-research", LEAD)["removed"] is True
    assert admin.remove_study("cancer-research") == {"name": "cancer-research", "removed": True}
    with pytest.raises(CommandError) as missing:
        admin.show_study("cancer-research")
    assert missing.value.error_code == "STUDY_NOT_FOUND"


def test_project_admin_must_use_site_orgs(world: World, admin: SessionSpec) -> None:
    with pytest.raises(CommandError) as refused:
        admin.register_study("s1", ["site-1"])
    assert (refused.value.error_code, refused.value.exit_code) == ("INVALID_ARGS", 4)


# --- sessions and authorization ---------------------------------------------------------------


def test_members_cannot_submit(world: World) -> None:
    member = world.session(MEMBER)
    with pytest.raises(AuthorizationError):
        member.submit_job(EXAMPLE)
    assert member.list_jobs() == []
    member.close()


def test_idle_sessions_expire(world: World, admin: SessionSpec) -> None:
    assert admin.list_jobs() == []
    world.clock.advance(1801)
    with pytest.raises(SessionExpired, match="inactivity"):
        admin.list_jobs()
    with pytest.raises(SessionExpired):
        admin.get_system_info()
    admin.close()


def test_close_logs_out(world: World) -> None:
    session = world.session()
    session.close()
    session.close()
    assert world.transports[-1].closed
    with pytest.raises(SessionClosed):
        session.list_jobs()


def _public_method_names() -> list[str]:
    return sorted(
        name
        for name in dir(SessionSpec)
        if not name.startswith("_") and callable(getattr(SessionSpec, name))
    )


def test_every_method_is_exercised_here() -> None:
    source = Path(__file__).read_text()
    missing = [name for name in _public_method_names() if f".{name}(" not in source]
    assert missing == []


def test_watch_jobs_reports_each_status_of_a_real_run(tmp_path: Path) -> None:
    from flare_testing import FakeFlare, JobFolders

    with FakeFlare() as fake, fake.session() as session:
        job_id = session.submit_job(str(JobFolders(tmp_path).hello()))
        statuses = [change.new_status for change in session.watch_jobs(job_id)]
    assert statuses == ["SUBMITTED", "RUNNING", "FINISHED:COMPLETED"]
