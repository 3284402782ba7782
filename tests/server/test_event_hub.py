"""The server's event hub: one backend listener, delivery by job on the loop, batched wakes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest

import flare_core as fc
from flare_adapters.server.event_hub import EventHub

pytestmark = pytest.mark.asyncio


class Publisher:
    """The backend's ``subscribe`` side: counts its listeners; ``publish`` from any thread."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[fc.JobEvent], None]] = []
        self.subscribes = 0

    def subscribe(self, listener: Callable[[fc.JobEvent], None]) -> Callable[[], None]:
        self.subscribes += 1
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def publish(self, event: fc.JobEvent) -> None:
        for listener in list(self.listeners):
            listener(event)


def _event(job_id: str, status: str = "RUNNING") -> fc.JobEvent:
    return fc.JobEvent(job_id=job_id, study="default", status=status)


def _hub(publisher: Publisher, **options: Any) -> EventHub:
    return EventHub(publisher, **options)  # type: ignore[arg-type]  # only subscribe is used


async def _settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_one_backend_listener_for_every_subscriber_and_none_without() -> None:
    publisher = Publisher()
    hub = _hub(publisher)
    stops = [hub.subscribe(f"job-{i}", lambda e: None) for i in range(50)]
    stops.append(hub.subscribe(None, lambda e: None))
    assert len(publisher.listeners) == 1
    assert hub.listening == 51
    for stop in stops:
        stop()
        stop()  # twice is harmless
    assert publisher.listeners == []
    assert hub.listening == 0
    hub.subscribe("again", lambda e: None)
    assert len(publisher.listeners) == 1
    assert publisher.subscribes == 2


async def test_events_reach_only_their_job_and_the_every_job_subscribers() -> None:
    publisher = Publisher()
    hub = _hub(publisher)
    got: dict[str, list[str]] = {"a": [], "b": [], "all": []}
    hub.subscribe("a", lambda e: got["a"].append(e.status))
    stop_b = hub.subscribe("b", lambda e: got["b"].append(e.status))
    hub.subscribe(None, lambda e: got["all"].append(f"{e.job_id}:{e.status}"))
    publisher.publish(_event("a", "RUNNING"))
    publisher.publish(_event("b", "RUNNING"))
    publisher.publish(_event("c", "RUNNING"))
    assert got == {"a": [], "b": [], "all": []}  # delivered on the loop, not on the caller
    await _settle()
    assert got == {
        "a": ["RUNNING"],
        "b": ["RUNNING"],
        "all": ["a:RUNNING", "b:RUNNING", "c:RUNNING"],
    }
    stop_b()
    publisher.publish(_event("b", "FINISHED:COMPLETED"))
    await _settle()
    assert got["b"] == ["RUNNING"]
    assert got["all"][-1] == "b:FINISHED:COMPLETED"


async def test_a_burst_from_other_threads_wakes_the_loop_once_in_order() -> None:
    publisher = Publisher()
    hub = _hub(publisher)
    loop = asyncio.get_running_loop()
    got: list[str] = []
    hub.subscribe(None, lambda e: got.append(e.job_id))

    def burst() -> None:
        for i in range(500):
            publisher.publish(_event(f"j{i}"))

    with mock.patch.object(loop, "call_soon_threadsafe", wraps=loop.call_soon_threadsafe) as wakes:
        thread = threading.Thread(target=burst)
        thread.start()
        thread.join()  # the loop is blocked meanwhile: every event waits for one delivery
        await _settle()
    assert got == [f"j{i}" for i in range(500)]
    assert wakes.call_count == 1  # one hop for the whole burst, not one per event


async def test_a_loop_far_behind_drops_the_oldest_events() -> None:
    publisher = Publisher()
    hub = _hub(publisher, max_pending=3)
    got: list[str] = []
    hub.subscribe(None, lambda e: got.append(e.job_id))
    for i in range(5):
        publisher.publish(_event(f"j{i}"))
    await _settle()
    assert got == ["j2", "j3", "j4"]


async def test_an_offer_may_unsubscribe_while_events_are_delivered() -> None:
    publisher = Publisher()
    hub = _hub(publisher)
    got: list[str] = []

    def once(event: fc.JobEvent) -> None:
        got.append(event.job_id)
        stop()

    stop = hub.subscribe(None, once)
    publisher.publish(_event("first"))
    publisher.publish(_event("second"))
    await _settle()
    assert got == ["first"]
    assert publisher.listeners == []
