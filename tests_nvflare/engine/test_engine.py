"""The nvflare engine on NVIDIA FLARE's real simulator, behind the embedded server.

Every test is bounded in time (``JOB_TIMEOUT``). A job a test must catch while it runs is held
there by its trainer's ``sleep_time`` (30 s a round), never raced: the test waits, woken by the
server's pushed events, until the state it needs has come, acts, and aborts the job.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest

from flare_adapters import cli, demo
from flare_adapters.engines.nvflare.run import MARKER_ENV
from flare_adapters.http.client import http_transport
from flare_adapters.server.config import EngineSection, init_workspace
from flare_adapters.ws.client import ws_transport
from flare_ports.session_spec import SessionSpec
from flare_testing.job_folders import JobFolders
from flare_testing.server import ServedSystem, serve

JOB_TIMEOUT = 120.0
"""The most seconds any job here may take (a 3-round hello-numpy takes 15-20 s)."""
HELD = 30.0
"""The trainer's ``sleep_time`` of a job a test must catch running: each round lasts this."""
INITIAL_MODEL = numpy.arange(1.0, 10.0).reshape(3, 3)
"""NVFlare's ``NPModelPersistor`` starts from this; each ``NPTrainer`` round adds 1."""


def engine_pids(marker: str = "") -> list[int]:
    """PIDs of live engine children (their environment carries ``MARKER_ENV``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read()
            with open(f"/proc/{entry}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z" and f"{MARKER_ENV}={marker}".encode() in environ:
            found.append(int(entry))
    return found


def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` (a state the test holds, never a transient one) until it is true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def jobs(tmp_path: Path) -> JobFolders:
    return JobFolders(tmp_path / "jobs")


@pytest.fixture
def system() -> Iterator[ServedSystem]:
    engine = EngineSection(kind="nvflare", max_running_jobs=1, abort_grace=5.0)
    with serve(engine=engine) as served:
        yield served
    assert engine_pids(served.workspace) == []  # closing the server stopped every child


def _session(served: ServedSystem, tmp_path: Path) -> SessionSpec:
    return ws_transport.connect(
        served.ws_url,
        study="default",
        user=served.admin_user,
        api_key=served.admin_key,
        download_dir=str(tmp_path / "downloads"),
        timeout=30.0,
    )


@pytest.fixture
def session(system: ServedSystem, tmp_path: Path) -> Iterator[SessionSpec]:
    with _session(system, tmp_path) as opened:
        yield opened


def wait_meta(
    session: SessionSpec, job_id: str, done: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """Monitor ``job_id`` (woken by pushed events) until ``done(meta)``; its meta then."""
    seen: dict[str, Any] = {}

    def check(_: SessionSpec, __: str, meta: dict[str, Any]) -> bool:
        seen.update(meta)
        return not done(meta)

    session.monitor_job(job_id, timeout=JOB_TIMEOUT, poll_interval=1.0, cb=check)
    meta = session.get_job_meta(job_id)
    assert done(meta), f"{what}: the job is {meta.get('status')} ({meta.get('progress')})"
    return meta


def _ended(meta: dict[str, Any]) -> bool:
    return str(meta.get("status", "")).startswith("FINISHED")


def _in_round(meta: dict[str, Any]) -> bool:
    progress = meta.get("progress") or {}
    return meta.get("status") == "RUNNING" and progress.get("current_round") is not None


def test_a_job_completes_with_real_rounds_logs_and_the_trained_model(
    session: SessionSpec, jobs: JobFolders
) -> None:
    job_id = session.submit_job(str(jobs.hello(num_rounds=2)))
    meta = wait_meta(session, job_id, _ended, "the job's end")
    assert meta["status"] == "FINISHED:COMPLETED"
    progress = meta["progress"]
    assert (progress["num_rounds"], progress["rounds_finished"]) == (2, 2)
    assert all(seconds > 0 for seconds in progress["round_seconds"])

    logs = session.get_job_logs(job_id)["logs"]["server"]
    assert "Round 1 finished." in logs
    result = Path(session.download_job_result(job_id))
    model = numpy.load(result / "workspace" / "server" / "models" / "server.npy")
    numpy.testing.assert_allclose(model, INITIAL_MODEL + 2)
    assert (result / "workspace" / "site-1" / "log.txt").is_file()
    assert not (result / "workspace" / "site-1" / "error_log.txt").exists()


def test_a_component_off_the_allow_list_ends_abnormal_with_the_sites_error(
    session: SessionSpec, jobs: JobFolders
) -> None:
    job_id = session.submit_job(str(jobs.hello(executor_path="evil.module.Trainer")))
    meta = wait_meta(session, job_id, _ended, "the job's end")
    assert meta["status"] == "FINISHED:ABNORMAL"
    assert "ComponentNotAuthorized" in meta["finish_reason"]
    assert "state/engine" not in meta["finish_reason"]  # no server paths in what users see
    components = Path(session.download_job_components(job_id))
    assert "ComponentNotAuthorized" in (components / "ERRORLOG_site-1").read_text()


def test_custom_code_runs_only_where_the_server_allows_it(
    session: SessionSpec, jobs: JobFolders
) -> None:
    folder = jobs.hello(extra_files={"app/custom/trainer.py": "print('custom')\n"})
    job_id = session.submit_job(str(folder))
    meta = wait_meta(session, job_id, _ended, "the job's end")
    assert meta["status"] == "FINISHED:FAILED_TO_RUN"
    assert "custom code is not allowed" in meta["finish_reason"]


def test_logs_and_stats_while_running_then_abort_mid_round(
    system: ServedSystem, session: SessionSpec, jobs: JobFolders
) -> None:
    job_id = session.submit_job(str(jobs.hello(sleep_time=HELD, num_rounds=3)))
    wait_meta(session, job_id, _in_round, "round 0 to start")
    assert "Round 0 started." in session.get_job_logs(job_id)["logs"]["server"]
    assert "Round 0 started." in session.tail_target_log("server", "-n 200")
    stats = session.show_stats(job_id, "server")["server"]
    assert stats["ScatterAndGather"]["current_round"] == 0
    assert stats["ScatterAndGather"]["num_rounds"] == 3
    assert engine_pids(system.workspace)

    session.abort_job(job_id)
    meta = wait_meta(session, job_id, _ended, "the abort")
    assert meta["status"] == "FINISHED:ABORTED"
    until(lambda: not engine_pids(system.workspace), 15.0, "the job's processes to end")


def test_jobs_beyond_the_limit_wait_submitted_and_run_in_order(
    session: SessionSpec, jobs: JobFolders
) -> None:
    first = session.submit_job(str(jobs.hello(sleep_time=HELD)))
    second = session.submit_job(str(jobs.hello(sleep_time=HELD, num_rounds=2)))
    wait_meta(session, first, _in_round, "the first job to run")
    assert session.get_job_meta(second)["status"] == "SUBMITTED"  # one at a time
    session.abort_job(first)
    wait_meta(session, second, _in_round, "the second job to run once the first ended")
    session.abort_job(second)
    wait_meta(session, second, _ended, "the second abort")


def test_concurrent_jobs_run_side_by_side(tmp_path: Path, jobs: JobFolders) -> None:
    engine = EngineSection(kind="nvflare", max_running_jobs=2, abort_grace=5.0)
    with serve(engine=engine) as served, _session(served, tmp_path) as session:
        ids = [session.submit_job(str(jobs.hello(sleep_time=HELD))) for _ in range(2)]
        for job_id in ids:
            wait_meta(session, job_id, _in_round, "both jobs to run")
        for job_id in ids:
            session.abort_job(job_id)
        for job_id in ids:
            assert wait_meta(session, job_id, _ended, "the aborts")["status"] == (
                "FINISHED:ABORTED"
            )
    assert engine_pids(served.workspace) == []


@contextlib.contextmanager
def _serve_process(workspace: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "flare_adapters.cli", "serve", str(workspace), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _serving_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("serving on "):
            return line.split()[2]
    raise AssertionError(f"the server exited ({process.wait()}) before serving")


def test_a_server_killed_mid_job_leaves_no_process_and_recovers_the_job_abnormal(
    tmp_path: Path, jobs: JobFolders
) -> None:
    workspace = tmp_path / "workspace"
    config, api_key = init_workspace(str(workspace), port=0, engine="nvflare", scrypt_n=2**4)
    user = config.users[0].name
    with _serve_process(workspace) as server:
        url = _serving_url(server)
        with http_transport.connect(
            url, user=user, api_key=api_key, study="default", timeout=30.0
        ) as session:
            job_id = session.submit_job(str(jobs.hello(sleep_time=HELD)))
            wait_meta(session, job_id, _in_round, "the job to run")
        assert engine_pids(str(workspace))
        server.kill()  # SIGKILL: no clean-up of any kind
        server.wait()
    until(lambda: not engine_pids(str(workspace)), 30.0, "the orphaned simulator to end")
    with _serve_process(workspace) as server:
        url = _serving_url(server)
        with http_transport.connect(
            url, user=user, api_key=api_key, study="default", timeout=30.0
        ) as session:
            meta = session.get_job_meta(job_id)
    assert meta["status"] == "FINISHED:ABNORMAL"


def test_the_demo_trains_the_model_for_real() -> None:
    out = io.StringIO()
    assert demo.main(["--engine", "nvflare"], out=out) == 0
    text = out.getvalue()
    assert "engine: nvflare (each job runs on NVIDIA FLARE's simulator" in text
    for number in (1, 2, 3):
        assert text.count(f"round {number}/3 finished in ") == 2  # over HTTP and WebSocket
    assert text.count("final global model (workspace/server/models/server.npy): shape (3, 3)") == 2
    assert text.count("[ 10.000   11.000   12.000]") == 2  # [7, 8, 9] + 3 rounds
    assert text.count("ended FINISHED:ABNORMAL: site-1: ") == 2
    assert "ComponentNotAuthorized" in text


def test_the_cli_waits_with_real_rounds_and_exits_by_the_outcome(
    system: ServedSystem, jobs: JobFolders, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "admin.key"
    key.write_text(system.admin_key + "\n")
    login = ["--url", system.ws_url, "--user", system.admin_user, "--api-key-file", str(key)]
    capsys.readouterr()
    folder = str(jobs.hello(num_rounds=2))
    assert cli.main(["--progress", "jobs", "submit", folder, "--wait", *login]) == 0
    err = capsys.readouterr().err
    assert ": round 1/2 done (+" in err
    assert ": round 2/2 done (+" in err
    bad = str(jobs.hello(executor_path="evil.module.Trainer"))
    assert cli.main(["jobs", "submit", bad, "--wait", *login]) == 1  # not COMPLETED: failure
    assert capsys.readouterr().out.split()[-1] == "FINISHED:ABNORMAL"


def test_a_site_lost_mid_run_fails_the_job(
    system: ServedSystem, session: SessionSpec, jobs: JobFolders
) -> None:
    job_id = session.submit_job(str(jobs.hello(sleep_time=HELD)))
    wait_meta(session, job_id, _in_round, "round 0 to start")
    system.disconnect_site("site-2")
    meta = wait_meta(session, job_id, _ended, "the job to fail")
    assert meta["status"] == "FINISHED:EXECUTION_EXCEPTION"
    assert meta["finish_reason"] == "lost connection to client site-2 while the job was running"
    until(lambda: not engine_pids(system.workspace), 15.0, "the job's processes to end")
