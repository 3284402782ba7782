"""The status watcher: NVFlare pushes nothing, so one thread polls and publishes job events.

One watcher per backend (never one per waiter) lists the jobs of every study that has a live
flare-core session, every ``interval`` seconds, on one of that study's NVFlare sessions, and
publishes a ``JobEvent`` for each job whose status changed (``DELETED`` for a job that is
gone). A waiting session on an event-pushing transport (WebSocket, in-process) then wakes
within one interval instead of sleeping out its poll interval. Cost: one ``list_jobs`` per
watched study per interval (NVFlare answers one in 6-9 ms here), and nothing while no session
is open.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from flare_adapters.nvflare.pool import Slot
from flare_core.events import JobEvent

__all__ = ["JobWatcher"]

logger = logging.getLogger("flare_adapters.nvflare")


class JobWatcher:
    """Polls job statuses and publishes the changes.

    Args:
        targets: the (study, slot) pairs to poll now; called once per round.
        publish: receives each event.
        interval: seconds between rounds.
    """

    def __init__(
        self,
        targets: Callable[[], Iterable[tuple[str, Slot]]],
        publish: Callable[[JobEvent], None],
        interval: float = 0.5,
    ) -> None:
        self._targets = targets
        self._publish = publish
        self._interval = interval
        self._seen: dict[str, dict[str, str]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the watcher thread (idempotent)."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, name="nvflare-job-watcher", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (idempotent)."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10 * self._interval + 5)

    def poll_once(self) -> None:
        """One round: list each target study's jobs and publish what changed."""
        for study, slot in self._targets():
            try:
                rows = slot.run(lambda s: s.list_jobs(), timeout=max(5.0, 4 * self._interval))
            except Exception as exc:  # a failed round is retried next interval
                logger.debug("job watcher: listing %s failed: %s", study, exc)
                continue
            self._diff(study, {str(r.get("job_id")): str(r.get("status")) for r in rows or []})

    def _diff(self, study: str, now: dict[str, str]) -> None:
        before = self._seen.get(study)
        self._seen[study] = now
        if before is None:
            return  # the first round of a study is its baseline
        for job_id, status in now.items():
            if before.get(job_id) != status:
                self._publish(JobEvent(job_id=job_id, study=study, status=status))
        for job_id in before.keys() - now.keys():
            self._publish(JobEvent(job_id=job_id, study=study, status="DELETED"))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll_once()
