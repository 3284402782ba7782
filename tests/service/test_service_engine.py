"""The simulated engine, driven directly with a recording listener."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flare_adapters.engines.simulated import SimulatedEngine, plan_run
from flare_adapters.memory.blobs import zip_view
from flare_adapters.memory.clock import VirtualClock
from flare_adapters.memory.workspaces import MemoryWorkspaces
from flare_core import InvalidArgumentError
from flare_core.service.ports import JobLaunch
from tests.service.helpers import CLIENT_CONFIG, SERVER_CONFIG, job_zip

JOB = "00000000-0000-4000-8000-000000000001"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def job_started(self, job_id: str) -> None:
        self.events.append(("started", job_id))

    def job_finished(self, job_id: str, status: str, reason: str = "") -> None:
        self.events.append(("finished", job_id, status, reason))

    def job_progress(self, job_id: str, progress: dict[str, Any]) -> None:
        self.events.append(("progress", job_id, progress))


def _engine(**options: Any) -> tuple[SimulatedEngine, VirtualClock, MemoryWorkspaces, Recorder]:
    clock = VirtualClock()
    workspaces = MemoryWorkspaces()
    engine = SimulatedEngine(clock, workspaces, **options)
    recorder = Recorder()
    engine.attach(recorder)
    return engine, clock, workspaces, recorder


def _launch(engine: SimulatedEngine, job_id: str = JOB, data: bytes | None = None) -> None:
    engine.launch(
        JobLaunch(
            job_id=job_id,
            study="default",
            name="hello",
            sites=["site-1", "site-2"],
            meta={},
            archive=zip_view(data or job_zip()),
        )
    )


def test_a_job_starts_at_launch_and_completes_after_its_duration() -> None:
    engine, clock, workspaces, recorder = _engine(duration=5.0)
    _launch(engine)
    assert recorder.events == [("started", JOB)]
    assert engine.is_running(JOB)
    clock.advance(4.9)
    assert len(recorder.events) == 1
    clock.advance(0.1)
    assert recorder.events[-1] == ("finished", JOB, "FINISHED:COMPLETED", "")
    assert not engine.is_running(JOB)
    for site in ("server", "site-1", "site-2"):
        tree = workspaces.tree(site)
        log = tree.read(f"{JOB}/log.txt").decode()
        assert "2023-11-14 22:13:20,000" in log
        assert "round 2 finished" in log
        assert log.rstrip().endswith("job finished with status FINISHED:COMPLETED")
        result = json.loads(tree.read(f"{JOB}/result.json"))
        assert result == {"job_id": JOB, "site": site, "status": "FINISHED:COMPLETED", "rounds": 3}


def test_start_delay_keeps_the_job_dispatched_until_it_elapses() -> None:
    engine, clock, _, recorder = _engine(duration=5.0, start_delay=2.0)
    _launch(engine)
    assert recorder.events == []
    assert not engine.is_running(JOB)
    clock.advance(2.0)
    assert recorder.events == [("started", JOB)]
    clock.advance(5.0)
    assert recorder.events[-1][2] == "FINISHED:COMPLETED"


def test_hold_keeps_a_job_running_and_release_ends_it_at_its_planned_time() -> None:
    engine, clock, _, recorder = _engine(duration=5.0)
    _launch(engine)
    engine.hold_job(JOB)
    clock.advance(3.0)
    engine.release_job(JOB)
    clock.advance(1.9)
    assert engine.is_running(JOB)
    clock.advance(0.1)
    assert recorder.events[-1][2] == "FINISHED:COMPLETED"


def test_release_after_the_planned_end_finishes_at_once() -> None:
    engine, clock, _, recorder = _engine(duration=5.0)
    engine.hold_job(JOB)  # before launch: applies once launched
    _launch(engine)
    clock.advance(100.0)
    assert engine.is_running(JOB)
    engine.release_job(JOB)
    assert recorder.events[-1][2] == "FINISHED:COMPLETED"
    engine.release_job(JOB)  # harmless once ended


def test_finish_and_fail_end_a_job_now_with_the_given_status() -> None:
    engine, _, workspaces, recorder = _engine()
    _launch(engine, "a")
    _launch(engine, "b")
    engine.finish_job("a", "FINISHED:ABNORMAL")
    engine.fail_job("b", reason="boom")
    assert recorder.events[-2:] == [
        ("finished", "a", "FINISHED:ABNORMAL", ""),
        ("finished", "b", "FINISHED:EXECUTION_EXCEPTION", "boom"),
    ]
    assert b"boom" in workspaces.tree("site-1").read("b/error_log.txt")
    assert workspaces.tree("site-1").stat("a/error_log.txt") is None
    assert engine.running_jobs() == []


def test_control_api_rejects_bad_arguments() -> None:
    engine, _, _, _ = _engine()
    with pytest.raises(KeyError):
        engine.finish_job("unknown")
    _launch(engine)
    with pytest.raises(InvalidArgumentError):
        engine.finish_job(JOB, "RUNNING")
    with pytest.raises(InvalidArgumentError):
        engine.set_duration(-1)


def test_abort_reports_aborted_and_unknown_jobs_are_not_aborted() -> None:
    engine, clock, _, recorder = _engine()
    _launch(engine)
    assert engine.abort(JOB)
    assert recorder.events[-1] == ("finished", JOB, "FINISHED:ABORTED", "aborted by admin")
    assert not engine.abort(JOB)
    clock.advance(100)  # the cancelled end timer does not fire
    assert len(recorder.events) == 2


def test_unimportable_executor_fails_the_job_one_second_after_start() -> None:
    engine, clock, _, recorder = _engine(duration=10.0)
    bad = {
        "executors": [{"tasks": ["train"], "executor": {"path": "no_such.module.Trainer"}}],
    }
    _launch(engine, data=job_zip(client_config=bad))
    clock.advance(1.0)
    _, _, status, reason = recorder.events[-1]
    assert status == "FINISHED:EXECUTION_EXCEPTION"
    assert "no_such.module.Trainer" in reason


def test_plan_run_reads_rounds_sleep_time_and_custom_modules() -> None:
    slow = json.loads(json.dumps(CLIENT_CONFIG))
    slow["executors"][0]["executor"]["args"]["sleep_time"] = 4
    assert plan_run(zip_view(job_zip(client_config=slow))) == (12.0, None, 3)
    custom = {"executors": [{"executor": {"path": "mytrainer.Trainer"}}]}
    archive = zip_view(job_zip(client_config=custom, extra={"app/custom/mytrainer.py": b"x=1"}))
    assert plan_run(archive) == (0.0, None, 3)
    assert plan_run(zip_view(job_zip(server_config=SERVER_CONFIG)))[1] is None


def test_long_sleep_time_extends_the_run() -> None:
    engine, clock, _, recorder = _engine(duration=1.0)
    slow = json.loads(json.dumps(CLIENT_CONFIG))
    slow["executors"][0]["executor"]["args"]["sleep_time"] = 10
    _launch(engine, data=job_zip(client_config=slow))
    clock.advance(30.9)
    assert engine.is_running(JOB)
    clock.advance(0.1)
    assert recorder.events[-1][2] == "FINISHED:COMPLETED"


def test_stats_errors_and_log_configuration() -> None:
    engine, clock, workspaces, _ = _engine(duration=10.0)
    assert engine.stats(JOB, "server") == {}
    _launch(engine)
    clock.advance(5.0)
    stats = engine.stats(JOB, "server")["ServerRunner"]
    assert stats["elapsed_seconds"] == 5.0
    assert stats["current_round"] == 1
    assert "ClientRunner" in engine.stats(JOB, "site-1")
    assert engine.stats(JOB, "site-9") == {}
    assert engine.errors(JOB, "site-1") == {}
    engine.inject_error(JOB, "site-1", "disk full")
    assert engine.errors(JOB, "site-1") == {"error": ["disk full"]}
    engine.reset_errors(JOB, "site-1")
    assert engine.errors(JOB, "site-1") == {}
    engine.configure_job_log(JOB, "site-1", "DEBUG")
    assert engine.job_log_config(JOB, "site-1") == "DEBUG"
    assert b"log configuration changed to DEBUG" in workspaces.tree("site-1").read(f"{JOB}/log.txt")
    engine.configure_site_log("server", "INFO")
    assert engine.site_log_config("server") == "INFO"
    assert engine.resources("server") == {"resources": "unlimited"}
    assert engine.resources("site-1") == {"num_of_gpus": 0, "mem_per_gpu_in_GiB": 0}


def test_launching_the_same_job_twice_is_refused() -> None:
    engine, _, _, _ = _engine()
    _launch(engine)
    with pytest.raises(RuntimeError, match="already deployed"):
        _launch(engine)
