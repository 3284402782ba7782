"""The ``flare-core`` script as a subprocess against the real server (``flare_testing.serve``).

What a CI step sees: exit codes, stdout when piped, the profile file and key files. The
server's clock is real, so these tests wait only for ends (a finished job, a timeout), never
for a transient state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from flare_ports import connect
from flare_testing import JobFolders, ServedSystem, serve

SCRIPT = [sys.executable, "-m", "flare_adapters.cli"]


@pytest.fixture(scope="module")
def server() -> Iterator[ServedSystem]:
    with serve(job_duration=0.2) as system:
        yield system


@pytest.fixture(scope="module")
def slow_server() -> Iterator[ServedSystem]:
    """Jobs run for an hour unless the test ends them: nothing races the test."""
    with serve(job_duration=3600) as system:
        yield system


@pytest.fixture
def home(tmp_path: Path, server: ServedSystem) -> Path:
    """A config home with a profile for the server and the admin's key in a 0600 file."""
    key = tmp_path / "admin.key"
    key.write_text(server.admin_key)
    key.chmod(0o600)
    config = tmp_path / "config" / "flare-core"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        f'default_profile = "test"\n\n[profiles.test]\nurl = "{server.http_url}"\n'
        f'user = "{server.admin_user}"\napi_key_file = "{key}"\n\n'
        f'[profiles.ws]\nurl = "{server.ws_url}"\nuser = "{server.admin_user}"\n'
        f'api_key_file = "{key}"\n'
    )
    return tmp_path


def _on(server: ServedSystem, home: Path) -> list[str]:
    """Options that point a command at ``server`` instead of the profile's."""
    key = home / "other.key"
    key.write_text(server.admin_key)
    return ["--url", server.http_url, "--user", server.admin_user, "--api-key-file", str(key)]


def run(home: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLARE_CORE_")} | {
        "XDG_CONFIG_HOME": str(home / "config")
    }
    return subprocess.run(
        [*SCRIPT, *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=timeout,
        check=False,
    )


def test_submit_wait_completed_exits_0_over_http_and_ws(home: Path) -> None:
    folder = JobFolders(home / "jobs").hello()
    for profile in ("test", "ws"):
        done = run(
            home,
            "--profile",
            profile,
            "jobs",
            "submit",
            str(folder),
            "--wait",
            "--poll",
            "0.05",
            "--timeout",
            "50",
        )
        assert done.returncode == 0, done.stderr
        job_id, status = done.stdout.split()
        assert status == "FINISHED:COMPLETED"
        assert done.stderr == f"submitted {job_id}\n"  # piped: no progress


def test_a_failing_job_exits_1(home: Path) -> None:
    folder = JobFolders(home / "jobs").hello(executor_path="custom.Broken")
    done = run(home, "--json", "jobs", "submit", str(folder), "--wait", "--poll", "0.05")
    assert done.returncode == 1
    assert json.loads(done.stdout)["status"] == "FINISHED:EXECUTION_EXCEPTION"


def test_a_job_that_cannot_start_times_out_with_3(home: Path) -> None:
    folder = JobFolders(home / "jobs").hello(min_clients=3)  # the server has two sites
    done = run(home, "jobs", "submit", str(folder), "--wait", "--timeout", "0.5", "--poll", "0.1")
    assert done.returncode == 3
    assert "JobTimeout" in done.stderr


def test_failed_on_the_server_then_waited_exits_1(home: Path, slow_server: ServedSystem) -> None:
    server = slow_server
    submitted = run(
        home, *_on(server, home), "jobs", "submit", str(JobFolders(home / "jobs").hello())
    )
    job_id = submitted.stdout.strip()
    server.fail_job(job_id)
    done = run(home, "wait", job_id, "--poll", "0.05", *_on(server, home))  # the short form
    assert done.returncode == 1
    assert json.loads(done.stdout)["status"] == "FINISHED:EXECUTION_EXCEPTION"


def test_logs_follow_streams_until_the_job_ends(home: Path, slow_server: ServedSystem) -> None:
    server = slow_server
    folder = JobFolders(home / "jobs").hello()
    job_id = run(home, *_on(server, home), "jobs", "submit", str(folder)).stdout.strip()
    server.append_job_log(job_id, "server", b"first line\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLARE_CORE_")}
    with subprocess.Popen(
        [*SCRIPT, *_on(server, home), "jobs", "logs", job_id, "--follow", "--poll", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env | {"XDG_CONFIG_HOME": str(home / "config")},
    ) as follower:
        try:
            assert follower.stdout is not None
            # The server's own deployment lines come first; ours follow while the job runs.
            earlier = [follower.stdout.readline() for _ in range(_lines_before(server, job_id))]
            assert all(line.endswith("\n") for line in earlier)
            assert follower.stdout.readline() == "first line\n"
            server.append_job_log(job_id, "server", b"second line\n")
            assert follower.stdout.readline() == "second line\n"
            server.finish_job(job_id)
            assert follower.wait(timeout=30) == 0
            assert "second line\n" not in follower.stdout.read()  # printed once
        finally:
            if follower.poll() is None:
                follower.kill()


def _lines_before(server: ServedSystem, job_id: str) -> int:
    with connect(server.http_url, user=server.admin_user, api_key=server.admin_key) as s:
        text = str(s.get_job_logs(job_id)["logs"]["server"])
    return text.split("first line\n")[0].count("\n")


def test_profiles_errors_and_version(home: Path, tmp_path: Path) -> None:
    missing = run(home, "--profile", "nope", "jobs", "list")
    assert missing.returncode == 2
    assert "no profile 'nope'" in missing.stderr
    unreachable = run(home, "--url", "http://127.0.0.1:9", "jobs", "list")
    assert unreachable.returncode == 7
    listed = run(home, "--json", "jobs", "list")
    assert listed.returncode == 0
    assert isinstance(json.loads(listed.stdout), list)
    version = run(home, "--version")
    assert version.returncode == 0
    assert version.stdout.startswith("flare-core, version ")


def test_init_then_serve_refuse_the_same_bad_site(tmp_path: Path) -> None:
    done = run(tmp_path, "init", str(tmp_path / "ws"), "--site", "bad site")
    assert done.returncode == 2
    assert "invalid site name 'bad site'" in done.stderr
    assert not (tmp_path / "ws" / "flare-core.json").exists()


def test_serve_logs_one_line_per_request_at_info(tmp_path: Path) -> None:
    assert run(tmp_path, "init", str(tmp_path / "ws"), "--engine", "simulated").returncode == 0
    with subprocess.Popen(
        [*SCRIPT, "serve", str(tmp_path / "ws"), "--port", "0", "--log-level", "INFO"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().startswith("engine: simulated")
            url = process.stdout.readline().split()[-1]  # "serving on URL", or EOF
            with urllib.request.urlopen(f"{url}/v1/health", timeout=30) as response:
                assert json.loads(response.read()) == {"status": "ok"}
        finally:
            process.terminate()
            _, err = process.communicate(timeout=30)
    assert process.returncode == 0
    (line,) = [line for line in err.splitlines() if "flare_adapters.server.access" in line]
    assert "command=health" in line
    assert "status=200" in line
