"""The CLI's session commands: one SessionSpec call each, JSON out, typed JSON errors."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from flare_adapters.cli import main
from flare_testing import FakeFlare, JobFolders


@pytest.fixture
def fake() -> Any:
    with FakeFlare() as system:
        yield system


def _run(fake: FakeFlare, *argv: str) -> tuple[int, Any]:
    out = io.StringIO()
    user = "admin@nvidia.com"  # FakeFlare: every built-in user's API key is its name
    code = main([*argv, "--url", fake.url, "--user", user, "--api-key", user], out)
    return code, json.loads(out.getvalue()) if out.getvalue() else None


def test_submit_wait_logs_download_round(
    fake: FakeFlare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = JobFolders(tmp_path / "jobs").hello()
    code, submitted = _run(fake, "submit", str(folder), "--token", "cli-1")
    assert code == 0
    job_id = submitted["job_id"]
    assert _run(fake, "submit", str(folder), "--token", "cli-1")[1] == {"job_id": job_id}
    code, meta = _run(fake, "wait", job_id, "--timeout", "3600")
    assert (code, meta["status"]) == (0, "FINISHED:COMPLETED")
    code, rows = _run(fake, "jobs", "--limit", "5", "--reverse")
    assert [row["job_id"] for row in rows] == [job_id]
    code, logs = _run(fake, "logs", job_id, "--tail", "1")
    assert code == 0
    assert len(logs["logs"]["server"].splitlines()) == 1
    code, result = _run(fake, "download", job_id, "--dest", str(tmp_path / "out"))
    assert code == 0
    assert Path(result["path"]).is_dir()
    assert _run(fake, "status", "--target-type", "server")[0] == 0


def test_domain_errors_are_typed_json_on_stderr(
    fake: FakeFlare, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = _run(fake, "job", "00000000-0000-4000-8000-000000000000")
    assert code == 1
    error = json.loads(capsys.readouterr().err)
    assert error["error"] == "JobNotFound"


def test_token_conflict_error_carries_its_attributes(
    fake: FakeFlare, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = JobFolders(tmp_path)
    first = _run(fake, "submit", str(jobs.hello()), "--token", "t-2")[1]["job_id"]
    code, _ = _run(fake, "submit", str(jobs.hello(num_rounds=9)), "--token", "t-2")
    assert code == 1
    error = json.loads(capsys.readouterr().err)
    assert error == {
        "error": "SubmitTokenConflict",
        "message": "submit token was already used for different job content",
        "existing_job_id": first,
    }


def test_missing_connection_arguments_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FLARE_CORE_URL", raising=False)
    monkeypatch.delenv("FLARE_CORE_USER", raising=False)
    assert main(["jobs"], io.StringIO()) == 2
    assert "--url and --user are required" in capsys.readouterr().err
