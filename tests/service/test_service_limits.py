"""The scheduler's bound on live jobs and the engine's progress and launch-failure reports."""

from __future__ import annotations

from typing import Any

from flare_core import GetJobMeta, JobEvent
from flare_core.service.ports import JobLaunch
from tests.service.helpers import Harness


def _statuses(h: Harness, job_ids: list[str]) -> list[str]:
    return [h.status(job_id) for job_id in job_ids]


def test_max_running_jobs_keeps_the_rest_submitted_and_dispatches_them_oldest_first() -> None:
    h = Harness(max_running_jobs=1, duration=10.0)
    admin = h.login()
    jobs = [h.submit(admin) for _ in range(3)]
    h.advance(1.0)
    assert _statuses(h, jobs) == ["RUNNING", "SUBMITTED", "SUBMITTED"]
    h.advance(11.0)  # the first ends at t=11; the next scheduler tick (t=12) starts the second
    assert _statuses(h, jobs) == ["FINISHED:COMPLETED", "RUNNING", "SUBMITTED"]
    h.advance(11.0)
    assert _statuses(h, jobs) == ["FINISHED:COMPLETED", "FINISHED:COMPLETED", "RUNNING"]


def test_max_running_jobs_two_runs_two_at_once() -> None:
    h = Harness(max_running_jobs=2, duration=10.0)
    admin = h.login()
    jobs = [h.submit(admin) for _ in range(3)]
    h.advance(1.0)
    assert _statuses(h, jobs) == ["RUNNING", "RUNNING", "SUBMITTED"]


def test_without_a_bound_every_schedulable_job_runs() -> None:
    h = Harness(duration=10.0)
    admin = h.login()
    jobs = [h.submit(admin) for _ in range(3)]
    h.advance(1.0)
    assert _statuses(h, jobs) == ["RUNNING"] * 3


def test_an_aborted_job_frees_its_slot() -> None:
    h = Harness(max_running_jobs=1, duration=100.0)
    admin = h.login()
    first, second = h.submit(admin), h.submit(admin)
    h.advance(1.0)
    h.engine.abort(first)
    h.advance(1.0)
    assert _statuses(h, [first, second]) == ["FINISHED:ABORTED", "RUNNING"]


def _listener(h: Harness) -> Any:
    return h.engine._listener  # the service's EngineCallbacks, as an engine holds them


def test_progress_is_stored_in_the_meta_and_published() -> None:
    h = Harness(duration=100.0)
    admin = h.login()
    job_id = h.submit(admin)
    h.advance(1.0)
    events: list[JobEvent] = []
    h.service.subscribe(events.append)
    progress = {"current_round": 1, "num_rounds": 3, "rounds_finished": 1}
    _listener(h).job_progress(job_id, progress)
    meta = h.ok(admin, GetJobMeta(job_id=job_id))
    assert meta["progress"] == progress
    assert meta["status"] == "RUNNING"
    assert [(e.job_id, e.status) for e in events] == [(job_id, "RUNNING")]


def test_progress_of_a_job_that_is_not_running_is_ignored() -> None:
    h = Harness(sites=("site-1",))  # @ALL with min_clients 2: stays SUBMITTED
    admin = h.login()
    job_id = h.submit(admin)
    _listener(h).job_progress(job_id, {"current_round": 0})
    assert "progress" not in h.ok(admin, GetJobMeta(job_id=job_id))


def test_a_launch_failure_is_failed_to_run_with_the_engines_reason() -> None:
    h = Harness()

    def refuse(launch: JobLaunch) -> None:
        raise PermissionError("custom code is not allowed on this server")

    h.engine.launch = refuse  # type: ignore[method-assign]
    admin = h.login()
    job_id = h.submit(admin)
    h.advance(1.0)
    meta = h.ok(admin, GetJobMeta(job_id=job_id))
    assert meta["status"] == "FINISHED:FAILED_TO_RUN"
    assert meta["finish_reason"] == "custom code is not allowed on this server"
