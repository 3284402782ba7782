"""In-memory implementations of the service's store ports (jobs, tokens, studies, sites,
sessions).

They honour the same contracts as the durable stores: every read returns a copy, every write
takes a whole value, and each store is safe to call from several threads. Job metas are copied
with ``copy_json`` rather than ``copy.deepcopy``: on every read of the in-process path the
deep copy was the largest single cost.
"""

from __future__ import annotations

import heapq
import itertools
import operator
import threading
from collections import Counter
from collections.abc import Collection, Mapping
from typing import Any

import msgspec

from flare_core.lifecycle import is_terminal
from flare_core.listing import normalize_study
from flare_core.nesting import copy_json
from flare_core.service.ports import JobCursor, JobPage, SessionRecord
from flare_core.studies import StudyRegistry
from flare_core.tokens import TokenRecord, TokenScope

__all__ = [
    "MemoryJobStore",
    "MemorySessionStore",
    "MemorySiteStore",
    "MemoryStudyStore",
    "MemoryTokenStore",
]


def _submit_epoch(meta: Mapping[str, Any]) -> float:
    value = meta.get("submit_time")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return 0.0


def _starts(value: object, prefix: str | None) -> bool:
    if not prefix:
        return True
    return isinstance(value, str) and value.lower().startswith(prefix.lower())


class MemoryJobStore:
    """Job metas in a dict (the ``JobStore`` port)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, Any]] = {}
        # Each job's submission sequence: the tie-break of the listing order, kept apart from
        # the dict's order so that a page's cursor stays valid while jobs come and go.
        self._seq: dict[str, int] = {}
        self._next_seq = itertools.count()

    def add(self, meta: Mapping[str, Any]) -> None:
        """Store a new job. Raises KeyError when its ``job_id`` already exists."""
        job_id = str(meta["job_id"])
        with self._lock:
            if job_id in self._jobs:
                raise KeyError(job_id)
            self._jobs[job_id] = copy_json(dict(meta))
            self._seq[job_id] = next(self._next_seq)

    def get(self, job_id: str) -> dict[str, Any] | None:
        """A copy of the job's meta, or None."""
        with self._lock:
            meta = self._jobs.get(job_id)
            return None if meta is None else copy_json(meta)

    def update(self, job_id: str, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        """Merge ``changes`` into the job's meta; a copy of the result, or None (no job)."""
        with self._lock:
            meta = self._jobs.get(job_id)
            if meta is None:
                return None
            meta.update(copy_json(dict(changes)))
            return copy_json(meta)

    def remove(self, job_id: str) -> bool:
        """Forget the job; False when it did not exist."""
        with self._lock:
            self._seq.pop(job_id, None)
            return self._jobs.pop(job_id, None) is not None

    def query(
        self,
        *,
        study: str | None = None,
        id_prefix: str | None = None,
        name_prefix: str | None = None,
        newest: int | None = None,
    ) -> list[dict[str, Any]]:
        """Copies of the jobs matching every given filter (prefixes case-insensitive), oldest
        submit first (equal times in insertion order), the newest ``newest`` when given."""
        with self._lock:
            matches = [
                meta
                for meta in self._jobs.values()
                if (study is None or normalize_study(meta.get("study")) == study)
                and _starts(meta.get("job_id"), id_prefix)
                and _starts(meta.get("name"), name_prefix)
            ]
            matches.sort(key=_submit_epoch)  # stable: ties keep insertion order
            if newest:
                matches = matches[-newest:]
            return [copy_json(meta) for meta in matches]

    def page(
        self,
        *,
        study: str,
        size: int,
        after: JobCursor | None = None,
        newest_first: bool = False,
        id_prefix: str | None = None,
        name_prefix: str | None = None,
    ) -> JobPage:
        """Up to ``size`` copies of ``study``'s matching jobs after ``after`` in the listing
        order (``JobStore.page``); each page scans the dict, as ``query`` does."""
        with self._lock:
            keyed: list[tuple[JobCursor, dict[str, Any]]] = []
            for job_id, meta in self._jobs.items():
                key = (_submit_epoch(meta), self._seq[job_id])
                if after is not None and (key >= after if newest_first else key <= after):
                    continue
                if (
                    normalize_study(meta.get("study")) == study
                    and _starts(meta.get("job_id"), id_prefix)
                    and _starts(meta.get("name"), name_prefix)
                ):
                    keyed.append((key, meta))
            pick = heapq.nlargest if newest_first else heapq.nsmallest
            chosen = pick(size, keyed, key=operator.itemgetter(0))
            rows = [copy_json(meta) for _, meta in chosen]
        last = chosen[-1][0] if len(chosen) == size and chosen else None
        return JobPage(rows, last)

    def count(self, study: str) -> int:
        """How many jobs (any status) belong to ``study``."""
        with self._lock:
            return sum(1 for m in self._jobs.values() if normalize_study(m.get("study")) == study)

    def count_by_status(self) -> dict[str, int]:
        """How many jobs are in each status, every study together."""
        with self._lock:
            return dict(Counter(str(meta.get("status", "")) for meta in self._jobs.values()))

    def unfinished(self, statuses: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Copies of the jobs that are not ``FINISHED:*`` (and whose status is one of
        ``statuses`` when given), oldest submit first."""
        wanted = None if statuses is None else frozenset(map(str, statuses))
        with self._lock:
            live = [
                copy_json(m)
                for m in self._jobs.values()
                if not is_terminal(status := str(m.get("status", "")))
                and (wanted is None or status in wanted)
            ]
        live.sort(key=_submit_epoch)
        return live


class MemoryTokenStore:
    """Submit-token records keyed by ``TokenScope.key()`` (the ``TokenStore`` port)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, TokenRecord] = {}

    def get(self, scope: TokenScope) -> TokenRecord | None:
        """The record of ``scope``, or None (records are immutable, so no copy is needed)."""
        with self._lock:
            return self._records.get(scope.key())

    def create(self, record: TokenRecord) -> bool:
        """Store a new record; False (no change) when the scope already has one."""
        key = record.scope.key()
        with self._lock:
            if key in self._records:
                return False
            self._records[key] = record
            return True

    def put(self, record: TokenRecord) -> None:
        """Create or replace the record of ``record.scope``."""
        with self._lock:
            self._records[record.scope.key()] = record

    def for_job(self, job_id: str) -> list[TokenRecord]:
        """Every record pointing at ``job_id``."""
        with self._lock:
            return [r for r in self._records.values() if r.job_id == job_id]


class MemoryStudyStore:
    """The study registry, kept encoded so no caller can alias it (the ``StudyStore`` port)."""

    def __init__(self, registry: StudyRegistry | None = None) -> None:
        self._lock = threading.Lock()
        self._data: bytes | None = None if registry is None else msgspec.json.encode(registry)

    def load(self) -> StudyRegistry | None:
        """A fresh copy of the registry, or None when there is none."""
        with self._lock:
            data = self._data
        return None if data is None else msgspec.json.decode(data, type=StudyRegistry)

    def save(self, registry: StudyRegistry) -> None:
        """Replace the registry."""
        data = msgspec.json.encode(registry)
        with self._lock:
            self._data = data


class MemorySiteStore:
    """The disabled-site set (the ``SiteStore`` port)."""

    def __init__(self, disabled: frozenset[str] = frozenset()) -> None:
        self._lock = threading.Lock()
        self._disabled = set(disabled)

    def disabled(self) -> frozenset[str]:
        """The names of the disabled client sites."""
        with self._lock:
            return frozenset(self._disabled)

    def set_disabled(self, name: str, disabled: bool) -> None:
        """Add ``name`` to, or remove it from, the disabled set."""
        with self._lock:
            if disabled:
                self._disabled.add(name)
            else:
                self._disabled.discard(name)


class MemorySessionStore:
    """Admin sessions keyed by session id (the ``SessionStore`` port)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, SessionRecord] = {}

    def get(self, session_id: str) -> SessionRecord | None:
        """The session, or None."""
        with self._lock:
            return self._sessions.get(session_id)

    def put(self, record: SessionRecord) -> None:
        """Create or replace a session."""
        with self._lock:
            self._sessions[record.session_id] = record

    def remove(self, session_id: str) -> None:
        """Forget a session (no error when absent)."""
        with self._lock:
            self._sessions.pop(session_id, None)

    def count_seen_since(self, seen_since: float) -> int:
        """How many sessions were last seen at or after ``seen_since``."""
        with self._lock:
            return sum(1 for r in self._sessions.values() if r.last_seen >= seen_since)

    def purge(self, idle_before: float) -> int:
        """Forget the sessions last seen before ``idle_before``; the count."""
        with self._lock:
            stale = [k for k, r in self._sessions.items() if r.last_seen < idle_before]
            for key in stale:
                del self._sessions[key]
            return len(stale)
