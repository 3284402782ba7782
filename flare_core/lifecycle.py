"""The job lifecycle: statuses, THE transition table, and the rules derived from it.

One mapping, ``TRANSITIONS``, says which trigger moves a job from which status to which
(the h11 ``_state.py`` style). Terminality, the abort plan and the docs diagram are read off
it; nothing else spells out a status graph. Status values are the reference's exact strings,
and every function that takes a status accepts the raw ``str`` found in stored meta.

Abbreviated picture (``state_diagram()`` renders the full one)::

    SUBMITTED --DISPATCH--> DISPATCHED --START--> RUNNING --COMPLETE--> FINISHED:COMPLETED
        |                       |                    +--ABORT/EXECUTION_EXCEPTION/ABNORMAL/...
        +--ABORT / CANT_SCHEDULE / FAIL_TO_RUN       +--> FINISHED:*
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

import msgspec

from flare_core.errors import InternalError, JobNotDone, JobNotRunning
from flare_core.timefmt import format_duration, iso_local, iso_utc, parse_iso

__all__ = [
    "INITIAL_STATUS",
    "TRANSITIONS",
    "AbortPlan",
    "InvalidTransition",
    "JobOp",
    "JobStatus",
    "Trigger",
    "check_operation",
    "creation_fields",
    "finish_fields",
    "is_terminal",
    "monitor_terminal",
    "plan_abort",
    "running_duration",
    "start_fields",
    "state_diagram",
    "transition",
]


class JobStatus(enum.StrEnum):
    """A job's status; the values are the exact strings stored in job meta."""

    SUBMITTED = "SUBMITTED"
    APPROVED = "APPROVED"  # legacy: defined by the reference, never set by current code
    DISPATCHED = "DISPATCHED"
    RUNNING = "RUNNING"
    FINISHED_COMPLETED = "FINISHED:COMPLETED"
    FINISHED_ABORTED = "FINISHED:ABORTED"
    FINISHED_EXECUTION_EXCEPTION = "FINISHED:EXECUTION_EXCEPTION"
    FINISHED_ABNORMAL = "FINISHED:ABNORMAL"
    FINISHED_CANT_SCHEDULE = "FINISHED:CAN_NOT_SCHEDULE"
    FAILED_TO_RUN = "FINISHED:FAILED_TO_RUN"
    ABANDONED = "FINISHED:ABANDONED"

    @property
    def terminal(self) -> bool:
        """True when no trigger leads out of this status (read off ``TRANSITIONS``)."""
        return not TRANSITIONS[self]


class Trigger(enum.Enum):
    """What moves a job: the scheduler, the engine, an admin, or a server restart."""

    DISPATCH = "dispatch"  # scheduler picked the job and deployed its apps
    START = "start"  # the server app started
    COMPLETE = "complete"  # normal end
    ABORT = "abort"  # admin abort (or the job exited with the "aborted" code)
    EXECUTION_EXCEPTION = "execution_exception"  # execution error / config exit code
    ABNORMAL = "abnormal"  # infrastructure error, process killed
    CANT_SCHEDULE = "cant_schedule"  # scheduler blocked the job for good
    FAIL_TO_RUN = "fail_to_run"  # deploying or starting raised
    ABANDON = "abandon"  # the job was left live and given up on
    RECOVER_ABNORMAL = "recover_abnormal"  # server restarted while the job was live


_S = JobStatus
_T = Trigger

_NOT_YET_RUNNING: dict[Trigger, JobStatus] = {
    _T.DISPATCH: _S.DISPATCHED,
    _T.ABORT: _S.FINISHED_ABORTED,
    _T.CANT_SCHEDULE: _S.FINISHED_CANT_SCHEDULE,
    _T.FAIL_TO_RUN: _S.FAILED_TO_RUN,
}

TRANSITIONS: Mapping[JobStatus, Mapping[Trigger, JobStatus]] = MappingProxyType(
    {
        _S.SUBMITTED: MappingProxyType(dict(_NOT_YET_RUNNING)),
        # APPROVED is legacy; if a stored job ever carries it, it behaves like SUBMITTED.
        _S.APPROVED: MappingProxyType(dict(_NOT_YET_RUNNING)),
        _S.DISPATCHED: MappingProxyType(
            {
                _T.START: _S.RUNNING,
                _T.ABORT: _S.FINISHED_ABORTED,
                _T.FAIL_TO_RUN: _S.FAILED_TO_RUN,
                _T.ABANDON: _S.ABANDONED,
                _T.RECOVER_ABNORMAL: _S.FINISHED_ABNORMAL,
            }
        ),
        _S.RUNNING: MappingProxyType(
            {
                _T.COMPLETE: _S.FINISHED_COMPLETED,
                _T.ABORT: _S.FINISHED_ABORTED,
                _T.EXECUTION_EXCEPTION: _S.FINISHED_EXECUTION_EXCEPTION,
                _T.ABNORMAL: _S.FINISHED_ABNORMAL,
                _T.ABANDON: _S.ABANDONED,
                _T.RECOVER_ABNORMAL: _S.FINISHED_ABNORMAL,
            }
        ),
        _S.FINISHED_COMPLETED: MappingProxyType({}),
        _S.FINISHED_ABORTED: MappingProxyType({}),
        _S.FINISHED_EXECUTION_EXCEPTION: MappingProxyType({}),
        _S.FINISHED_ABNORMAL: MappingProxyType({}),
        _S.FINISHED_CANT_SCHEDULE: MappingProxyType({}),
        _S.FAILED_TO_RUN: MappingProxyType({}),
        _S.ABANDONED: MappingProxyType({}),
    }
)
"""status -> trigger -> next status. A status with no outgoing trigger is terminal."""

INITIAL_STATUS = JobStatus.SUBMITTED
"""Where ``submit_job`` and ``clone_job`` put a new job."""

# Terminal statuses whose ``duration`` is recomputed on arrival (reference §1.2); the
# others (FAILED_TO_RUN, ABANDONED) keep whatever duration was stored.
_DURATION_ON_FINISH = frozenset(
    {
        _S.FINISHED_COMPLETED,
        _S.FINISHED_ABORTED,
        _S.FINISHED_ABNORMAL,
        _S.FINISHED_EXECUTION_EXCEPTION,
        _S.FINISHED_CANT_SCHEDULE,
    }
)

# The client monitor's extra terminal values (legacy servers).
_LEGACY_TERMINAL = frozenset({"ABORTED", "ABANDONED", "FAILED"})


class InvalidTransition(InternalError):
    """A trigger was applied to a status the table does not allow it from (a server bug)."""


def _parse_status(status: str) -> JobStatus | None:
    try:
        return JobStatus(status)
    except ValueError:
        return None


def transition(status: str, trigger: Trigger) -> JobStatus:
    """Apply ``trigger`` to a job in ``status``.

    Args:
        status: the job's current status string.
        trigger: what happened.

    Returns:
        The next status.

    Raises:
        InvalidTransition: the status is unknown, or the table has no such edge.
    """
    current = _parse_status(status)
    if current is None:
        raise InvalidTransition(f"unknown job status {status!r}")
    nxt = TRANSITIONS[current].get(trigger)
    if nxt is None:
        raise InvalidTransition(f"cannot {trigger.name} a job in status {current.value}")
    return nxt


def is_terminal(status: str) -> bool:
    """The server's rule: a job is done exactly when its status starts with ``FINISHED:``."""
    return isinstance(status, str) and status.startswith("FINISHED:")


def monitor_terminal(status: str) -> bool:
    """The client monitor's lenient rule (reference §5.3 e).

    Any status starting with ``FINISHED`` (every ``FINISHED:*`` plus legacy ``FINISHED_OK``
    and friends), or one of the legacy values ``ABORTED``, ``ABANDONED``, ``FAILED``.
    """
    return isinstance(status, str) and (status.startswith("FINISHED") or status in _LEGACY_TERMINAL)


class JobOp(enum.Enum):
    """Job-addressed operations whose permission depends on the job's status."""

    ABORT = "abort_job"
    DELETE = "delete_job"
    CLONE = "clone_job"
    DOWNLOAD_RESULT = "download_job"
    DOWNLOAD_COMPONENTS = "download_job_components"
    LIST_COMPONENTS = "list_job_components"
    GET_LOGS = "get_job_logs"
    SHOW_STATS = "show_stats"
    SHOW_ERRORS = "show_errors"
    RESET_ERRORS = "reset_errors"
    CONFIGURE_JOB_LOG = "configure_job_log"


_Need = Literal["any", "done", "running"]

# What each operation needs of the job (reference §1.3, DECISIONS §10 for DELETE: the service
# aborts a live job first, so delete is allowed everywhere; abort is planned by plan_abort).
_OP_NEEDS: Mapping[JobOp, _Need] = MappingProxyType(
    {
        JobOp.ABORT: "any",
        JobOp.DELETE: "any",
        JobOp.CLONE: "any",
        JobOp.DOWNLOAD_RESULT: "done",
        JobOp.DOWNLOAD_COMPONENTS: "any",
        JobOp.LIST_COMPONENTS: "any",
        JobOp.GET_LOGS: "any",
        JobOp.SHOW_STATS: "running",
        JobOp.SHOW_ERRORS: "running",
        JobOp.RESET_ERRORS: "running",
        JobOp.CONFIGURE_JOB_LOG: "running",
    }
)


def check_operation(op: JobOp, status: str, job_id: str) -> None:
    """Refuse ``op`` on a job whose status does not allow it (reference §1.3 table).

    Args:
        op: the operation.
        status: the job's current status string.
        job_id: the job's id, for the message.

    Raises:
        JobNotDone: ``DOWNLOAD_RESULT`` on a job that is not ``FINISHED:*``
            (``"job <id> is still running"``).
        JobNotRunning: stats/errors operations on a job that is not RUNNING
            (``"job <id> is not running"``).
        InternalError: ``CONFIGURE_JOB_LOG`` on a job that is not RUNNING
            (``"error: Job <id> must be running but is <status>"``).
    """
    need = _OP_NEEDS[op]
    if need == "done" and not is_terminal(status):
        raise JobNotDone(f"job {job_id} is still running")
    if need == "running" and status != JobStatus.RUNNING.value:
        if op is JobOp.CONFIGURE_JOB_LOG:
            raise InternalError(f"error: Job {job_id} must be running but is {status}")
        raise JobNotRunning(f"job {job_id} is not running")


class AbortPlan(msgspec.Struct, frozen=True):
    """What ``abort_job`` must do for a job in a given status.

    Attributes:
        action: ``"cancel"``: set ``new_status`` directly (nothing runs yet); ``"signal"``: ask
            the engine to stop the job, which then reports ``Trigger.ABORT``; ``"noop"``: the
            job is already finished.
        new_status: the status to store for ``"cancel"``, else None.
        message: the reply text the reference returns.
    """

    action: Literal["cancel", "signal", "noop"]
    new_status: JobStatus | None
    message: str


def plan_abort(status: str, job_id: str) -> AbortPlan:
    """Decide how to abort a job (reference §1.3 ``abort_job`` row).

    Args:
        status: the job's current status string.
        job_id: the job's id, for the message.

    Returns:
        ``cancel`` to ``FINISHED:ABORTED`` for a job that is not running yet, ``signal`` for a
        RUNNING job, ``noop`` for a finished one.

    Raises:
        InternalError: the status is unknown and not ``FINISHED:*``, so neither the table nor
            the engine can stop the job (the reference's runner says the same).
    """
    if is_terminal(status):
        return AbortPlan("noop", None, f"Job for {job_id} is already completed.")
    if status == JobStatus.RUNNING.value:
        return AbortPlan("signal", None, "Abort signal has been sent to the server app.")
    current = _parse_status(status)
    if current is None:
        raise InternalError(f"server internal error: Job {job_id} is not running.")
    return AbortPlan(
        "cancel", transition(current, Trigger.ABORT), f"Aborted the job {job_id} before running it."
    )


def creation_fields(now: float) -> dict[str, Any]:
    """The meta fields every new job (submitted or cloned) starts with (reference §1.2).

    Args:
        now: the creation time, epoch seconds.

    Returns:
        ``status``, ``submit_time`` (the float), ``submit_time_iso`` (local ISO with offset),
        ``start_time`` (``""``) and ``duration`` (``"N/A"``).
    """
    return {
        "status": INITIAL_STATUS.value,
        "submit_time": float(now),
        "submit_time_iso": iso_local(now),
        "start_time": "",
        "duration": "N/A",
    }


def start_fields(now: float) -> dict[str, Any]:
    """The meta update when the job's server app starts: RUNNING, ``start_time`` in UTC ISO.

    Args:
        now: the start time, epoch seconds.

    Returns:
        ``status`` and ``start_time``.
    """
    return {"status": JobStatus.RUNNING.value, "start_time": iso_utc(now)}


def _elapsed_since_start(meta: Mapping[str, Any], now: float) -> str | None:
    started = parse_iso(meta.get("start_time"))
    return None if started is None else format_duration(now - started)


def finish_fields(meta: Mapping[str, Any], status: JobStatus, now: float) -> dict[str, Any]:
    """The meta update when a job reaches a terminal status.

    ``duration`` is recomputed as ``now - start_time`` for COMPLETED, ABORTED, ABNORMAL,
    EXECUTION_EXCEPTION and CAN_NOT_SCHEDULE, and only when a start time was recorded;
    FAILED_TO_RUN and ABANDONED leave it alone (reference §1.2 "Duration").

    Args:
        meta: the job's meta before the update (read, not modified).
        status: the terminal status reached.
        now: the finishing time, epoch seconds.

    Returns:
        ``status``, plus ``duration`` when recomputed.

    Raises:
        InvalidTransition: ``status`` is not terminal.
    """
    if not status.terminal:
        raise InvalidTransition(f"{status.value} is not a terminal status")
    fields: dict[str, Any] = {"status": status.value}
    if status in _DURATION_ON_FINISH:
        duration = _elapsed_since_start(meta, now)
        if duration is not None:
            fields["duration"] = duration
    return fields


def running_duration(meta: Mapping[str, Any], now: float) -> str:
    """The ``duration`` a listing shows (reference §1.5).

    Args:
        meta: the job's meta.
        now: the listing time, epoch seconds.

    Returns:
        For a RUNNING job with a parsable ``start_time``, ``now - start_time``; otherwise the
        stored duration as a string (``"N/A"`` when absent).
    """
    if meta.get("status") == JobStatus.RUNNING.value:
        duration = _elapsed_since_start(meta, now)
        if duration is not None:
            return duration
    return str(meta.get("duration", "N/A"))


def state_diagram() -> str:
    """Render ``TRANSITIONS`` as a Mermaid ``stateDiagram-v2`` (for the docs).

    Returns:
        The diagram text, one edge per line, terminal statuses leading to ``[*]``.
    """
    lines = ["stateDiagram-v2"]
    # Mermaid state ids may not contain ':', so ids are member names, labelled with values.
    for status in JobStatus:
        if status.name != status.value:
            lines.append(f'    state "{status.value}" as {status.name}')
    lines.append(f"    [*] --> {INITIAL_STATUS.name}")
    for status, edges in TRANSITIONS.items():
        for trigger, target in edges.items():
            lines.append(f"    {status.name} --> {target.name}: {trigger.name}")
    for status in JobStatus:
        if status.terminal:
            lines.append(f"    {status.name} --> [*]")
    return "\n".join(lines) + "\n"
