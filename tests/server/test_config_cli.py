"""Workspace config, TLS, and the ``flare-core`` CLI (``init`` in-process, ``serve`` as a
subprocess)."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from flare_adapters.cli import main
from flare_adapters.server.config import (
    CONFIG_FILE,
    ConfigError,
    EngineSection,
    SiteConfig,
    TlsConfig,
    WorkspaceConfig,
    WorkspacePaths,
    init_workspace,
    load_config,
    save_config,
)
from flare_adapters.server.runtime import run_server
from flare_adapters.server.tls import server_ssl_context
from flare_core.service import verify_api_key
from tests.server.server_kit import Api

CHEAP = 16  # scrypt cost for throw-away test keys


def _init(root: Path, sites: Sequence[str] = ("site-1", "site-2"), port: int = 8003) -> str:
    _, key = init_workspace(str(root), scrypt_n=CHEAP, sites=sites, port=port)
    return key


# --- config ------------------------------------------------------------------------------------


def test_init_writes_a_private_config_with_only_the_key_hash(tmp_path: Path) -> None:
    key = _init(tmp_path / "ws", sites=("a", "b", "c"), port=9999)
    path = tmp_path / "ws" / CONFIG_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert key not in text
    config = load_config(str(tmp_path / "ws"))
    assert config.port == 9999
    assert [site.name for site in config.sites] == ["a", "b", "c"]
    admin = config.users[0]
    assert (admin.name, admin.org, admin.role) == ("admin@nvidia.com", "nvidia", "project_admin")
    assert verify_api_key(key, admin.api_key_hash)
    assert not verify_api_key(key + "x", admin.api_key_hash)
    # A generated key is stored in the fast keyed form (issue 12), never as scrypt.
    assert admin.api_key_hash.startswith("sha256$")


def test_init_refuses_an_existing_workspace(tmp_path: Path) -> None:
    _init(tmp_path)
    with pytest.raises(FileExistsError):
        _init(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", "flare-core.json"),
        (b'{"server_org": "o", "surprise": 1}', "surprise"),
        (b'{"users": []}', "server_org"),
        (b'{"server_org": "o", "port": "high"}', "port"),
        (b'{"server_org": "o", "format_version": 2}', "format_version"),
        (b'{"server_org": "o", "policy": {"lead": 5}}', "policy"),
        (
            b'{"server_org": "o", "policy": {"format_version": "1.0", "permissions": {"x": 5}}}',
            "role 'x'",
        ),
    ],
)
def test_invalid_configs_are_reported_clearly(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / CONFIG_FILE).write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_config(str(tmp_path))


def test_duplicate_users_are_refused(tmp_path: Path) -> None:
    _init(tmp_path)
    config = load_config(str(tmp_path))
    doubled = WorkspaceConfig(server_org="nvidia", users=[config.users[0], config.users[0]])
    save_config(str(tmp_path), doubled)
    with pytest.raises(ConfigError, match="duplicate"):
        load_config(str(tmp_path))


def test_missing_config_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="flare-core init"):
        load_config(str(tmp_path))


def test_policy_from_the_config_reaches_the_service(tmp_path: Path) -> None:
    document = {"format_version": "1.0", "permissions": {"project_admin": "any"}}
    config = WorkspaceConfig(server_org="o", policy=document)
    service_config = config.service_config("1.2.3")
    assert service_config.version == "1.2.3"
    assert set(service_config.policy.roles) == {"project_admin"}


# --- TLS ----------------------------------------------------------------------------------------


def _openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("the openssl command is needed to make test certificates")
    return path


def _certificate(
    directory: Path, name: str, ca: tuple[Path, Path] | None = None
) -> tuple[Path, Path]:
    openssl = _openssl()
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    subject = f"/CN={name}"
    if ca is None:
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", key, "-out", cert, "-subj", subject,
             "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True,
        )  # fmt: skip
    else:
        csr = directory / f"{name}.csr"
        subprocess.run(
            [openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", subject],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            [openssl, "x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0],
             "-CAcreateserial", "-days", "2", "-out", cert],
            check=True, capture_output=True,
        )  # fmt: skip
    return key, cert


def test_tls_context_requires_valid_files(tmp_path: Path) -> None:
    paths = WorkspacePaths(str(tmp_path))
    with pytest.raises(ConfigError, match="cannot load"):
        server_ssl_context(TlsConfig(cert_file="missing.crt", key_file="missing.key"), paths)
    key, cert = _certificate(tmp_path, "server")
    with pytest.raises(ConfigError, match="client_ca_file"):
        server_ssl_context(
            TlsConfig(cert_file=cert.name, key_file=key.name, require_client_cert=True), paths
        )
    context = server_ssl_context(TlsConfig(cert_file=cert.name, key_file=key.name), paths)
    assert context.verify_mode == ssl.CERT_NONE


@pytest.mark.asyncio
async def test_https_with_required_client_certificates(tmp_path: Path) -> None:
    ca_key, ca_cert = _certificate(tmp_path, "ca")
    server_key, server_cert = _certificate(tmp_path, "server")
    client_key, client_cert = _certificate(tmp_path, "client", ca=(ca_key, ca_cert))
    key = _init(tmp_path / "ws")
    config = load_config(str(tmp_path / "ws"))
    tls = TlsConfig(
        cert_file=str(server_cert),
        key_file=str(server_key),
        client_ca_file=str(ca_cert),
        require_client_cert=True,
    )
    config = WorkspaceConfig(
        server_org=config.server_org, users=config.users, sites=config.sites, tls=tls
    )
    async with run_server(str(tmp_path / "ws"), host="127.0.0.1", port=0, config=config) as server:
        assert server.http_url.startswith("https://127.0.0.1:")
        assert server.ws_url.startswith("wss://")
        trusting = ssl.create_default_context(cafile=str(server_cert))
        without_cert = aiohttp.TCPConnector(ssl=trusting)
        async with aiohttp.ClientSession(server.http_url, connector=without_cert) as http:
            with pytest.raises(aiohttp.ClientError):
                await http.get("/v1/openapi.json")
        with_cert = ssl.create_default_context(cafile=str(server_cert))
        with_cert.load_cert_chain(str(client_cert), str(client_key))
        connector = aiohttp.TCPConnector(ssl=with_cert)
        async with aiohttp.ClientSession(server.http_url, connector=connector) as http:
            api = Api(http)
            await api.login("admin@nvidia.com", key)
            assert await api.ok("GET", "/v1/jobs") == []


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_init_prints_the_key_once(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["init", str(tmp_path / "ws"), "--site", "alpha", "--port", "0"], out) == 0
    lines = out.getvalue().splitlines()
    key_lines = [line for line in lines if "API key" in line]
    assert len(key_lines) == 1
    key = key_lines[0].rsplit(" ", 1)[1]
    config = load_config(str(tmp_path / "ws"))
    assert verify_api_key(key, config.users[0].api_key_hash)
    assert [site.name for site in config.sites] == ["alpha"]
    assert key not in (tmp_path / "ws" / CONFIG_FILE).read_text()


def test_cli_init_twice_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path)], io.StringIO()) == 0
    assert main(["init", str(tmp_path)], io.StringIO()) == 2
    assert "already exists" in capsys.readouterr().err


def test_cli_serve_without_a_workspace_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", str(tmp_path)]) == 2
    assert "flare-core init" in capsys.readouterr().err


def test_cli_init_records_the_engine_asked_for(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["init", str(tmp_path / "a"), "--engine", "simulated"], out) == 0
    assert "engine: simulated" in out.getvalue()
    assert load_config(str(tmp_path / "a")).engine.kind == "simulated"
    assert main(["init", str(tmp_path / "b")], io.StringIO()) == 0
    assert load_config(str(tmp_path / "b")).engine.kind == "auto"  # nvflare when installed


def test_cli_example_copies_a_shipped_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    assert main(["example", "hello-numpy-sag", str(tmp_path / "jobs")], out) == 0
    folder = Path(out.getvalue().strip())
    assert folder == tmp_path / "jobs" / "hello-numpy-sag"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["deploy_map"] == {"app": ["@ALL"]}
    assert (folder / "app" / "config" / "config_fed_server.json").is_file()
    assert main(["example", "hello-numpy-sag", str(tmp_path / "jobs")], io.StringIO()) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["example", "no-such-job", str(tmp_path)], io.StringIO()) == 2
    assert "hello-numpy-sag" in capsys.readouterr().err  # the known examples are named


def test_engine_settings_are_validated(tmp_path: Path) -> None:
    _init(tmp_path)
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    config["engine"] = {"kind": "nvflare", "max_running_jobs": 0}
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="max_running_jobs must be at least 1"):
        load_config(str(tmp_path))
    config["engine"] = {"kind": "gpu-cluster"}
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"engine\.kind"):
        load_config(str(tmp_path))


def test_jobs_run_one_per_two_cores_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for cores, limit in ((1, 1), (2, 1), (3, 1), (8, 4), (None, 1)):
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        assert EngineSection().running_jobs_limit() == limit
    assert EngineSection(max_running_jobs=3).running_jobs_limit() == 3


def test_the_nvflare_engine_without_the_extra_is_a_clear_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec

    def without_nvflare(name: str, *args: Any) -> Any:
        return None if name == "nvflare" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_nvflare)
    assert EngineSection(kind="auto").resolved() == "simulated"
    assert EngineSection(kind="simulated").resolved() == "simulated"
    with pytest.raises(ConfigError, match=r"pip install 'flare-core\[nvflare\]'"):
        EngineSection(kind="nvflare").resolved()


def test_cli_needs_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    captured = capsys.readouterr()
    assert "Usage: flare-core" in captured.out + captured.err


def test_cli_serve_runs_the_server_until_terminated(tmp_path: Path) -> None:
    key = _init(tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "flare_adapters.cli", "serve", str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        engine = process.stdout.readline()  # the engine is said first
        assert engine.startswith("engine: simulated (jobs are not computed"), engine
        line = process.stdout.readline()  # blocks until the server is bound (or died)
        assert line.startswith("serving on http://127.0.0.1:"), (
            process.stderr and process.stderr.read()
        )
        url = line.split()[-1]

        async def use() -> None:
            async with aiohttp.ClientSession(url) as http:
                api = Api(http)
                await api.login("admin@nvidia.com", key)
                document = await api.ok("GET", "/v1/system/status", params={"target_type": "all"})
                assert {"server", "site-1", "site-2"} <= set(document)

        asyncio.run(use())
        process.terminate()
        assert process.wait(timeout=30) == 0
        assert process.stdout.read().strip() == "stopped"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_cli_serve_exits_after_an_admin_shuts_the_system_down(tmp_path: Path) -> None:
    key = _init(tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "flare_adapters.cli", "serve", str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("engine: ")
        line = process.stdout.readline()
        assert line.startswith("serving on http://127.0.0.1:")
        url = line.split()[-1]

        async def shut_down() -> None:
            async with aiohttp.ClientSession(url) as http:
                api = Api(http)
                await api.login("admin@nvidia.com", key)
                body = {"target_type": "all"}
                value = await api.ok("POST", "/v1/system/shutdown", json_body=body)
                assert value["server_status"] == "stopped"

        asyncio.run(shut_down())
        assert process.wait(timeout=30) == 0
        assert process.stdout.read().strip() == "stopped"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_serve_bind_failure_is_reported(tmp_path: Path) -> None:
    _init(tmp_path)
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    config["host"] = "256.0.0.1"  # not an address: binding fails
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    completed = subprocess.run(
        [sys.executable, "-m", "flare_adapters.cli", "serve", str(tmp_path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 1
    assert "flare-core serve" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_a_bad_site_name_in_the_config_is_a_config_error(tmp_path: Path) -> None:
    # init refuses what serve would refuse (the service's own site-name rule), before
    # writing anything; a config edited by hand is refused when the server starts.
    with pytest.raises(ConfigError, match="invalid site name 'bad name!'"):
        _init(tmp_path / "refused", sites=("bad name!",))
    assert not (tmp_path / "refused" / CONFIG_FILE).exists()
    _init(tmp_path)
    config = load_config(str(tmp_path))
    bad = msgspec.structs.replace(config, sites=[SiteConfig(name="bad name!", org="nvidia")])
    save_config(str(tmp_path), bad)
    with pytest.raises(ConfigError, match="sites"):
        asyncio.run(_start(tmp_path))


async def _start(root: Path) -> None:
    async with run_server(str(root), port=0):
        pass
