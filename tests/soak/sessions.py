"""Sessions: idle expiry, logout, a SIGKILL and restart with sessions open, and study binding
with revocation, against a ``flare-core serve`` process on a real clock.

Each check records what a client saw; the documented outcomes are the only passing ones
(an expired or revoked session raises ``SessionExpired``; a restart keeps sessions, which are
stored, or ends them with ``SessionExpired``; a session never acts in another study, nor in
its own once it lost the right).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from flare_adapters.http.client import http_transport
from flare_adapters.session import Session
from flare_adapters.ws.client import ws_transport
from flare_core import AuthenticationError, SessionExpired
from flare_core.flows import RetryPolicy
from flare_testing.job_folders import JobFolders
from tests.soak.client import Raw, login
from tests.soak.served import ServerProcess, make_workspace

__all__ = ["SessionResult", "run_sessions"]

Opener = Callable[..., Session]

IDLE = 1.0
RETRY = RetryPolicy(attempts=10, initial_delay=0.05, max_delay=0.5, deadline=20.0)


class SessionResult(msgspec.Struct, frozen=True, kw_only=True):
    """Per check: ``"ok"`` or what went wrong."""

    checks: dict[str, str]

    @property
    def failed(self) -> int:
        return sum(1 for outcome in self.checks.values() if outcome != "ok")

    @property
    def ok(self) -> bool:
        return self.failed == 0


def run_sessions(workdir: str, *, idle_checks: bool = True) -> SessionResult:
    """Run the phase (see the module docstring); ``idle_checks`` waits out the idle timeout."""
    root = str(Path(workdir) / "sessions")
    keys = make_workspace(root, job_duration=0.05, idle_timeout=IDLE if idle_checks else 1800.0)
    server = ServerProcess(root)
    server.start()
    folders = JobFolders(Path(workdir) / "session-jobs")
    checks: dict[str, str] = {}
    try:
        checks["logout ends the token"] = _logout(keys, server)
        for scheme in ("http", "ws"):

            def open_session(user: str, study: str = "default", scheme: str = scheme) -> Session:
                factory = http_transport if scheme == "http" else ws_transport
                url = (
                    server.url if scheme == "http" else server.url.replace("http", "ws") + "/v1/ws"
                )
                return factory.connect(
                    url,
                    user=user,
                    api_key=keys[user],
                    study=study,
                    retry=RETRY,
                    upload_dir=str(Path(workdir) / f"up-{scheme}"),
                )

            if idle_checks:
                checks[f"{scheme}: idle expiry"] = _expiry(open_session)
            checks[f"{scheme}: restart with sessions open"] = _restart(open_session, server)
            checks[f"{scheme}: study binding and revocation"] = _binding(
                open_session, folders, scheme
            )
    finally:
        server.stop()
    return SessionResult(checks=checks)


def _logout(keys: dict[str, str], server: ServerProcess) -> str:
    raw = Raw(server.port)
    token = login(raw, "member@nvidia.com", keys["member@nvidia.com"])
    if raw.call("GET", "/v1/jobs", token)[0] != 200:
        return "a fresh session could not list jobs"
    if raw.call("DELETE", "/v1/sessions/current", token)[0] >= 400:
        return "logout was refused"
    status, _, _ = raw.call("GET", "/v1/jobs", token)
    return "ok" if status == 401 else f"a logged-out token answered {status}"


def _expiry(open_session: Opener) -> str:
    with open_session("member@nvidia.com") as session:
        session.list_jobs()
        time.sleep(IDLE * 1.5)
        try:
            session.list_jobs()
        except SessionExpired:
            return "ok"
        except Exception as exc:
            return f"an idle session raised {type(exc).__name__}"
        return "an idle session kept working"


def _restart(open_session: Opener, server: ServerProcess) -> str:
    with open_session("member@nvidia.com") as session:
        session.list_jobs()
        server.kill()
        server.start()
        try:
            session.list_jobs()
        except SessionExpired:
            return "ok"
        except Exception as exc:
            return f"after a restart: {type(exc).__name__}: {exc}"
        return "ok"


def _binding(open_session: Opener, folders: JobFolders, scheme: str) -> str:
    study = f"bound-{scheme}"
    with open_session("admin@nvidia.com") as admin:
        admin.register_study(study, site_orgs=["nvidia:site-1"])
        admin.add_study_user(study, "lead@nvidia.com")
        outside = admin.submit_job(str(folders.hello(name=f"outside-{scheme}")))
    with (
        open_session("admin@nvidia.com", study) as study_admin,
        open_session("lead@nvidia.com", study) as lead,
    ):
        inside = lead.submit_job(str(folders.hello(name=f"inside-{scheme}")))
        seen = {row["job_id"] for row in lead.list_jobs()}
        if outside in seen or inside not in seen:
            return "a study session saw another study's jobs, or not its own"
        study_admin.remove_study_user(study, "lead@nvidia.com")
        try:
            lead.list_jobs()
        except SessionExpired:
            pass
        else:
            return "a session removed from its study kept listing its jobs"
    try:
        open_session("lead@nvidia.com", study).close()
    except AuthenticationError:
        return "ok"
    return "a removed user could log in to the study again"
