"""Every JSON route's live success reply matches the success schema the OpenAPI document gives it.

The document's result schemas come from each command's declared ``result`` type; the handlers
build plain dicts. This drives a served system through every JSON route with real requests and
validates each reply against its route's schema, made strict (an object the document does not
declare open must have exactly its named keys), so a handler that adds, drops or retypes a key,
or a new route without a declared result, fails here.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema
import pytest

from flare_adapters.http.openapi import build_openapi
from flare_adapters.http.routes import ROUTES, Route
from tests.server.server_kit import Api, Host, hello_zip

DOCUMENT = build_openapi()
JSON_ROUTES = [route for route in ROUTES if route.transfer != "download"]


def _closed(schema: Any) -> Any:
    """``schema`` with every object that names its properties and says nothing about other
    keys closed to them (the published document stays open for schema evolution)."""
    if isinstance(schema, dict):
        out = {key: _closed(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


STRICT = _closed(copy.deepcopy(DOCUMENT))


def _success_schema(route: Route) -> dict[str, Any]:
    operation = STRICT["paths"][route.path][route.method.lower()]
    schema: dict[str, Any] = operation["responses"]["200"]["content"]["application/json"]["schema"]
    return schema


def _route_of(method: str, path: str) -> Route:
    for route in JSON_ROUTES:
        pattern = re.sub(r"\{[a-z_]+\}", "[^/]+", route.path)
        if route.method == method and re.fullmatch(pattern, path):
            return route
    raise AssertionError(f"no JSON route for {method} {path}")


class Checked:
    """A session whose every successful reply is validated against its route's schema."""

    def __init__(self, api: Api, seen: set[str]) -> None:
        self.api = api
        self.seen = seen  # the ops validated so far, shared by the test's sessions

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        status, body = await self.api.request(method, path, **kwargs)
        assert status == 200, (method, path, status, body)
        route = _route_of(method, path)
        validator = jsonschema.Draft202012Validator({**_success_schema(route), **STRICT})
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, (route.op, body, errors)
        self.seen.add(route.op)
        return body["value"]


def test_every_json_route_declares_a_typed_result() -> None:
    for route in JSON_ROUTES:
        value = _success_schema(route)["properties"]["value"]
        assert value, f"{route.op}: untyped result (declare the command's `result`)"


@pytest.mark.asyncio
async def test_live_replies_match_their_route_schemas(host: Host) -> None:
    clock = host.system.clock
    seen: set[str] = set()
    api = Checked(await host.api(), seen)
    job = await api.ok(
        "POST",
        "/v1/jobs",
        params={"folder_name": "hello"},
        data=hello_zip(),
        headers={"Content-Type": "application/zip"},
    )
    await api.ok("GET", "/v1/jobs")
    await api.ok("GET", "/v1/jobs", params={"detailed": "true"})
    await api.ok("GET", f"/v1/jobs/{job}")
    await api.ok("GET", f"/v1/jobs/{job}/logs", params={"target": "all"})
    await api.ok("GET", f"/v1/jobs/{job}/logs", params={"target": "site-9"})  # unavailable
    await api.ok("GET", f"/v1/jobs/{job}/stats", params={"target_type": "all"})
    await api.ok("GET", f"/v1/jobs/{job}/errors", params={"target_type": "all"})
    await api.ok("DELETE", f"/v1/jobs/{job}/errors", params={"target_type": "all"})
    await api.ok("PUT", f"/v1/jobs/{job}/log-config", json_body={"config": "DEBUG"})
    for target_type in ("all", "server", "client"):
        await api.ok("GET", "/v1/system/status", params={"target_type": target_type})
    await api.ok("GET", "/v1/system/resources", params={"target_type": "all"})
    await api.ok("GET", "/v1/system/version", params={"target_type": "all"})
    await api.ok("PUT", "/v1/system/log-config", json_body={"config": "DEBUG"})
    await api.ok("GET", "/v1/sites/server/shell/pwd")
    await api.ok("GET", "/v1/sites/site-1/shell/ls")
    await api.ok("POST", f"/v1/jobs/{job}/abort")
    clock.advance(60)
    await api.ok("GET", f"/v1/jobs/{job}/components")
    clone = await api.ok("POST", f"/v1/jobs/{job}/clone")
    await api.ok("DELETE", f"/v1/jobs/{clone}")
    clock.advance(60)

    study = {"study": "s1", "site_orgs": ["nvidia:site-1"]}
    await api.ok("POST", "/v1/studies", json_body=study)
    await api.ok("GET", "/v1/studies")
    await api.ok("GET", "/v1/studies/s1")
    await api.ok("POST", "/v1/studies/s1/sites", json_body={"site_orgs": ["nvidia:site-1"]})
    await api.ok("POST", "/v1/studies/s1/sites/remove", json_body={"site_orgs": ["nvidia:site-1"]})
    await api.ok("POST", "/v1/studies/s1/users", json_body={"user": "lead@nvidia.com"})
    await api.ok("DELETE", "/v1/studies/s1/users/lead@nvidia.com")
    await api.ok("DELETE", "/v1/studies/s1")
    lead = Checked(await host.api("lead@nvidia.com"), seen)
    await lead.ok("GET", "/v1/studies")  # a caller who may not submit: details carry a reason

    await api.ok("POST", "/v1/sites/site-1/disable")
    await api.ok("POST", "/v1/sites/site-1/enable")
    await api.ok("DELETE", "/v1/sites/site-2")
    for site in ("site-1", "site-2"):  # back, as real sites reconnect
        host.system.service.connect_site(site, "nvidia")

    await api.ok("POST", "/v1/system/restart", json_body={"target_type": "all"})
    api = Checked(await host.api(), seen)  # a server restart ends every session
    await api.ok("POST", "/v1/system/shutdown", json_body={"target_type": "client"})
    await api.ok("DELETE", "/v1/sessions/current")

    assert seen == {route.op for route in JSON_ROUTES}
