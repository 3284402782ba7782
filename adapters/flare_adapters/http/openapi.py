"""The OpenAPI 3.1 document of the HTTP API, generated from the route table and the structs.

Nothing here is written by hand per endpoint: paths, parameters and bodies come from
``routes.ROUTES`` and the commands' msgspec JSON schemas, and each JSON route's success
response from its command's declared ``result`` type, so the document cannot drift from what
the server accepts and answers. ``GET /v1/openapi.json`` serves it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, Final

import msgspec

import flare_core as fc
from flare_adapters.http.problems import PROBLEM_CONTENT_TYPE, ProblemDetails
from flare_adapters.http.routes import (
    LOGIN_PATH,
    OPENAPI_PATH,
    ROUTES,
    WS_PATH,
    LoginRequest,
    Route,
)

__all__ = ["build_openapi", "success_schema"]

_REF: Final = "#/components/schemas/{name}"
_ERROR_STATUSES: Final = ("400", "401", "403", "404", "409", "410", "413", "422", "500", "503")
_ZIP: Final = {"schema": {"type": "string", "contentMediaType": "application/zip"}}


_FIXED: Final[tuple[Any, ...]] = (fc.Ok, ProblemDetails, fc.Grant, LoginRequest, fc.JobEvent)


def _structs(info: msgspec.inspect.Type) -> Iterator[type[msgspec.Struct]]:
    """Every struct type reachable from a type (fields, items, values, union members)."""
    if isinstance(info, msgspec.inspect.StructType):
        yield info.cls
        for f in info.fields:
            yield from _structs(f.type)
    elif isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            yield from _structs(member)
    elif isinstance(info, msgspec.inspect.DictType):
        yield from _structs(info.value_type)
    elif isinstance(info, msgspec.inspect.ListType):
        yield from _structs(info.item_type)
    elif isinstance(info, msgspec.inspect.Metadata):
        yield from _structs(info.type)


def _open_objects(types: list[Any], components: dict[str, dict[str, Any]]) -> None:
    """Say in each result struct's schema what its unnamed keys hold (its ``extra``)."""
    for info in msgspec.inspect.multi_type_info(types):
        for struct in _structs(info):
            extra = getattr(struct, "extra", None)
            schema = components.get(struct.__name__)
            if extra is None or schema is None:
                continue
            if extra is Any:
                schema["additionalProperties"] = True
            else:
                schema["additionalProperties"] = {"$ref": _REF.format(name=extra.__name__)}


def _schemas() -> tuple[dict[str, Any], dict[type[fc.Command], Any], dict[str, dict[str, Any]]]:
    """The fixed types' refs by name, each command's result schema, and the components."""
    results = [route.command.result for route in ROUTES]
    # The types a result struct's unnamed keys hold (``SiteStatus``) need components too.
    extras = [
        extra
        for info in msgspec.inspect.multi_type_info(results)
        for struct in _structs(info)
        if isinstance(extra := getattr(struct, "extra", None), type)
    ]
    types: list[Any] = [*(route.command for route in ROUTES), *_FIXED, *results, *extras]
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    _open_objects(results, components)
    commands = len(ROUTES)
    by_name = {t.__name__: ref for t, ref in zip(_FIXED, refs[commands:], strict=False)}
    result_refs = refs[commands + len(_FIXED) : commands + len(_FIXED) + len(results)]
    by_command = {route.command: ref for route, ref in zip(ROUTES, result_refs, strict=True)}
    return by_name, by_command, components


def success_schema(value: Any) -> dict[str, Any]:
    """The JSON schema of an ``Ok`` reply whose ``value`` has the schema ``value``."""
    return {
        "type": "object",
        "title": "Ok",
        "properties": {"kind": {"enum": ["ok"]}, "value": value},
        "required": ["kind", "value"],
    }


def _problem_responses() -> dict[str, Any]:
    return {status: {"$ref": "#/components/responses/Problem"} for status in _ERROR_STATUSES}


def _operation(route: Route, schema: dict[str, Any], result: Any) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": properties[name]}
        for name in route.path_params
    ]
    parameters += [
        {
            "name": header,
            "in": "header",
            "required": False,
            "description": f"The command's ``{name}`` field.",
            "schema": {"type": "string"},
        }
        for name, header in route.headers.items()
    ]
    operation: dict[str, Any] = {
        "operationId": route.op,
        "summary": route.summary,
        "tags": [route.tag],
        "security": [{"bearerAuth": []}],
    }
    if route.fields_in_query:
        for name in route.field_names:
            parameter = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": properties[name],
            }
            if properties[name].get("type") == "array" or any(
                option.get("type") == "array" for option in properties[name].get("anyOf", ())
            ):
                parameter |= {"style": "form", "explode": True}
            parameters.append(parameter)
    else:
        body = {
            "type": "object",
            "properties": {name: properties[name] for name in route.field_names},
            "required": [name for name in route.field_names if name in required],
        }
        operation["requestBody"] = {
            # Without a body the command's fields take their defaults: a body is needed only
            # when one of them has none.
            "required": bool(body["required"]),
            "content": {"application/json": {"schema": body}},
        }
    if route.transfer == "upload":
        operation["requestBody"] = {"required": True, "content": {"application/zip": _ZIP}}
    operation["parameters"] = parameters
    if route.transfer == "download":
        ok: dict[str, Any] = {
            "description": "The archive, streamed.",
            "content": {"application/zip": _ZIP},
        }
    else:
        ok = {
            "description": "The command's result.",
            "content": {"application/json": {"schema": success_schema(result)}},
        }
    operation["responses"] = {"200": ok, **_problem_responses()}
    return operation


def build_openapi(*, version: str = "0.1.0") -> dict[str, Any]:
    """Generate the OpenAPI 3.1 document.

    Args:
        version: the API implementation version to advertise in ``info.version``.

    Returns:
        The document as a JSON-able dict (a fresh copy on every call).
    """
    refs, results, components = _schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        schema = copy.deepcopy(components[route.command.__name__])
        operation = _operation(route, schema, results[route.command])
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    paths.setdefault(LOGIN_PATH, {})["post"] = {
        "operationId": "login",
        "summary": "Log in: bind a new session to one study and get a bearer token.",
        "tags": ["sessions"],
        "security": [],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": refs["LoginRequest"]}},
        },
        "responses": {
            "201": {
                "description": "The session's grant.",
                "content": {"application/json": {"schema": refs["Grant"]}},
            },
            **_problem_responses(),
        },
    }
    paths[WS_PATH] = {
        "get": {
            "operationId": "websocket",
            "summary": "Upgrade to the WebSocket protocol (see flare_adapters.server.ws).",
            "tags": ["sessions"],
            "security": [{"bearerAuth": []}, {}],
            "responses": {"101": {"description": "Switching protocols."}, **_problem_responses()},
        }
    }
    paths[OPENAPI_PATH] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document.",
            "tags": ["meta"],
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI document.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "flare-core admin API",
            "version": version,
            "description": (
                "Drive a federated-learning job system: one route per SessionSpec command. "
                "Errors are application/problem+json documents naming the domain exception."
            ),
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": name} for name in ("jobs", "system", "sites", "studies", "sessions")],
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {
                "Problem": {
                    "description": "The request failed; the body names the error.",
                    "content": {
                        PROBLEM_CONTENT_TYPE: {
                            "schema": {"$ref": _REF.format(name="ProblemDetails")}
                        }
                    },
                }
            },
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
