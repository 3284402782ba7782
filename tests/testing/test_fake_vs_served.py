"""FakeFlare against the served system, side by side (issue 11, item 5b).

A hypothesis ``RuleBasedStateMachine`` sends the same random command sequence to three
systems and compares every reply:

- ``fake``: ``FakeFlare`` and its production ``Session`` over the memory transport;
- ``http`` and ``ws``: the production aiohttp app (``build_app``), each over its own fresh
  memory system, on an ephemeral 127.0.0.1 port, reached by the production ``http://`` and
  ``ws://`` transports.

Why the served side runs ``build_app`` over a memory system, not ``flare_testing.serve()``:
``serve()`` runs ``ServerRuntime``, whose clock is the event loop's real clock (no virtual
time can be injected), so job states would depend on how fast the machine runs and the
comparison would flake. Over a ``VirtualClock`` every side is deterministic and the clocks
advance in lockstep, so times need no masking. What this compares is therefore the wire
(client transports, routes, frames, problem documents, the server's handlers) against the
in-memory path; the SQLite stores are certified separately by the storage-port contract.

Job ids: every side draws them from ``CountingIds`` (valid UUID4s that sort in creation
order), so id-ordered output (``ls`` of job folders, rows sorted by id) is the same everywhere
and from run to run. On top of that, each side's ids are renamed ``<job-1>``, ``<job-2>``... in
the order its jobs were created, in replies and error messages alike: ids are opaque, and a
side that numbered its jobs differently (say, an id spent on a rejected submit) is not wrong.
That renaming is the only normalisation; a rule names a job by creation index (or by a bogus
id), so the same command reaches the same job everywhere.

The default run is small and derandomized (fixed examples, fixed steps) so it belongs in
``make test``; ``FLARE_STATEFUL_EXAMPLES=200`` (and optionally ``FLARE_STATEFUL_STEPS``) runs
a bigger, randomized search.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
from aiohttp import web
from hypothesis import HealthCheck, currently_in_test_context, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from flare_adapters.http.client import http_transport
from flare_adapters.memory.ids import RandomIds
from flare_adapters.memory.system import MemorySystem, build_memory_system
from flare_adapters.server.app import build_app
from flare_adapters.server.unparsed import ProblemAppRunner
from flare_adapters.session import Session
from flare_adapters.ws.client import ws_transport
from flare_testing import FakeFlare, JobFolders
from flare_testing.job_folders import INVALID_DEFINITIONS

T = TypeVar("T")

_BIG = int(os.environ.get("FLARE_STATEFUL_EXAMPLES", "0"))
EXAMPLES = _BIG or 8
STEPS = int(os.environ.get("FLARE_STATEFUL_STEPS", "0")) or (50 if _BIG else 30)
"""Examples and steps per example: 8 x 30 by default, or ``FLARE_STATEFUL_EXAMPLES`` x
``FLARE_STATEFUL_STEPS`` (50 steps unless given) randomized."""

ADMIN = "admin@nvidia.com"
USERS = (ADMIN, "member@nvidia.com", "lead@other.org", "orgadmin@other.org")
"""Whom the commands come from: the project admin, an ordinary member of the server's org,
a lead and an org admin of another org (each side opens one session per user)."""

SITES = ("site-1", "site-2")
TARGET_NAMES = (*SITES, "server", "site-9", "", "bad name!")
"""Sites the system knows, plus an unknown one and two malformed ones."""

BOGUS_IDS = ("", "not-a-job", "00000000-0000-4000-8000-000000000000", "../etc")
"""Job ids that name no job: empty, malformed, a well-formed unknown uuid4, a path."""

STUDIES = ("default", "alpha", "beta", "Bad Study")

PLANTED = {
    ("server", "notes.txt"): b"server notes\nline two\n",
    ("site-1", "data/a.csv"): b"x,y\n1,2\n3,4\n",
    ("site-2", "readme.txt"): b"site two\n",
}
"""Files written into every side's workspaces before the first command (shell rules)."""

VALID_FOLDERS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("hello-numpy-sag", {}),
    ("renamed", {"name": "renamed"}),
    ("hello-numpy-sag", {"num_rounds": 1}),  # same name, other content: token conflicts
    ("one-site", {"deploy_map": {"app": ["server", "site-1"]}, "min_clients": 1}),
    ("slow", {"sleep_time": 20.0}),  # runs 3 x 20 s longer: a job to abort while running
)
"""The ``JobFolders.hello`` variants submitted: folder name, options."""

JOB_TIMEOUT = 10.0
"""Real seconds a network call may take (loopback: far more than enough)."""


class CountingIds:
    """Job ids ``00000001-0000-4000-8000-000000000000``, ``00000002-...``: valid UUID4s that
    sort in creation order, on every side alike.

    Random ids would order id-named things (job folders in an ``ls``, rows sorted by id)
    differently on each side and from run to run, a difference no renaming can undo;
    counting ids make the run deterministic and the sides comparable. Secrets stay random:
    no reply shows one.
    """

    def __init__(self) -> None:
        self._count = itertools.count(1)
        self._random = RandomIds()

    def job_id(self) -> str:
        return str(uuid.UUID(int=next(self._count) << 96, version=4))

    def secret(self) -> str:
        return self._random.secret()


# --- the served side ----------------------------------------------------------------------


class _ServedApp:
    """``build_app`` over a fresh memory system, on a loopback port, in its own loop thread.

    The virtual clock is advanced on the server's loop, where the production server's clock
    fires its timers (``LoopClock``), so job events reach the WebSocket code on the thread
    they do in production.
    """

    def __init__(self, spool_dir: str) -> None:
        # The defaults FakeFlare builds its system with (duration 10 s, scheduler tick 1 s,
        # sites site-1 and site-2, the default users whose API key is their name).
        self.system: MemorySystem = build_memory_system(ids=CountingIds())
        self._spool_dir = spool_dir
        self._started: Future[tuple[asyncio.AbstractEventLoop, int]] = Future()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="flare-stateful", daemon=True)
        self._thread.start()
        self.loop, self.port = self._started.result(timeout=JOB_TIMEOUT)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the constructor
            if not self._started.done():
                self._started.set_exception(exc)

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with self._listening() as port:
            self._started.set_result((asyncio.get_running_loop(), port))
            await self._stop.wait()

    @contextlib.asynccontextmanager
    async def _listening(self) -> AsyncIterator[int]:
        app = build_app(self.system.service, spool_dir=self._spool_dir)
        runner = ProblemAppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            yield int(runner.addresses[0][1])
        finally:
            await runner.cleanup()

    def on_loop(self, action: Callable[[], T]) -> T:
        async def run() -> T:
            return action()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=JOB_TIMEOUT)

    def close(self) -> None:
        stop = self._stop
        if stop is not None:
            self.loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout=JOB_TIMEOUT)


# --- one side of the comparison -----------------------------------------------------------


class Side:
    """One system under comparison: its sessions (one per user), clock and job ids."""

    def __init__(
        self,
        name: str,
        sessions: dict[str, Session],
        advance: Callable[[float], None],
        site_link: Callable[[str, bool], None],
        close: Callable[[], None],
    ) -> None:
        self.name = name
        self.sessions = sessions
        self.advance = advance
        self.site_link = site_link  # (site, connected): the harness connects or drops a site
        self._close = close
        self.job_ids: list[str] = []

    def job(self, ref: int | str) -> str:
        """The side's id of job number ``ref`` (in creation order), or the bogus id ``ref``."""
        return self.job_ids[ref] if isinstance(ref, int) else ref

    def adopt(self, value: object) -> None:
        """Record a new job id (a submit or clone reply) unless it is a replayed one."""
        if isinstance(value, str) and value not in self.job_ids:
            self.job_ids.append(value)

    def normalise(self, value: Any) -> Any:
        """``value`` as plain data with this side's job ids renamed by creation order."""
        if isinstance(value, msgspec.Struct):
            value = msgspec.to_builtins(value)
        elif hasattr(value, "__dict__"):
            # The reference's value objects (SystemInfo, ClientInfo...) have no __eq__ of
            # their own: compare their class and every attribute.
            value = {"__class__": type(value).__name__, **vars(value)}
        if isinstance(value, str):
            for index, job_id in enumerate(self.job_ids):
                value = value.replace(job_id, f"<job-{index + 1}>")
            return value
        if isinstance(value, dict):
            return {self.normalise(k): self.normalise(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.normalise(item) for item in value]
        return value

    def close(self) -> None:
        for session in self.sessions.values():
            with contextlib.suppress(Exception):
                session.close()
        self._close()


def _fake_side(planted: dict[tuple[str, str], bytes]) -> Side:
    fake = FakeFlare(ids=CountingIds())
    for (site, path), data in planted.items():
        fake.put_file(site, path, data)
    sessions = {user: fake.session(user) for user in USERS}

    def site_link(site: str, connected: bool) -> None:
        (fake.connect_site if connected else fake.disconnect_site)(site)

    return Side("fake", sessions, fake.advance, site_link, fake.close)


def _served_side(scheme: str, spool_dir: str, planted: dict[tuple[str, str], bytes]) -> Side:
    served = _ServedApp(spool_dir)
    system = served.system
    for (site, path), data in planted.items():
        system.workspaces.tree(site).write(path, data, system.clock.time())
    factory = http_transport if scheme == "http" else ws_transport
    sessions: dict[str, Session] = {}
    try:
        for user in USERS:
            sessions[user] = factory.connect(
                f"{scheme}://127.0.0.1:{served.port}",
                user=user,
                api_key=user,  # the memory system's keys are the user names
                study="default",
                timeout=JOB_TIMEOUT,
            )
    except BaseException:
        for session in sessions.values():
            session.close()
        served.close()
        raise

    def site_link(site: str, connected: bool) -> None:
        # What FakeFlare.connect_site / disconnect_site do, on the server's loop.
        def change() -> None:
            if connected:
                system.service.connect_site(site, "nvidia")
            elif system.service.disconnect_site(site):
                system.engine.site_lost(site)

        served.on_loop(change)

    return Side(
        scheme,
        sessions,
        lambda seconds: served.on_loop(lambda: system.clock.advance(seconds)),
        site_link,
        served.close,
    )


# --- the machine ----------------------------------------------------------------------------

_job_index = st.integers(min_value=0, max_value=7)
job_refs = st.one_of(_job_index, _job_index, _job_index, st.sampled_from(BOGUS_IDS))
"""Mostly a job by creation index (taken modulo the jobs created so far), else a bogus id."""

users = st.sampled_from((ADMIN, ADMIN, ADMIN, *USERS[1:]))
"""Mostly the project admin, whose commands get past authorization and change state."""
target_names = st.sampled_from(TARGET_NAMES)
target_types = st.sampled_from(("server", "client", "all", "bogus"))
target_lists = st.one_of(st.none(), st.lists(target_names, max_size=2))
studies = st.sampled_from(("alpha", *STUDIES))
site_org_groups = st.sampled_from(
    (
        ["nvidia:site-1"],
        ["nvidia:site-1"],
        ["nvidia:site-2"],
        ["nvidia:site-1,site-2"],
        ["nvidia:site-9"],
        ["other:site-1"],
        ["broken"],
        [],
    )
)

_Outcome = tuple[str, Any, Any]


class FakeVersusServed(RuleBasedStateMachine):
    """Sends every command to all sides and requires the same normalised outcome."""

    def __init__(self) -> None:
        super().__init__()
        self._scratch = tempfile.TemporaryDirectory(prefix="flare-stateful-")
        root = Path(self._scratch.name)
        (root / "spool-http").mkdir()
        (root / "spool-ws").mkdir()
        self.folders = self._write_folders(root / "jobs")
        self.sides: list[Side] = []
        try:
            self.sides.append(_fake_side(PLANTED))
            self.sides.append(_served_side("http", str(root / "spool-http"), PLANTED))
            self.sides.append(_served_side("ws", str(root / "spool-ws"), PLANTED))
        except BaseException:
            self.teardown()
            raise
        self.jobs = 0  # jobs created (the same on every side, or a rule already failed)

    @staticmethod
    def _write_folders(root: Path) -> list[Path]:
        # Written once per example and submitted by every side from the same paths.
        make = JobFolders(root, SITES)
        valid = [make.hello(folder, **options) for folder, options in VALID_FOLDERS]
        invalid = [make.invalid(kind) for kind in sorted(INVALID_DEFINITIONS)]
        return [*valid, *invalid]

    def teardown(self) -> None:
        for side in self.sides:
            side.close()
        self._scratch.cleanup()

    # --- the comparison -------------------------------------------------------------------

    def _each(self, call: Callable[[Side], Any], *, creates_job: bool = False) -> Any:
        """Run ``call`` on every side and require equal normalised outcomes; returns the
        fake's (normalised) value."""
        outcomes: list[_Outcome] = []
        for side in self.sides:
            try:
                value = call(side)
            except Exception as exc:
                outcomes.append(("raise", type(exc).__name__, side.normalise(str(exc))))
                continue
            if creates_job:
                side.adopt(value)
            outcomes.append(("ok", side.normalise(value), None))
        reference = outcomes[0]
        # ``pytest --hypothesis-show-statistics`` tallies these: which rules got past their
        # argument checks and authorization, so a change that starves a path shows.
        rule_name = sys._getframe(1).f_code.co_name  # the rule (or invariant) calling
        if currently_in_test_context():  # not in the self-test below
            event(f"{rule_name}: {'ok' if reference[0] == 'ok' else reference[1]}")
        for side, outcome in zip(self.sides[1:], outcomes[1:], strict=True):
            assert outcome == reference, f"{side.name} differs from fake:\n{outcome}\n{reference}"
        self.jobs = len(self.sides[0].job_ids)
        return reference[1]

    def _job(self, ref: int | str) -> int | str:
        # An index only means something once a job exists; before that it is a bogus id.
        if isinstance(ref, int):
            return ref % self.jobs if self.jobs else "no-job-yet"
        return ref

    # --- jobs ----------------------------------------------------------------------------

    @initialize()
    def first_job(self) -> None:
        # A job from the start, so the job rules meet a real job in short runs too.
        self.submit_job(ADMIN, 0, None)

    @rule(
        user=users,
        folder=st.integers(min_value=0, max_value=len(VALID_FOLDERS) - 1),
        token=st.sampled_from((None, None, "tok-a", "tok-b", "bad token!")),
    )
    def submit_job(self, user: str, folder: int, token: str | None) -> None:
        path = str(self.folders[folder])
        self._each(lambda s: s.sessions[user].submit_job(path, token), creates_job=True)

    @rule(kind=st.sampled_from(sorted(INVALID_DEFINITIONS)))
    def submit_invalid_job(self, kind: str) -> None:
        path = str(self.folders[len(VALID_FOLDERS) + sorted(INVALID_DEFINITIONS).index(kind)])
        self._each(lambda s: s.sessions[ADMIN].submit_job(path), creates_job=True)

    @rule(user=users, job=job_refs)
    def clone_job(self, user: str, job: int | str) -> None:
        ref = self._job(job)
        self._each(lambda s: s.sessions[user].clone_job(s.job(ref)), creates_job=True)

    @rule(
        user=users,
        detailed=st.booleans(),
        limit=st.sampled_from((None, 0, 1, 2, -1)),
        name_prefix=st.sampled_from((None, "hello", "REN", "zzz")),
        reverse=st.booleans(),
        token=st.sampled_from((None, "tok-a", "unknown-token")),
    )
    def list_jobs(
        self,
        user: str,
        detailed: bool,
        limit: int | None,
        name_prefix: str | None,
        reverse: bool,
        token: str | None,
    ) -> None:
        self._each(
            lambda s: s.sessions[user].list_jobs(
                detailed=detailed,
                limit=limit,
                name_prefix=name_prefix,
                reverse=reverse,
                submit_token=token,
            )
        )

    @precondition(lambda self: self.jobs > 0)
    @rule(user=users, job=st.integers(min_value=0, max_value=7), length=st.sampled_from((8, 36)))
    def list_jobs_by_id_prefix(self, user: str, job: int, length: int) -> None:
        # Each side's own id prefix: 8 hex digits make a chance collision with another job
        # (which would differ between sides) negligible.
        index = job % self.jobs
        self._each(lambda s: s.sessions[user].list_jobs(id_prefix=s.job(index)[:length]))

    @rule(user=users, job=job_refs)
    def get_job_meta(self, user: str, job: int | str) -> None:
        ref = self._job(job)
        self._each(lambda s: s.sessions[user].get_job_meta(s.job(ref)))

    @rule(user=users, job=job_refs)
    def list_job_components(self, user: str, job: int | str) -> None:
        ref = self._job(job)
        self._each(lambda s: s.sessions[user].list_job_components(s.job(ref)))

    @rule(user=users, job=job_refs)
    def abort_job(self, user: str, job: int | str) -> None:
        ref = self._job(job)
        self._each(lambda s: s.sessions[user].abort_job(s.job(ref)))

    @rule(user=users, job=job_refs)
    def delete_job(self, user: str, job: int | str) -> None:
        ref = self._job(job)
        self._each(lambda s: s.sessions[user].delete_job(s.job(ref)))

    @rule(user=users, job=job_refs, kind=target_types, names=target_lists, errors=st.booleans())
    def show_stats_or_errors(
        self, user: str, job: int | str, kind: str, names: list[str] | None, errors: bool
    ) -> None:
        ref = self._job(job)

        def call(s: Side) -> Any:
            session = s.sessions[user]
            show = session.show_errors if errors else session.show_stats
            return show(s.job(ref), kind, names)

        self._each(call)

    @rule(
        user=users,
        job=job_refs,
        at=st.sampled_from(("server", "site-1", "site-9", "")),
        tail=st.sampled_from((None, 1, 0, -2)),
        pattern=st.sampled_from((None, "round", "(")),
    )
    def get_job_logs(
        self, user: str, job: int | str, at: str, tail: int | None, pattern: str | None
    ) -> None:
        ref = self._job(job)
        self._each(
            lambda s: s.sessions[user].get_job_logs(
                s.job(ref), target=at, tail_lines=tail, grep_pattern=pattern
            )
        )

    # --- system ----------------------------------------------------------------------------

    @rule(user=users, kind=target_types, names=target_lists)
    def check_status(self, user: str, kind: str, names: list[str] | None) -> None:
        self._each(lambda s: s.sessions[user].check_status(kind, names))

    @rule(user=users)
    def client_job_status(self, user: str) -> None:
        self._each(lambda s: s.sessions[user].get_client_job_status())

    @rule(user=users)
    def system_info(self, user: str) -> None:
        self._each(lambda s: s.sessions[user].get_system_info())

    @rule(user=users)
    def connected_clients(self, user: str) -> None:
        self._each(lambda s: s.sessions[user].get_connected_client_list())

    @rule(user=users, site=target_names, enable=st.booleans())
    def enable_or_disable_client(self, user: str, site: str, enable: bool) -> None:
        def call(s: Side) -> Any:
            session = s.sessions[user]
            return (session.enable_client if enable else session.disable_client)(site)

        self._each(call)

    # --- shell -----------------------------------------------------------------------------

    @rule(
        user=users,
        at=target_names,
        options=st.sampled_from((None, "-a", "-l", "-R", "-x", "-a -R")),
        path=st.sampled_from((None, "data", "..", "missing")),
    )
    def ls_target(self, user: str, at: str, options: str | None, path: str | None) -> None:
        self._each(lambda s: s.sessions[user].ls_target(at, options, path))

    @rule(
        user=users,
        at=target_names,
        options=st.sampled_from((None, "-n", "-b", "-z")),
        file=st.sampled_from(
            (None, "notes.txt", "data/a.csv", "readme.txt", "model.bin", "../x.txt", "gone.txt")
        ),
    )
    def cat_target(self, user: str, at: str, options: str | None, file: str | None) -> None:
        self._each(lambda s: s.sessions[user].cat_target(at, options, file))

    # --- studies ---------------------------------------------------------------------------

    @rule(user=users, study=studies, groups=site_org_groups, add=st.booleans())
    def register_or_add_study_site(
        self, user: str, study: str, groups: list[str], add: bool
    ) -> None:
        def call(s: Side) -> Any:
            session = s.sessions[user]
            command = session.add_study_site if add else session.register_study
            return command(study, site_orgs=groups)

        self._each(call)

    @rule(user=users, study=studies, groups=site_org_groups)
    def remove_study_site(self, user: str, study: str, groups: list[str]) -> None:
        self._each(lambda s: s.sessions[user].remove_study_site(study, site_orgs=groups))

    @rule(user=users, study=studies, member=st.sampled_from((*USERS, "nobody@x.org")))
    def add_study_user(self, user: str, study: str, member: str) -> None:
        self._each(lambda s: s.sessions[user].add_study_user(study, member))

    @rule(user=users, study=studies, member=st.sampled_from(USERS))
    def remove_study_user(self, user: str, study: str, member: str) -> None:
        self._each(lambda s: s.sessions[user].remove_study_user(study, member))

    @rule(user=users, study=studies)
    def show_study(self, user: str, study: str) -> None:
        self._each(lambda s: s.sessions[user].show_study(study))

    @rule(user=users)
    def list_studies(self, user: str) -> None:
        self._each(lambda s: s.sessions[user].list_studies())

    @rule(user=users, study=studies)
    def remove_study(self, user: str, study: str) -> None:
        self._each(lambda s: s.sessions[user].remove_study(study))

    # --- time ------------------------------------------------------------------------------

    @rule(seconds=st.sampled_from((0.5, 1.0, 3.0, 10.0, 30.0)))
    def advance(self, seconds: float) -> None:
        # Virtual time on every side, in lockstep; at most STEPS x 30 s in all, well under
        # the 1800 s idle timeout, so sessions never expire mid-run (an expiry is a
        # different subject: the session-expiry contract).
        for side in self.sides:
            side.advance(seconds)

    @rule(site=st.sampled_from(SITES), connected=st.booleans())
    def site_link(self, site: str, connected: bool) -> None:
        # A site crashing (its jobs fail) or coming back (waiting jobs get scheduled); a
        # disabled site cannot reconnect, which must fail alike everywhere.
        self._each(lambda s: s.site_link(site, connected))

    @invariant()
    def same_job_listing(self) -> None:
        # After every step, what the admin sees of all jobs agrees (catches a divergence a
        # rule's own reply did not show, e.g. a state change by a timer).
        self._each(lambda s: s.sessions[ADMIN].list_jobs(detailed=True))


# The default run: the same sequences every time (derandomized, no example database, so a
# failure a big run stored does not replay into ``make test``), about 10 s of one core. A big
# run is randomized and keeps its failures in the database, to be replayed while fixing.
# No deadline: a step's time is the loopback round trips, not the code under test.
_settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
FakeVersusServed.TestCase.settings = (
    _settings if _BIG else settings(_settings, derandomize=True, database=None)
)


TestFakeVersusServed = FakeVersusServed.TestCase


def test_a_differing_reply_fails_the_comparison() -> None:
    # The machine is only as good as its comparison: a reply that differs by side must fail.
    machine = FakeVersusServed()
    try:
        with pytest.raises(AssertionError, match="http differs from fake"):
            machine._each(lambda side: side.name)
    finally:
        machine.teardown()
