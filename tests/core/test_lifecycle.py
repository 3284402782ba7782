"""The job lifecycle table and the rules derived from it, plus the time formatting helpers."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flare_core.errors import InternalError, JobNotDone, JobNotRunning
from flare_core.lifecycle import (
    TRANSITIONS,
    AbortPlan,
    InvalidTransition,
    JobOp,
    JobStatus,
    Trigger,
    check_operation,
    creation_fields,
    finish_fields,
    is_terminal,
    monitor_terminal,
    plan_abort,
    running_duration,
    start_fields,
    state_diagram,
    transition,
)
from flare_core.timefmt import format_duration, iso_local, iso_utc, parse_iso

T0 = 1_700_000_000.0
JOB = "0b5c2e9a-1f7e-4c1a-9a43-6f1f7d0c2b11"

# --- statuses and the table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "value"),
    [
        (JobStatus.SUBMITTED, "SUBMITTED"),
        (JobStatus.APPROVED, "APPROVED"),
        (JobStatus.DISPATCHED, "DISPATCHED"),
        (JobStatus.RUNNING, "RUNNING"),
        (JobStatus.FINISHED_COMPLETED, "FINISHED:COMPLETED"),
        (JobStatus.FINISHED_ABORTED, "FINISHED:ABORTED"),
        (JobStatus.FINISHED_EXECUTION_EXCEPTION, "FINISHED:EXECUTION_EXCEPTION"),
        (JobStatus.FINISHED_ABNORMAL, "FINISHED:ABNORMAL"),
        (JobStatus.FINISHED_CANT_SCHEDULE, "FINISHED:CAN_NOT_SCHEDULE"),
        (JobStatus.FAILED_TO_RUN, "FINISHED:FAILED_TO_RUN"),
        (JobStatus.ABANDONED, "FINISHED:ABANDONED"),
    ],
)
def test_status_values_are_the_reference_strings(member: JobStatus, value: str) -> None:
    assert member.value == value
    assert member == value  # a str enum compares equal to the stored string
    assert JobStatus(value) is member


def test_every_status_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(JobStatus)


@pytest.mark.parametrize("status", list(JobStatus))
def test_terminal_is_derived_from_the_table_and_matches_the_server_rule(
    status: JobStatus,
) -> None:
    assert status.terminal == (not TRANSITIONS[status])
    assert status.terminal == is_terminal(status.value)


def test_table_cannot_be_mutated() -> None:
    row = TRANSITIONS[JobStatus.RUNNING]
    with pytest.raises(TypeError):
        # Deliberately ill-typed: proves the read-only Mapping is read-only at runtime too.
        row[Trigger.START] = JobStatus.RUNNING  # type: ignore[index]


@pytest.mark.parametrize(
    ("status", "trigger", "expected"),
    [
        ("SUBMITTED", Trigger.DISPATCH, JobStatus.DISPATCHED),
        ("SUBMITTED", Trigger.ABORT, JobStatus.FINISHED_ABORTED),
        ("SUBMITTED", Trigger.CANT_SCHEDULE, JobStatus.FINISHED_CANT_SCHEDULE),
        ("SUBMITTED", Trigger.FAIL_TO_RUN, JobStatus.FAILED_TO_RUN),
        ("DISPATCHED", Trigger.START, JobStatus.RUNNING),
        ("DISPATCHED", Trigger.ABORT, JobStatus.FINISHED_ABORTED),
        ("DISPATCHED", Trigger.FAIL_TO_RUN, JobStatus.FAILED_TO_RUN),
        ("DISPATCHED", Trigger.RECOVER_ABNORMAL, JobStatus.FINISHED_ABNORMAL),
        ("RUNNING", Trigger.COMPLETE, JobStatus.FINISHED_COMPLETED),
        ("RUNNING", Trigger.ABORT, JobStatus.FINISHED_ABORTED),
        ("RUNNING", Trigger.EXECUTION_EXCEPTION, JobStatus.FINISHED_EXECUTION_EXCEPTION),
        ("RUNNING", Trigger.ABNORMAL, JobStatus.FINISHED_ABNORMAL),
        ("RUNNING", Trigger.ABANDON, JobStatus.ABANDONED),
        ("RUNNING", Trigger.RECOVER_ABNORMAL, JobStatus.FINISHED_ABNORMAL),
    ],
)
def test_reference_transitions(status: str, trigger: Trigger, expected: JobStatus) -> None:
    assert transition(status, trigger) is expected


@pytest.mark.parametrize(
    ("status", "trigger"),
    [
        ("SUBMITTED", Trigger.START),  # never skips DISPATCHED
        ("SUBMITTED", Trigger.COMPLETE),
        ("DISPATCHED", Trigger.DISPATCH),
        ("RUNNING", Trigger.START),
        ("RUNNING", Trigger.CANT_SCHEDULE),
    ],
)
def test_edges_missing_from_the_table_are_refused(status: str, trigger: Trigger) -> None:
    with pytest.raises(InvalidTransition, match=f"cannot {trigger.name} a job in status"):
        transition(status, trigger)


@pytest.mark.parametrize("status", [s for s in JobStatus if s.terminal])
@pytest.mark.parametrize("trigger", list(Trigger))
def test_nothing_leaves_a_terminal_status(status: JobStatus, trigger: Trigger) -> None:
    with pytest.raises(InvalidTransition):
        transition(status.value, trigger)


def test_unknown_status_is_an_internal_error() -> None:
    with pytest.raises(InvalidTransition, match="unknown job status 'PAUSED'") as info:
        transition("PAUSED", Trigger.ABORT)
    assert isinstance(info.value, InternalError)


def test_every_live_status_is_reachable_and_can_finish() -> None:
    reachable = {JobStatus.SUBMITTED}
    frontier = [JobStatus.SUBMITTED]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()].values():
            if nxt not in reachable:
                reachable.add(nxt)
                frontier.append(nxt)
    # APPROVED is legacy: defined, never entered.
    assert reachable == set(JobStatus) - {JobStatus.APPROVED}
    for status in JobStatus:
        if not status.terminal:
            assert any(target.terminal for target in TRANSITIONS[status].values())


# --- terminal rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "server", "monitor"),
    [
        ("FINISHED:COMPLETED", True, True),
        ("FINISHED:ABANDONED", True, True),
        ("FINISHED:ANYTHING_NEW", True, True),
        ("FINISHED_OK", False, True),  # legacy values only the monitor accepts
        ("FINISHED_EXCEPTION", False, True),
        ("ABORTED", False, True),
        ("ABANDONED", False, True),
        ("FAILED", False, True),
        ("RUNNING", False, False),
        ("SUBMITTED", False, False),
        ("DISPATCHED", False, False),
        ("finished:completed", False, False),
        ("", False, False),
    ],
)
def test_server_and_monitor_terminal_rules(status: str, server: bool, monitor: bool) -> None:
    assert is_terminal(status) is server
    assert monitor_terminal(status) is monitor


# --- allowed operations ------------------------------------------------------------------------

_ALWAYS = [
    JobOp.ABORT,
    JobOp.DELETE,
    JobOp.CLONE,
    JobOp.DOWNLOAD_COMPONENTS,
    JobOp.LIST_COMPONENTS,
    JobOp.GET_LOGS,
]


@pytest.mark.parametrize("op", _ALWAYS)
@pytest.mark.parametrize("status", [s.value for s in JobStatus])
def test_operations_allowed_in_every_status(op: JobOp, status: str) -> None:
    check_operation(op, status, JOB)  # DECISIONS §10: delete too


@pytest.mark.parametrize("status", ["SUBMITTED", "APPROVED", "DISPATCHED", "RUNNING", ""])
def test_download_result_needs_a_finished_job(status: str) -> None:
    with pytest.raises(JobNotDone) as info:
        check_operation(JobOp.DOWNLOAD_RESULT, status, JOB)
    assert str(info.value) == f"job {JOB} is still running"


@pytest.mark.parametrize("status", [s.value for s in JobStatus if s.terminal])
def test_download_result_allowed_when_finished(status: str) -> None:
    check_operation(JobOp.DOWNLOAD_RESULT, status, JOB)


@pytest.mark.parametrize("op", [JobOp.SHOW_STATS, JobOp.SHOW_ERRORS, JobOp.RESET_ERRORS])
@pytest.mark.parametrize("status", [s.value for s in JobStatus])
def test_stats_and_errors_need_a_running_job(op: JobOp, status: str) -> None:
    if status == "RUNNING":
        check_operation(op, status, JOB)
        return
    with pytest.raises(JobNotRunning) as info:
        check_operation(op, status, JOB)
    assert str(info.value) == f"job {JOB} is not running"


@pytest.mark.parametrize("status", ["SUBMITTED", "DISPATCHED", "FINISHED:COMPLETED"])
def test_configure_job_log_needs_a_running_job(status: str) -> None:
    check_operation(JobOp.CONFIGURE_JOB_LOG, "RUNNING", JOB)
    with pytest.raises(InternalError) as info:
        check_operation(JobOp.CONFIGURE_JOB_LOG, status, JOB)
    assert str(info.value) == f"error: Job {JOB} must be running but is {status}"


# --- abort plan --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["SUBMITTED", "DISPATCHED", "APPROVED"])
def test_abort_before_running_cancels(status: str) -> None:
    plan = plan_abort(status, JOB)
    assert plan == AbortPlan(
        "cancel", JobStatus.FINISHED_ABORTED, f"Aborted the job {JOB} before running it."
    )
    assert plan.new_status is transition(status, Trigger.ABORT)


def test_abort_running_job_signals_the_engine() -> None:
    assert plan_abort("RUNNING", JOB) == AbortPlan(
        "signal", None, "Abort signal has been sent to the server app."
    )
    # The engine's report then follows the table.
    assert transition("RUNNING", Trigger.ABORT) is JobStatus.FINISHED_ABORTED


@pytest.mark.parametrize(
    "status", [s.value for s in JobStatus if s.terminal] + ["FINISHED:SOMETHING_NEWER"]
)
def test_abort_finished_job_is_a_noop(status: str) -> None:
    assert plan_abort(status, JOB) == AbortPlan(
        "noop", None, f"Job for {JOB} is already completed."
    )


@pytest.mark.parametrize("status", ["", "PAUSED"])
def test_abort_of_unknown_status_is_an_internal_error(status: str) -> None:
    with pytest.raises(InternalError) as info:
        plan_abort(status, JOB)
    assert str(info.value) == f"server internal error: Job {JOB} is not running."


# --- meta fields -------------------------------------------------------------------------------


def test_creation_fields() -> None:
    fields = creation_fields(T0 + 0.25)
    assert fields == {
        "status": "SUBMITTED",
        "submit_time": T0 + 0.25,
        "submit_time_iso": iso_local(T0 + 0.25),
        "start_time": "",
        "duration": "N/A",
    }
    assert type(fields["status"]) is str  # plain JSON values, not enum members
    assert isinstance(fields["submit_time"], float)
    assert parse_iso(fields["submit_time_iso"]) == pytest.approx(T0 + 0.25, abs=1e-6)


def test_start_fields_record_utc_start() -> None:
    fields = start_fields(T0)
    assert fields == {"status": "RUNNING", "start_time": "2023-11-14T22:13:20+00:00"}


def _running_meta(start: float) -> dict[str, object]:
    return {**creation_fields(T0), **start_fields(start)}


@pytest.mark.parametrize(
    "status",
    [
        JobStatus.FINISHED_COMPLETED,
        JobStatus.FINISHED_ABORTED,
        JobStatus.FINISHED_ABNORMAL,
        JobStatus.FINISHED_EXECUTION_EXCEPTION,
        JobStatus.FINISHED_CANT_SCHEDULE,
    ],
)
def test_finish_fields_recompute_duration(status: JobStatus) -> None:
    meta = _running_meta(T0 + 10)
    before = dict(meta)
    fields = finish_fields(meta, status, T0 + 72.5)
    assert fields == {"status": status.value, "duration": "0:01:02.500000"}
    assert meta == before


@pytest.mark.parametrize("status", [JobStatus.FAILED_TO_RUN, JobStatus.ABANDONED])
def test_finish_fields_keep_duration_for_failed_and_abandoned(status: JobStatus) -> None:
    assert finish_fields(_running_meta(T0), status, T0 + 5) == {"status": status.value}


def test_finish_fields_without_start_time_keep_duration() -> None:
    meta = creation_fields(T0)
    assert finish_fields(meta, JobStatus.FINISHED_ABORTED, T0 + 5) == {"status": "FINISHED:ABORTED"}


def test_finish_fields_refuse_live_status() -> None:
    with pytest.raises(InvalidTransition):
        finish_fields(creation_fields(T0), JobStatus.RUNNING, T0)


def test_running_duration_recomputed_for_running_jobs() -> None:
    assert running_duration(_running_meta(T0 + 10), T0 + 20.5) == "0:00:10.500000"


def test_running_duration_reads_the_reference_naive_local_format() -> None:
    naive = datetime.fromtimestamp(T0).strftime("%Y-%m-%d %H:%M:%S.%f")
    meta = {"status": "RUNNING", "start_time": naive, "duration": "N/A"}
    assert running_duration(meta, T0 + 3) == "0:00:03"


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"status": "RUNNING", "start_time": "garbage", "duration": "N/A"}, "N/A"),
        ({"status": "RUNNING", "start_time": ""}, "N/A"),
        ({"status": "FINISHED:COMPLETED", "start_time": "2023-11-14T22:13:20+00:00"}, "N/A"),
        ({"status": "FINISHED:COMPLETED", "duration": "0:00:07"}, "0:00:07"),
        ({}, "N/A"),
    ],
)
def test_running_duration_falls_back_to_stored_value(
    meta: dict[str, object], expected: str
) -> None:
    assert running_duration(meta, T0 + 100) == expected


def test_durations_never_go_negative() -> None:
    assert running_duration(_running_meta(T0 + 10), T0) == "0:00:00"


# --- state diagram -----------------------------------------------------------------------------


def test_state_diagram_is_generated_from_the_table() -> None:
    text = state_diagram()
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    edges = [line.strip() for line in lines if "-->" in line and "[*]" not in line]
    expected = [
        f"{src.name} --> {dst.name}: {trig.name}"
        for src, row in TRANSITIONS.items()
        for trig, dst in row.items()
    ]
    assert edges == expected
    finals = {line.strip().split(" ")[0] for line in lines if line.strip().endswith("--> [*]")}
    assert finals == {s.name for s in JobStatus if s.terminal}
    assert "[*] --> SUBMITTED" in text
    # Mermaid ids may not contain ':'; the values appear only as quoted labels.
    for line in lines[1:]:
        if line.strip().startswith("state "):
            assert re.fullmatch(r'\s+state "[A-Z_:]+" as [A-Z_]+', line)
        else:
            assert ":" not in line.split(": ")[0]


# --- time formatting ---------------------------------------------------------------------------


def test_iso_utc_exact() -> None:
    assert iso_utc(T0) == "2023-11-14T22:13:20+00:00"
    assert iso_utc(T0 + 0.5) == "2023-11-14T22:13:20.500000+00:00"


def test_iso_local_carries_an_offset() -> None:
    text = iso_local(T0)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", text)


@given(st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False))
def test_iso_round_trips(epoch: float) -> None:
    assert parse_iso(iso_utc(epoch)) == pytest.approx(epoch, abs=1e-6)
    assert parse_iso(iso_local(epoch)) == pytest.approx(epoch, abs=1e-6)


@pytest.mark.parametrize("text", ["", "   ", "garbage", "2023-13-01T00:00:00", None, 12.5, "N/A"])
def test_parse_iso_rejects_what_it_cannot_read(text: object) -> None:
    assert parse_iso(text) is None


def test_parse_iso_accepts_z_suffix() -> None:
    assert parse_iso("2023-11-14T22:13:20Z") == T0


@given(st.floats(min_value=0, max_value=10**7, allow_nan=False))
def test_format_duration_matches_timedelta(seconds: float) -> None:
    assert format_duration(seconds) == str(timedelta(seconds=seconds))
