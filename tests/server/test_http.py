"""The HTTP API with a raw aiohttp client: every route, auth, expiry, authorization, errors."""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

import flare_core as fc
from flare_adapters.http.openapi import build_openapi
from flare_adapters.server.app import build_app
from flare_adapters.server.context import EXECUTOR
from flare_adapters.server.downloads import ArchiveStream
from flare_adapters.server.settings import ServerSettings
from flare_ports.wire import json_codec
from tests.server.server_kit import Api, Host, hello_zip, hosted, job_files, make_zip

pytestmark = pytest.mark.asyncio

ADMIN = "admin@nvidia.com"


async def finished_job(host: Host, api: Api) -> str:
    job = await api.submit(hello_zip())
    host.system.clock.advance(60)
    meta = await api.ok("GET", f"/v1/jobs/{job}")
    assert meta["status"] == "FINISHED:COMPLETED"
    return job


# --- sessions -----------------------------------------------------------------------------


async def test_login_returns_grant_with_token_and_principal(host: Host) -> None:
    grant = await Api(host.http).login(ADMIN, ADMIN)
    assert grant["idle_timeout"] == 1800.0
    assert grant["principal"]["name"] == ADMIN
    assert grant["principal"]["role"] == "project_admin"
    assert grant["principal"]["study"] == "default"
    assert len(grant["token"]) >= 32


@pytest.mark.parametrize(("user", "key"), [(ADMIN, "wrong"), ("nobody@x.org", "nobody@x.org")])
async def test_login_with_bad_credentials_is_401(host: Host, user: str, key: str) -> None:
    problem = await Api(host.http).problem(
        "POST", "/v1/sessions", 401, json_body={"user": user, "api_key": key}
    )
    assert problem["code"] == "not_authenticated"
    assert problem["error"] == "AuthenticationError"
    assert problem["message"] == "Incorrect user name or password"


async def test_login_to_unknown_study_carries_auth_code(host: Host) -> None:
    host.system.service.add_study("s1", {"nvidia": ["site-1"]}, [ADMIN])
    problem = await Api(host.http).problem(
        "POST", "/v1/sessions", 401, json_body={"user": ADMIN, "api_key": ADMIN, "study": "nope"}
    )
    assert problem["attrs"]["auth_code"]
    error = json_codec.decode_reply(json_codec.encode(problem))
    assert isinstance(error, fc.Problem)
    assert isinstance(error.to_exception(), fc.AuthenticationError)


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'{"api_key": "k"}', b'{"user": 3, "api_key": "k"}'],
    ids=["truncated", "array", "missing-user", "mistyped-user"],
)
async def test_malformed_login_is_400_with_reason(host: Host, body: bytes) -> None:
    problem = await Api(host.http).problem(
        "POST", "/v1/sessions", 400, data=body, headers={"Content-Type": "application/json"}
    )
    assert problem["code"] == "invalid_argument"
    assert problem["message"].startswith("malformed login request")


async def test_login_with_wrong_content_type_is_415(host: Host) -> None:
    problem = await Api(host.http).problem(
        "POST", "/v1/sessions", 415, data=b"user=x", headers={"Content-Type": "text/plain"}
    )
    assert problem["code"] == "unsupported_media_type"


async def test_logout_ends_the_session(host: Host) -> None:
    api = await host.api()
    assert await api.ok("DELETE", "/v1/sessions/current") is None
    problem = await api.problem("GET", "/v1/jobs", 401)
    assert problem["code"] == "not_authenticated"


async def test_requests_without_or_with_bad_bearer_are_401(host: Host) -> None:
    anonymous = Api(host.http)
    response = await host.http.get("/v1/jobs")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await anonymous.problem("GET", "/v1/jobs", 401))["message"] == "missing bearer token"
    basic = await anonymous.problem("GET", "/v1/jobs", 401, headers={"Authorization": "Basic eDp5"})
    assert "Bearer" in basic["message"]
    forged = Api(host.http, token="not-a-real-token")
    assert (await forged.problem("GET", "/v1/jobs", 401))["code"] == "not_authenticated"


async def test_bodiless_routes_check_the_token_before_the_request(host: Host) -> None:
    # GET/DELETE command routes authenticate in the worker that parses and serves them: a
    # bad token still wins over a malformed request, on every kind of such route.
    forged = Api(host.http, token="not-a-real-token")
    for method, path in [
        ("GET", "/v1/jobs?limit=not-a-number"),
        ("GET", "/v1/jobs/some-job"),
        ("GET", "/v1/jobs/some-job/result"),
        ("DELETE", "/v1/jobs/some-job"),
        ("GET", "/v1/system/status?target_type=nonsense"),
    ]:
        response = await host.http.request(method, path, headers=forged.headers())
        assert response.status == 401, (method, path)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await response.json(content_type=None))["code"] == "not_authenticated"
    api = await host.api()
    assert (await api.problem("GET", "/v1/jobs?limit=not-a-number", 400))["code"] == (
        "invalid_argument"
    )
    assert (await api.problem("GET", "/v1/jobs/some-job", 404))["error"] == "JobNotFound"
    assert isinstance(await api.ok("GET", "/v1/jobs"), list)


async def test_idle_session_expires_then_is_unknown(host: Host) -> None:
    api = await host.api()
    host.system.clock.advance(1799)
    await api.ok("GET", "/v1/jobs")  # activity refreshes the idle timer
    host.system.clock.advance(1801)
    problem = await api.problem("GET", "/v1/jobs", 401)
    assert problem["code"] == "session_expired"
    assert problem["error"] == "SessionExpired"
    assert problem["message"] == "Your session is closed due to inactivity or cert expiry."
    assert (await api.problem("GET", "/v1/jobs", 401))["code"] == "not_authenticated"


async def test_one_session_expiring_does_not_disturb_another(host: Host) -> None:
    idle = await host.api()
    host.system.clock.advance(1000)
    busy = await host.api("lead@nvidia.com")
    host.system.clock.advance(1000)
    assert (await idle.problem("GET", "/v1/jobs", 401))["code"] == "session_expired"
    assert await busy.ok("GET", "/v1/jobs") == []


# --- jobs ----------------------------------------------------------------------------------


async def test_submit_list_and_meta(host: Host) -> None:
    api = await host.api()
    job = await api.submit(hello_zip("first"), folder="first")
    meta = await api.ok("GET", f"/v1/jobs/{job}")
    assert meta["job_id"] == job
    assert meta["submitter_name"] == ADMIN
    assert meta["job_folder_name"] == "first"
    rows = await api.ok("GET", "/v1/jobs")
    assert [row["job_id"] for row in rows] == [job]
    assert set(rows[0]) == {"job_id", "job_name", "status", "submit_time", "duration", "study"}
    detailed = await api.ok("GET", "/v1/jobs", params={"detailed": "true"})
    assert detailed[0]["submitter_name"] == ADMIN


async def test_list_filters_travel_in_the_query(host: Host) -> None:
    api = await host.api()
    first = await api.submit(hello_zip("alpha"), folder="alpha")
    host.system.clock.advance(1)
    second = await api.submit(hello_zip("beta"), folder="beta")
    assert [r["job_id"] for r in await api.ok("GET", "/v1/jobs", params={"limit": "1"})] == [second]
    reverse = await api.ok("GET", "/v1/jobs", params={"reverse": "true"})
    assert [r["job_id"] for r in reverse] == [second, first]
    by_name = await api.ok("GET", "/v1/jobs", params={"name_prefix": "ALP"})
    assert [r["job_id"] for r in by_name] == [first]
    by_id = await api.ok("GET", "/v1/jobs", params={"id_prefix": second[:8]})
    assert [r["job_id"] for r in by_id] == [second]


async def test_submit_token_replay_conflict_and_deleted(host: Host) -> None:
    api = await host.api()
    job = await api.submit(hello_zip(), token="tok-1")
    assert await api.submit(hello_zip(), token="tok-1") == job
    assert len(await api.ok("GET", "/v1/jobs")) == 1
    conflict = await api.problem(
        "POST",
        "/v1/jobs",
        409,
        params={"folder_name": "hello"},
        data=hello_zip(rounds=5),
        headers={"Content-Type": "application/zip", "Idempotency-Key": "tok-1"},
    )
    assert conflict["code"] == "submit_token_conflict"
    assert conflict["attrs"]["existing_job_id"] == job
    await api.ok("POST", f"/v1/jobs/{job}/abort")
    deleted = await api.ok("DELETE", f"/v1/jobs/{job}")
    assert deleted == {"job_id": job, "submit_records_marked_deleted": 1}
    gone = await api.problem(
        "POST",
        "/v1/jobs",
        410,
        params={"folder_name": "hello"},
        data=hello_zip(),
        headers={"Content-Type": "application/zip", "Idempotency-Key": "tok-1"},
    )
    assert gone["code"] == "submit_token_job_deleted"
    assert gone["attrs"]["job_id"] == job
    assert gone["attrs"]["state"] == "job_deleted"
    listed = await api.problem("GET", "/v1/jobs", 410, params={"submit_token": "tok-1"})
    assert listed["error"] == "SubmitTokenJobDeleted"


async def test_session_scoped_tokens_do_not_collide_with_user_tokens(host: Host) -> None:
    api = await host.api()
    user_job = await api.submit(hello_zip(), token="same")
    session_job = await api.ok(
        "POST",
        "/v1/jobs",
        params={"folder_name": "hello", "token_scope": "session"},
        data=hello_zip(),
        headers={"Content-Type": "application/zip", "Idempotency-Key": "same"},
    )
    assert session_job != user_job


async def test_invalid_submit_token_is_400(host: Host) -> None:
    api = await host.api()
    problem = await api.problem(
        "POST",
        "/v1/jobs",
        400,
        params={"folder_name": "hello"},
        data=hello_zip(),
        headers={"Content-Type": "application/zip", "Idempotency-Key": "bad/token"},
    )
    assert problem["code"] == "invalid_argument"


async def test_clone_abort_and_delete(host: Host) -> None:
    api = await host.api()
    job = await api.submit(hello_zip())
    clone = await api.ok("POST", f"/v1/jobs/{job}/clone")
    assert clone != job
    assert (await api.ok("GET", f"/v1/jobs/{clone}"))["cloned_from"] == job
    message = await api.ok("POST", f"/v1/jobs/{job}/abort")
    assert isinstance(message, str)
    assert (await api.ok("GET", f"/v1/jobs/{job}"))["status"] == "FINISHED:ABORTED"
    await api.ok("DELETE", f"/v1/jobs/{job}")
    assert (await api.problem("GET", f"/v1/jobs/{job}", 404))["code"] == "job_not_found"


async def test_download_result_streams_a_zip(host: Host) -> None:
    api = await host.api()
    job = await api.submit(hello_zip())
    early = await api.problem("GET", f"/v1/jobs/{job}/result", 409)
    assert early["code"] == "job_not_done"
    host.system.clock.advance(60)
    response = await host.http.get(f"/v1/jobs/{job}/result", headers=api.headers())
    assert response.status == 200
    assert response.content_type == "application/zip"
    assert job in response.headers["Content-Disposition"]
    names = zipfile.ZipFile(io.BytesIO(await response.read())).namelist()
    assert "meta.json" in names
    # job.zip unzipped: the folder under its own name (reference §1.3).
    assert [name for name in names if name.endswith("/meta.json")][:1] == ["job/hello/meta.json"]
    assert any(name.startswith("workspace/site-1/") for name in names)


async def test_download_failing_mid_stream_breaks_the_body(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = await host.api()
    job = await api.submit(hello_zip())
    host.system.clock.advance(60)
    service = host.system.service
    opened = service.open_download

    def breaking(principal: Any, download_id: str) -> Iterator[bytes]:
        chunks = opened(principal, download_id)
        yield next(chunks)
        raise OSError("disk I/O error")

    monkeypatch.setattr(service, "open_download", breaking)
    response = await host.http.get(f"/v1/jobs/{job}/result", headers=api.headers())
    assert response.status == 200
    # Not a well-formed body that ends early, nor a hang: the connection closes mid-body.
    with pytest.raises(aiohttp.ClientPayloadError):
        await asyncio.wait_for(response.read(), 10.0)


async def test_components_list_and_download(host: Host) -> None:
    api = await host.api()
    job = await api.submit(hello_zip())
    host.system.engine.fail_job(job, reason="boom")
    components = await api.ok("GET", f"/v1/jobs/{job}/components")
    assert "ERRORLOG_site-1" in components
    response = await host.http.get(f"/v1/jobs/{job}/components/archive", headers=api.headers())
    assert response.status == 200
    names = zipfile.ZipFile(io.BytesIO(await response.read())).namelist()
    assert any("ERRORLOG_site-1" in name for name in names)
    ok_job = await finished_job(host, api)
    empty = await api.problem("GET", f"/v1/jobs/{ok_job}/components/archive", 500)
    assert empty["message"] == "no_job_components: No components to download"


async def test_logs_stats_errors_and_log_config(host: Host) -> None:
    api = await host.api()
    job = await api.submit(hello_zip())
    logs = await api.ok("GET", f"/v1/jobs/{job}/logs", params={"target": "all"})
    assert "started on site-1" in logs["logs"]["site-1"]
    stats = await api.ok("GET", f"/v1/jobs/{job}/stats", params={"target_type": "all"})
    assert set(stats) == {"server", "site-1", "site-2"}
    errors = await api.ok(
        "GET",
        f"/v1/jobs/{job}/errors",
        params=[("target_type", "client"), ("targets", "site-2")],
    )
    assert set(errors) == {"site-2"}
    reset = await api.ok("DELETE", f"/v1/jobs/{job}/errors", params={"target_type": "server"})
    assert set(reset) == {"server"}
    configured = await api.ok(
        "PUT", f"/v1/jobs/{job}/log-config", json_body={"config": "DEBUG", "target": "server"}
    )
    assert set(configured) == {"server"}
    host.system.clock.advance(60)
    not_running = await api.problem(
        "GET", f"/v1/jobs/{job}/stats", 409, params={"target_type": "all"}
    )
    assert not_running["code"] == "job_not_running"


# --- system and sites ------------------------------------------------------------------------


async def test_system_status_resources_version_and_site_log(host: Host) -> None:
    api = await host.api()
    status = await api.ok("GET", "/v1/system/status", params={"target_type": "all"})
    assert {"server", "site-1", "site-2"} <= set(status)
    resources = await api.ok(
        "GET", "/v1/system/resources", params=[("target_type", "client"), ("targets", "site-1")]
    )
    assert set(resources) == {"site-1"}
    assert isinstance(resources["site-1"], dict)
    version = await api.ok("GET", "/v1/system/version", params={"target_type": "server"})
    assert set(version) == {"server"}
    site_log = await api.ok("PUT", "/v1/system/log-config", json_body={"config": "DEBUG"})
    assert "server" in site_log
    problem = await api.problem(
        "GET", "/v1/system/status", 422, params={"target_type": "client", "targets": "nope"}
    )
    assert problem["code"] == "invalid_target"


async def test_restart_and_shutdown(host: Host) -> None:
    api = await host.api()
    before = host.system.service.start_time
    host.system.clock.advance(5)
    await api.ok("POST", "/v1/system/restart", json_body={"target_type": "server"})
    assert host.system.service.start_time > before
    api = await host.api()
    busy = await api.problem(
        "POST", "/v1/system/shutdown", 409, json_body={"target_type": "server"}
    )
    assert busy["code"] == "clients_running"
    host.system.service.disconnect_site("site-1")
    host.system.service.disconnect_site("site-2")
    await api.ok("POST", "/v1/system/shutdown", json_body={"target_type": "server"})
    down = await api.problem("GET", "/v1/jobs", 503)
    assert down["code"] == "no_connection"


async def test_no_clients_is_503(host: Host) -> None:
    host.system.service.disconnect_site("site-1")
    host.system.service.disconnect_site("site-2")
    api = await host.api()
    problem = await api.problem("GET", "/v1/system/status", 503, params={"target_type": "client"})
    assert problem["code"] == "no_clients"


async def test_disable_enable_and_remove_client(host: Host) -> None:
    api = await host.api()
    disabled = await api.ok("POST", "/v1/sites/site-2/disable")
    assert disabled["clients"][0]["state"] == "disabled"
    enabled = await api.ok("POST", "/v1/sites/site-2/enable")
    assert enabled["clients"][0]["state"] == "enabled"
    assert await api.ok("DELETE", "/v1/sites/site-1") is None
    assert not any(site.connected for site in host.system.service.sites())


async def test_shell_commands(host: Host) -> None:
    api = await host.api()
    job = await api.submit(hello_zip())
    assert await api.ok("GET", "/v1/sites/server/shell/pwd") == "/workspace/server\n"
    listing = await api.ok("GET", "/v1/sites/site-1/shell/ls", params={"options": "-l"})
    assert job in listing
    text = await api.ok("GET", "/v1/sites/site-1/shell/cat", params={"path": f"{job}/log.txt"})
    assert "started on site-1" in text
    grep = await api.ok(
        "GET",
        "/v1/sites/site-1/shell/grep",
        params={"pattern": "deployed", "path": f"{job}/log.txt"},
    )
    assert grep.count("\n") == 1
    bad = await api.problem("GET", "/v1/sites/site-1/shell/cat", 400, params={"path": "../x.txt"})
    assert bad["code"] == "invalid_argument"
    unknown_verb = await api.problem("GET", "/v1/sites/site-1/shell/rm", 400)
    assert unknown_verb["code"] == "invalid_argument"
    target = await api.problem("GET", "/v1/sites/nowhere/shell/pwd", 422)
    assert target["code"] == "invalid_target"


# --- studies ---------------------------------------------------------------------------------


async def test_study_commands(host: Host) -> None:
    api = await host.api()
    registered = await api.ok(
        "POST", "/v1/studies", json_body={"study": "s1", "site_orgs": ["nvidia:site-1"]}
    )
    assert registered
    assert "s1" in (await api.ok("GET", "/v1/studies"))["studies"]
    assert await api.ok("GET", "/v1/studies/s1")
    await api.ok("POST", "/v1/studies/s1/sites", json_body={"site_orgs": ["nvidia:site-2"]})
    await api.ok("POST", "/v1/studies/s1/sites/remove", json_body={"site_orgs": ["nvidia:site-2"]})
    await api.ok("POST", "/v1/studies/s1/users", json_body={"user": "lead@nvidia.com"})
    await api.ok("DELETE", "/v1/studies/s1/users/lead@nvidia.com")
    await api.ok("DELETE", "/v1/studies/s1")
    missing = await api.problem("GET", "/v1/studies/s1", 422)
    assert missing["code"] == "command_error"
    assert missing["message"] == "STUDY_NOT_FOUND"
    assert missing["attrs"]["exit_code"] == 1


async def test_other_studies_jobs_are_not_found(host: Host) -> None:
    host.system.service.add_study("s1", {"nvidia": ["site-1", "site-2"]}, [ADMIN])
    default = await host.api()
    job = await default.submit(hello_zip())
    other = await host.api(study="s1")
    assert (await other.problem("GET", f"/v1/jobs/{job}", 404))["code"] == "job_not_found"
    assert await other.ok("GET", "/v1/jobs") == []


# --- authorization -----------------------------------------------------------------------------


async def test_member_may_view_but_not_submit(host: Host) -> None:
    member = await host.api("member@nvidia.com")
    assert await member.ok("GET", "/v1/jobs") == []
    problem = await member.problem(
        "POST",
        "/v1/jobs",
        403,
        params={"folder_name": "hello"},
        data=hello_zip(),
        headers={"Content-Type": "application/zip"},
    )
    assert problem["code"] == "not_authorized"
    assert problem["error"] == "AuthorizationError"


async def test_lead_manages_only_own_jobs(host: Host) -> None:
    lead = await host.api("lead@nvidia.com")
    other_lead = await host.api("lead@other.org")
    job = await lead.submit(hello_zip())
    assert (await other_lead.problem("POST", f"/v1/jobs/{job}/abort", 403))["code"] == (
        "not_authorized"
    )
    assert (await other_lead.problem("POST", f"/v1/jobs/{job}/clone", 403))["code"] == (
        "not_authorized"
    )
    await lead.ok("POST", f"/v1/jobs/{job}/abort")


async def test_org_admin_scope(host: Host) -> None:
    lead = await host.api("lead@nvidia.com")
    job = await lead.submit(hello_zip())
    same_org = await host.api("orgadmin@nvidia.com")
    other_org = await host.api("orgadmin@other.org")
    assert (await other_org.problem("DELETE", f"/v1/jobs/{job}", 403))["code"] == "not_authorized"
    await same_org.ok("POST", f"/v1/jobs/{job}/abort")
    problem = await other_org.problem("GET", "/v1/sites/server/shell/pwd", 403)
    assert problem["code"] == "not_authorized"
    assert await same_org.ok("GET", "/v1/sites/server/shell/pwd")


async def test_member_may_not_operate(host: Host) -> None:
    member = await host.api("member@nvidia.com")
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/system/restart", {"json_body": {"target_type": "server"}}),
        ("POST", "/v1/sites/site-1/disable", {}),
        ("GET", "/v1/system/resources", {"params": {"target_type": "server"}}),
        ("POST", "/v1/studies", {"json_body": {"study": "x", "site_orgs": ["nvidia:site-1"]}}),
    ]
    for method, path, kwargs in cases:
        problem = await member.problem(method, path, 403, **kwargs)
        assert problem["error"] == "AuthorizationError"


# --- bad input -----------------------------------------------------------------------------------


async def test_unknown_endpoint_and_method(host: Host) -> None:
    api = await host.api()
    assert (await api.problem("GET", "/v1/nope", 404))["code"] == "not_found"
    wrong = await api.problem("PATCH", "/v1/jobs", 405)
    assert wrong["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": "many"}, "limit"),
        ({"detailed": "perhaps"}, "detailed"),
        ([("limit", "1"), ("limit", "2")], "more than once"),
    ],
)
async def test_mistyped_query_is_400(host: Host, params: Any, fragment: str) -> None:
    api = await host.api()
    problem = await api.problem("GET", "/v1/jobs", 400, params=params)
    assert problem["code"] == "invalid_argument"
    assert fragment in problem["message"]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'{"target_type": 7}'],
    ids=["malformed", "not-object", "mistyped"],
)
async def test_bad_json_bodies_are_400(host: Host, body: bytes) -> None:
    api = await host.api()
    problem = await api.problem(
        "POST",
        "/v1/system/restart",
        400,
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert problem["code"] == "invalid_argument"
    assert "Traceback" not in problem["message"]


async def test_missing_required_field_is_400(host: Host) -> None:
    api = await host.api()
    problem = await api.problem("POST", "/v1/system/restart", 400, json_body={})
    assert "target_type" in problem["message"]


async def test_oversized_json_body_is_413(tmp_path: Any) -> None:
    async with hosted(str(tmp_path), ServerSettings(max_json_bytes=1024)) as host:
        api = await host.api()
        problem = await api.problem(
            "PUT", "/v1/system/log-config", 413, json_body={"config": "x" * 4096}
        )
        assert problem["code"] == "payload_too_large"
        assert problem["message"] == "request body exceeds 1024 bytes"
        assert await api.ok("GET", "/v1/jobs") == []  # the session is unharmed


async def test_oversized_upload_is_413_and_nothing_is_kept(tmp_path: Any) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    async with hosted(str(spool), ServerSettings(max_upload_bytes=2048)) as host:
        api = await host.api()
        noise = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(200))
        big = make_zip({**job_files(), "data.bin": noise}, "hello")
        for headers in ({"Content-Type": "application/zip"}, {}):
            problem = await api.problem(
                "POST",
                "/v1/jobs",
                413,
                params={"folder_name": "hello"},
                data=big,
                headers=headers,
            )
            assert problem["code"] == "invalid_job_definition"
        chunked = await host.http.post(
            "/v1/jobs",
            params={"folder_name": "hello"},
            data=_chunks(big, 512),
            headers=api.headers({"Content-Type": "application/zip"}),
        )
        assert chunked.status == 413
        assert list(spool.iterdir()) == []
        assert await api.ok("GET", "/v1/jobs") == []


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _ratio_bomb() -> bytes:
    return make_zip({**job_files(), "bomb.txt": b"\0" * (3 * 1024 * 1024)}, "hello")


BAD_ARCHIVES: dict[str, Callable[[], bytes]] = {
    "not-a-zip": lambda: b"this is not a zip archive",
    "dot-dot": lambda: make_zip({**job_files(), "../evil.txt": b"x"}, "hello"),
    "absolute": lambda: make_zip({"/etc/evil.txt": b"x"}, None),
    "symlink": lambda: make_zip(job_files(), "hello", symlinks={"app/link": "/etc/passwd"}),
    "ratio": _ratio_bomb,
}


@pytest.mark.parametrize("name", sorted(BAD_ARCHIVES))
async def test_unsafe_archives_are_refused_before_the_backend(host: Host, name: str) -> None:
    api = await host.api()
    problem = await api.problem(
        "POST",
        "/v1/jobs",
        422,
        params={"folder_name": "hello"},
        data=BAD_ARCHIVES[name](),
        headers={"Content-Type": "application/zip"},
    )
    assert problem["code"] == "invalid_job_definition"
    assert problem["message"].startswith("invalid job definition")
    assert await api.ok("GET", "/v1/jobs") == []


async def test_zip_entry_count_and_sizes_are_bounded(tmp_path: Any) -> None:
    settings = ServerSettings(max_zip_entries=5, max_zip_entry_bytes=100, max_zip_total_bytes=250)
    async with hosted(str(tmp_path), settings) as host:
        api = await host.api()
        cases = {
            "entries": make_zip({f"f{i}.txt": b"x" for i in range(10)}),
            "entry size": make_zip({"a.txt": b"x" * 200}),
            "total": make_zip({"a.txt": b"x" * 90, "b.txt": b"y" * 90, "c.txt": b"z" * 90}),
        }
        for archive in cases.values():
            problem = await api.problem(
                "POST",
                "/v1/jobs",
                422,
                params={"folder_name": "hello"},
                data=archive,
                headers={"Content-Type": "application/zip"},
            )
            assert problem["code"] == "invalid_job_definition"


async def test_upload_with_wrong_content_type_is_415(host: Host) -> None:
    api = await host.api()
    problem = await api.problem(
        "POST",
        "/v1/jobs",
        415,
        params={"folder_name": "hello"},
        data=hello_zip(),
        headers={"Content-Type": "text/plain"},
    )
    assert problem["code"] == "unsupported_media_type"


async def test_invalid_job_definition_is_422(host: Host) -> None:
    api = await host.api()
    files = job_files()
    del files["meta.json"]
    problem = await api.problem(
        "POST",
        "/v1/jobs",
        422,
        params={"folder_name": "hello"},
        data=make_zip(files),
        headers={"Content-Type": "application/zip"},
    )
    assert problem["error"] == "InvalidJobDefinition"


async def test_openapi_is_public_and_complete(host: Host) -> None:
    response = await host.http.get("/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"] == "3.1.0"
    operations = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    assert {"submit_job", "login", "websocket", "logout"} <= operations


async def test_openapi_is_built_once_and_answers_the_same_document(host: Host) -> None:
    # The encoded document is cached per application: every answer is the full document.
    first = await host.http.get("/v1/openapi.json")
    second = await host.http.get("/v1/openapi.json")
    assert first.headers["Content-Type"] == second.headers["Content-Type"]
    assert first.headers["Content-Type"] == "application/json; charset=utf-8"
    body = await first.read()
    assert await second.read() == body
    assert msgspec.json.decode(body) == msgspec.json.decode(msgspec.json.encode(build_openapi()))


# --- the server never leaks internals -----------------------------------------------------------


class ExplodingBackend:
    """A backend whose calls fail with unexpected exceptions naming a secret path."""

    def login(self, user: str, api_key: str | None, study: str) -> fc.Grant:
        raise RuntimeError("/srv/secret/db.sqlite is corrupt")

    def authenticate(self, token: str) -> fc.Principal:
        if token == "boom":
            raise OSError("/srv/secret/sessions unreadable")
        return fc.Principal(name="u", org="o", role="project_admin")

    def logout(self, token: str) -> None:
        return None

    def handle(
        self, principal: fc.Principal, command: fc.Command, upload: Iterable[bytes] | None = None
    ) -> fc.Reply:
        if isinstance(command, fc.ListJobs):
            raise ValueError("/srv/secret/jobs table missing")
        return fc.Ok(value={"download_id": "d"})

    def open_download(self, principal: fc.Principal, download_id: str) -> Iterator[bytes]:
        raise KeyError("/srv/secret/blobs")

    def subscribe(self, listener: Callable[[fc.JobEvent], None]) -> Callable[[], None]:
        return lambda: None


async def test_unexpected_errors_are_opaque_500s(tmp_path: Any) -> None:
    server = TestServer(build_app(ExplodingBackend(), spool_dir=str(tmp_path)), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(str(server.make_url(""))) as http:
            api = Api(http, token="ok")
            cases: list[tuple[str, str, dict[str, Any]]] = [
                ("POST", "/v1/sessions", {"json_body": {"user": "u", "api_key": "k"}}),
                ("GET", "/v1/jobs", {}),
                ("GET", f"/v1/jobs/{'a' * 8}/result", {}),
            ]
            for method, path, kwargs in cases:
                status, body = await api.request(method, path, **kwargs)
                assert status == 500, body
                assert body["code"] == "internal_error"
                assert "secret" not in str(body)
            broken = Api(http, token="boom")
            status, body = await broken.request("GET", "/v1/jobs")
            assert status == 500
            assert "secret" not in str(body)
    finally:
        await server.close()


async def test_a_download_reads_one_chunk_ahead_of_the_sender(tmp_path: Any) -> None:
    pulled: list[int] = []
    second_pulled = threading.Event()

    def archive() -> Iterator[bytes]:
        for n in range(3):
            pulled.append(n)
            if n == 1:
                second_pulled.set()
            yield bytes([n])

    app = build_app(ExplodingBackend(), spool_dir=str(tmp_path))
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=2)
    try:
        stream = ArchiveStream(app, archive())
        assert await stream.next() == b"\x00"
        # While the first chunk is being sent, the second is read (and no further).
        assert await asyncio.get_running_loop().run_in_executor(None, second_pulled.wait, 30)
        assert pulled == [0, 1]
        assert [await stream.next(), await stream.next(), await stream.next()] == [
            b"\x01",
            b"\x02",
            None,
        ]
        await stream.close()
    finally:
        app[EXECUTOR].shutdown(wait=True)


async def test_closing_a_download_waits_for_a_pull_still_running(tmp_path: Any) -> None:
    release = threading.Event()
    entered = threading.Event()

    def slow_archive() -> Iterator[bytes]:
        yield b"first"
        entered.set()
        release.wait(timeout=30)
        yield b"second"

    app = build_app(ExplodingBackend(), spool_dir=str(tmp_path))
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=2)
    try:
        stream = ArchiveStream(app, slow_archive())
        assert await stream.next() == b"first"
        pull = asyncio.ensure_future(stream.next())
        await asyncio.get_running_loop().run_in_executor(None, entered.wait, 30)
        pull.cancel()  # the task gives up; the worker is still inside the generator
        closing = asyncio.ensure_future(stream.close())
        await asyncio.sleep(0)  # let close() start: it must wait, not raise
        assert not closing.done()
        release.set()
        await closing  # "generator already executing" would surface here
        with pytest.raises(asyncio.CancelledError):
            await pull
    finally:
        app[EXECUTOR].shutdown(wait=True)
