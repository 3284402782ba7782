"""The flows are plain generators: drive a few by hand, without any driver (sans-I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from flare_core import GetJobMeta, JobTimeout, MonitorReturnCode, NoConnection, Ok, SubmitJob
from flare_core.flows import (
    FlowContext,
    Notify,
    call,
    monitor_job_and_return_job_meta,
    submit_job,
    wait_for_job,
)
from flare_core.steps import Call, InspectPath, Now, PathInfo, Sleep, Upload

JOB = "3d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a"


def context() -> FlowContext:
    return FlowContext(upload_dir="/up", download_dir="/down", mint_token=lambda: "session.t1")


def test_an_abandoned_retrying_call_closes_cleanly() -> None:
    flow = call(context(), GetJobMeta(job_id=JOB))
    assert next(flow) == Now()
    assert flow.send(0.0) == Call(command=GetJobMeta(job_id=JOB))
    flow.close()  # the attempt manager must not swallow GeneratorExit


def test_a_retry_is_a_sleep_step_between_two_calls() -> None:
    flow = call(context(), GetJobMeta(job_id=JOB))
    next(flow)
    flow.send(0.0)
    assert flow.throw(NoConnection("down")) == Now()
    assert flow.send(0.2) == Sleep(seconds=0.5)
    assert flow.send(False) == Call(command=GetJobMeta(job_id=JOB))
    with pytest.raises(StopIteration) as done:
        flow.send(Ok(value={"status": "RUNNING"}))
    assert done.value.value == {"status": "RUNNING"}


def test_submit_flow_steps() -> None:
    flow = submit_job(context(), "hello-job")
    assert next(flow) == InspectPath(path="hello-job")
    assert flow.send(PathInfo(path="/cwd/hello-job", is_dir=False)) == InspectPath(
        path="/up/hello-job"
    )
    assert flow.send(PathInfo(path="/up/hello-job", is_dir=True)) == Now()
    command = SubmitJob(folder_name="hello-job", submit_token="session.t1", token_scope="session")
    assert flow.send(0.0) == Upload(command=command, folder="/up/hello-job")
    with pytest.raises(StopIteration) as done:
        flow.send(Ok(value=JOB))
    assert done.value.value == JOB


def test_monitor_flow_yields_the_callback_step() -> None:
    seen: list[dict[str, Any]] = []

    def keep(meta: dict[str, Any]) -> object:
        seen.append(meta)
        return True

    flow = monitor_job_and_return_job_meta(context(), JOB, 0, 2.0, keep)
    assert next(flow) == Now()
    assert flow.send(0.0) == Now()  # the call's retry clock
    assert flow.send(0.0) == Call(command=GetJobMeta(job_id=JOB))
    step = flow.send(Ok(value={"status": "RUNNING"}))
    assert isinstance(step, Notify)
    assert step.job_meta == {"status": "RUNNING"}
    assert flow.send(True) == Sleep(seconds=2.0, wake_on=JOB)
    assert flow.send(False) == Now()  # no timeout: straight to the next poll (its retry clock)
    flow.close()


def test_wait_flow_times_out() -> None:
    flow = wait_for_job(context(), JOB, timeout=1, poll_interval=5.0)
    assert next(flow) == Now()
    flow.send(0.0)  # retry clock
    flow.send(0.0)  # the call
    assert flow.send(Ok(value={"status": "RUNNING"})) == Sleep(seconds=5.0, wake_on=JOB)
    assert flow.send(False) == Now()
    with pytest.raises(JobTimeout):
        flow.send(5.0)


def test_finished_on_first_poll() -> None:
    flow = monitor_job_and_return_job_meta(context(), JOB)
    next(flow)
    flow.send(0.0)
    flow.send(0.0)
    with pytest.raises(StopIteration) as done:
        flow.send(Ok(value={"status": "FINISHED:COMPLETED"}))
    assert done.value.value == (MonitorReturnCode.JOB_FINISHED, {"status": "FINISHED:COMPLETED"})
