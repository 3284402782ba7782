"""One listener on the backend's job events per server, fanned out on the event loop.

Every WebSocket connection with a subscription and every ``GET /v1/events`` stream wants job
events, and the backend calls its listeners on whatever thread changed the job, often under
the service's lock. A backend listener per stream meant one cross-thread hop per stream per
event, all paid under that lock: with 200 subscribed connections, 600 hops for each job's
three status changes, and job ends fell behind submits (issue 10's load phase).

The hub holds the one backend listener while anybody listens. It queues each event and wakes
the loop once per batch; on the loop, an event goes only to the streams that asked for its
job or for every job. Events are hints to look again: when the loop falls far behind, the
oldest queued events are dropped, as each stream's own backlog does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import deque
from collections.abc import Callable
from typing import Final

from aiohttp import web

import flare_core as fc
from flare_ports import Backend

__all__ = ["EVENT_HUB", "EventHub", "Offer"]

Offer = Callable[[fc.JobEvent], None]
"""Takes one event, on the loop; must not block."""

MAX_PENDING: Final = 10_000
"""Events queued for the loop at most (the oldest are dropped beyond it)."""


class EventHub:
    """The server's job events, delivered on its loop to whoever asked (see the module
    docstring). ``subscribe`` and the functions it returns run on the loop; the backend may
    publish from any thread."""

    def __init__(self, backend: Backend, *, max_pending: int = MAX_PENDING) -> None:
        self._backend = backend
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()  # guards _pending and _woken (the backend's threads)
        self._pending: deque[fc.JobEvent] = deque(maxlen=max_pending)
        self._woken = False
        self._offers: dict[str | None, dict[int, Offer]] = {}  # no empty entry is kept
        self._tokens = itertools.count()
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def listening(self) -> int:
        """How many subscriptions are open."""
        return sum(map(len, self._offers.values()))

    def subscribe(self, job_id: str | None, offer: Offer) -> Callable[[], None]:
        """Call ``offer`` on the loop with every event of ``job_id`` (None: of every job)
        published from now on; returns the function that stops it (safe to call twice)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        token = next(self._tokens)
        self._offers.setdefault(job_id, {})[token] = offer
        if self._unsubscribe is None:
            self._unsubscribe = self._backend.subscribe(self._publish)

        def stop() -> None:
            offers = self._offers.get(job_id)
            if offers is None or offers.pop(token, None) is None:
                return
            if not offers:
                del self._offers[job_id]
            if not self._offers and self._unsubscribe is not None:
                self._unsubscribe()  # nobody listens: the service pays nothing per event
                self._unsubscribe = None

        return stop

    def _publish(self, event: fc.JobEvent) -> None:
        # Any thread, often under the service's lock: queue, and wake the loop once per batch.
        with self._lock:
            self._pending.append(event)
            if self._woken:
                return
            self._woken = True
        assert self._loop is not None  # set before the backend listener is added
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
            self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            events = list(self._pending)
            self._pending.clear()
            self._woken = False
        for event in events:
            for key in (event.job_id, None):
                offers = self._offers.get(key)
                if offers:
                    for offer in list(offers.values()):  # an offer may unsubscribe
                        offer(event)


EVENT_HUB: Final = web.AppKey("event_hub", EventHub)
