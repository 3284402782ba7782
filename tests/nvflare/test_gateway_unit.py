"""The gateway (``serve --backend nvflare``) over a stand-in NVFlare: config, CLI and the
HTTP/WebSocket sessions in front of the backend, woken by its job watcher."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from flare_adapters.cli import main
from flare_adapters.http.client import http_transport
from flare_adapters.server.config import ConfigError, load_config
from flare_adapters.server.gateway import gateway_backend
from flare_adapters.ws.client import ws_transport
from flare_core import AuthenticationError
from flare_testing.server import ServedGateway, serve_gateway
from tests.nvflare import fake_nvflare as fake

ADMIN = "admin@nvidia.com"


def _kit(root: Path, user: str) -> str:
    startup = root / user / "startup"
    startup.mkdir(parents=True)
    (startup / "fed_admin.json").write_text("{}")
    return str(root / user)


def _job(root: Path) -> str:
    folder = root / "hello"
    (folder / "app" / "config").mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps({"name": "hello"}))
    return str(folder)


@pytest.fixture
def federation() -> fake.FakeFederation:
    return fake.FakeFederation()


@pytest.fixture
def gateway(tmp_path: Path, federation: fake.FakeFederation) -> Iterator[ServedGateway]:
    kits = {ADMIN: _kit(tmp_path / "kits", ADMIN)}
    with serve_gateway(kits, watch_interval=0.02, opener=federation.opener) as served:
        yield served


def test_http_and_ws_sessions_reach_the_federation(
    gateway: ServedGateway, tmp_path: Path, federation: fake.FakeFederation
) -> None:
    key = gateway.api_keys[ADMIN]
    with http_transport.connect(
        gateway.http_url, user=ADMIN, api_key=key, study="default"
    ) as session:
        job_id = session.submit_job(_job(tmp_path))
        assert [row["job_id"] for row in session.list_jobs()] == [job_id]
    with ws_transport.connect(gateway.ws_url, user=ADMIN, api_key=key, study="default") as ws:
        threading.Timer(0.2, federation.set_status, (job_id, "FINISHED:COMPLETED")).start()
        # Only the watcher's pushed event can end this wait in time (poll interval 1 h).
        assert ws.wait_for_job(job_id, timeout=30, poll_interval=3600)["status"] == (
            "FINISHED:COMPLETED"
        )


def test_the_gateway_checks_api_keys(gateway: ServedGateway) -> None:
    with pytest.raises(AuthenticationError):
        http_transport.connect(gateway.http_url, user=ADMIN, api_key="wrong", study="default")


def _init_gateway(root: Path, *kits: str) -> int:
    return main(["init", str(root), "--backend", "nvflare", *(f"--kit={kit}" for kit in kits)])


def test_init_writes_a_gateway_workspace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = _kit(tmp_path / "kits", ADMIN)
    assert _init_gateway(tmp_path / "gw", f"{ADMIN}={kit}") == 0
    assert f"API key of {ADMIN}" in capsys.readouterr().out
    config = load_config(str(tmp_path / "gw"))
    assert config.nvflare is not None
    assert config.nvflare.kits == {ADMIN: kit}
    assert [user.name for user in config.users] == [ADMIN]
    backend = gateway_backend(str(tmp_path / "gw"), config)
    backend.close()


def test_init_refuses_a_folder_that_is_no_kit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    code = _init_gateway(tmp_path / "gw", f"{ADMIN}={tmp_path / 'empty'}")
    assert code == 2
    assert "not an NVFlare admin startup kit" in capsys.readouterr().err
    assert _init_gateway(tmp_path / "gw2", "no-equals") == 2


def test_serving_a_workspace_without_an_nvflare_section_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path / "ws")]) == 0
    with pytest.raises(ConfigError, match="no 'nvflare' section"):
        gateway_backend(str(tmp_path / "ws"), load_config(str(tmp_path / "ws")))
    assert main(["serve", str(tmp_path / "ws"), "--backend", "nvflare", "--port", "0"]) == 2
    assert "no 'nvflare' section" in capsys.readouterr().err
