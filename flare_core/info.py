"""Value objects of the public API: return codes, target types and system-info classes.

The ``__str__`` formats match the reference exactly; tools parse them.
"""

from __future__ import annotations

import enum
from datetime import datetime

from flare_core.site_names import SERVER_SITE

__all__ = [
    "ClientInfo",
    "JobInfo",
    "MonitorReturnCode",
    "ServerInfo",
    "SystemInfo",
    "TargetType",
]


class MonitorReturnCode(int, enum.Enum):
    """Why ``monitor_job`` stopped."""

    JOB_FINISHED = 0
    TIMEOUT = 1
    ENDED_BY_CB = 2


class TargetType:
    """The target types accepted by the system commands."""

    ALL = "all"
    SERVER = SERVER_SITE  # the server target is the server site's name
    CLIENT = "client"


def _asctime(epoch: float | None) -> str:
    # Same rendering as time.asctime(time.localtime(t)), without importing ``time``.
    if epoch is None:
        return "unknown"
    moment = datetime.fromtimestamp(epoch)
    return f"{moment:%a %b} {moment.day:2d} {moment:%H:%M:%S %Y}"


class ServerInfo:
    """The server's status and start time (epoch seconds, or None when unknown)."""

    def __init__(self, status: str, start_time: float | None) -> None:
        self.status = status
        self.start_time = start_time

    def __str__(self) -> str:
        return f"status: {self.status}, start_time: {_asctime(self.start_time)}"

    def __repr__(self) -> str:
        return f"ServerInfo(status={self.status!r}, start_time={self.start_time!r})"


class ClientInfo:
    """A connected client site and when it last connected (epoch seconds or None)."""

    def __init__(self, name: str, last_connect_time: float | None) -> None:
        self.name = name
        self.last_connect_time = last_connect_time

    def __str__(self) -> str:
        return f"{self.name} (last_connect_time: {_asctime(self.last_connect_time)})"

    def __repr__(self) -> str:
        return f"ClientInfo(name={self.name!r}, last_connect_time={self.last_connect_time!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClientInfo):
            return NotImplemented
        return (self.name, self.last_connect_time) == (other.name, other.last_connect_time)

    def __hash__(self) -> int:
        return hash((self.name, self.last_connect_time))


class JobInfo:
    """A job running on the server, by id and app name."""

    def __init__(self, job_id: str, app_name: str) -> None:
        self.job_id = job_id
        self.app_name = app_name

    def __str__(self) -> str:
        return f"JobInfo:\n  job_id: {self.job_id}\n  app_name: {self.app_name}"

    def __repr__(self) -> str:
        return f"JobInfo(job_id={self.job_id!r}, app_name={self.app_name!r})"


class SystemInfo:
    """A snapshot of the server, its connected clients and its running jobs."""

    def __init__(
        self, server_info: ServerInfo, client_info: list[ClientInfo], job_info: list[JobInfo]
    ) -> None:
        self.server_info = server_info
        self.client_info = client_info
        self.job_info = job_info

    def __str__(self) -> str:
        client_info_str = "\n".join(map(str, self.client_info))
        job_info_str = "\n".join(map(str, self.job_info))
        return (
            f"SystemInfo\nserver_info:\n{self.server_info}\nclient_info:\n{client_info_str}"
            f"\njob_info:\n{job_info_str}"
        )

    def __repr__(self) -> str:
        return (
            f"SystemInfo(server_info={self.server_info!r}, client_info={self.client_info!r}, "
            f"job_info={self.job_info!r})"
        )
