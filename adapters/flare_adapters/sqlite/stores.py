"""SQLite implementations of the service's store ports (jobs, tokens, studies, sites, sessions).

Same contracts as the memory stores (``flare_adapters.memory.stores``): every read returns a
fresh copy, every write takes a whole value and is one durable transaction. Values are stored as
msgspec JSON; the columns beside them exist only for indexes:

- jobs: ``(study, submit_time)`` for listing a study in time order, the primary key for job-id
  prefixes (ids are canonical lower-case, so a prefix is a key range), ``name_lower`` for
  case-insensitive name prefixes, and a partial index over unfinished jobs.
- tokens: the scope digest as the key, plus an index on ``job_id`` (the reverse lookup).
- sessions: ``last_seen`` for purging idle sessions.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from typing import Any, Final

import msgspec

from flare_adapters.sqlite.db import Database
from flare_core.lifecycle import is_terminal
from flare_core.listing import normalize_study
from flare_core.service.ports import JobCursor, JobPage, SessionRecord
from flare_core.studies import StudyRegistry
from flare_core.tokens import TokenRecord, TokenScope

__all__ = [
    "SqliteJobStore",
    "SqliteSessionStore",
    "SqliteSiteStore",
    "SqliteStudyStore",
    "SqliteTokenStore",
]

_encode = msgspec.json.Encoder().encode
_decode_meta = msgspec.json.Decoder(dict[str, Any]).decode
_decode_record = msgspec.json.Decoder(TokenRecord).decode
_decode_session = msgspec.json.Decoder(SessionRecord).decode
_decode_registry = msgspec.json.Decoder(StudyRegistry).decode

# Appended to a prefix to form the exclusive upper bound of its key range (the largest code
# point sorts after every other character in SQLite's binary UTF-8 collation).
_TOP: Final = "\U0010ffff"

# The terms of the partial expression index ``jobs_unfinished_by_status`` (``db.py``): a query
# must spell them exactly so for the planner to search it.
_UNFINISHED_STATUS: Final = "finished = 0 AND json_extract(CAST(meta AS TEXT), '$.status')"
_TIME_ORDER: Final = "ORDER BY submit_time, job_id"

# How many of a study's newest jobs a prefix listing scans before it reads the prefix's key
# range instead (see ``SqliteJobStore._newest_matching``): under a millisecond of walk.
_PROBE: Final = 500


def _prefix_clauses(
    id_prefix: str | None, name_prefix: str | None
) -> tuple[list[str], list[object]]:
    """The key-range clauses (and their parameters) of a listing's prefixes: ids are canonical
    lower case, ``name_lower`` is the lower-cased name, so each prefix is a range."""
    clauses: list[str] = []
    params: list[object] = []
    if id_prefix:
        low = id_prefix.lower()
        clauses.append("job_id >= ? AND job_id < ?")
        params += [low, low + _TOP]
    if name_prefix:
        low = name_prefix.lower()
        clauses.append("name_lower >= ? AND name_lower < ?")
        params += [low, low + _TOP]
    return clauses, params


def _submit_epoch(meta: Mapping[str, Any]) -> float:
    value = meta.get("submit_time")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return 0.0


def _name_lower(meta: Mapping[str, Any]) -> str | None:
    name = meta.get("name")
    return name.lower() if isinstance(name, str) else None


def _job_row(meta: Mapping[str, Any]) -> tuple[str, float, str | None, int, bytes]:
    return (
        normalize_study(meta.get("study")),
        _submit_epoch(meta),
        _name_lower(meta),
        1 if is_terminal(str(meta.get("status", ""))) else 0,
        _encode(meta),
    )


class SqliteJobStore:
    """Job metas in the ``jobs`` table (the ``JobStore`` port)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, meta: Mapping[str, Any]) -> None:
        """Store a new job. Raises KeyError when its ``job_id`` already exists."""
        job_id = str(meta["job_id"])
        with self._db.transaction() as tx:
            if tx.execute("SELECT 1 FROM jobs WHERE job_id = ?", (job_id,)).fetchone():
                raise KeyError(job_id)
            tx.execute(
                "INSERT INTO jobs (job_id, study, submit_time, name_lower, finished, meta)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, *_job_row(meta)),
            )

    def get(self, job_id: str) -> dict[str, Any] | None:
        """A copy of the job's meta, or None."""
        with self._db.reading() as conn:
            row = conn.execute("SELECT meta FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else _decode_meta(row[0])

    def update(self, job_id: str, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        """Merge ``changes`` into the job's meta; a copy of the result, or None (no job)."""
        with self._db.transaction() as tx:
            row = tx.execute("SELECT meta FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            meta = _decode_meta(row[0])
            meta.update(changes)
            tx.execute(
                "UPDATE jobs SET study = ?, submit_time = ?, name_lower = ?, finished = ?,"
                " meta = ? WHERE job_id = ?",
                (*_job_row(meta), job_id),
            )
        # Decode our own encoding: the caller's ``changes`` never alias the returned copy.
        return _decode_meta(_encode(meta))

    def remove(self, job_id: str) -> bool:
        """Forget the job; False when it did not exist."""
        with self._db.transaction() as tx:
            return tx.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,)).rowcount > 0

    def query(
        self,
        *,
        study: str | None = None,
        id_prefix: str | None = None,
        name_prefix: str | None = None,
        newest: int | None = None,
    ) -> list[dict[str, Any]]:
        """Copies of the jobs matching every given filter (prefixes case-insensitive),
        oldest submit first (equal times in submission order); only the newest ``newest`` when
        given (read from the ``(study, submit_time)`` index backwards, or from a prefix's key
        range when its matches are rare, so a limited listing stays fast at any size)."""
        clauses, params = _prefix_clauses(id_prefix, name_prefix)
        if study is not None:
            clauses.insert(0, "study = ?")
            params.insert(0, study)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        if newest and study is not None and (id_prefix or name_prefix):
            # With an id prefix too, the primary-key range (random ids) is the narrower one.
            by_name = bool(name_prefix) and not id_prefix
            return self._newest_matching(clauses[1:], params[1:], study, newest, by_name)
        if newest:
            sql = f"SELECT meta FROM jobs{where} ORDER BY submit_time DESC, rowid DESC LIMIT ?"
            params.append(newest)
        else:
            # Ties in submit time go by insertion (rowid): the submission sequence, as in the
            # memory store, so listings are a total order and ``reverse`` its exact reverse.
            sql = f"SELECT meta FROM jobs{where} ORDER BY submit_time, rowid"
        with self._db.reading() as conn:
            rows = conn.execute(sql, params).fetchall()
        if newest:
            rows.reverse()
        return [_decode_meta(row[0]) for row in rows]

    def _newest_matching(
        self, prefixes: list[str], params: list[object], study: str, newest: int, by_name: bool
    ) -> list[dict[str, Any]]:
        """The newest ``newest`` jobs of ``study`` matching the ``prefixes``, oldest first.

        Neither plan alone is fast for every prefix: walking the study's time index stops early
        when matches are common but reads the whole study when they are rare; the prefix's key
        range is small when matches are rare but all of it is sorted when they are common. So
        walk the newest ``_PROBE`` jobs first: ``newest`` matches among them are the answer
        (they are the newest of all). Otherwise matches are rare (under ``newest / _PROBE``
        among recent jobs) and the key range is read: the covering (study, name, time) index
        for a name prefix (only ``newest`` rows are then read from the table), the primary key
        for an id prefix (``+study`` keeps SQLite off the study's time index). Both orders end
        in ``rowid``, the memory store's tie-break, so the result is the same total order.
        """
        where = " AND ".join(prefixes)
        order = "ORDER BY submit_time DESC, rowid DESC"
        probe = (
            f"SELECT meta FROM (SELECT meta, job_id, name_lower, submit_time, rowid AS seq"
            f" FROM jobs WHERE study = ? {order} LIMIT {_PROBE}) WHERE {where}"
            " ORDER BY submit_time DESC, seq DESC LIMIT ?"
        )
        if by_name:
            ranged = (
                f"SELECT meta FROM jobs WHERE rowid IN (SELECT rowid FROM jobs WHERE study = ?"
                f" AND {where} {order} LIMIT ?) {order}"
            )
        else:
            ranged = f"SELECT meta FROM jobs WHERE +study = ? AND {where} {order} LIMIT ?"
        args = [study, *params, newest]
        with self._db.reading() as conn:  # the ranged read alone is a complete answer
            rows = conn.execute(probe, args).fetchall()
            if len(rows) < newest:
                rows = conn.execute(ranged, args).fetchall()
        rows.reverse()
        return [_decode_meta(row[0]) for row in rows]

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
        order (``JobStore.page``).

        One statement walks the next ``size`` entries of the study's ``(study, submit_time)``
        index (every index ends in the rowid, the tie-break) from the cursor on, whatever the
        prefixes: a page never sorts, and never reads more than ``size`` rows, so no page
        holds the shared connection long. Rows a prefix rules out come back without their
        meta; with rare matches a page may hold fewer rows than ``size``, or none, and the
        cursor still moves on to the last entry walked.
        """
        clauses, params = _prefix_clauses(id_prefix, name_prefix)
        wanted = f"CASE WHEN {' AND '.join(clauses)} THEN meta END" if clauses else "meta"
        sign, order = ("<", "DESC") if newest_first else (">", "ASC")
        args: list[object] = [*params, study]
        since = ""
        if after is not None:
            since = f" AND (submit_time, rowid) {sign} (?, ?)"
            args += [after[0], after[1]]
        sql = (
            f"SELECT submit_time, rowid, {wanted} FROM jobs INDEXED BY jobs_by_study_time"
            f" WHERE study = ?{since} ORDER BY submit_time {order}, rowid {order} LIMIT ?"
        )
        with self._db.reading() as conn:
            walked = conn.execute(sql, [*args, size]).fetchall()
        rows = [_decode_meta(meta) for _, _, meta in walked if meta is not None]
        last = walked[-1] if len(walked) == size else None
        return JobPage(rows, None if last is None else (float(last[0]), int(last[1])))

    def count(self, study: str) -> int:
        """How many jobs (any status) belong to ``study``."""
        with self._db.reading() as conn:
            row = conn.execute("SELECT COUNT(*) FROM jobs WHERE study = ?", (study,)).fetchone()
        return int(row[0])

    def count_by_status(self) -> dict[str, int]:
        """How many jobs are in each status, every study together (one scan in
        SQLite itself: the status lives in the JSON meta, which ``json_extract`` reads without
        a decode in Python)."""
        with self._db.reading() as conn:
            rows = conn.execute(
                "SELECT COALESCE(json_extract(CAST(meta AS TEXT), '$.status'), ''), COUNT(*)"
                " FROM jobs GROUP BY 1"
            ).fetchall()
        return {str(status): int(count) for status, count in rows}

    def unfinished(self, statuses: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Copies of the jobs that are not ``FINISHED:*`` (and whose status is one of
        ``statuses`` when given: a search of the ``jobs_unfinished_by_status`` index, whatever
        the number of other live jobs), oldest submit first."""
        args: tuple[str, ...] = ()
        if statuses is None:
            sql = f"SELECT meta FROM jobs WHERE finished = 0 {_TIME_ORDER}"
        else:
            args = tuple(map(str, statuses))
            if not args:
                return []
            marks = ", ".join("?" * len(args))
            sql = f"SELECT meta FROM jobs WHERE {_UNFINISHED_STATUS} IN ({marks}) {_TIME_ORDER}"
        with self._db.reading() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [_decode_meta(row[0]) for row in rows]

    def job_ids(self) -> set[str]:
        """Every stored job id (orphan collection)."""
        with self._db.reading() as conn:
            return {row[0] for row in conn.execute("SELECT job_id FROM jobs")}


class SqliteTokenStore:
    """Submit-token records keyed by ``TokenScope.key()`` (the ``TokenStore`` port)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, scope: TokenScope) -> TokenRecord | None:
        """The record of ``scope``, or None."""
        with self._db.reading() as conn:
            row = conn.execute(
                "SELECT record FROM tokens WHERE scope_key = ?", (scope.key(),)
            ).fetchone()
        return None if row is None else _decode_record(row[0])

    def create(self, record: TokenRecord) -> bool:
        """Store a new record; False (no change) when the scope already has one."""
        with self._db.transaction() as tx:
            cursor = tx.execute(
                "INSERT OR IGNORE INTO tokens (scope_key, job_id, record) VALUES (?, ?, ?)",
                (record.scope.key(), record.job_id, _encode(record)),
            )
            return cursor.rowcount > 0

    def put(self, record: TokenRecord) -> None:
        """Create or replace the record of ``record.scope``."""
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT OR REPLACE INTO tokens (scope_key, job_id, record) VALUES (?, ?, ?)",
                (record.scope.key(), record.job_id, _encode(record)),
            )

    def for_job(self, job_id: str) -> list[TokenRecord]:
        """Every record pointing at ``job_id``."""
        with self._db.reading() as conn:
            rows = conn.execute(
                "SELECT record FROM tokens WHERE job_id = ? ORDER BY scope_key", (job_id,)
            ).fetchall()
        return [_decode_record(row[0]) for row in rows]


class SqliteStudyStore:
    """The study registry as one row (the ``StudyStore`` port)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def load(self) -> StudyRegistry | None:
        """A fresh copy of the registry, or None when there is none."""
        with self._db.reading() as conn:
            row = conn.execute("SELECT registry FROM studies WHERE id = 1").fetchone()
        return None if row is None else _decode_registry(row[0])

    def save(self, registry: StudyRegistry) -> None:
        """Replace the registry atomically."""
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT OR REPLACE INTO studies (id, registry) VALUES (1, ?)", (_encode(registry),)
            )


class SqliteSiteStore:
    """The disabled-site set (the ``SiteStore`` port)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def disabled(self) -> frozenset[str]:
        """The names of the disabled client sites."""
        with self._db.reading() as conn:
            return frozenset(row[0] for row in conn.execute("SELECT name FROM disabled_sites"))

    def set_disabled(self, name: str, disabled: bool) -> None:
        """Add ``name`` to, or remove it from, the disabled set."""
        with self._db.transaction() as tx:
            if disabled:
                tx.execute("INSERT OR IGNORE INTO disabled_sites (name) VALUES (?)", (name,))
            else:
                tx.execute("DELETE FROM disabled_sites WHERE name = ?", (name,))


class SqliteSessionStore:
    """Admin sessions (the ``SessionStore`` port), written through with a coarse idle clock.

    Every authenticated call refreshes ``last_seen``; writing each refresh durably would cost an
    fsync per request. The store therefore serves reads from a cache and persists a refresh
    only when ``last_seen`` moved by ``persist_every`` seconds or more: after a crash a session
    may expire up to that much earlier than it would have, never later. New sessions, changed
    principals and removals are written at once.

    Args:
        db: the database.
        persist_every: the coarseness of persisted ``last_seen`` values, seconds.
    """

    def __init__(self, db: Database, *, persist_every: float = 5.0) -> None:
        self._db = db
        self._persist_every = persist_every
        self._lock = threading.Lock()
        self._cache: dict[str, SessionRecord] = {}
        self._persisted: dict[str, SessionRecord] = {}
        with db.reading() as conn:
            for (data,) in conn.execute("SELECT record FROM sessions"):
                record = _decode_session(data)
                self._cache[record.session_id] = record
                self._persisted[record.session_id] = record

    def get(self, session_id: str) -> SessionRecord | None:
        """The session, or None."""
        with self._lock:
            return self._cache.get(session_id)

    def put(self, record: SessionRecord) -> None:
        """Create or replace a session."""
        with self._lock:
            self._cache[record.session_id] = record
            old = self._persisted.get(record.session_id)
            if (
                old is not None
                and old.principal == record.principal
                and abs(record.last_seen - old.last_seen) < self._persist_every
            ):
                return
            self._persisted[record.session_id] = record
            with self._db.transaction() as tx:
                tx.execute(
                    "INSERT OR REPLACE INTO sessions (session_id, last_seen, record)"
                    " VALUES (?, ?, ?)",
                    (record.session_id, record.last_seen, _encode(record)),
                )

    def remove(self, session_id: str) -> None:
        """Forget a session (no error when absent)."""
        with self._lock:
            self._cache.pop(session_id, None)
            self._persisted.pop(session_id, None)
            with self._db.transaction() as tx:
                tx.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))

    def count_seen_since(self, seen_since: float) -> int:
        """How many sessions were last seen at or after ``seen_since`` (from the cache, which
        holds every session the table holds)."""
        with self._lock:
            return sum(1 for r in self._cache.values() if r.last_seen >= seen_since)

    def purge(self, idle_before: float) -> int:
        """Forget the sessions last seen before ``idle_before``; the count."""
        with self._lock:
            stale = [k for k, r in self._cache.items() if r.last_seen < idle_before]
            return self._forget(stale)

    def purge_after(self, seen_after: float) -> int:
        """Forget the sessions last seen after ``seen_after``; the count.

        ``last_seen`` is monotonic time, whose origin changes when the machine reboots; at
        startup the runtime drops sessions that claim to come from the future.
        """
        with self._lock:
            future = [k for k, r in self._cache.items() if r.last_seen > seen_after]
            return self._forget(future)

    def _forget(self, session_ids: list[str]) -> int:
        for key in session_ids:
            self._cache.pop(key, None)
            self._persisted.pop(key, None)
        if session_ids:
            with self._db.transaction() as tx:
                tx.executemany(
                    "DELETE FROM sessions WHERE session_id = ?", [(k,) for k in session_ids]
                )
        return len(session_ids)
