"""THE route table of the HTTP API: one route per command, shared by server and client.

Every command type in ``flare_core.COMMAND_TYPES`` has exactly one ``Route``: an HTTP method and
a path template under ``/v1/``. A command's fields travel in one of four places:

- path parameters: the fields named in the template (``{job_id}``), percent-encoded;
- the query string: every other field of ``GET``/``DELETE`` routes and of the upload route
  (whose body is the archive); lists repeat their key, booleans are ``true``/``false``, ``None``
  and default values are left out;
- the JSON body: every other field of ``POST``/``PUT`` routes (an object, without ``op``);
- headers: ``SubmitJob.submit_token`` travels as ``Idempotency-Key``.

Upload routes stream the job-folder zip as the request body (``application/zip``); download
routes answer with the zip as a streamed ``application/zip`` body. Every other route answers
``200`` with the JSON of the ``Ok`` reply (``{"kind": "ok", "value": ...}``); failures answer
``application/problem+json`` (see ``flare_adapters.server.problems``).

Sessions are not commands: ``POST /v1/sessions`` logs in (``LOGIN_PATH``; body
``{user, api_key, study}``, answer ``{token, idle_timeout, principal}``) and the ``Logout``
command is ``DELETE /v1/sessions/current``. ``/v1/ws`` is the WebSocket endpoint and
``/v1/openapi.json`` the generated OpenAPI document.

``command_to_request`` and ``request_to_command`` are pure and inverse of each other, so the
client transport and the server cannot drift apart.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple, get_args, get_origin
from urllib.parse import quote

import msgspec

import flare_core as fc
from flare_core.errors import InvalidArgumentError
from flare_core.nesting import decode_json

__all__ = [
    "API_PREFIX",
    "EVENTS_PATH",
    "IDEMPOTENCY_HEADER",
    "LOGIN_PATH",
    "LOGOUT_PATH",
    "OPENAPI_PATH",
    "ROUTES",
    "WS_PATH",
    "HttpMethod",
    "HttpRequest",
    "LoginRequest",
    "Route",
    "command_to_request",
    "request_to_command",
    "route_for",
]

HttpMethod = Literal["GET", "POST", "PUT", "DELETE"]

API_PREFIX: Final = "/v1"
LOGIN_PATH: Final = "/v1/sessions"
LOGOUT_PATH: Final = "/v1/sessions/current"
WS_PATH: Final = "/v1/ws"
OPENAPI_PATH: Final = "/v1/openapi.json"
EVENTS_PATH: Final = "/v1/events"
"""The job-event stream of the caller's study (``flare_adapters.server.events``)."""
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"

_PARAM = re.compile(r"\{([a-z_]+)\}")


@functools.cache
def _fields(command_type: type[fc.Command]) -> tuple[msgspec.structs.FieldInfo, ...]:
    # ``msgspec.structs.fields`` re-evaluates the type annotations on every call (hundreds of
    # microseconds, about a fifth of a read's busy time on client and server); a command
    # type's fields never change, so they are computed once per type.
    return msgspec.structs.fields(command_type)


@functools.cache
def _field_types(command_type: type[fc.Command]) -> Mapping[str, Any]:
    return MappingProxyType({f.name: f.type for f in _fields(command_type)})


@functools.cache
def _defaults(command_type: type[fc.Command]) -> Mapping[str, Any]:
    # Built once per type and only ever compared with (never handed out), so a mutable
    # default (a ``default_factory`` list) cannot be changed through it.
    return MappingProxyType(
        {
            f.name: f.default_factory() if f.default_factory is not msgspec.NODEFAULT else f.default
            for f in _fields(command_type)
        }
    )


class LoginRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """The body of ``POST /v1/sessions``.

    Attributes:
        user: the user name.
        api_key: the user's secret API key (``None`` only for backends without keys).
        study: the study the session is bound to.
    """

    user: str
    api_key: str | None = None
    study: str = "default"


@dataclass(frozen=True)
class Route:
    """Where one command type lives in the HTTP API.

    Attributes:
        command: the command type.
        method: the HTTP method.
        path: the path template, e.g. ``/v1/jobs/{job_id}``.
        summary: a one-line description (OpenAPI).
        tag: the resource group (OpenAPI tag): jobs, system, sites, studies or sessions.
        headers: command field -> HTTP header carrying it.
    """

    command: type[fc.Command]
    method: HttpMethod
    path: str
    summary: str
    tag: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def op(self) -> str:
        """The command's wire tag (``op``), also the OpenAPI operationId."""
        info = msgspec.inspect.type_info(self.command)
        assert isinstance(info, msgspec.inspect.StructType)
        return str(info.tag)

    # The derived properties are cached on the (frozen) instance: they are read on every
    # request, and nothing they derive from can change.
    @functools.cached_property
    def path_params(self) -> tuple[str, ...]:
        """The field names bound by the path template, in template order."""
        return tuple(_PARAM.findall(self.path))

    @property
    def transfer(self) -> Literal["upload", "download"] | None:
        """``"upload"``/``"download"`` for archive-streaming routes, else ``None``."""
        return self.command.transfer

    @functools.cached_property
    def fields_in_query(self) -> bool:
        """True when the non-path fields travel in the query string (not a JSON body)."""
        return self.method in ("GET", "DELETE") or self.transfer == "upload"

    @functools.cached_property
    def field_names(self) -> tuple[str, ...]:
        """Every field of the command that travels in the query string or the body."""
        bound = set(self.path_params) | set(self.headers)
        return tuple(f.name for f in _fields(self.command) if f.name not in bound)


class HttpRequest(NamedTuple):
    """The HTTP request that carries one command (the upload body is the caller's stream).

    Attributes:
        method: the HTTP method.
        path: the percent-encoded path.
        query: query pairs, in field order; list fields repeat their key.
        json_body: the JSON body object, or ``None`` when there is nothing to send.
        headers: extra headers (``Idempotency-Key``).
    """

    method: HttpMethod
    path: str
    query: list[tuple[str, str]]
    json_body: dict[str, Any] | None
    headers: dict[str, str]


def _route(
    command: type[fc.Command],
    method: HttpMethod,
    path: str,
    summary: str,
    tag: str,
    headers: Mapping[str, str] | None = None,
) -> Route:
    return Route(command, method, API_PREFIX + path, summary, tag, dict(headers or {}))


ROUTES: Final[tuple[Route, ...]] = (
    # jobs
    _route(
        fc.SubmitJob,
        "POST",
        "/jobs",
        "Submit a job folder (streamed zip body).",
        "jobs",
        {"submit_token": IDEMPOTENCY_HEADER},
    ),
    _route(fc.ListJobs, "GET", "/jobs", "List the study's jobs.", "jobs"),
    _route(fc.GetJobMeta, "GET", "/jobs/{job_id}", "Read a job's meta.", "jobs"),
    _route(fc.DeleteJob, "DELETE", "/jobs/{job_id}", "Delete a job.", "jobs"),
    _route(fc.CloneJob, "POST", "/jobs/{job_id}/clone", "Clone a job.", "jobs"),
    _route(fc.AbortJob, "POST", "/jobs/{job_id}/abort", "Abort a job.", "jobs"),
    _route(
        fc.DownloadJobResult,
        "GET",
        "/jobs/{job_id}/result",
        "Download a finished job's result (streamed zip).",
        "jobs",
    ),
    _route(
        fc.ListJobComponents,
        "GET",
        "/jobs/{job_id}/components",
        "List a job's extra components.",
        "jobs",
    ),
    _route(
        fc.DownloadJobComponents,
        "GET",
        "/jobs/{job_id}/components/archive",
        "Download a job's extra components (streamed zip).",
        "jobs",
    ),
    _route(fc.GetJobLogs, "GET", "/jobs/{job_id}/logs", "Read a job's logs.", "jobs"),
    _route(
        fc.ConfigureJobLog,
        "PUT",
        "/jobs/{job_id}/log-config",
        "Configure a running job's logging.",
        "jobs",
    ),
    _route(fc.ShowStats, "GET", "/jobs/{job_id}/stats", "Show a running job's stats.", "jobs"),
    _route(fc.ShowErrors, "GET", "/jobs/{job_id}/errors", "Show a running job's errors.", "jobs"),
    _route(
        fc.ResetErrors, "DELETE", "/jobs/{job_id}/errors", "Reset a running job's errors.", "jobs"
    ),
    # system
    _route(fc.CheckStatus, "GET", "/system/status", "Check server and client status.", "system"),
    _route(fc.ReportResources, "GET", "/system/resources", "Report resources.", "system"),
    _route(fc.ReportVersion, "GET", "/system/version", "Report versions.", "system"),
    _route(fc.Restart, "POST", "/system/restart", "Restart server and/or clients.", "system"),
    _route(fc.Shutdown, "POST", "/system/shutdown", "Shut down server and/or clients.", "system"),
    _route(fc.ConfigureSiteLog, "PUT", "/system/log-config", "Configure site logging.", "system"),
    # sites
    _route(fc.RemoveClient, "DELETE", "/sites/{client_name}", "Remove a client.", "sites"),
    _route(fc.DisableClient, "POST", "/sites/{client_name}/disable", "Disable a client.", "sites"),
    _route(fc.EnableClient, "POST", "/sites/{client_name}/enable", "Enable a client.", "sites"),
    _route(
        fc.ShellCommand,
        "GET",
        "/sites/{target}/shell/{verb}",
        "Run ls/cat/head/tail/grep/pwd in a site's workspace.",
        "sites",
    ),
    # studies
    _route(fc.RegisterStudy, "POST", "/studies", "Register a study.", "studies"),
    _route(fc.ListStudies, "GET", "/studies", "List the studies visible to the caller.", "studies"),
    _route(fc.ShowStudy, "GET", "/studies/{study}", "Show a study.", "studies"),
    _route(fc.RemoveStudy, "DELETE", "/studies/{study}", "Remove a study.", "studies"),
    _route(fc.AddStudySite, "POST", "/studies/{study}/sites", "Enroll sites.", "studies"),
    # A body, not a query: ``sites=None`` and ``sites=[]`` differ and a query cannot say so.
    _route(
        fc.RemoveStudySite, "POST", "/studies/{study}/sites/remove", "Unenroll sites.", "studies"
    ),
    _route(fc.AddStudyUser, "POST", "/studies/{study}/users", "Add a study user.", "studies"),
    _route(
        fc.RemoveStudyUser,
        "DELETE",
        "/studies/{study}/users/{user}",
        "Remove a study user.",
        "studies",
    ),
    # sessions
    _route(fc.Logout, "DELETE", "/sessions/current", "Log out (end this session).", "sessions"),
)
"""Every route, in ``COMMAND_TYPES`` order within each resource group."""

_BY_COMMAND: Final[dict[type[fc.Command], Route]] = {route.command: route for route in ROUTES}


def route_for(command_type: type[fc.Command]) -> Route:
    """The route of a command type.

    Raises:
        KeyError: ``command_type`` is not one of ``COMMAND_TYPES``.
    """
    return _BY_COMMAND[command_type]


def _query_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _segment(value: str) -> str:
    # "." and ".." would be collapsed by URL normalisation and reach another route.
    if value and value.strip(".") == "":
        return "%2E" * len(value)
    return quote(value, safe="")


def command_to_request(command: fc.Command) -> HttpRequest:
    """The HTTP request that carries ``command`` (without the upload body).

    Args:
        command: any command of ``COMMAND_TYPES``.

    Returns:
        Method, encoded path, query pairs, JSON body (or None) and extra headers.

    Raises:
        KeyError: the command type has no route.
    """
    route = route_for(type(command))
    values = {f.name: getattr(command, f.name) for f in _fields(type(command))}
    path = _PARAM.sub(lambda m: _segment(str(values[m.group(1)])), route.path)
    headers = {header: str(values[name]) for name, header in route.headers.items() if values[name]}
    if not route.fields_in_query:
        body = {name: msgspec.to_builtins(values[name]) for name in route.field_names}
        # A command with nothing to send sends no body (the server then serves it in one hop).
        return HttpRequest(route.method, path, [], body or None, headers)
    defaults = _defaults(type(command))
    query: list[tuple[str, str]] = []
    for name in route.field_names:
        value = values[name]
        if value is None or (name in defaults and value == defaults[name]):
            continue  # the server restores defaults; shorter URLs
        if isinstance(value, list):
            query.extend((name, _query_text(item)) for item in value)
        else:
            query.append((name, _query_text(value)))
    return HttpRequest(route.method, path, query, None, headers)


def _is_list_field(field_type: Any) -> bool:
    if get_origin(field_type) is list:
        return True
    return any(get_origin(arg) is list for arg in get_args(field_type))


def request_to_command(
    route: Route,
    path_params: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    body: bytes | None,
    headers: Mapping[str, str] | None = None,
) -> fc.Command:
    """Rebuild the command an HTTP request carries (the inverse of ``command_to_request``).

    Unknown query parameters and body keys are ignored (schema evolution, as on the wire).

    Args:
        route: the matched route.
        path_params: the decoded path parameters.
        query: the decoded query pairs (repeated keys allowed for list fields).
        body: the raw JSON body of ``POST``/``PUT`` routes (``None`` or empty: ``{}``).
        headers: request headers (case-insensitive mapping recommended).

    Returns:
        The command.

    Raises:
        InvalidArgumentError: malformed JSON, a missing or mistyped field; the message says
            which field and why, and never echoes server internals.
    """
    types = _field_types(route.command)
    values: dict[str, Any] = {}
    if route.fields_in_query:
        wanted = set(route.field_names)
        for key, text in query:
            if key not in wanted:
                continue
            if _is_list_field(types[key]):
                values.setdefault(key, []).append(text)
            elif key in values:
                raise InvalidArgumentError(f"query parameter {key!r} given more than once")
            else:
                values[key] = text
    elif body:
        try:
            decoded = decode_json(body, "JSON body")
        except msgspec.DecodeError as exc:
            raise InvalidArgumentError(f"malformed JSON body: {exc}") from None
        if not isinstance(decoded, dict):
            raise InvalidArgumentError("malformed JSON body: expected an object")
        wanted = set(route.field_names)
        values.update({k: v for k, v in decoded.items() if k in wanted})
    for name, header in route.headers.items():
        header_value = headers.get(header) if headers is not None else None
        if header_value:
            values[name] = header_value
    values.update({name: path_params.get(name, "") for name in route.path_params})
    if route.fields_in_query:
        # Query and header values are text: let msgspec parse "true"/"3" into bool/int there;
        # JSON bodies are already typed and must match exactly.
        for name, value in list(values.items()):
            try:
                values[name] = msgspec.convert(value, types[name], strict=False)
            except msgspec.ValidationError as exc:
                raise InvalidArgumentError(f"invalid request: {name}: {exc}") from None
    try:
        return msgspec.convert(values, route.command)
    except msgspec.ValidationError as exc:
        raise InvalidArgumentError(f"invalid request: {exc}") from None
