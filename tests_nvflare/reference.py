"""Run (a): NVFlare's own ``Session``, behind a wrapper that only renames its exceptions.

The wrapper turns each exception NVFlare raises from its own module into flare-core's class of
the same name (``errors.same_name``), so the contract's ``pytest.raises`` clauses can name one
class; every other behaviour, built-in argument errors included, is NVFlare's. With no
behaviour capability declared, this run proves that the suite encodes the reference.

One race is masked, not a behaviour: NVFlare's file store writes a component under a temporary
``<name>_<uuid4>`` and renames it, so ``list_job_components`` taken while the scheduler rewrites
a queued job's meta lists ``meta_<uuid4>`` (seen once in a CI run). The wrapper drops those
half-written system files as the nvflare backend does (``replies.job_components``). A second
one: the same rewrite can undo an abort of a queued job, which then stays SUBMITTED (seen once
in CI). The wrapper's ``abort_job`` aborts again when that happened, as the backend's does
(``commands.abort_past_scheduler_race``).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from flare_adapters.nvflare.commands import SETTLE_POLL, abort_past_scheduler_race
from flare_adapters.nvflare.errors import same_name
from flare_adapters.nvflare.replies import job_components

__all__ = ["SameNameErrors", "WarmSessions"]


class SameNameErrors:
    """Forwards every attribute of an NVFlare ``Session``; methods re-raise by name."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._session, name)
        if not callable(value):
            return value
        if name == "list_job_components":
            return _renaming(lambda job_id: job_components(value(job_id)))
        if name == "abort_job":
            return _renaming(lambda job_id: self._abort(value, job_id))
        return _renaming(value)

    def _abort(self, abort: Callable[[str], Any], job_id: str) -> Any:
        return abort_past_scheduler_race(
            lambda: abort(job_id),
            lambda: str(self._session.get_job_meta(job_id).get("status", "")),
            pause=SETTLE_POLL,
        )


def _renaming(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            renamed = same_name(exc)
            if renamed is exc:
                raise
            raise renamed from exc

    return call


class WarmSessions:
    """NVFlare sessions logged in ahead of time, so run (a) does not wait out each login.

    An NVFlare login takes about 1.2 s (its authenticator's first retry interval), and the
    suite opens at least one session per test. Each ``take`` hands out a session opened in the
    background and starts the next one; the sessions are NVFlare's own, unchanged.

    Args:
        open_session: ``(user, study) -> NVFlare Session`` (logs in; may raise).
        spares: sessions kept ready per (user, study).
    """

    def __init__(self, open_session: Callable[[str, str], Any], spares: int = 2) -> None:
        self._open = open_session
        self._spares = spares
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="warm-nvflare")
        self._ready: dict[tuple[str, str], list[Future[Any]]] = {}
        self._lock = threading.Lock()

    def take(self, user: str, study: str) -> Any:
        """A logged-in session of ``user`` in ``study`` (raises what the login raised).

        Only the ``default`` study is opened ahead: studies come and go within tests, and a
        session opened before a study changed would not show the change at login.
        """
        if study != "default":
            return self._open(user, study)
        key = (user, study)
        with self._lock:
            queue = self._ready.setdefault(key, [])
            future = queue.pop(0) if queue else None
            while len(queue) < self._spares:
                queue.append(self._pool.submit(self._open, user, study))
        if future is None:
            return self._open(user, study)
        return future.result()

    def close(self) -> None:
        """Close every spare session."""
        with self._lock:
            futures = [f for queue in self._ready.values() for f in queue]
            self._ready.clear()
        for future in futures:
            with contextlib.suppress(Exception):
                future.result().close()
        self._pool.shutdown(wait=True)
