"""Contract: target shell commands - ``ls_target``, ``cat_target``, ``head_target``,
``head_target_log``, ``tail_target``, ``tail_target_log``, ``grep_target``,
``get_working_directory`` (reference §7, §11.1 #22; DECISIONS §5, §17)."""

from __future__ import annotations

from typing import Any

import pytest

from flare_core.errors import InvalidTarget
from flare_ports.session_spec import SessionSpec
from flare_testing.contract import capabilities as cap
from flare_testing.contract.base import ContractBase, arg_error, call, finished_job, nothing_sent
from flare_testing.contract.harness import Harness
from flare_testing.job_folders import JobFolders

__all__ = ["ShellBehaviourContract", "ShellValidationContract"]

# method -> the arguments after ``target`` for a call that passes local validation
SHELL_CALLS: dict[str, dict[str, Any]] = {
    "ls_target": {},
    "cat_target": {"file": "log.txt"},
    "head_target": {"file": "log.txt"},
    "tail_target": {"file": "log.txt"},
    "grep_target": {"pattern": "x", "file": "log.txt"},
    "head_target_log": {},
    "tail_target_log": {},
    "get_working_directory": {},
}
FILE_METHODS = ("cat_target", "head_target", "tail_target", "grep_target")
TEXT_FILES = [
    "a.txt",
    "b.log",
    "c.json",
    "d.csv",
    "e.sh",
    "f.config",
    "g.py",
    "log.txt.1",
    "nested/dir/app.log.12",
]
LINES = "".join(f"line {n:02d} {'even' if n % 2 == 0 else 'odd'}\n" for n in range(1, 16))


def _shell(session: SessionSpec, method: str, target: Any, **changes: Any) -> Any:
    return call(session, method, target, **{**SHELL_CALLS[method], **changes})


class ShellValidationContract(ContractBase):
    """Every shell argument is checked locally, before anything is sent (§7.1)."""

    @pytest.mark.parametrize("method", list(SHELL_CALLS))
    @pytest.mark.parametrize("target", ["", "bad target", "site/1", None])
    def test_bad_target_fails_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        method: str,
        target: Any,
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(arg_error(caps, SyntaxError)):
            _shell(session, method, target)

    @pytest.mark.parametrize("method", ["ls_target", "cat_target", "grep_target", "tail_target"])
    @pytest.mark.parametrize("options", ["-n;rm", "--color=auto", "-l|x", "$(x)", "-n\t5"])
    def test_bad_options_fail_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        method: str,
        options: str,
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(arg_error(caps, SyntaxError)):
            _shell(session, method, "server", options=options)

    @pytest.mark.parametrize(
        ("path", "message"),
        [
            ("/etc", "absolute path is not allowed"),
            ("a/../b", r"\.\. in path name is not allowed"),
            ("../x", r"\.\. in path name is not allowed"),
            ("a*b", ""),
        ],
    )
    def test_bad_ls_path_fails_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        path: str,
        message: str,
    ) -> None:
        with (
            nothing_sent(harness, caps),
            pytest.raises(arg_error(caps, SyntaxError), match=message or None),
        ):
            session.ls_target("server", path=path)

    @pytest.mark.parametrize("method", FILE_METHODS)
    @pytest.mark.parametrize(
        "file",
        [
            "/etc/passwd.txt",
            "logs/../../x.txt",
            "weights.bin",
            "archive.tar.gz",
            "README",
            "a b.txt",
        ],
    )
    def test_bad_file_fails_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        method: str,
        file: str,
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(arg_error(caps, SyntaxError)):
            _shell(session, method, "server", file=file)

    @pytest.mark.parametrize("method", FILE_METHODS)
    def test_missing_file_fails_locally(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, method: str
    ) -> None:
        with (
            nothing_sent(harness, caps),
            pytest.raises(arg_error(caps, SyntaxError), match="file is required"),
        ):
            _shell(session, method, "server", file=None)

    def test_grep_needs_a_pattern(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec
    ) -> None:
        with (
            nothing_sent(harness, caps),
            pytest.raises(arg_error(caps, SyntaxError), match="pattern is required"),
        ):
            session.grep_target("server", file="log.txt")

    def test_grep_pattern_must_be_a_string(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec
    ) -> None:
        pattern: Any = 42
        with nothing_sent(harness, caps), pytest.raises(arg_error(caps, ValueError)):
            session.grep_target("server", pattern=pattern, file="log.txt")

    @pytest.mark.parametrize("method", list(SHELL_CALLS))
    def test_unknown_target_is_invalid(self, session: SessionSpec, method: str) -> None:
        with pytest.raises(InvalidTarget):
            _shell(session, method, "site-unknown")

    @pytest.mark.flare_requires(cap.SITE_CONTROL)
    def test_disconnected_target_is_invalid(self, harness: Harness, session: SessionSpec) -> None:
        harness.disconnect_site(harness.sites[0])
        with pytest.raises(InvalidTarget):
            session.ls_target(harness.sites[0])


@pytest.mark.flare_requires(cap.WORKSPACE_SHELL, cap.WORKSPACE_FILES)
class ShellBehaviourContract(ContractBase):
    """Shell commands read the target site's workspace (DECISIONS §17)."""

    @pytest.fixture
    def site(self, harness: Harness) -> str:
        """The client site the per-site tests use."""
        return harness.sites[0]

    @pytest.mark.parametrize("file", TEXT_FILES)
    def test_cat_reads_text_files(self, harness: Harness, session: SessionSpec, file: str) -> None:
        harness.put_file("server", file, f"content of {file}\n".encode())
        assert session.cat_target("server", file=file) == f"content of {file}\n"

    def test_cat_on_a_client_site(self, harness: Harness, session: SessionSpec, site: str) -> None:
        harness.put_file(site, "notes.txt", b"client notes\n")
        assert session.cat_target(site, file="notes.txt") == "client notes\n"
        assert "No such file or directory" in session.cat_target("server", file="notes.txt")

    def test_cat_numbers_lines(self, harness: Harness, session: SessionSpec) -> None:
        harness.put_file("server", "two.txt", b"first\nsecond\n")
        assert session.cat_target("server", "-n", "two.txt") == "     1\tfirst\n     2\tsecond\n"

    def test_missing_file_is_output_not_an_error(self, session: SessionSpec) -> None:
        output = session.cat_target("server", file="missing.txt")
        assert "missing.txt" in output
        assert "No such file or directory" in output

    @pytest.mark.flare_requires(cap.PLAIN_SHELL_OUTPUT)
    @pytest.mark.parametrize(
        "text", ["user not authorized for this\n", "Failed to communicate with server\n"]
    )
    def test_file_content_is_data(self, harness: Harness, session: SessionSpec, text: str) -> None:
        harness.put_file("server", "scary.txt", text.encode())
        assert session.cat_target("server", file="scary.txt") == text

    def test_head_and_tail_default_to_ten_lines(
        self, harness: Harness, session: SessionSpec
    ) -> None:
        harness.put_file("server", "lines.txt", LINES.encode())
        lines = LINES.splitlines(keepends=True)
        assert session.head_target("server", file="lines.txt") == "".join(lines[:10])
        assert session.tail_target("server", file="lines.txt") == "".join(lines[-10:])

    def test_head_and_tail_count_option(self, harness: Harness, session: SessionSpec) -> None:
        harness.put_file("server", "lines.txt", LINES.encode())
        lines = LINES.splitlines(keepends=True)
        assert session.head_target("server", "-n 3", "lines.txt") == "".join(lines[:3])
        assert session.tail_target("server", "-n 2", "lines.txt") == "".join(lines[-2:])

    def test_log_shortcuts_read_log_txt(
        self, harness: Harness, session: SessionSpec, site: str
    ) -> None:
        harness.put_file(site, "log.txt", LINES.encode())
        lines = LINES.splitlines(keepends=True)
        assert session.head_target_log(site) == "".join(lines[:10])
        assert session.tail_target_log(site, "-n 1") == lines[-1]

    def test_grep_prints_matching_lines(self, harness: Harness, session: SessionSpec) -> None:
        harness.put_file("server", "lines.txt", LINES.encode())
        expected = "".join(line for line in LINES.splitlines(True) if "line 1" in line)
        assert session.grep_target("server", pattern="line 1", file="lines.txt") == expected

    def test_grep_options(self, harness: Harness, session: SessionSpec) -> None:
        harness.put_file("server", "mixed.txt", b"Alpha\nbeta\nALPHA beta\n")
        assert session.grep_target("server", "-i", "alpha", "mixed.txt") == "Alpha\nALPHA beta\n"
        assert session.grep_target("server", "-n", "beta", "mixed.txt") == "2:beta\n3:ALPHA beta\n"
        assert session.grep_target("server", None, "gamma", "mixed.txt") == ""

    def test_grep_pattern_with_quotes(self, harness: Harness, session: SessionSpec) -> None:
        harness.put_file("server", "quoted.txt", b'say "hi" there\nno quotes\n')
        assert session.grep_target("server", None, 'say "hi', "quoted.txt") == 'say "hi" there\n'

    def test_ls_lists_the_workspace(self, harness: Harness, session: SessionSpec) -> None:
        harness.put_file("server", "notes/a.txt", b"a\n")
        harness.put_file("server", "notes/b.txt", b"b\n")
        assert "notes" in session.ls_target("server").split()
        assert session.ls_target("server", path="notes").split() == ["a.txt", "b.txt"]
        long = session.ls_target("server", "-l", "notes")
        assert "a.txt" in long
        assert "b.txt" in long

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_ls_shows_a_finished_jobs_workspace(
        self, session: SessionSpec, jobs: JobFolders, site: str
    ) -> None:
        job_id = finished_job(session, jobs)
        assert job_id in session.ls_target(site).split()
        assert "log.txt" in session.ls_target(site, path=job_id).split()

    def test_working_directory(self, session: SessionSpec, site: str) -> None:
        server = session.get_working_directory("server")
        client = session.get_working_directory(site)
        assert server.endswith("\n")
        assert client.endswith("\n")
        assert server.strip()
        assert server != client
        assert session.get_working_directory("server") == server
