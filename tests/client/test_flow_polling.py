"""``poll_until`` (flare_core.flows._polling): the step sequence every wait loop shares."""

from __future__ import annotations

import pytest

from flare_core import CheckStatus, NoConnection, Ok, Problem, Shutdown
from flare_core.flows import FlowContext
from flare_core.flows._context import ClientFlow
from flare_core.flows._polling import PENDING, Pending, poll_until
from flare_core.flows.system import POLL_INTERVAL, shutdown
from flare_core.steps import Call, CloseSession, Now, Sleep


class Probe:
    """A probe that answers PENDING until its n-th attempt, each attempt one ``Now`` step."""

    def __init__(self, ready_on: int) -> None:
        self.ready_on = ready_on
        self.attempts = 0

    def __call__(self) -> ClientFlow[str | Pending]:
        self.attempts += 1
        yield Now()  # any step: the probe's own, passed through untouched
        return "done" if self.attempts >= self.ready_on else PENDING


def test_the_result_comes_from_the_first_ready_attempt() -> None:
    probe = Probe(ready_on=2)
    flow = poll_until(probe, deadline=10.0, interval=0.5, timeout_message=lambda: "late")
    assert next(flow) == Now()  # the probe's step
    assert flow.send(None) == Now()  # poll_until asks the time
    assert flow.send(1.0) == Sleep(seconds=0.5)
    assert flow.send(None) == Now()  # the second attempt
    with pytest.raises(StopIteration) as stop:
        flow.send(None)
    assert stop.value.value == "done"
    assert probe.attempts == 2


def test_a_ready_first_attempt_neither_reads_the_clock_nor_sleeps() -> None:
    flow = poll_until(Probe(ready_on=1), 0.0, 0.5, lambda: "late")
    assert next(flow) == Now()
    with pytest.raises(StopIteration):
        flow.send(None)


def test_the_deadline_raises_with_the_message_built_then() -> None:
    seen: list[str] = []

    def message() -> str:
        seen.append("built")
        return "gave up"

    flow = poll_until(Probe(ready_on=99), deadline=5.0, interval=0.5, timeout_message=message)
    next(flow)
    assert flow.send(None) == Now()
    assert flow.send(4.9) == Sleep(seconds=0.5)
    assert seen == []
    next(flow)
    assert flow.send(None) == Now()
    with pytest.raises(TimeoutError, match="gave up"):
        flow.send(5.0)
    assert seen == ["built"]


def test_shutdown_waits_with_the_same_steps() -> None:
    # The server's wait: probe, Now, Sleep(POLL_INTERVAL), probe ... until it stops answering.
    ctx = FlowContext(upload_dir="/up", download_dir="/down", mint_token=lambda: "session.t1")
    flow = shutdown(ctx, "server", wait=True, timeout=10.0)
    probes = [Ok(value={"server": {"status": "started"}}), Problem.from_exception(NoConnection())]
    seen: list[str] = []
    answer: object = None
    clock = 100.0
    while True:
        try:
            step = flow.send(answer)
        except StopIteration:
            break
        answer = None
        if isinstance(step, Now):
            seen.append("now")
            answer = clock
        elif isinstance(step, Sleep):
            seen.append(f"sleep {step.seconds}")
            clock += step.seconds
        elif isinstance(step, Call):
            if isinstance(step.command, Shutdown):
                seen.append("shutdown")
                answer = Ok(value={"server_status": "stopped"})
            else:
                assert isinstance(step.command, CheckStatus)
                seen.append("probe")
                answer = probes.pop(0)
        else:
            assert isinstance(step, CloseSession)
            seen.append("close")
    wait = ["probe", "now", f"sleep {POLL_INTERVAL}", "probe"]
    assert seen[seen.index("shutdown") + 1 :] == ["now", *wait, "close"]
