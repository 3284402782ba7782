"""The session commands in-process against FakeFlare (virtual time: waits return at once).

``flare_adapters.cli.main`` runs exactly what the ``flare-core`` script runs; output is read
from the captured stdout/stderr.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flare_adapters.cli import main
from flare_adapters.console import ALIASES, ExitCode
from flare_testing import FakeFlare, JobFolders

ADMIN = "admin@nvidia.com"  # FakeFlare: every built-in user's API key is its name


@pytest.fixture
def fake() -> Iterator[FakeFlare]:
    with FakeFlare() as system:
        yield system


@pytest.fixture
def cli(
    fake: FakeFlare,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """Run the CLI against ``fake``; returns (exit code, stdout, stderr)."""
    key_file = tmp_path / "admin.key"
    key_file.write_text(ADMIN + "\n")
    for name in ("FLARE_CORE_URL", "FLARE_CORE_USER", "FLARE_CORE_API_KEY", "FLARE_CORE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        base = ["--url", fake.url, "--user", ADMIN, "--api-key-file", str(key_file)]
        code = main([*argv, *base])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_submit_wait_exits_0_only_on_completed(cli: Any, tmp_path: Path) -> None:
    folder = JobFolders(tmp_path / "jobs").hello()
    code, out, _ = cli("jobs", "submit", str(folder), "--wait", "--timeout", "3600")
    assert code == ExitCode.OK
    assert out.split()[-1] == "FINISHED:COMPLETED"


def test_submit_wait_on_a_failing_job_exits_1_and_names_the_status(
    cli: Any, tmp_path: Path
) -> None:
    folder = JobFolders(tmp_path / "jobs").hello(executor_path="custom.Broken")
    code, out, _ = cli("jobs", "submit", str(folder), "--wait")
    assert code == ExitCode.JOB_FAILED
    assert int(ExitCode.JOB_FAILED) == 1
    assert out.split()[-1] == "FINISHED:EXECUTION_EXCEPTION"


@pytest.mark.parametrize(
    "status", ["FINISHED:ABORTED", "FINISHED:ABNORMAL", "FINISHED:EXECUTION_EXCEPTION"]
)
def test_wait_exits_1_on_every_other_terminal_status(
    cli: Any, fake: FakeFlare, tmp_path: Path, status: str
) -> None:
    job_id = cli("jobs", "submit", str(JobFolders(tmp_path).hello()))[1].strip()
    fake.finish_job(job_id, status)
    code, out, _ = cli("jobs", "wait", job_id)
    assert (code, out.split()) == (ExitCode.JOB_FAILED, [job_id, status])
    # The short form exits the same way and prints the meta as JSON, as it always did.
    code, out, _ = cli("wait", job_id)
    assert (code, json.loads(out)["status"]) == (ExitCode.JOB_FAILED, status)


def test_wait_timeout_exits_3(cli: Any, fake: FakeFlare, tmp_path: Path) -> None:
    job_id = cli("jobs", "submit", str(JobFolders(tmp_path).hello()))[1].strip()
    fake.hold_job(job_id)
    code, _, err = cli("--json", "jobs", "wait", job_id, "--timeout", "30", "--poll", "1")
    assert code == ExitCode.TIMEOUT
    assert int(ExitCode.TIMEOUT) == 3
    assert json.loads(err)["error"] == "JobTimeout"


def test_progress_names_each_status_change_on_stderr(cli: Any, tmp_path: Path) -> None:
    folder = JobFolders(tmp_path / "jobs").hello()
    code, _, err = cli("--progress", "jobs", "submit", str(folder), "--wait")
    assert code == 0
    lines = err.splitlines()
    assert lines[0].startswith("submitted ")
    assert [line.split()[1] for line in lines[1:]][-1] == "FINISHED:COMPLETED"
    assert len(lines) >= 3  # at least one status before the end
    # Quiet when not asked (stdout is not a terminal here): only the job id note.
    assert len(cli("jobs", "submit", str(folder), "--wait")[2].splitlines()) == 1


def test_error_classes_have_their_own_exit_codes(cli: Any, tmp_path: Path) -> None:
    code, _, err = cli("jobs", "show", "00000000-0000-4000-8000-000000000000")
    assert code == ExitCode.NOT_FOUND
    assert err.startswith("flare-core: JobNotFound: ")
    code, _, err = cli("--json", "jobs", "submit", str(JobFolders(tmp_path).invalid("no_site")))
    assert code == ExitCode.REFUSED
    assert json.loads(err)["error"] == "InvalidJobDefinition"
    code, _, err = cli("--json", "shell", "ls", "nowhere")
    assert (code, json.loads(err)["error"]) == (ExitCode.REFUSED, "InvalidTarget")


def test_a_wrong_key_is_an_auth_error(
    fake: FakeFlare, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "bad.key"
    key.write_text("wrong")
    code = main(["system", "info", "--url", fake.url, "--user", ADMIN, "--api-key-file", str(key)])
    assert code == ExitCode.AUTH
    assert "Incorrect user name or password" in capsys.readouterr().err


def test_no_key_at_all_says_so(
    fake: FakeFlare, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FLARE_CORE_API_KEY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")
    assert main(["system", "info", "--url", fake.url, "--user", ADMIN]) == ExitCode.AUTH
    assert "no API key given for user" in capsys.readouterr().err


def test_the_api_key_is_not_a_command_line_option(cli: Any) -> None:
    code, _, err = cli("jobs", "list", "--api-key", ADMIN)
    assert code == ExitCode.USAGE
    assert "--api-key" in err


def test_human_and_json_listing(cli: Any, tmp_path: Path) -> None:
    job_id = cli("jobs", "submit", str(JobFolders(tmp_path).hello()))[1].strip()
    out = cli("jobs", "list")[1]
    header, row = out.splitlines()
    assert header.split() == ["JOB", "ID", "NAME", "STATUS", "SUBMITTED", "DURATION"]
    assert row.split()[:3] == [job_id, "hello-numpy-sag", "SUBMITTED"]
    out = cli("--json", "jobs", "list")[1]
    assert set(json.loads(out)[0]) == {
        "job_id",
        "job_name",
        "status",
        "submit_time",
        "duration",
        "study",
    }
    # "jobs" alone is the old listing command: JSON, as before.
    assert json.loads(cli("jobs", "--limit", "1")[1])[0]["job_id"] == job_id


def test_times_are_local_iso_for_people_and_as_is_in_json(cli: Any, tmp_path: Path) -> None:
    job_id = cli("jobs", "submit", str(JobFolders(tmp_path).hello()))[1].strip()
    rows = [line.split(None, 1) for line in cli("jobs", "show", job_id)[1].splitlines()[1:]]
    shown = {row[0]: row[1] if len(row) > 1 else "" for row in rows}
    assert shown["submit_time"].strip().startswith("2023-11-1")
    assert "T" in shown["submit_time"]
    assert isinstance(json.loads(cli("--json", "jobs", "show", job_id)[1])["submit_time"], float)


def test_logs_print_lines_not_escapes(cli: Any, fake: FakeFlare, tmp_path: Path) -> None:
    job_id = cli("jobs", "submit", str(JobFolders(tmp_path).hello()), "--wait")[1].split()[0]
    code, out, _ = cli("jobs", "logs", job_id, "--tail", "2")
    assert code == 0
    assert len(out.splitlines()) == 2
    assert "\\n" not in out
    code, out, _ = cli("jobs", "logs", job_id, "--target", "all", "--tail", "1")
    assert sorted(line.split()[0] for line in out.splitlines()) == [
        "[server]",
        "[site-1]",
        "[site-2]",
    ]


def test_logs_follow_prints_the_whole_log_once_and_ends_with_the_job(
    cli: Any, fake: FakeFlare, tmp_path: Path
) -> None:
    job_id = cli("jobs", "submit", str(JobFolders(tmp_path).hello()))[1].strip()
    fake.finish_job(job_id)
    code, out, _ = cli("jobs", "logs", job_id, "--follow", "--poll", "0.01")
    assert code == 0
    full = cli("jobs", "logs", job_id)[1]
    assert out == full


def test_every_short_form_reaches_its_command(cli: Any) -> None:
    for alias, (group, name) in ALIASES.items():
        code, out, _ = cli(alias, "--help")
        assert code == 0, alias
        code, target, _ = cli(group, name, "--help")
        assert out.split("\n", 1)[1] == target.split("\n", 1)[1], alias


def test_system_sites_studies_and_shell(cli: Any, fake: FakeFlare, tmp_path: Path) -> None:
    assert [line.split()[0] for line in cli("sites", "list")[1].splitlines()[1:]] == [
        "site-1",
        "site-2",
    ]
    assert cli("system", "info")[1].startswith("server: started since ")
    versions = json.loads(cli("--json", "system", "version")[1])
    assert set(versions) == {"server", "site-1", "site-2"}
    assert cli("sites", "disable", "site-2")[0] == 0
    assert [line.split()[0] for line in cli("sites", "list")[1].splitlines()[1:]] == ["site-1"]
    assert cli("sites", "enable", "site-2")[0] == 0
    assert cli("studies", "register", "s1", "--site-org", "nvidia:site-1")[0] == 0
    assert cli("studies", "add-user", "s1", "lead@nvidia.com")[0] == 0
    shown = json.loads(cli("--json", "studies", "show", "s1")[1])
    assert "lead@nvidia.com" in json.dumps(shown)
    fake.put_file("site-1", "notes/a.txt", b"one\ntwo\nthree\n")
    assert cli("shell", "cat", "site-1", "notes/a.txt")[1] == "one\ntwo\nthree\n"
    assert cli("shell", "head", "site-1", "notes/a.txt", "-n", "1")[1] == "one\n"
    assert cli("shell", "tail", "site-1", "notes/a.txt", "-n", "1")[1] == "three\n"
    assert cli("shell", "grep", "site-1", "tw", "notes/a.txt")[1] == "two\n"
    assert "a.txt" in cli("shell", "ls", "site-1", "notes")[1]
