"""The route table and the OpenAPI document: complete, unambiguous, and round-tripping."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import flare_core as fc
from flare_adapters.http.openapi import build_openapi
from flare_adapters.http.routes import (
    IDEMPOTENCY_HEADER,
    ROUTES,
    command_to_request,
    request_to_command,
    route_for,
)

TEXT = st.text(min_size=1, max_size=20)
NAMES = st.lists(st.text(min_size=1, max_size=10), max_size=4)


def _sample(command_type: type[fc.Command]) -> fc.Command:
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(command_type):
        if field.required:
            values[field.name] = "ls" if field.name == "verb" else f"v-{field.name}"
    return command_type(**values)


def _round_trip(command: fc.Command) -> fc.Command:
    request = command_to_request(command)
    route = route_for(type(command))
    body = None if request.json_body is None else msgspec.json.encode(request.json_body)
    # What a server sees: the decoded path parameters.
    params = dict(
        zip(
            route.path_params,
            [
                unquote(seg)
                for tpl, seg in zip(route.path.split("/"), request.path.split("/"), strict=True)
                if tpl.startswith("{")
            ],
            strict=True,
        )
    )
    return request_to_command(route, params, request.query, body, request.headers)


def test_every_command_has_exactly_one_route() -> None:
    assert [route.command for route in ROUTES].count(fc.SubmitJob) == 1
    assert {route.command for route in ROUTES} == set(fc.COMMAND_TYPES)
    assert len(ROUTES) == len(fc.COMMAND_TYPES)


def test_method_and_path_pairs_are_unique_and_under_v1() -> None:
    pairs = [(route.method, route.path) for route in ROUTES]
    assert len(set(pairs)) == len(pairs)
    assert all(path.startswith("/v1/") for _, path in pairs)


def test_path_parameters_are_fields_of_their_command() -> None:
    for route in ROUTES:
        fields = {f.name for f in msgspec.structs.fields(route.command)}
        assert set(route.path_params) <= fields, route.op
        assert set(route.headers) <= fields


def test_submit_route_streams_and_uses_the_idempotency_header() -> None:
    route = route_for(fc.SubmitJob)
    assert (route.method, route.path, route.transfer) == ("POST", "/v1/jobs", "upload")
    request = command_to_request(
        fc.SubmitJob(folder_name="hello", submit_token="t-1", token_scope="session")
    )
    assert request.headers == {IDEMPOTENCY_HEADER: "t-1"}
    assert request.query == [("folder_name", "hello"), ("token_scope", "session")]
    assert request.json_body is None
    assert command_to_request(fc.SubmitJob(folder_name="x")).headers == {}


def test_download_routes_are_gets() -> None:
    for command in (fc.DownloadJobResult, fc.DownloadJobComponents):
        route = route_for(command)
        assert route.method == "GET"
        assert route.transfer == "download"


@pytest.mark.parametrize("command_type", fc.COMMAND_TYPES, ids=lambda t: t.__name__)
def test_every_command_round_trips(command_type: type[fc.Command]) -> None:
    command = _sample(command_type)
    assert _round_trip(command) == command


def test_cached_route_fields_match_each_command_type() -> None:
    # The codec caches fields per command type: each type must get its own, not a neighbour's.
    for route in ROUTES:
        fresh = [f.name for f in msgspec.structs.fields(route.command)]
        bound = set(route.path_params) | set(route.headers)
        assert list(route.field_names) == [name for name in fresh if name not in bound]
        assert route.path_params == tuple(
            seg[1:-1] for seg in route.path.split("/") if seg.startswith("{")
        )
    for command_type in fc.COMMAND_TYPES:
        command = _sample(command_type)
        request = command_to_request(command)
        sent = {key for key, _ in request.query} | set(request.json_body or {})
        assert sent <= set(route_for(command_type).field_names), command_type.__name__


def test_cached_defaults_are_not_shared_with_commands() -> None:
    # A list default (``targets``) compared from the cache must not alias any command's list.
    first = fc.CheckStatus(target_type="client")
    assert command_to_request(first).query == [("target_type", "client")]
    first.targets.append("site-1")
    assert command_to_request(first).query == [("target_type", "client"), ("targets", "site-1")]
    fresh = fc.CheckStatus(target_type="client")
    assert command_to_request(fresh).query == [("target_type", "client")]
    assert _round_trip(fresh) == fresh
    again = _round_trip(fresh)
    assert isinstance(again, fc.CheckStatus)
    assert again.targets == []


@given(
    detailed=st.booleans(),
    limit=st.none() | st.integers(min_value=0, max_value=10**6),
    id_prefix=st.none() | st.text(max_size=10),
    name_prefix=st.none() | st.text(max_size=10),
    reverse=st.booleans(),
    mine_only=st.booleans(),
)
def test_list_jobs_round_trips(
    detailed: bool,
    limit: int | None,
    id_prefix: str | None,
    name_prefix: str | None,
    reverse: bool,
    mine_only: bool,
) -> None:
    command = fc.ListJobs(
        detailed=detailed,
        limit=limit,
        id_prefix=id_prefix,
        name_prefix=name_prefix,
        reverse=reverse,
        mine_only=mine_only,
    )
    assert _round_trip(command) == command


@given(job_id=TEXT, targets=NAMES, target_type=st.sampled_from(["all", "server", "client"]))
def test_targets_round_trip_as_repeated_query_keys(
    job_id: str, targets: list[str], target_type: str
) -> None:
    command = fc.ShowStats(job_id=job_id, target_type=target_type, targets=targets)
    assert _round_trip(command) == command


@given(study=TEXT, sites=st.none() | NAMES, site_orgs=st.none() | NAMES)
def test_body_lists_keep_none_apart_from_empty(
    study: str, sites: list[str] | None, site_orgs: list[str] | None
) -> None:
    command = fc.RemoveStudySite(study=study, sites=sites, site_orgs=site_orgs)
    assert _round_trip(command) == command


@pytest.mark.parametrize("job_id", [".", "..", "a/b", "a b", "ü", "%2F"])
def test_odd_path_values_are_encoded_as_one_segment(job_id: str) -> None:
    request = command_to_request(fc.GetJobMeta(job_id=job_id))
    segment = request.path.removeprefix("/v1/jobs/")
    assert "/" not in segment
    assert segment not in (".", "..")
    assert _round_trip(fc.GetJobMeta(job_id=job_id)) == fc.GetJobMeta(job_id=job_id)


def test_unknown_query_keys_and_body_keys_are_ignored() -> None:
    route = route_for(fc.ListJobs)
    command = request_to_command(route, {}, [("future", "1"), ("limit", "2")], None)
    assert command == fc.ListJobs(limit=2)
    route = route_for(fc.ConfigureSiteLog)
    command = request_to_command(route, {}, [], b'{"config": "DEBUG", "future": 1}')
    assert command == fc.ConfigureSiteLog(config="DEBUG")


@pytest.mark.parametrize(
    ("command_type", "query", "body", "message"),
    [
        (fc.ListJobs, [("limit", "x")], None, "limit"),
        (fc.ListJobs, [("reverse", "1"), ("reverse", "0")], None, "more than once"),
        (fc.Restart, [], b"{", "malformed JSON"),
        (fc.Restart, [], b"[]", "expected an object"),
        (fc.Restart, [], b"{}", "target_type"),
        (fc.Restart, [], b'{"target_type": 1}', "target_type"),
    ],
)
def test_bad_requests_raise_invalid_argument(
    command_type: type[fc.Command], query: list[tuple[str, str]], body: bytes | None, message: str
) -> None:
    with pytest.raises(fc.InvalidArgumentError, match=message):
        request_to_command(route_for(command_type), {}, query, body)


def test_route_for_rejects_unknown_types() -> None:
    with pytest.raises(KeyError):
        route_for(fc.Command)


def test_openapi_document_covers_the_table() -> None:
    document = build_openapi()
    assert document["openapi"] == "3.1.0"
    operations = {
        (method.upper(), path): op
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    for route in ROUTES:
        operation = operations[(route.method, route.path)]
        assert operation["operationId"] == route.op
        names = {p["name"] for p in operation["parameters"]}
        assert set(route.path_params) <= names
        if route.fields_in_query:
            assert set(route.field_names) <= names
        else:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert set(schema["properties"]) == set(route.field_names)
    schemas = document["components"]["schemas"]
    assert {t.__name__ for t in fc.COMMAND_TYPES} <= set(schemas)
    assert {"Ok", "ProblemDetails", "Grant", "LoginRequest", "JobEvent"} <= set(schemas)
    submit = operations[("POST", "/v1/jobs")]
    assert "application/zip" in submit["requestBody"]["content"]
    assert any(
        p["name"] == IDEMPOTENCY_HEADER and p["in"] == "header" for p in submit["parameters"]
    )
    result = operations[("GET", "/v1/jobs/{job_id}/result")]
    assert "application/zip" in result["responses"]["200"]["content"]
    assert operations[("POST", "/v1/sessions")]["security"] == []


def test_openapi_document_is_json_and_every_ref_resolves() -> None:
    document = build_openapi()
    text = msgspec.json.encode(document).decode()
    refs = {
        ref.split("/")[-1] for ref in (part.split('"')[0] for part in text.split('"$ref":"')[1:])
    }
    schemas = document["components"]["schemas"]
    responses = document["components"]["responses"]
    assert all(name in schemas or name in responses for name in refs)
