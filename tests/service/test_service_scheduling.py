"""Scheduling, engine reports, job events, the command table and error opacity."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from flare_core import (
    COMMAND_TYPES,
    CheckStatus,
    DisableClient,
    GetJobMeta,
    JobEvent,
    ListJobs,
    Problem,
    SubmitJob,
)
from flare_core.service._dispatch import HANDLERS
from flare_core.service.ports import JobLaunch, JobPage
from flare_ports import Backend
from tests.service.helpers import ADMIN, DEFAULT_META, Harness, job_files, job_zip, make_zip


def _explicit(sites: list[str], **meta: Any) -> bytes:
    files = job_files(meta={**DEFAULT_META, "deploy_map": {"app": ["server", *sites]}, **meta})
    return make_zip(files)


def test_the_service_satisfies_the_backend_port() -> None:
    backend: Backend = Harness().service  # mypy checks the structural match
    assert callable(backend.handle)


def test_every_command_type_has_a_handler() -> None:
    assert set(HANDLERS) | {SubmitJob} == set(COMMAND_TYPES)


def test_a_job_waits_for_min_clients_and_runs_when_a_site_connects() -> None:
    h = Harness(sites=("site-1",))
    job_id = h.submit(h.login())  # @ALL, min_clients 2
    h.advance(30.0)
    assert h.status(job_id) == "SUBMITTED"
    h.service.connect_site("site-2", "nvidia")
    h.advance(1.0)
    assert h.status(job_id) == "RUNNING"


def test_an_explicit_deploy_map_waits_for_all_its_sites_without_min_clients() -> None:
    h = Harness(sites=("site-1",))
    meta = {k: v for k, v in DEFAULT_META.items() if k != "min_clients"}
    meta["deploy_map"] = {"app": ["server", "site-1", "site-2"]}
    data = make_zip(job_files(meta=meta))
    job_id = h.submit(h.login(), data)
    h.advance(5.0)
    assert h.status(job_id) == "SUBMITTED"
    h.service.connect_site("site-2", "nvidia")
    h.advance(1.0)
    stored = h.service.job_meta(job_id)
    assert stored is not None
    assert stored["job_clients"] == [
        {"name": "site-1", "fqcn": "site-1"},
        {"name": "site-2", "fqcn": "site-2"},
    ]


def test_min_clients_deploys_to_the_connected_subset() -> None:
    h = Harness(sites=("site-1",))
    job_id = h.submit(h.login(), _explicit(["site-1", "site-2"], min_clients=1))
    h.advance(1.0)
    meta = h.service.job_meta(job_id)
    assert meta is not None
    assert meta["status"] == "RUNNING"
    assert meta["job_deploy_detail"] == ["server: OK", "site-1: OK"]


def test_mandatory_clients_must_be_connected() -> None:
    h = Harness(sites=("site-1",))
    data = _explicit(["site-1", "site-2"], min_clients=1, mandatory_clients=["site-2"])
    job_id = h.submit(h.login(), data)
    h.advance(5.0)
    assert h.status(job_id) == "SUBMITTED"
    h.service.connect_site("site-2", "nvidia")
    h.advance(1.0)
    assert h.status(job_id) == "RUNNING"


def test_a_server_only_job_needs_no_clients() -> None:
    h = Harness(sites=())
    meta = {"name": "solo", "deploy_map": {"app": ["server"]}}
    files = job_files(meta=meta)
    del files["app/config/config_fed_client.json"]
    job_id = h.submit(h.login(), make_zip(files))
    h.advance(1.0)
    assert h.status(job_id) == "RUNNING"


def test_disabled_sites_do_not_count() -> None:
    h = Harness(sites=("site-1", "site-2"))
    admin = h.login()
    h.ok(admin, DisableClient(client_name="site-2"))
    job_id = h.submit(admin)
    h.advance(5.0)
    assert h.status(job_id) == "SUBMITTED"


def test_a_site_withdrawn_from_the_study_blocks_the_job_for_good() -> None:
    h = Harness(sites=("site-1",))
    h.service.add_study("s", {"nvidia": ["site-1", "site-2"]}, [ADMIN])
    job_id = h.submit(h.login(study="s"), _explicit(["site-1", "site-2"]))
    h.service.add_study("s", {"nvidia": ["site-1"]}, [ADMIN])
    h.advance(1.0)
    meta = h.service.job_meta(job_id)
    assert meta is not None
    assert (meta["status"], meta["duration"]) == ("FINISHED:CAN_NOT_SCHEDULE", "N/A")


def test_without_a_dispatch_delay_jobs_dispatch_inside_submit() -> None:
    h = Harness(dispatch_delay=0.0)
    job_id = h.submit(h.login())
    assert h.status(job_id) == "RUNNING"


def test_an_engine_that_fails_to_launch_marks_the_job_failed_to_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness()

    def broken(launch: JobLaunch) -> None:
        raise RuntimeError("no capacity")

    monkeypatch.setattr(h.engine, "launch", broken)
    job_id = h.submit(h.login())
    h.advance(1.0)
    assert h.status(job_id) == "FINISHED:FAILED_TO_RUN"


def test_jobs_run_concurrently_and_finish_independently() -> None:
    h = Harness()
    admin = h.login()
    first = h.submit(admin)
    h.advance(3.0)
    second = h.submit(admin)
    h.advance(1.0)
    assert (h.status(first), h.status(second)) == ("RUNNING", "RUNNING")
    h.advance(7.0)
    assert (h.status(first), h.status(second)) == ("FINISHED:COMPLETED", "RUNNING")
    h.engine.fail_job(second, "FINISHED:ABNORMAL", "node lost")
    meta = h.service.job_meta(second)
    assert meta is not None
    assert (meta["status"], meta["finish_reason"]) == ("FINISHED:ABNORMAL", "node lost")


def test_an_unimportable_component_ends_in_execution_exception() -> None:
    h = Harness()
    bad = {"executors": [{"tasks": ["train"], "executor": {"path": "bad.path.Trainer"}}]}
    job_id = h.submit(h.login(), job_zip(client_config=bad))
    h.advance(2.0)
    assert h.status(job_id) == "FINISHED:EXECUTION_EXCEPTION"


# --- events ----------------------------------------------------------------------------------


def test_subscribers_get_every_change_and_can_unsubscribe() -> None:
    h = Harness()
    events: list[JobEvent] = []
    unsubscribe = h.service.subscribe(events.append)
    job_id = h.submit(h.login())
    h.advance(1.0)
    assert events == [
        JobEvent(job_id=job_id, study="default", status="SUBMITTED"),
        JobEvent(job_id=job_id, study="default", status="DISPATCHED"),
        JobEvent(job_id=job_id, study="default", status="RUNNING"),
    ]
    unsubscribe()
    unsubscribe()
    h.advance(20.0)
    assert len(events) == 3


def test_a_failing_subscriber_does_not_break_the_service_or_others() -> None:
    h = Harness()
    seen: list[str] = []

    def broken(event: JobEvent) -> None:
        raise RuntimeError("listener bug")

    h.service.subscribe(broken)
    h.service.subscribe(lambda event: seen.append(event.status))
    h.submit(h.login())
    assert seen == ["SUBMITTED"]


def test_subscribers_are_called_after_the_state_is_stored() -> None:
    h = Harness()
    observed: list[str | None] = []

    def listener(event: JobEvent) -> None:
        meta = h.service.job_meta(event.job_id)
        observed.append(None if meta is None else meta["status"])

    h.service.subscribe(listener)
    h.submit(h.login())
    h.advance(1.0)
    assert observed == ["SUBMITTED", "RUNNING", "RUNNING"]


# --- robustness ------------------------------------------------------------------------------


def test_unexpected_errors_become_opaque_internal_problems(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness()

    def explode(**kwargs: Any) -> JobPage:
        raise FileNotFoundError("/secret/path/jobs.db")

    monkeypatch.setattr(h.system.ports.jobs, "page", explode)  # a full listing reads pages
    reply = h.reply(h.login(), ListJobs())
    assert isinstance(reply, Problem)
    assert (reply.code, reply.message) == ("internal_error", "server internal error")
    assert "/secret" not in repr(reply)


def test_concurrent_submits_from_threads_create_distinct_jobs() -> None:
    h = Harness()
    principals = [h.login() for _ in range(4)]
    data = job_zip()
    results: list[str] = []
    barrier = threading.Barrier(len(principals))

    def worker(index: int) -> None:
        barrier.wait()
        for _ in range(5):
            results.append(h.submit(principals[index], data))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(principals))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 20
    assert len(h.ok(principals[0], ListJobs())) == 20


def test_meta_reads_do_not_alias_the_store() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    meta = h.ok(admin, GetJobMeta(job_id=job_id))
    meta["deploy_map"]["app"].append("intruder")
    assert h.ok(admin, GetJobMeta(job_id=job_id))["deploy_map"] == DEFAULT_META["deploy_map"]
    assert h.ok(admin, CheckStatus(target_type="server"))["server_status"] == "started"
