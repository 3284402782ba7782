"""Client flows that wait for a job: ``monitor_job_and_return_job_meta`` and ``wait_for_job``
(reference §5.2-§5.3, exactly).

The loop: check the timeout (never before the first poll), poll ``get_job_meta``, run the
callback (before the terminal check, so it sees the final meta and may still end the
monitor), fail on a missing status, stop on a terminal status (never sleeping after it),
otherwise sleep ``poll_interval``. The sleep names the job (``wake_on``) so transports with
an event source wake up as soon as the job changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flare_core.errors import InternalError, JobTimeout
from flare_core.flows._context import ClientFlow, FlowContext, Notify
from flare_core.flows.jobs import get_job_meta
from flare_core.info import MonitorReturnCode
from flare_core.lifecycle import monitor_terminal
from flare_core.steps import Now, Sleep
from flare_core.validation import check_job_id, check_monitor_args

__all__ = ["MonitorCallback", "monitor_job_and_return_job_meta", "wait_for_job"]

MonitorCallback = Callable[[dict[str, Any]], object]
"""The driver-bound callback: receives the polled meta, returns "keep monitoring"."""


def monitor_job_and_return_job_meta(
    ctx: FlowContext,
    job_id: str,
    timeout: float = 0,
    poll_interval: float = 2.0,
    cb: MonitorCallback | None = None,
) -> ClientFlow[tuple[MonitorReturnCode, dict[str, Any] | None]]:
    """Poll a job until it ends, the timeout passes, or the callback says stop.

    Returns:
        ``(JOB_FINISHED, meta)``, ``(TIMEOUT, None)`` or ``(ENDED_BY_CB, None)``.

    Raises:
        InvalidArgumentError: ``timeout < 0`` or ``poll_interval <= 0`` (nothing is sent).
        JobNotFound: bad or unknown job id.
        InternalError: a polled meta has no status.
    """
    limit, interval = check_monitor_args(timeout, poll_interval)
    job_id = check_job_id(job_id)
    started: float = yield Now()
    polled = False
    while True:
        if polled and limit > 0:
            now: float = yield Now()
            if now - started > limit:
                return MonitorReturnCode.TIMEOUT, None
        meta = yield from get_job_meta(ctx, job_id)
        polled = True
        if cb is not None:
            keep = yield Notify(callback=cb, job_meta=meta)
            if not keep:
                return MonitorReturnCode.ENDED_BY_CB, None
        status = meta.get("status")
        if not status:
            raise InternalError(f"missing status in job {job_id}")
        if monitor_terminal(str(status)):
            return MonitorReturnCode.JOB_FINISHED, meta
        yield Sleep(seconds=interval, wake_on=job_id)


def wait_for_job(
    ctx: FlowContext, job_id: str, timeout: float = 0.0, poll_interval: float = 2.0
) -> ClientFlow[dict[str, Any]]:
    """Wait until a job is terminal and return its final meta.

    Raises:
        JobTimeout: the job did not finish within ``timeout`` seconds.
        InvalidArgumentError: ``timeout < 0`` or ``poll_interval <= 0`` (nothing is sent).
    """
    rc, meta = yield from monitor_job_and_return_job_meta(ctx, job_id, timeout, poll_interval)
    if rc is MonitorReturnCode.TIMEOUT or meta is None:
        raise JobTimeout(f"job {job_id} did not finish within {timeout}s")
    return meta
