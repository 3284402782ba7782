"""The service's configuration: users, the server's org, timeouts, policy, limits."""

from __future__ import annotations

import msgspec

from flare_core.policy import DEFAULT_POLICY, Policy
from flare_core.service._credentials import DEFAULT_SCRYPT_N

__all__ = ["DEFAULT_MAX_LOG_BYTES", "ServiceConfig", "UserConfig"]

DEFAULT_MAX_LOG_BYTES = 5 * 1024 * 1024
"""``get_job_logs`` returns at most the last 5 MiB of each log (reference §5.1)."""


class UserConfig(msgspec.Struct, frozen=True, kw_only=True):
    """An admin user.

    Attributes:
        name: the user name (the submitter name recorded on jobs).
        org: the user's organisation.
        role: ``project_admin``, ``org_admin``, ``lead``, ``member`` or a policy's own role.
        api_key_hash: ``hash_api_key`` of the user's secret API key.
    """

    name: str
    org: str
    role: str
    api_key_hash: str


class ServiceConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How an ``AdminService`` behaves.

    Attributes:
        server_org: the server's organisation (``o:site`` in policy conditions).
        users: the admin users who may log in.
        idle_timeout: seconds of inactivity after which a session expires (DECISIONS §20).
        policy: the authorization policy (DECISIONS §19 default).
        version: what ``report_version`` says for the server (and for sites that report none).
        max_log_bytes: the per-site cap of ``get_job_logs`` output.
        scrypt_n: the scrypt cost ``AdminService.add_user`` hashes new API keys with.
        max_pending_downloads: prepared-but-unopened downloads kept; older ones are dropped.
        dispatch_delay: seconds from a scheduling trigger (submit, site connect, job end...)
            to the scheduling pass, when the ports provide ``timers``; 0 schedules at once.
        max_running_jobs: how many jobs may be DISPATCHED or RUNNING at once (None: any
            number). An engine that runs real computations on one machine sets it; further
            jobs stay SUBMITTED and are dispatched oldest first as running ones end.
        list_page_size: how many jobs a full ``list_jobs`` reads from the store at a time; a
            listing longer than one page is a ``Rows`` reply, sent as it is read.
    """

    server_org: str
    users: list[UserConfig] = msgspec.field(default_factory=list)
    idle_timeout: float = 1800.0
    policy: Policy = DEFAULT_POLICY
    version: str = "0.1.0"
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES
    scrypt_n: int = DEFAULT_SCRYPT_N
    max_pending_downloads: int = 256
    dispatch_delay: float = 0.0
    max_running_jobs: int | None = None
    list_page_size: int = 500
