"""The ports ``AdminService`` reaches the world through: storage, blobs, engine, clock, ids.

Every port is a small synchronous Protocol. Two families of adapters implement them: the memory
adapters (``flare_adapters.memory``, used by FakeFlare and the tests) and the durable ones of the
real server (SQLite + a blob directory). So the contracts below avoid memory-only assumptions:
readers get **copies** (mutating a returned dict never changes the store), writers pass whole
values, and nothing hands out live references.

The service serialises its own calls into these ports under its lock (see ``Lock``), so an
adapter need not be thread-safe against the service; it must be thread-safe against its *other*
users (e.g. the simulated engine writing workspaces from clock callbacks).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, NamedTuple, Protocol, TypeVar

import msgspec

from flare_core.archive import ArchiveView
from flare_core.principal import Principal
from flare_core.shell import FileTree
from flare_core.studies import StudyRegistry
from flare_core.tokens import TokenRecord, TokenScope

__all__ = [
    "SCRATCH_PREFIX",
    "BlobStore",
    "Clock",
    "Engine",
    "EngineListener",
    "IdSource",
    "JobCursor",
    "JobLaunch",
    "JobPage",
    "JobStore",
    "Lock",
    "NullLock",
    "Packer",
    "ServicePorts",
    "SessionRecord",
    "SessionStore",
    "SiteStore",
    "StudyStore",
    "Timers",
    "TokenStore",
    "Workspaces",
]


class Clock(Protocol):
    """Where time comes from (a virtual clock in tests, the system clock in the server)."""

    def time(self) -> float:
        """Wall-clock time, epoch seconds (job meta timestamps)."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds from an arbitrary origin (session idle timers)."""
        ...


class Timers(Protocol):
    """One-shot timers (optional): lets the service run scheduling passes a tick later."""

    def call_later(self, delay: float, callback: Callable[[], object]) -> Callable[[], None]:
        """Run ``callback`` (from any thread) after ``delay`` seconds; returns a cancel
        function."""
        ...


class IdSource(Protocol):
    """Where identifiers and secrets come from (entropy stays out of the core)."""

    def job_id(self) -> str:
        """A fresh UUID4 in canonical lower-case hyphenated form (DECISIONS §12)."""
        ...

    def secret(self) -> str:
        """A fresh unguessable URL-safe token (session tokens, download ids, salts)."""
        ...


class Lock(Protocol):
    """The service lock: ``threading.RLock()`` has the whole interface.

    The lock must be re-entrant: engine callbacks may arrive on the thread that already holds
    it (an engine that starts or aborts a job synchronously inside ``launch``/``abort``).

    ``with lock:`` holds it for any section, writes included. ``acquire(blocking=False)``
    takes it without waiting, or answers False, for a section that only reads
    (``AdminService.serve_at_once``); ``release()`` ends that section. A lock that also
    guards a resource of its own (the SQLite server's ``CommittingLock`` holds the database
    connection) must not wait for that either.
    """

    def __enter__(self, /) -> object: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> bool | None: ...

    def acquire(self, blocking: bool = ..., timeout: float = ..., /) -> bool: ...

    def release(self, /) -> None: ...


class NullLock:
    """The default ``Lock``: does nothing (single-threaded hosts such as FakeFlare)."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def acquire(self, blocking: bool = True, timeout: float = -1, /) -> bool:
        return True

    def release(self) -> None:
        return None


T = TypeVar("T")


class Offload(Protocol):
    """Where a handler's CPU-heavy ``OutsideLock`` work runs (a shell command's file work).

    ``work`` is a picklable call (a module function with picklable arguments), so a host may
    run it in another process, where it cannot take the GIL from the event loop; it reads only
    thread-safe ports and returns a JSON-able value or raises a domain exception.
    """

    def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` and return its value (or raise what it raised)."""
        ...


class InlineOffload:
    """The default ``Offload``: the work runs in the calling thread (FakeFlare, the memory
    system, tests)."""

    def run(self, work: Callable[[], T]) -> T:
        """Call ``work`` here."""
        return work()


JobCursor = tuple[float, int]
"""A position in a store's listing order: the submit time (missing counts as 0.0) and the
store's own submission sequence (a SQLite rowid, a counter), which breaks ties. Only the store
that made it reads it."""


class JobPage(NamedTuple):
    """One page of a study's jobs (``JobStore.page``).

    Attributes:
        rows: copies of the jobs, in the order asked for.
        after: where the next page starts; None when nothing follows. Only None ends a
            listing: a store may stop a page early (fewer rows than asked for, or none, when
            it walked its budget of entries past rows the prefixes rule out), and a full
            last page may carry a cursor whose next page is empty.
    """

    rows: list[dict[str, Any]]
    after: JobCursor | None


class JobStore(Protocol):
    """Job meta dicts keyed by ``meta["job_id"]``.

    ``study`` filters use the normalised study (missing or empty ``study`` counts as
    ``"default"``, see ``flare_core.listing.normalize_study``).
    """

    def add(self, meta: Mapping[str, Any]) -> None:
        """Store a new job. Raises KeyError when ``meta["job_id"]`` already exists."""
        ...

    def get(self, job_id: str) -> dict[str, Any] | None:
        """A copy of the job's meta, or None."""
        ...

    def update(self, job_id: str, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        """Merge ``changes`` into the job's meta; returns a copy of the result (None: no job)."""
        ...

    def remove(self, job_id: str) -> bool:
        """Forget the job; False when it did not exist."""
        ...

    def query(
        self,
        *,
        study: str | None = None,
        id_prefix: str | None = None,
        name_prefix: str | None = None,
        newest: int | None = None,
    ) -> list[dict[str, Any]]:
        """Copies of the jobs matching every given filter, oldest submit first.

        Prefixes compare case-insensitively; ``name_prefix`` matches the meta ``name`` key only.
        ``newest=N`` keeps only the N most recently submitted matches (what ``list_jobs``
        with a limit shows), so a store can answer from an index instead of reading every
        job. Equal submit times keep the store's own stable order in both cases.
        """
        ...

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
        """Up to ``size`` copies of ``study``'s jobs matching the prefixes, strictly after
        ``after`` in the listing order: ``query``'s order (oldest submit first, ties in
        submission order) or, with ``newest_first``, its exact reverse.

        A full listing reads a study a page at a time (``flare_core.listing.scan_study``), each
        page its own short read, so no one holds every row at once and no other user waits
        behind one long read. Rows committed between two pages show up when they sort after
        the cursor (a new job does, at the end of an oldest-first listing); no row is listed
        twice, and none that exists throughout is missed.
        """
        ...

    def count(self, study: str) -> int:
        """How many jobs (any status) belong to ``study``."""
        ...

    def count_by_status(self) -> dict[str, int]:
        """How many jobs are in each status, every study together (statuses with none left out)."""
        ...

    def unfinished(self, statuses: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Copies of the jobs whose status is not ``FINISHED:*``, oldest submit first; only
        those whose status is one of ``statuses`` when given.

        The scheduler asks for the waiting jobs on every submit and every job end: a store
        must answer without reading every live job (an index), or passes grow with the
        number of running jobs and job ends fall behind submits.
        """
        ...


class TokenStore(Protocol):
    """Submit-token records (reference §2.4), kept beside the jobs and never listed as jobs."""

    def get(self, scope: TokenScope) -> TokenRecord | None:
        """The record of ``scope``, or None."""
        ...

    def create(self, record: TokenRecord) -> bool:
        """Store a new record; False (and no change) when the scope already has one."""
        ...

    def put(self, record: TokenRecord) -> None:
        """Create or replace the record of ``record.scope``."""
        ...

    def for_job(self, job_id: str) -> list[TokenRecord]:
        """Every record pointing at ``job_id`` (the reverse index), in no particular order."""
        ...


class StudyStore(Protocol):
    """The persisted study registry (reference §9.2).

    The service reads it once and keeps it (``ServiceCore.registry``), so only the service
    that uses a store may write it: a registry changed behind its back is not seen until a
    section of it fails or the service restarts.
    """

    def load(self) -> StudyRegistry | None:
        """The registry, or None when the server has none (only ``default`` exists)."""
        ...

    def save(self, registry: StudyRegistry) -> None:
        """Replace the registry atomically."""
        ...


class SiteStore(Protocol):
    """Persisted per-site administrative state."""

    def disabled(self) -> frozenset[str]:
        """The names of the disabled client sites."""
        ...

    def set_disabled(self, name: str, disabled: bool) -> None:
        """Add ``name`` to, or remove it from, the disabled set."""
        ...


class SessionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A server-side admin session.

    Attributes:
        session_id: the session's id (a digest of its bearer token; the token is not stored).
        principal: who the session belongs to (with ``session_id`` set).
        last_seen: ``Clock.monotonic()`` of the session's last authenticated call.
    """

    session_id: str
    principal: Principal
    last_seen: float


class SessionStore(Protocol):
    """Server-side sessions keyed by session id."""

    def get(self, session_id: str) -> SessionRecord | None:
        """The session, or None."""
        ...

    def put(self, record: SessionRecord) -> None:
        """Create or replace a session."""
        ...

    def remove(self, session_id: str) -> None:
        """Forget a session (no error when absent)."""
        ...

    def count_seen_since(self, seen_since: float) -> int:
        """How many sessions were last seen at or after ``seen_since`` (monotonic time)."""
        ...

    def purge(self, idle_before: float) -> int:
        """Forget every session whose ``last_seen`` is older than ``idle_before``; the count."""
        ...


SCRATCH_PREFIX: Final = "uploads/"
"""Blobs under this prefix are scratch: an upload staged while it is checked, which the
service moves to a kept key or deletes before its command replies. No reply depends on a
scratch key surviving a crash, so a ``BlobStore`` need not make their names durable (a blob
directory skips those directory flushes) and its recovery may delete them all; a blob moved
out of scratch is as durable as one written under its new key."""


class BlobStore(Protocol):
    """Opaque byte blobs under ``/``-separated keys (uploads, job archives, workspaces)."""

    def write(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store the concatenated chunks under ``key``, atomically (all or nothing).

        Returns the size written. If ``chunks`` raises, nothing is stored and the error
        propagates.
        """
        ...

    def read(self, key: str) -> Iterator[bytes]:
        """Stream a blob in chunks. Raises KeyError at the call when it does not exist."""
        ...

    def exists(self, key: str) -> bool:
        """True when ``key`` holds a blob."""
        ...

    def move(self, src: str, dst: str) -> None:
        """Rename a blob (replacing ``dst``). Raises KeyError when ``src`` does not exist."""
        ...

    def copy(self, src: str, dst: str) -> None:
        """Store ``src``'s content under ``dst`` too (replacing ``dst``), as durably as
        ``write``. Blobs are never changed in place, so a store may share one copy between
        the keys (a clone's archive). Raises KeyError when ``src`` does not exist."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob whose key starts with ``prefix``; the count."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """The keys starting with ``prefix``, sorted."""
        ...

    def archive(self, key: str, *, trusted: bool = False) -> ArchiveView:
        """Open a zip blob as an ``ArchiveView`` after the bounded safety checks.

        Args:
            key: the blob.
            trusted: the service wrote this archive itself (an ended job's workspace, as large
                as the job made it): the upload bounds on counts, sizes and compression ratio
                do not apply; member names, methods and checksums are still checked.

        Raises:
            KeyError: no such blob.
            InvalidJobDefinition: the blob is not a zip, or fails a safety check (unsafe member
                names, symlinks, too many entries, too large, suspicious compression ratio).
        """
        ...


class Packer(Protocol):
    """Builds the zip stream of a download."""

    def pack(self, members: Iterable[tuple[str, Iterable[bytes]]]) -> Iterator[bytes]:
        """Stream a zip archive of ``(archive name, content chunks)`` members, in order.

        Content iterables are consumed lazily, one member at a time, while the caller reads.
        """
        ...


class Workspaces(Protocol):
    """The sites' workspaces as read-only file trees (shell commands, live logs, archiving).

    A job's files sit under ``<job_id>/`` in each participating site's tree (``log.txt``,
    results, ``error_log.txt``), as in an NVFlare workspace; the server's tree is ``"server"``.
    """

    def tree(self, site: str) -> FileTree | None:
        """The workspace of ``site`` (``"server"`` or a client name), or None when unknown."""
        ...

    def remove_job(self, job_id: str) -> None:
        """Delete a job's files from every site's workspace (``delete_job`` removes the job
        everywhere, as the reference deletes the server's and clients' workspaces)."""
        ...


class EngineListener(Protocol):
    """The callbacks an engine reports job progress through (implemented by the service)."""

    def job_started(self, job_id: str) -> None:
        """The job's server app started (DISPATCHED -> RUNNING)."""
        ...

    def job_finished(self, job_id: str, status: str, reason: str = "") -> None:
        """The job ended with the terminal ``status`` (a ``FINISHED:*`` value).

        The engine must have written the job's workspace files before calling this: the
        service archives them before it publishes the terminal status.
        """
        ...

    def job_progress(self, job_id: str, progress: dict[str, Any]) -> None:
        """A running job made progress (a workflow round started or finished).

        ``progress`` is JSON-able; the service stores it as the job meta's ``progress`` and
        publishes a job event, so waiting sessions (``monitor_job`` callbacks) see it live.
        """
        ...


class JobLaunch(msgspec.Struct, frozen=True, kw_only=True):
    """What the service hands an engine to run a job.

    Attributes:
        job_id: the job.
        study: the job's (normalised) study.
        name: the job's display name.
        sites: the client sites the job is deployed to (the server always participates).
        meta: a copy of the job's meta at dispatch time.
        archive: the uploaded job folder (wrapper directory included, as uploaded).
    """

    job_id: str
    study: str
    name: str
    sites: list[str]
    meta: dict[str, Any]
    archive: ArchiveView


class Engine(Protocol):
    """Runs jobs on the sites; reports back through the attached ``EngineListener``.

    Site names are ``"server"`` or client names. Listener callbacks may come synchronously
    from inside ``launch``/``abort``, or later from any thread.
    """

    def attach(self, listener: EngineListener) -> None:
        """Register the service's callbacks (called once, by the service's constructor)."""
        ...

    def launch(self, launch: JobLaunch) -> None:
        """Deploy and start a job. Raising means the job failed to run (FAILED_TO_RUN)."""
        ...

    def abort(self, job_id: str) -> bool:
        """Ask a launched job to stop; False when the engine is not running that job."""
        ...

    def is_running(self, job_id: str) -> bool:
        """True while the job's server-side process is alive."""
        ...

    def stats(self, job_id: str, site: str) -> Any:
        """A site's statistics for a running job (JSON-able; ``{}`` when none)."""
        ...

    def errors(self, job_id: str, site: str) -> Any:
        """A site's error statistics for a running job (JSON-able; ``{}`` when none)."""
        ...

    def reset_errors(self, job_id: str, site: str) -> None:
        """Clear a site's error statistics for a running job."""
        ...

    def resources(self, site: str) -> dict[str, Any]:
        """The resources a site reports (``report_resources``)."""
        ...

    def configure_job_log(self, job_id: str, site: str, config: str) -> None:
        """Apply a log configuration to a running job on one site."""
        ...

    def configure_site_log(self, site: str, config: str) -> None:
        """Apply a log level or mode to a site's own (non-job) logging."""
        ...


@dataclass(frozen=True, kw_only=True)
class ServicePorts:
    """Everything ``AdminService`` needs from the outside, bundled.

    Attributes:
        clock, ids, jobs, tokens, studies, sites, sessions, blobs, packer, engine, workspaces:
            the ports above.
        lock: guards every state mutation of the service; ``NullLock()`` by default, a
            ``threading.RLock()`` when the host calls from several threads.
        timers: when given (and ``ServiceConfig.dispatch_delay > 0``), scheduling passes run
            that long after their trigger, as a real scheduler's tick does, so a new job is
            observably SUBMITTED first; without timers they run at once.
        offload: runs a handler's CPU-heavy ``OutsideLock`` work (shell file reads: bounded,
            but pure Python); the server runs it in a worker process of its own, so it never
            competes with the event loop for the GIL (issue 10's fairness goal).
    """

    clock: Clock
    ids: IdSource
    jobs: JobStore
    tokens: TokenStore
    studies: StudyStore
    sites: SiteStore
    sessions: SessionStore
    blobs: BlobStore
    packer: Packer
    engine: Engine
    workspaces: Workspaces
    lock: Lock = field(default_factory=NullLock)
    timers: Timers | None = None
    offload: Offload = field(default_factory=InlineOffload)
