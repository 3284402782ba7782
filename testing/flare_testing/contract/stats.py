"""Contract: a running job's processing statistics - ``show_stats``, ``show_errors``,
``reset_errors`` (reference §8, §11.1 #21)."""

from __future__ import annotations

from typing import Any

import pytest

from flare_core.errors import InvalidTarget, JobNotFound, JobNotRunning
from flare_ports.session_spec import SessionSpec
from flare_testing.contract import capabilities as cap
from flare_testing.contract.base import (
    ContractBase,
    arg_error,
    call,
    finished_job,
    nothing_sent,
    pending_job,
    running_job,
    unknown_job_id,
)
from flare_testing.contract.harness import Harness
from flare_testing.job_folders import JobFolders

__all__ = ["JobStatsContract"]

STATS_METHODS = ("show_stats", "show_errors", "reset_errors")


def _stats_call(session: SessionSpec, method: str, job_id: Any, *targeting: Any) -> Any:
    if method == "reset_errors":
        return call(session, method, job_id)
    return call(session, method, job_id, *(targeting or ("all",)))


def _expected_keys(harness: Harness, target_type: str, targets: list[str] | None) -> set[str]:
    keys = {"server"} if target_type in ("server", "all") else set()
    if target_type in ("client", "all"):
        keys.update(targets or harness.sites)
    return keys


class JobStatsContract(ContractBase):
    """Stats and errors exist only while a job runs."""

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    @pytest.mark.parametrize("method", ["show_stats", "show_errors"])
    @pytest.mark.parametrize(
        ("target_type", "first_site_only"),
        [("server", False), ("client", False), ("client", True), ("all", False)],
        ids=["server", "clients", "named_client", "all"],
    )
    def test_results_are_keyed_by_target(
        self,
        harness: Harness,
        session: SessionSpec,
        jobs: JobFolders,
        method: str,
        target_type: str,
        first_site_only: bool,
    ) -> None:
        job_id = running_job(harness, session, jobs)
        targets = [harness.sites[0]] if first_site_only else None
        result = call(session, method, job_id, target_type, targets)
        assert set(result) == _expected_keys(harness, target_type, targets)
        assert all(isinstance(value, dict) for value in result.values())

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    def test_server_stats_are_reported(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        assert session.show_stats(job_id, "server")["server"]

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    def test_reset_errors_returns_none(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        assert call(session, "reset_errors", job_id) is None
        errors = session.show_errors(job_id, "all")
        assert all(value == {} for value in errors.values())

    @pytest.mark.parametrize("method", STATS_METHODS)
    def test_queued_job_is_not_running(
        self, session: SessionSpec, jobs: JobFolders, method: str
    ) -> None:
        job_id = pending_job(session, jobs)
        with pytest.raises(JobNotRunning, match=f"job {job_id} is not running"):
            _stats_call(session, method, job_id)

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    @pytest.mark.parametrize("method", STATS_METHODS)
    def test_finished_job_is_not_running(
        self, session: SessionSpec, jobs: JobFolders, method: str
    ) -> None:
        job_id = finished_job(session, jobs)
        with pytest.raises(JobNotRunning):
            _stats_call(session, method, job_id)

    @pytest.mark.parametrize("method", STATS_METHODS)
    def test_unknown_job_is_not_found(self, session: SessionSpec, method: str) -> None:
        with pytest.raises(JobNotFound):
            _stats_call(session, method, unknown_job_id())

    @pytest.mark.parametrize("method", STATS_METHODS)
    @pytest.mark.parametrize(
        ("job_id", "reference"), [(None, TypeError), (5, TypeError), ("", ValueError)]
    )
    def test_malformed_job_id_fails_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        method: str,
        job_id: Any,
        reference: type[Exception],
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(arg_error(caps, reference)):
            _stats_call(session, method, job_id)

    @pytest.mark.parametrize("method", ["show_stats", "show_errors"])
    @pytest.mark.parametrize("target_type", ["servers", "", None])
    def test_unknown_target_type_fails_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        method: str,
        target_type: Any,
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(arg_error(caps, ValueError)):
            call(session, method, unknown_job_id(), target_type)

    @pytest.mark.parametrize("method", ["show_stats", "show_errors"])
    def test_malformed_client_names_fail_locally(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, method: str
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(arg_error(caps, SyntaxError)):
            call(session, method, unknown_job_id(), "client", "site-1")

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    @pytest.mark.parametrize("method", ["show_stats", "show_errors"])
    def test_unknown_client_is_an_invalid_target(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders, method: str
    ) -> None:
        job_id = running_job(harness, session, jobs)
        with pytest.raises(InvalidTarget):
            call(session, method, job_id, "client", ["site-unknown"])
