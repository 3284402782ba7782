"""A plain ``pip install`` of the wheel works: no extras, a clean venv, outside the repository.

The wheel is built from this checkout and installed with only its declared dependencies (from
the configured package index), so a missing core dependency, a module left out of the wheel or
a broken entry point fails here rather than on a user's machine. Then, from an empty directory:
``flare-core --help`` and ``--version``, a session over HTTP and one over WebSocket against
``flare_testing.serve()``, the pytest plugin's fixtures, and the README's examples.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.install

_SESSION_SCRIPT = """
from flare_ports import connect
from flare_testing import JobFolders, serve

folder = JobFolders("jobs").hello()
with serve() as server:
    for url in (server.http_url, server.ws_url):
        with connect(url, user=server.admin_user, api_key=server.admin_key) as session:
            job_id = session.submit_job(str(folder))
            meta = session.wait_for_job(job_id, timeout=60, poll_interval=0.05)
            print(url.split(":")[0], meta["status"])
"""

_PLUGIN_TEST = """
def test_the_fixtures_come_from_the_installed_plugin(flare_session):
    from flare_testing import JobFolders

    job_id = flare_session.submit_job(str(JobFolders("jobs").hello()))
    assert flare_session.wait_for_job(job_id, timeout=3600)["status"] == "FINISHED:COMPLETED"
"""


def _run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    completed = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert completed.returncode == 0, f"{args}\n{completed.stdout}\n{completed.stderr}"
    return completed


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel of this checkout (no extras) and pytest."""
    base = tmp_path_factory.mktemp("install")
    dist = base / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)], base
    )
    (wheel,) = dist.glob("flare_core-*.whl")
    env_dir = base / "venv"
    _run([sys.executable, "-m", "venv", str(env_dir)], base)
    _run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel), "pytest"], base
    )
    return env_dir


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """An empty working directory far from the repository."""
    return tmp_path


def test_the_cli_runs_without_extras(venv: Path, elsewhere: Path) -> None:
    help_text = _run([str(venv / "bin" / "flare-core"), "--help"], elsewhere).stdout
    for group in ("jobs", "system", "sites", "studies", "shell", "serve", "init", "demo"):
        assert re.search(rf"^\s+{group}\b", help_text, flags=re.M), group
    version = _run([str(venv / "bin" / "flare-core"), "--version"], elsewhere).stdout
    assert re.search(r"\d+\.\d+\.\d+", version)


def test_http_and_ws_sessions_run_without_extras(venv: Path, elsewhere: Path) -> None:
    out = _run([str(venv / "bin" / "python"), "-c", _SESSION_SCRIPT], elsewhere).stdout
    assert out.split("\n")[:2] == ["http FINISHED:COMPLETED", "ws FINISHED:COMPLETED"]


def test_the_pytest_plugin_is_installed(venv: Path, elsewhere: Path) -> None:
    (elsewhere / "test_downstream.py").write_text(textwrap.dedent(_PLUGIN_TEST))
    out = _run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], elsewhere
    ).stdout
    assert "1 passed" in out


def test_the_readme_examples_run_from_the_installed_package(venv: Path, elsewhere: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks
    for index, block in enumerate(blocks):
        script = elsewhere / f"readme_{index}.py"
        script.write_text(block)
        _run([str(venv / "bin" / "python"), str(script)], elsewhere)
