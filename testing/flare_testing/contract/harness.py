"""The harness: the contract suite's back door into the system under test.

Sessions are the front door (every assertion about behaviour goes through ``SessionSpec``);
the harness arranges situations sessions cannot: moving time, finishing or holding jobs,
connecting sites, adding users and studies, breaking the transport, reading a job's stored
meta. ``FakeFlare`` satisfies it. A harness over a real deployment implements what it can and
declares the rest absent through capabilities (``capabilities.py``): a method whose
capability is not declared is never called by the suite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

__all__ = ["Harness"]


class Harness(Protocol):
    """Control plane of one system under test (fresh per test)."""

    @property
    def sites(self) -> tuple[str, ...]:
        """The client sites connected when the system started (org: the server's org)."""
        ...

    @property
    def now(self) -> float:
        """The system clock's current time, epoch seconds (capability ``virtual_time``)."""
        ...

    def advance(self, seconds: float) -> None:
        """Move the system clock forward, running whatever falls due (``virtual_time``)."""
        ...

    def finish_job(self, job_id: str, status: str = "FINISHED:COMPLETED") -> None:
        """End a running job now with a terminal status (``job_control``)."""
        ...

    def fail_job(self, job_id: str, status: str = "FINISHED:EXECUTION_EXCEPTION") -> None:
        """End a running job now as failed (``job_control``)."""
        ...

    def hold_job(self, job_id: str) -> None:
        """Keep a job RUNNING (once started) until ``release_job`` (``job_control``)."""
        ...

    def hold_jobs_named(self, name: str) -> None:
        """Keep every job named ``name`` RUNNING from its launch until ``release_job``
        (``job_control``); called before the submit, so a real clock cannot end it first."""
        ...

    def release_job(self, job_id: str) -> None:
        """Let a held job run to its normal end (``job_control``)."""
        ...

    def connect_site(self, name: str, org: str = "nvidia") -> None:
        """Connect a client site, new or known (``site_control``)."""
        ...

    def disconnect_site(self, name: str) -> None:
        """Disconnect a client site (``site_control``)."""
        ...

    def add_user(self, name: str, org: str, role: str) -> None:
        """Register a user who can then open sessions (``user_admin``)."""
        ...

    def add_study(
        self, name: str, site_orgs: Mapping[str, Sequence[str]], admins: Sequence[str]
    ) -> None:
        """Write a study straight into the registry (``study_admin``)."""
        ...

    def inject_failures(self, n: int, when: Literal["before", "after"] = "before") -> None:
        """Make the next ``n`` requests fail with a connection error (``fault_injection``).

        ``before``: the request never reaches the system; ``after``: the system handles it
        and the reply is lost. Replaces any pending budget; ``n == 0`` clears it.
        """
        ...

    @property
    def requests_received(self) -> int:
        """How many requests (commands) reached the system so far (``command_log``)."""
        ...

    def put_file(self, site: str, path: str, data: bytes) -> None:
        """Write a file into a site's workspace (``workspace_files``); ``site`` may be
        ``"server"``; ``path`` is relative POSIX."""
        ...

    def append_job_log(self, job_id: str, site: str, data: bytes) -> None:
        """Append to a job's ``log.txt`` on a site (``workspace_files``); ``site`` may be
        ``"server"``."""
        ...

    def job_meta(self, job_id: str) -> dict[str, Any]:
        """Read a job's stored meta directly (a copy).

        Raises:
            KeyError: no such job.
        """
        ...
