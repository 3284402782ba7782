"""Contract: waiting for and watching jobs, and reading their logs - ``monitor_job``,
``monitor_job_and_return_job_meta``, ``wait_for_job``, ``get_job_logs``, ``configure_job_log``,
``configure_site_log`` (reference §5, §6.14, §11.1 #10, #17, #18)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from flare_core.errors import (
    InternalError,
    InvalidArgumentError,
    JobNotFound,
    JobTimeout,
)
from flare_core.info import MonitorReturnCode
from flare_ports.session_spec import SessionSpec
from flare_testing.contract import capabilities as cap
from flare_testing.contract.base import (
    PENDING_SITE,
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

__all__ = ["JobLogsContract", "MonitorContract"]

SERVER_LOG_UNAVAILABLE = "server log not available for this job"
CLIENT_LOG_UNAVAILABLE = "client log stream not available for this job"
MAX_LOG_BYTES = 5 * 1024 * 1024
TRUNCATION_MARKER = f"... output truncated to last {MAX_LOG_BYTES} bytes ..."

BAD_MONITOR_ARGS = [
    (-1, 2.0, "timeout must be >= 0"),
    (0, 0, "poll_interval must be > 0"),
    (0, -1.5, "poll_interval must be > 0"),
]


class _Recorder:
    """A monitor callback that records its calls and says stop after ``stop_after`` polls."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.calls: list[tuple[object, str, dict[str, Any], tuple[Any, ...], dict[str, Any]]] = []

    def __call__(
        self, session: object, job_id: str, job_meta: dict[str, Any], *args: Any, **kwargs: Any
    ) -> bool:
        self.calls.append((session, job_id, job_meta, args, kwargs))
        return self.stop_after is None or len(self.calls) < self.stop_after


def _tail(text: str, lines: int) -> str:
    return "".join(text.splitlines(keepends=True)[-lines:]) if lines else ""


def _grep(text: str, pattern: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if pattern in line)


class MonitorContract(ContractBase):
    """Monitoring follows reference §5.3 exactly; ``wait_for_job`` follows §5.2."""

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_finished_job_returns_on_the_first_poll(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = finished_job(session, jobs)
        before = harness.now if cap.VIRTUAL_TIME in caps else None
        recorder = _Recorder()
        rc, meta = session.monitor_job_and_return_job_meta(job_id, 0, 2.0, recorder)
        assert rc is MonitorReturnCode.JOB_FINISHED
        assert meta is not None
        assert meta["status"] == "FINISHED:COMPLETED"
        assert len(recorder.calls) == 1
        if before is not None:
            assert harness.now == before, "the monitor slept after a terminal status"

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_monitor_job_returns_only_the_code(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = finished_job(session, jobs)
        assert session.monitor_job(job_id) is MonitorReturnCode.JOB_FINISHED

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_monitor_follows_a_job_to_its_end(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = session.submit_job(str(jobs.hello()))
        recorder = _Recorder()
        rc, meta = session.monitor_job_and_return_job_meta(job_id, 3600, 1.0, recorder)
        assert rc is MonitorReturnCode.JOB_FINISHED
        assert meta is not None
        assert meta["status"] == "FINISHED:COMPLETED"
        assert recorder.calls[-1][2]["status"] == "FINISHED:COMPLETED"
        assert len(recorder.calls) >= 2

    @pytest.mark.flare_requires(cap.QUICK_JOBS, cap.WATCH_JOBS)
    def test_watch_follows_one_job_to_its_end(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = session.submit_job(str(jobs.hello()))
        changes = list(session.watch_jobs(job_id, poll_interval=1.0))
        assert changes[0].old_status is None
        assert changes[-1].new_status == "FINISHED:COMPLETED"
        assert changes[-1].terminal
        assert not any(change.terminal for change in changes[:-1])
        for before, after in itertools.pairwise(changes):
            assert after.old_status == before.new_status != after.new_status
        assert {change.job_id for change in changes} == {job_id}

    @pytest.mark.flare_requires(cap.WATCH_JOBS)
    def test_watching_an_unknown_job_is_not_found(self, session: SessionSpec) -> None:
        with pytest.raises(JobNotFound):
            next(iter(session.watch_jobs(unknown_job_id())))

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_callback_false_ends_even_on_a_terminal_poll(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = finished_job(session, jobs)
        recorder = _Recorder(stop_after=1)
        assert session.monitor_job_and_return_job_meta(job_id, 0, 2.0, recorder) == (
            MonitorReturnCode.ENDED_BY_CB,
            None,
        )
        assert recorder.calls[0][2]["status"] == "FINISHED:COMPLETED"

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_callback_receives_session_job_meta_and_extras(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = finished_job(session, jobs)
        recorder = _Recorder()
        session.monitor_job(job_id, 0, 2.0, recorder, "extra", flag=True)
        (called_with, seen_id, meta, args, kwargs) = recorder.calls[0]
        assert called_with is session or called_with is getattr(session, "wrapped", None)
        assert seen_id == job_id
        assert meta["job_id"] == job_id
        assert args == ("extra",)
        assert kwargs == {"flag": True}

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    def test_callback_runs_after_every_poll(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        recorder = _Recorder(stop_after=3)
        rc = session.monitor_job(job_id, 0, 0.5, recorder)
        assert rc is MonitorReturnCode.ENDED_BY_CB
        assert len(recorder.calls) == 3
        assert all(call[2]["status"] == "RUNNING" for call in recorder.calls)

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    def test_timeout_after_at_least_one_poll(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        recorder = _Recorder()
        rc, meta = session.monitor_job_and_return_job_meta(job_id, 0.001, 5.0, recorder)
        assert (rc, meta) == (MonitorReturnCode.TIMEOUT, None)
        assert recorder.calls, "the timeout was checked before the first poll"
        if cap.VIRTUAL_TIME in caps:
            # On a real clock a transport may wake its first sleep at once (a WebSocket
            # session polls again right after subscribing, as an event may have come before
            # it) and both polls may fit in the 1 ms: only virtual time makes the count exact.
            assert len(recorder.calls) == 1

    @pytest.mark.flare_requires(cap.JOB_CONTROL, cap.VIRTUAL_TIME)
    def test_timeout_bounds_the_wait(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        start = harness.now
        recorder = _Recorder()
        rc = session.monitor_job(job_id, 30, 4.0, recorder)
        assert rc is MonitorReturnCode.TIMEOUT
        assert 30 <= harness.now - start <= 30 + 4.0 + 1.0
        assert len(recorder.calls) >= 7

    @pytest.mark.parametrize(
        "method", ["monitor_job", "monitor_job_and_return_job_meta", "wait_for_job"]
    )
    @pytest.mark.parametrize(("timeout", "poll_interval", "message"), BAD_MONITOR_ARGS)
    def test_bad_polling_options_fail_before_polling(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        method: str,
        timeout: float,
        poll_interval: float,
        message: str,
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(InvalidArgumentError, match=message):
            call(session, method, unknown_job_id(), timeout, poll_interval)

    @pytest.mark.parametrize(
        "method", ["monitor_job", "monitor_job_and_return_job_meta", "wait_for_job"]
    )
    def test_unknown_job_is_not_found(self, session: SessionSpec, method: str) -> None:
        with pytest.raises(JobNotFound):
            call(session, method, unknown_job_id(), 10, 1.0)

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_wait_returns_the_final_meta(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = session.submit_job(str(jobs.hello()))
        meta = session.wait_for_job(job_id, timeout=3600)
        assert meta == session.get_job_meta(job_id)
        assert meta["status"].startswith("FINISHED:")

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    def test_wait_times_out_with_job_timeout(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        with pytest.raises(JobTimeout, match=f"job {job_id} did not finish within 0.5s"):
            session.wait_for_job(job_id, timeout=0.5, poll_interval=0.1)
        assert not issubclass(JobTimeout, InternalError)

    @pytest.mark.flare_requires(cap.JOB_EVENTS, cap.VIRTUAL_TIME)
    def test_waiting_wakes_when_the_job_changes(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = session.submit_job(str(jobs.hello()))
        start = harness.now
        session.wait_for_job(job_id, timeout=0, poll_interval=3000.0)
        assert harness.now - start < 3000.0


class JobLogsContract(ContractBase):
    """``get_job_logs`` and the log-configuration methods."""

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_default_target_is_the_server(self, session: SessionSpec, jobs: JobFolders) -> None:
        logs = session.get_job_logs(finished_job(session, jobs))
        assert set(logs) == {"logs"}
        assert set(logs["logs"]) == {"server"}
        assert isinstance(logs["logs"]["server"], str)
        assert logs["logs"]["server"]

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_all_covers_the_deploy_map_sites(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = finished_job(session, jobs, deploy_map=jobs.explicit_sites_map())
        logs = session.get_job_logs(job_id, target="all")
        assert set(logs["logs"]) == {"server", *jobs.sites}
        assert "unavailable" not in logs

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_single_client_target(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = finished_job(session, jobs)
        site = jobs.sites[0]
        logs = session.get_job_logs(job_id, target=site)
        assert set(logs["logs"]) == {site}
        assert logs["logs"][site]

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_site_without_a_log_is_unavailable(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = finished_job(session, jobs)
        logs = session.get_job_logs(job_id, target="site-never-ran")
        assert logs["logs"] == {}
        assert logs["unavailable"] == {"site-never-ran": CLIENT_LOG_UNAVAILABLE}

    def test_queued_job_has_no_logs_yet(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = pending_job(session, jobs)
        assert session.get_job_logs(job_id)["unavailable"] == {"server": SERVER_LOG_UNAVAILABLE}
        logs = session.get_job_logs(job_id, target="all")
        assert logs["logs"] == {}
        assert logs["unavailable"] == {
            "server": SERVER_LOG_UNAVAILABLE,
            **dict.fromkeys((*jobs.sites, PENDING_SITE), CLIENT_LOG_UNAVAILABLE),
        }

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    @pytest.mark.parametrize("lines", [0, 1, 2, 1000])
    def test_tail_lines_filters_locally(
        self, session: SessionSpec, jobs: JobFolders, lines: int
    ) -> None:
        job_id = finished_job(session, jobs)
        full = session.get_job_logs(job_id, target="all")["logs"]
        tailed = session.get_job_logs(job_id, target="all", tail_lines=lines)["logs"]
        assert tailed == {site: _tail(text, lines) for site, text in full.items()}

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_grep_is_a_plain_case_sensitive_substring(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = finished_job(session, jobs)
        full = session.get_job_logs(job_id)["logs"]["server"]
        pattern = full.splitlines()[0][-12:]
        grepped = session.get_job_logs(job_id, grep_pattern=pattern)["logs"]["server"]
        assert grepped == _grep(full, pattern)
        assert grepped
        assert session.get_job_logs(job_id, grep_pattern=".*[")["logs"]["server"] == _grep(
            full, ".*["
        )
        upper = pattern.upper() if pattern.upper() != pattern else pattern.lower()
        assert session.get_job_logs(job_id, grep_pattern=upper)["logs"]["server"] == _grep(
            full, upper
        )

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_tail_is_applied_before_grep(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = finished_job(session, jobs)
        full = session.get_job_logs(job_id)["logs"]["server"]
        pattern = full.splitlines()[0][-12:]
        logs = session.get_job_logs(job_id, "server", 2, pattern)["logs"]["server"]
        assert logs == _grep(_tail(full, 2), pattern)

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_filters_keep_unavailable_entries(self, session: SessionSpec, jobs: JobFolders) -> None:
        job_id = finished_job(session, jobs)
        logs = session.get_job_logs(job_id, "site-never-ran", tail_lines=1, grep_pattern="x")
        assert logs["unavailable"] == {"site-never-ran": CLIENT_LOG_UNAVAILABLE}

    @pytest.mark.flare_requires(cap.ARGUMENT_ERRORS)  # the reference filters after fetching
    @pytest.mark.parametrize("tail_lines", [-1, "many", 1.5j])
    def test_bad_tail_lines_fail_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        tail_lines: Any,
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(arg_error(caps, ValueError)):
            session.get_job_logs(unknown_job_id(), tail_lines=tail_lines)

    @pytest.mark.parametrize("target", ["", None, 5])
    def test_bad_target_fails_locally(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, target: Any
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(arg_error(caps, ValueError)):
            session.get_job_logs(unknown_job_id(), target=target)

    @pytest.mark.flare_requires(cap.WORKSPACE_FILES, cap.JOB_CONTROL)
    def test_large_logs_keep_the_last_5_mib(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        line = b"0123456789 filler line of a large log file, padded to a fixed width ....\n"
        harness.append_job_log(job_id, "server", line * (MAX_LOG_BYTES // len(line) + 100))
        harness.append_job_log(job_id, "server", b"THE LAST LINE\n")
        text = session.get_job_logs(job_id)["logs"]["server"]
        first, rest = text.split("\n", 1)
        assert first == TRUNCATION_MARKER
        assert rest.endswith("THE LAST LINE\n")
        assert len(rest.encode()) <= MAX_LOG_BYTES

    @pytest.mark.flare_requires(cap.WORKSPACE_FILES, cap.JOB_CONTROL)
    def test_small_logs_are_complete(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        harness.append_job_log(job_id, jobs.sites[0], "unicode: grüße ✓\n".encode())
        text = session.get_job_logs(job_id, target=jobs.sites[0])["logs"][jobs.sites[0]]
        assert text.endswith("unicode: grüße ✓\n")
        assert TRUNCATION_MARKER not in text

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    def test_running_job_has_a_live_log(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        assert session.get_job_logs(job_id)["logs"]["server"]

    # --- log configuration (reference §6.14) --------------------------------------------------

    @pytest.mark.flare_requires(cap.JOB_CONTROL)
    @pytest.mark.parametrize("config", ["DEBUG", {"level": "INFO"}])
    def test_configure_running_job_log(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders, config: Any
    ) -> None:
        job_id = running_job(harness, session, jobs)
        assert isinstance(session.configure_job_log(job_id, config), dict)
        assert isinstance(session.configure_job_log(job_id, config, "server"), dict)

    def test_configure_log_of_a_queued_job_fails(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = pending_job(session, jobs)
        with pytest.raises(InternalError, match=f"Job {job_id} must be running but is SUBMITTED"):
            session.configure_job_log(job_id, "DEBUG")

    @pytest.mark.parametrize("config", ["DEBUG", "info", "Warning", "0", "20", "50", "concise"])
    def test_configure_site_log(self, session: SessionSpec, config: Any) -> None:
        # Accepted; flare-core returns the server's result dict, the reference None.
        result: object = session.configure_site_log(config)
        assert result is None or isinstance(result, dict)

    @pytest.mark.parametrize("config", [{"level": "DEBUG"}, "/etc/log.conf", 51, "LOUD"])
    def test_configure_site_log_rejects_other_configs_locally(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, config: Any
    ) -> None:
        with (
            nothing_sent(harness, caps),
            pytest.raises(
                arg_error(caps, ValueError), match="only supports log levels and built-in"
            ),
        ):
            session.configure_site_log(config)
