"""Client flows of the system and admin methods (reference §6; DECISIONS §13-§16).

``restart``/``shutdown`` keep the reference's client-side logic, adapted to this system: a
server restart is observed through ``check_status``'s server ``start_time`` on this very
session (no fresh poll sessions), and the session is closed with a ``CloseSession`` step
exactly where the reference closes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flare_core.commands import (
    CheckStatus,
    Command,
    ConfigureSiteLog,
    DisableClient,
    EnableClient,
    RemoveClient,
    ReportResources,
    ReportVersion,
    Restart,
    Shutdown,
)
from flare_core.errors import (
    AuthenticationError,
    InternalError,
    NoClientsAvailable,
    NoConnection,
    SessionClosed,
)
from flare_core.flows._calls import call, unwrap
from flare_core.flows._context import ClientFlow, FlowContext
from flare_core.flows._polling import PENDING, Pending, poll_until
from flare_core.info import ClientInfo, JobInfo, ServerInfo, SystemInfo, TargetType
from flare_core.site_names import SERVER_SITE
from flare_core.steps import Call, CloseSession, ListDirs, Now
from flare_core.validation import (
    check_client_name,
    check_command_timeout,
    check_log_target,
    check_site_log_config,
    check_target_type,
    check_targets,
    check_wait_timeout,
)

__all__ = [
    "POLL_INTERVAL",
    "check_status",
    "client_job_rows",
    "configure_site_log",
    "disable_client",
    "enable_client",
    "get_available_apps_to_upload",
    "get_client_job_status",
    "get_connected_client_list",
    "get_system_info",
    "remove_client",
    "report_resources",
    "report_version",
    "restart",
    "set_timeout",
    "shutdown",
    "shutdown_system",
    "system_info_from_status",
    "unset_timeout",
]

POLL_INTERVAL = 0.5
"""Seconds between the polls of restart/shutdown waits (the reference's value)."""

_SERVER_SIDE = (TargetType.SERVER, TargetType.ALL)


def _as_float(value: object) -> float | None:
    if type(value) is float:  # what JSON and the service give; checked first (every read)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def system_info_from_status(status: Mapping[str, Any]) -> SystemInfo:
    """Build a ``SystemInfo`` from a ``check_status("server")`` value.

    The value is keyed by site name (DECISIONS §14); its ``"server"`` entry holds ``status``,
    ``start_time`` (epoch) and ``jobs`` (``[{"job_id", "app_name"}]``); the connected clients
    are the reference's top-level ``clients`` rows (``[{"client_name",
    "client_last_conn_time"}]``), absent when none is connected.

    Raises:
        InternalError: the value has no ``"server"`` entry.
    """
    server = status.get(SERVER_SITE)
    if type(server) is not dict and not isinstance(server, Mapping):
        raise InternalError("check_status returned no server status")
    server_info = ServerInfo(
        status=str(server.get("status", "unknown")),
        start_time=_as_float(server.get("start_time")),
    )
    clients = [
        ClientInfo(
            name=str(row.get("client_name", "")),
            last_connect_time=_as_float(row.get("client_last_conn_time")),
        )
        for row in _rows(status.get("clients"))
    ]
    jobs = [
        JobInfo(job_id=str(row.get("job_id", "")), app_name=str(row.get("app_name") or "?"))
        for row in _rows(server.get("jobs"))
    ]
    return SystemInfo(server_info=server_info, client_info=clients, job_info=jobs)


def _rows(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    # ``type(row) is dict`` first: an ABC check costs ~0.3 us, and decoded rows are dicts.
    return [row for row in value if type(row) is dict or isinstance(row, Mapping)]


# Top-level keys of a check_status value that are not site names (the reference's meta keys).
_REFERENCE_KEYS = frozenset(
    {"server", "server_status", "server_start_time", "jobs", "clients", "client_status"}
)


def client_job_rows(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The reference's ``client_status`` rows of a ``check_status("client")`` value.

    One ``{"client_name", "app_name", "job_id", "status"}`` row per job running on a client,
    or one ``{"client_name", "status": "no_jobs"}`` row for a client without jobs. Taken from
    the value's ``client_status`` list when present, else derived from its site entries.
    """
    if isinstance(status.get("client_status"), list):
        return [dict(row) for row in _rows(status["client_status"])]
    rows: list[dict[str, Any]] = []
    for site, entry in status.items():
        if site in _REFERENCE_KEYS or not isinstance(entry, Mapping):
            continue
        jobs = _rows(entry.get("jobs"))
        if not jobs:
            rows.append({"client_name": site, "status": "no_jobs"})
        rows.extend(
            {
                "client_name": site,
                "app_name": str(job.get("app_name") or "?"),
                "job_id": str(job.get("job_id", "")),
                "status": str(job.get("status", "")),
            }
            for job in jobs
        )
    return rows


def _dict_result(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InternalError(f"{what} returned {type(value).__name__}, not a dict")
    return value


def get_system_info(ctx: FlowContext) -> ClientFlow[SystemInfo]:
    """Return the server's status, its connected clients and its running jobs."""
    value = yield from call(ctx, CheckStatus(target_type=TargetType.SERVER))
    return system_info_from_status(_dict_result(value, "check_status"))


def get_connected_client_list(ctx: FlowContext) -> ClientFlow[list[ClientInfo]]:
    """Return the connected clients (``get_system_info().client_info``)."""
    info = yield from get_system_info(ctx)
    return info.client_info


def _site_report(
    ctx: FlowContext,
    command_type: type[CheckStatus | ReportResources | ReportVersion],
    name: str,
    target_type: str,
    targets: list[str] | None,
) -> ClientFlow[dict[str, Any]]:
    """Validate the targets, send a site-report command, return its dict keyed by site."""
    kind = check_target_type(name, target_type)
    names = check_targets(kind, targets)
    value = yield from call(ctx, command_type(target_type=kind, targets=names))
    return _dict_result(value, name)


def check_status(
    ctx: FlowContext, target_type: str, targets: list[str] | None = None
) -> ClientFlow[dict[str, Any]]:
    """Return status information keyed by site name (DECISIONS §14)."""
    return (yield from _site_report(ctx, CheckStatus, "check_status", target_type, targets))


def report_resources(
    ctx: FlowContext, target_type: str, targets: list[str] | None = None
) -> ClientFlow[dict[str, Any]]:
    """Return resource information keyed by site name; values are dicts (DECISIONS §14)."""
    return (yield from _site_report(ctx, ReportResources, "report_resources", target_type, targets))


def report_version(
    ctx: FlowContext, target_type: str, targets: list[str] | None = None
) -> ClientFlow[dict[str, Any]]:
    """Return ``{site: {"version": ...} | {"error": ...}}``."""
    return (yield from _site_report(ctx, ReportVersion, "report_version", target_type, targets))


def get_client_job_status(
    ctx: FlowContext, client_names: list[str] | None = None
) -> ClientFlow[list[dict[str, Any]] | None]:
    """Return the jobs running on clients as reference ``client_status`` rows.

    Returns:
        The rows, or None when no client is connected (DECISIONS §15).
    """
    names = check_targets(TargetType.CLIENT, client_names)
    try:
        value = yield from call(ctx, CheckStatus(target_type=TargetType.CLIENT, targets=names))
    except NoClientsAvailable:
        return None
    return client_job_rows(_dict_result(value, "check_status"))


def _probe(ctx: FlowContext, command: Command) -> ClientFlow[Any]:
    # One attempt, no retry: the restart/shutdown waits poll anyway.
    reply = yield Call(command=command, timeout=ctx.command_timeout)
    return unwrap(reply)


def _server_start_time(ctx: FlowContext) -> ClientFlow[float | None]:
    value = yield from _probe(ctx, CheckStatus(target_type=TargetType.SERVER))
    return system_info_from_status(_dict_result(value, "check_status")).server_info.start_time


def _wait_server_restart(
    ctx: FlowContext, previous: float | None, deadline: float, timeout: float
) -> ClientFlow[bool]:
    """Poll until the server's start time changed (or it was seen down and back up).

    Returns:
        False when the server no longer knows this session (it restarted, and the session
        cannot poll any further), True otherwise.

    Raises:
        TimeoutError: no restart was observed before ``deadline``.
    """
    seen_down = False
    last_error = "none"

    def probe() -> ClientFlow[bool | Pending]:
        nonlocal seen_down, last_error
        try:
            start_time = yield from _server_start_time(ctx)
        except NoConnection as exc:
            seen_down, last_error = True, str(exc) or "no connection"
        except (AuthenticationError, SessionClosed):
            # The server forgot this session: it restarted; nothing more to observe here.
            return False
        else:
            if previous is None or seen_down or start_time != previous:
                return True
        return PENDING

    def message() -> str:
        return f"server did not restart within {timeout} seconds; last error: {last_error}"

    return (yield from poll_until(probe, deadline, POLL_INTERVAL, message))


def _wait_clients_reconnect(
    ctx: FlowContext, before: Mapping[str, float | None], deadline: float, timeout: float
) -> ClientFlow[None]:
    """Poll until every client connected before has a new ``last_connect_time``.

    Raises:
        TimeoutError: some client did not reconnect before ``deadline``.
    """
    pending = {name: t for name, t in before.items() if t is not None}
    if not pending:
        return

    def probe() -> ClientFlow[Pending | None]:
        try:
            info = yield from get_system_info(ctx)
        except NoConnection:
            return PENDING
        for client in info.client_info:
            if client.name in pending and client.last_connect_time != pending[client.name]:
                del pending[client.name]
        return None if not pending else PENDING

    def message() -> str:
        return f"clients did not restart within {timeout} seconds"

    yield from poll_until(probe, deadline, POLL_INTERVAL, message)


def _snapshot(
    ctx: FlowContext, kind: str, names: list[str]
) -> ClientFlow[tuple[float | None, dict[str, float | None]]]:
    # The reference snapshots before restarting; a failed snapshot leaves everything unknown.
    try:
        info = yield from get_system_info(ctx)
    except (NoConnection, InternalError):
        return None, {}
    connected = {c.name: c.last_connect_time for c in info.client_info}
    if kind == TargetType.CLIENT:
        wanted = names or list(connected)
        return info.server_info.start_time, {name: connected.get(name) for name in wanted}
    if kind == TargetType.ALL:
        return info.server_info.start_time, connected
    return info.server_info.start_time, {}


def restart(
    ctx: FlowContext,
    target_type: str,
    client_names: list[str] | None = None,
    wait: bool = True,
    timeout: float = 30.0,
) -> ClientFlow[dict[str, Any]]:
    """Restart the server and/or clients (reference §6.7 client side, DECISIONS §16).

    With ``wait`` and a ``server``/``all`` target, waits for the new server start time (and,
    for ``all``, for every previously connected client to reconnect), then closes the session.

    Raises:
        InvalidArgumentError: bad target type, client names, or ``timeout`` with ``wait``.
        TimeoutError: the restart was not observed within ``timeout`` seconds.
    """
    kind = check_target_type("restart", target_type)
    names = check_targets(kind, client_names)
    limit = check_wait_timeout(wait, timeout)
    previous_start: float | None = None
    previous_clients: dict[str, float | None] = {}
    if wait:
        previous_start, previous_clients = yield from _snapshot(ctx, kind, names)
    value = yield from call(ctx, Restart(target_type=kind, targets=names))
    result = _dict_result(value, "restart")
    if not wait:
        return result
    started: float = yield Now()
    deadline = started + limit
    if kind == TargetType.CLIENT:
        yield from _wait_clients_reconnect(ctx, previous_clients, deadline, timeout)
        return result
    try:
        still_known = yield from _wait_server_restart(ctx, previous_start, deadline, timeout)
        if kind == TargetType.ALL and still_known:
            yield from _wait_clients_reconnect(ctx, previous_clients, deadline, timeout)
    except Exception:
        yield CloseSession()
        raise
    yield CloseSession()
    return result


def _wait_server_down(ctx: FlowContext, deadline: float, timeout: float) -> ClientFlow[None]:
    def probe() -> ClientFlow[Pending | None]:
        try:
            yield from _probe(ctx, CheckStatus(target_type=TargetType.SERVER))
        except (NoConnection, AuthenticationError, SessionClosed):
            return None
        return PENDING

    def message() -> str:
        return f"server did not stop within {timeout} seconds"

    yield from poll_until(probe, deadline, POLL_INTERVAL, message)


def _wait_clients_gone(
    ctx: FlowContext, names: list[str], deadline: float, timeout: float
) -> ClientFlow[None]:
    def probe() -> ClientFlow[Pending | None]:
        info = yield from get_system_info(ctx)
        connected = {client.name for client in info.client_info}
        return PENDING if (connected & set(names) if names else connected) else None

    def message() -> str:
        return f"clients did not shut down within {timeout} seconds"

    yield from poll_until(probe, deadline, POLL_INTERVAL, message)


def shutdown(
    ctx: FlowContext,
    target_type: str,
    client_names: list[str] | None = None,
    wait: bool = True,
    timeout: float = 30.0,
) -> ClientFlow[dict[str, Any]]:
    """Shut down the server and/or clients (reference §6.8 client side, DECISIONS §16).

    For ``server``/``all`` the session is closed once the command succeeded, with or without
    ``wait``; with ``wait`` it first polls until the server stops answering. For ``client``
    the session stays open and ``wait`` polls until the clients are gone.

    Raises:
        InvalidArgumentError: bad target type, client names, or ``timeout`` with ``wait``.
        TimeoutError: the shutdown was not observed within ``timeout`` seconds.
    """
    kind = check_target_type("shutdown", target_type)
    names = check_targets(kind, client_names)
    limit = check_wait_timeout(wait, timeout)
    value = yield from call(ctx, Shutdown(target_type=kind, targets=names))
    result = _dict_result(value, "shutdown")
    deadline = 0.0
    if wait:
        started: float = yield Now()
        deadline = started + limit
    if kind == TargetType.CLIENT:
        if wait:
            yield from _wait_clients_gone(ctx, names, deadline, timeout)
        return result
    try:
        if wait:
            yield from _wait_server_down(ctx, deadline, timeout)
    except Exception:
        yield CloseSession()
        raise
    yield CloseSession()
    return result


def shutdown_system(ctx: FlowContext) -> ClientFlow[None]:
    """Shut down the whole system (``shutdown all``); the session stays open. Returns None.

    Raises:
        JobNotDone: jobs are still running.
        AuthorizationError: the caller may not shut the system down.
    """
    yield from call(ctx, Shutdown(target_type=TargetType.ALL))
    return None


def set_timeout(ctx: FlowContext, value: float) -> ClientFlow[None]:
    """Set the session's per-request timeout (seconds > 0); nothing is sent."""
    ctx.command_timeout = check_command_timeout(value)
    yield from ()  # a flow like every other, though it yields no step


def unset_timeout(ctx: FlowContext) -> ClientFlow[None]:
    """Go back to the transport's default request timeout; nothing is sent."""
    ctx.command_timeout = None
    yield from ()  # a flow like every other, though it yields no step


def get_available_apps_to_upload(ctx: FlowContext) -> ClientFlow[list[str]]:
    """List the sub-directories of ``upload_dir`` (no server call)."""
    names: list[str] = yield ListDirs(path=ctx.upload_dir)
    return list(names)


def remove_client(ctx: FlowContext, client_name: str) -> ClientFlow[None]:
    """Release a connected client's active session token. Returns None."""
    name = check_client_name(client_name)
    yield from call(ctx, RemoveClient(client_name=name))
    return None


def disable_client(ctx: FlowContext, client_name: str) -> ClientFlow[dict[str, Any]]:
    """Disable a client; return ``{"clients": [{"client_name", "state": "disabled", ...}]}``."""
    name = check_client_name(client_name)
    value = yield from call(ctx, DisableClient(client_name=name))
    return _dict_result(value, "disable_client")


def enable_client(ctx: FlowContext, client_name: str) -> ClientFlow[dict[str, Any]]:
    """Enable a client; return ``{"clients": [{"client_name", "state": "enabled", ...}]}``."""
    name = check_client_name(client_name)
    value = yield from call(ctx, EnableClient(client_name=name))
    return _dict_result(value, "enable_client")


def configure_site_log(
    ctx: FlowContext, config: object, target: str = "all"
) -> ClientFlow[dict[str, Any]]:
    """Set a site's log level or built-in log mode; return the server's result dict."""
    level = check_site_log_config(config)
    where = check_log_target(target)
    value = yield from call(ctx, ConfigureSiteLog(config=level, target=where))
    return value if isinstance(value, dict) else {}
