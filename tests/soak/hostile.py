"""Hostile input: property-based fuzzing of every HTTP route and WebSocket frame type, plus
corpora of hostile zips and shell commands, against a ``flare-core serve`` process.

After every case an unrelated session's ``list_jobs`` must answer (a health check); its
latency is recorded. A 5xx for a client's mistake, a WebSocket close 1011, an
``internal_error`` reply, or a request that gets no answer counts as a failure.
"""

from __future__ import annotations

import io
import json
import os
import time
import urllib.parse
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from flare_adapters.http.routes import LOGIN_PATH, ROUTES
from tests.hostile.zips import CORPUS
from tests.server.server_kit import job_files, make_zip
from tests.soak.client import Raw, login
from tests.soak.served import ServerProcess, make_workspace

__all__ = ["InputResult", "percentile", "run_hostile"]

WS_WAIT = 10.0
"""Seconds a frame may take to be answered before it counts as a hang."""


class InputResult(msgspec.Struct, kw_only=True):
    """What the hostile-input phase saw."""

    cases: int = 0
    server_errors: int = 0
    hangs: int = 0
    health_ms: list[float] = msgspec.field(default_factory=list)
    failures: list[str] = msgspec.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.server_errors == 0 and self.hangs == 0

    def fail(self, what: str) -> None:
        self.server_errors += 1
        if len(self.failures) < 20:
            self.failures.append(what[:300])


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values`` by nearest rank; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# --- strategies -------------------------------------------------------------------------------

_EXTREME_INTS = st.sampled_from(
    [0, -1, 1, 2**31, 2**53 + 1, 2**63, 2**64 - 1, 2**64, 2**70, -(2**63)]
)
_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "..", "../../etc/passwd", "%00", "server", "site-1", "@ALL", "-n", "*"]),
    st.builds(lambda n: "x" * n, st.integers(1000, 100_000)),
)
_JSON = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), _EXTREME_INTS, st.floats(allow_nan=False), _TEXT
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)),
    max_leaves=12,
)
_DEEP = st.builds(lambda n: b"[" * n + b"]" * n, st.sampled_from([65, 500, 5000, 200_000]))


def _fields(route: Any) -> list[str]:
    return [*route.field_names, "junk", "limit"]


@st.composite
def http_case(draw: st.DrawFn) -> dict[str, Any]:
    route = draw(st.sampled_from([*ROUTES, None]))  # None: the login route
    if route is None:
        method, template, names = "POST", LOGIN_PATH, ["user", "api_key", "study", "x"]
    else:
        method, template, names = route.method, route.path, _fields(route)
    path = template
    for name in ("job_id", "study", "client_name", "target", "verb", "user"):
        path = path.replace("{" + name + "}", urllib.parse.quote(draw(_TEXT), safe="") or "x")
    query = draw(
        st.dictionaries(st.sampled_from(names), st.one_of(_TEXT, _EXTREME_INTS), max_size=4)
    )
    if query:
        path += "?" + urllib.parse.urlencode({k: str(v) for k, v in query.items()})
    body_kind = draw(st.sampled_from(["none", "json", "deep", "binary", "fields"]))
    body: bytes | None = None
    if body_kind == "json":
        body = json.dumps(draw(_JSON)).encode()
    elif body_kind == "deep":
        body = b'{"x": ' + draw(_DEEP) + b"}"
    elif body_kind == "binary":
        body = draw(st.binary(max_size=2000))
    elif body_kind == "fields":
        body = json.dumps(draw(st.dictionaries(st.sampled_from(names), _JSON, max_size=4))).encode()
    content_type = draw(
        st.sampled_from(
            [
                "application/json",
                "application/zip",
                "text/plain",
                "",
                "application/json; charset=latin-1",
            ]
        )
    )
    auth = draw(st.sampled_from(["admin", "member", "garbage", "none"]))
    return {"method": method, "path": path, "body": body, "type": content_type, "auth": auth}


_OPS = [
    "login",
    "call",
    "upload_start",
    "chunk",
    "upload_end",
    "download",
    "ack",
    "cancel",
    "subscribe",
    "unsubscribe",
    "nope",
    "",
]


@st.composite
def ws_frame(draw: st.DrawFn) -> str | bytes:
    kind = draw(st.sampled_from(["frame", "frame", "frame", "json", "deep", "binary", "text"]))
    if kind == "json":
        return json.dumps(draw(_JSON))
    if kind == "deep":
        deep: bytes = draw(_DEEP)
        return '{"id": 1, "op": "call", "command": ' + deep.decode() + "}"
    if kind == "binary":
        return draw(st.binary(max_size=500))
    if kind == "text":
        return draw(st.text(max_size=200))
    frame: dict[str, Any] = {
        "id": draw(st.one_of(st.integers(0, 5), _EXTREME_INTS, _JSON)),
        "op": draw(st.one_of(st.sampled_from(_OPS), _TEXT)),
    }
    for key in ("command", "job_id", "data", "n", "window", "user", "api_key", "study"):
        if draw(st.booleans()):
            frame[key] = draw(
                st.one_of(
                    _JSON,
                    _EXTREME_INTS,
                    st.fixed_dictionaries(
                        {
                            "op": st.sampled_from(
                                [
                                    "list_jobs",
                                    "get_job_meta",
                                    "shell_command",
                                    "configure_site_log",
                                    "submit_job",
                                ]
                            )
                        },
                        optional={
                            "limit": st.one_of(st.integers(), _EXTREME_INTS),
                            "job_id": _TEXT,
                            "verb": _TEXT,
                            "target": _TEXT,
                            "pattern": _TEXT,
                            "path": _TEXT,
                            "config": _JSON,
                        },
                    ),
                )
            )
    return json.dumps(frame)


# --- corpora ----------------------------------------------------------------------------------


def _zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _classic_zips() -> dict[str, Callable[[], bytes]]:
    hello = {f"hello/{k}": v for k, v in job_files().items()}
    return {
        "zip slip": lambda: _zip_of({**hello, "hello/../../evil.txt": b"x"}),
        "absolute member": lambda: _zip_of({**hello, "/etc/evil.txt": b"x"}),
        "symlink member": lambda: make_zip(job_files(), symlinks={"app/link.txt": "/etc/passwd"}),
        "20,000 entries": lambda: _zip_of(
            {**hello, **{f"hello/f{i}.txt": b"" for i in range(20_000)}}
        ),
        "single-member bomb": lambda: _zip_of(
            {**hello, "hello/app/bomb.txt": b"\0" * (256 * 1024 * 1024)}
        ),
        "not a zip": lambda: b"PK\x03\x04 definitely not a zip",
        "empty body": lambda: b"",
    }


SHELL_CASES: list[tuple[str, dict[str, str]]] = [
    ("cat", {"path": "../../../etc/passwd"}),
    ("cat", {"path": "/etc/passwd"}),
    ("cat", {"path": "link.txt"}),
    ("cat", {"path": "big.log"}),
    ("cat", {"path": "bin.txt", "options": "-n"}),
    ("tail", {"path": "big.log", "options": "-n 99999999999999999999"}),
    ("head", {"path": "big.log", "options": "-c -1"}),
    ("grep", {"path": "big.log", "pattern": "x*" * 500}),
    ("grep", {"path": "big.log", "pattern": "a" * 5000}),
    ("grep", {"path": "bin.txt", "pattern": "[[:alpha:]]*[[:digit:]]*." * 40}),
    ("grep", {"path": "big.log", "pattern": "--help"}),
    ("grep", {"path": "big.log", "pattern": "\\(a\\)\\1"}),
    ("ls", {"options": "-laR"}),
    ("ls", {"path": "../.."}),
    ("ls", {"options": "--hide=x"}),
    ("pwd", {"options": "-P"}),
    ("cat", {"path": "big.log", "options": "-n -s -T -b"}),
]


def _prepare_workspace(root: str) -> None:
    server_ws = Path(root, "state", "workspaces", "server")
    server_ws.mkdir(parents=True, exist_ok=True)
    with open(server_ws / "big.log", "wb") as big:
        big.truncate(300 * 1024 * 1024)  # sparse: 300 MiB of zeros, instantly
    (server_ws / "bin.txt").write_bytes(os.urandom(2 * 1024 * 1024))
    os.symlink("/etc/passwd", server_ws / "link.txt")


# --- the phase --------------------------------------------------------------------------------


def run_hostile(
    workdir: str, *, http_cases: int = 2000, ws_cases: int = 1000, corpora: bool = True
) -> InputResult:
    """Run the phase (see the module docstring); ``corpora=False`` skips the zip corpus (its
    bombs take seconds to build; ``tests/hostile`` covers it in ``make test``)."""
    root = str(Path(workdir) / "hostile")
    keys = make_workspace(root, job_duration=0.05)
    _prepare_workspace(root)
    server = ServerProcess(root)
    server.start()
    result = InputResult()
    raw = Raw(server.port)
    tokens = {
        "admin": login(raw, "admin@nvidia.com", keys["admin@nvidia.com"]),
        "member": login(raw, "member@nvidia.com", keys["member@nvidia.com"]),
        "garbage": "not-a-token",
    }
    health_token = login(raw, "lead@nvidia.com", keys["lead@nvidia.com"])

    def health(case: str) -> None:
        status, _, seconds = raw.call("GET", "/v1/jobs?limit=1", health_token)
        result.health_ms.append(seconds * 1000)
        if status != 200:
            result.fail(f"health check answered {status} after {case}")

    def http(method: str, path: str, body: bytes | None, headers: dict[str, str], case: str) -> int:
        result.cases += 1
        try:
            status, data, _ = raw.request(method, path, body, headers)
        except (TimeoutError, OSError) as exc:
            result.hangs += 1
            result.failures.append(f"{case}: {type(exc).__name__}")
            return 0
        if status >= 500 and status not in (503,):
            result.fail(f"{case}: {status} {data[:200]!r}")
        health(case)
        return status

    try:

        @settings(
            max_examples=http_cases,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=http_case())
        def fuzz_http(case: dict[str, Any]) -> None:
            headers = {"Content-Type": case["type"]} if case["type"] else {}
            if case["auth"] in tokens:
                headers["Authorization"] = f"Bearer {tokens[case['auth']]}"
            http(
                case["method"],
                case["path"],
                case["body"],
                headers,
                f"{case['method']} {case['path'][:120]}",
            )

        fuzz_http()

        @settings(
            max_examples=ws_cases,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(frame=ws_frame())
        def fuzz_ws(frame: str | bytes) -> None:
            result.cases += 1
            _ws_case(server.port, keys["admin@nvidia.com"], frame, result)
            health("a websocket frame")

        fuzz_ws()

        zip_headers = {
            "Content-Type": "application/zip",
            "Authorization": f"Bearer {tokens['admin']}",
        }
        for name, build in ({**CORPUS, **_classic_zips()} if corpora else {}).items():
            status = http(
                "POST", "/v1/jobs?folder_name=hello", build(), zip_headers, f"zip: {name}"
            )
            if status and not 400 <= status < 500:
                result.fail(f"zip {name} was answered {status}")
        shell_headers = {"Authorization": f"Bearer {tokens['admin']}"}
        for verb, params in SHELL_CASES:
            path = f"/v1/sites/server/shell/{verb}?" + urllib.parse.urlencode(params)
            status, data, _ = raw.request("GET", path, None, shell_headers)
            result.cases += 1
            if status >= 500:
                result.fail(f"shell {verb} {params}: {status}")
            if b"root:" in data:
                result.fail(f"shell {verb} {params} leaked a file outside the workspace")
            health(f"shell {verb}")
    finally:
        server.stop()
    return result


def _ws_case(port: int, key: str, frame: str | bytes, result: InputResult) -> None:
    try:
        with ws_connect(
            f"ws://127.0.0.1:{port}/v1/ws",
            subprotocols=["flare-core.v1.json"],  # type: ignore[list-item]
            open_timeout=WS_WAIT,
            close_timeout=2,
            max_size=None,
        ) as ws:
            ws.send(
                json.dumps({"id": 0, "op": "login", "user": "admin@nvidia.com", "api_key": key})
            )
            ws.recv(timeout=WS_WAIT)
            ws.send(frame)
            probe = {"id": 987654321, "op": "call", "command": {"op": "list_jobs", "limit": 1}}
            ws.send(json.dumps(probe))
            deadline = time.monotonic() + WS_WAIT
            while time.monotonic() < deadline:
                reply = json.loads(ws.recv(timeout=WS_WAIT))
                if isinstance(reply, dict) and isinstance(reply.get("reply"), dict):
                    if reply["reply"].get("code") == "internal_error":
                        result.fail(f"ws internal_error for {str(frame)[:150]}")
                    if reply.get("id") == 987654321:
                        return
            result.hangs += 1
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd is not None else None
        if code == 1011:
            result.fail(f"ws closed 1011 for {str(frame)[:150]}")
    except TimeoutError:
        result.hangs += 1
        result.failures.append(f"ws hang for {str(frame)[:150]}")
