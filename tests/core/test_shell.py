"""Target shell commands: client validation, server option parsing, file rules, execution."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import pytest

from flare_core.commands import ShellCommand
from flare_core.errors import InvalidArgumentError
from flare_core.shell import (
    MAX_OUTPUT_BYTES,
    TEXT_EXTENSIONS,
    TRUNCATION_MARKER,
    FileStat,
    check_shell_args,
    run_shell,
    text_extension,
)

EXT_MESSAGE = (
    "this command cannot be applied to file {}. Only files with the following extensions are "
    "permitted: .txt, .log, .json, .csv, .sh, .config, .py"
)
T0 = 1_700_000_000.0
LOG = b"".join(f"line {i}\n".encode() for i in range(1, 16))  # 15 lines


class Tree:
    """A FileTree over ``{path: bytes}`` (``None`` = directory); ``refused`` paths stat None."""

    def __init__(
        self,
        entries: dict[str, bytes | None],
        mtimes: dict[str, float] | None = None,
        refused: frozenset[str] = frozenset(),
    ) -> None:
        self.entries: dict[str, bytes | None] = {"": None, **entries}
        self.mtimes = mtimes or {}
        self.refused = refused
        self.reads: list[str] = []

    def display_root(self) -> str:
        return "/workspace/site-1"

    def stat(self, path: str) -> FileStat | None:
        if path in self.refused or path not in self.entries:
            return None
        data = self.entries[path]
        mtime = self.mtimes.get(path, T0)
        return FileStat("dir", 0, mtime) if data is None else FileStat("file", len(data), mtime)

    def listdir(self, path: str) -> list[str]:
        prefix = f"{path}/" if path else ""
        names = {
            key[len(prefix) :].split("/", 1)[0]
            for key in self.entries
            if key and key.startswith(prefix) and key != path
        }
        return sorted(names, reverse=True)  # any order: run_shell sorts

    def read(self, path: str, offset: int = 0, size: int = -1) -> bytes:
        self.reads.append(path)
        data = self.entries[path]
        assert data is not None
        return data[offset:] if size < 0 else data[offset : offset + size]


TREE = Tree(
    {
        "log.txt": LOG,
        "log.txt.1": b"old\n",
        "notes.py": b"a\tb\n\n\n\nc\n",
        "empty.txt": b"",
        "data.bin": b"\x00\x01",
        ".hidden": b"h",
        "logs": None,
        "logs/app.log": b"ERROR one\nINFO two\nerror three\nWARN four",
        "logs/deep": None,
        "logs/deep/x.json": b"{}\n",
        "dir.txt": None,
    },
    mtimes={"log.txt": T0 + 30, "notes.py": T0 + 20, "logs": T0 + 10},
)


def sh(verb: str, options: str | None = None, path: str | None = None, **kw: Any) -> str:
    tree = kw.pop("tree", TREE)
    fields = {"verb": verb, "target": "server", "options": options, "path": path, **kw}
    return run_shell(msgspec.convert(fields, ShellCommand), tree)


def refused(verb: str, options: str | None = None, path: str | None = None, **kw: Any) -> str:
    with pytest.raises(InvalidArgumentError) as info:
        sh(verb, options, path, **kw)
    return str(info.value)


# --- client side ---------------------------------------------------------------------------


def test_client_builds_commands() -> None:
    assert check_shell_args("ls", "server", None, None, None, None) == ShellCommand(
        verb="ls", target="server"
    )
    assert check_shell_args("ls", "site-1", "-l -a", "logs/x", None, None) == ShellCommand(
        verb="ls", target="site-1", options="-l -a", path="logs/x"
    )
    assert check_shell_args("grep", "server", "-n", None, "log.txt", 'a"b') == ShellCommand(
        verb="grep", target="server", options="-n", path="log.txt", pattern='a"b'
    )
    assert check_shell_args("pwd", "site_2.x") == ShellCommand(verb="pwd", target="site_2.x")
    assert check_shell_args("tail", "server", "", None, "log.txt.1").options is None


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("", "target is required but not specified."),
        (None, "target is required but not specified."),
        (5, "target is not str."),
        ("site 1", "target must be a string of only valid characters and no spaces."),
        ("site/1", "target must be a string of only valid characters and no spaces."),
        ("server\n", "target must be a string of only valid characters and no spaces."),
    ],
)
def test_client_target_rules(target: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_shell_args("ls", target)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (5, "options is not str."),
        ("-l;rm", "options must be a string of only valid characters."),
        ("-n\t5", "options must be a string of only valid characters."),
        ("-n=5", "options must be a string of only valid characters."),
    ],
)
def test_client_options_rules(options: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_shell_args("cat", "server", options, None, "log.txt")
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("verb", "kwargs", "message"),
    [
        ("ls", {"path": "/etc"}, "absolute path is not allowed"),
        ("ls", {"path": "a/../b"}, ".. in path name is not allowed"),
        ("ls", {"path": ".."}, ".. in path name is not allowed"),
        ("ls", {"path": "a b"}, "unsupported characters in path a b"),
        ("ls", {"path": 3}, "path is not str."),
        ("cat", {}, "file is required but not specified."),
        ("cat", {"file": ""}, "file is required but not specified."),
        ("cat", {"file": "/etc/x.txt"}, "absolute path is not allowed"),
        ("head", {"file": "../x.txt"}, ".. in path name is not allowed"),
        ("tail", {"file": "x;y.txt"}, "unsupported characters in path x;y.txt"),
        ("cat", {"file": "secret.key"}, EXT_MESSAGE.format("secret.key")),
        ("cat", {"file": "x.txt.bak"}, EXT_MESSAGE.format("x.txt.bak")),
        ("cat", {"file": "noext"}, EXT_MESSAGE.format("noext")),
        ("grep", {"file": "log.txt"}, "pattern is required but not specified."),
        ("grep", {"file": "log.txt", "pattern": ""}, "pattern is required but not specified."),
        ("grep", {"file": "log.txt", "pattern": 7}, "pattern is not str."),
        # The pattern is checked before the file.
        ("grep", {}, "pattern is required but not specified."),
        ("pwd", {"options": "-l"}, "this command does not accept extra args"),
        ("rm", {}, "unsupported shell command 'rm'"),
    ],
)
def test_client_path_file_and_pattern_rules(
    verb: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_shell_args(verb, "server", **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("verb", "kwargs"),
    [
        ("ls", {"file": "x.txt"}),
        ("ls", {"pattern": "x"}),
        ("cat", {"path": "x.txt", "file": "x.txt"}),
        ("cat", {"file": "x.txt", "pattern": "x"}),
    ],
)
def test_client_refuses_arguments_the_verb_does_not_take(verb: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        check_shell_args(verb, "server", **kwargs)


@pytest.mark.parametrize(
    ("name", "extension"),
    [
        ("log.txt", ".txt"),
        ("log.txt.1", ".txt"),
        ("log.txt.12", ".txt"),
        ("a/b.c/run.sh", ".sh"),
        ("x.config", ".config"),
        ("x.tar.gz", ".gz"),
        ("x", ""),
        (".txt", ""),
        ("1", ""),
        ("log.txt.", "."),
    ],
)
def test_text_extension(name: str, extension: str) -> None:
    assert text_extension(name) == extension


@pytest.mark.parametrize("ext", TEXT_EXTENSIONS)
def test_every_text_extension_is_accepted_with_a_rotation_suffix(ext: str) -> None:
    check_shell_args("cat", "server", None, None, f"dir/file{ext}")
    check_shell_args("cat", "server", None, None, f"dir/file{ext}.3")


# --- server side: rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "options", "path", "message"),
    [
        ("cat", "-x", "log.txt", "unrecognized arguments: -x"),
        ("cat", "--help", "log.txt", "unrecognized arguments: --help"),
        ("cat", "-nx", "log.txt", "unrecognized arguments: -nx"),
        ("ls", "-A", None, "unrecognized arguments: -A"),
        ("head", "-n", "log.txt", "argument -n: expected one argument"),
        ("head", "-n -c", "log.txt", "argument -n: expected one argument"),
        ("tail", "-n abc", "log.txt", "argument -n: invalid int value: 'abc'"),
        ("head", "-c1x", "log.txt", "argument -c: invalid int value: '1x'"),
        ("grep", "-c", "log.txt", "unrecognized arguments: -c"),
        ("cat", None, None, "the following arguments are required: file"),
        ("head", "-n 3", None, "the following arguments are required: file"),
        ("cat", "extra", "log.txt", "only one file is allowed"),
        ("cat", None, "/etc/x.txt", "absolute path is not allowed"),
        ("cat", None, "a/../x.txt", ".. in path name is not allowed"),
        ("cat", None, "a b.txt", "unsupported file a b.txt"),
        ("cat", None, "x;y.txt", "unsupported file x;y.txt"),
        ("cat", None, "data.bin", EXT_MESSAGE.format("data.bin")),
        ("ls", None, "/", "absolute path is not allowed"),
        ("ls", None, "../..", ".. in path name is not allowed"),
        ("ls", None, "a*", "unsupported file a*"),
        ("ls", "logs", "more", "unrecognized arguments: more"),
        ("ls", "-l;", None, "options must be a string of only valid characters."),
        ("pwd", "-P", None, "this command does not accept extra args"),
        ("pwd", None, "x", "this command does not accept extra args"),
    ],
)
def test_server_rules(verb: str, options: str | None, path: str | None, message: str) -> None:
    assert refused(verb, options, path) == message


def test_server_grep_needs_pattern_and_file() -> None:
    assert refused("grep") == "the following arguments are required: pattern, file"
    assert refused("grep", pattern="x") == "the following arguments are required: file"
    assert refused("cat", None, "log.txt", pattern="x") == "cat does not take a pattern"


def test_rules_fail_before_any_read() -> None:
    tree = Tree({"secret.key": b"k"})
    with pytest.raises(InvalidArgumentError):
        sh("cat", None, "secret.key", tree=tree)
    assert tree.reads == []


# --- pwd / cat -----------------------------------------------------------------------------


def test_pwd() -> None:
    assert sh("pwd") == "/workspace/site-1\n"


def test_cat_prints_the_file() -> None:
    assert sh("cat", None, "log.txt") == LOG.decode()
    assert sh("cat", None, "./logs//app.log") == "ERROR one\nINFO two\nerror three\nWARN four"
    assert sh("cat", None, "log.txt.1") == "old\n"
    assert sh("cat", None, "empty.txt") == ""


def test_missing_files_are_output_text_like_coreutils() -> None:
    assert sh("cat", None, "nope.txt") == "cat: nope.txt: No such file or directory\n"
    assert sh("grep", None, "nope.txt", pattern="x") == (
        "grep: nope.txt: No such file or directory\n"
    )
    assert sh("head", None, "nope.txt") == (
        "head: cannot open 'nope.txt' for reading: No such file or directory\n"
    )
    assert sh("tail", None, "a/nope.log") == (
        "tail: cannot open 'a/nope.log' for reading: No such file or directory\n"
    )
    assert sh("ls", None, "nope") == "ls: cannot access 'nope': No such file or directory\n"


def test_directories_are_not_read() -> None:
    assert sh("cat", None, "dir.txt") == "cat: dir.txt: Is a directory\n"
    assert sh("grep", None, "dir.txt", pattern="x") == "grep: dir.txt: Is a directory\n"
    assert sh("head", None, "dir.txt") == "head: error reading 'dir.txt': Is a directory\n"
    assert sh("tail", None, "dir.txt") == "tail: error reading 'dir.txt': Is a directory\n"


def test_refused_paths_look_missing() -> None:
    tree = Tree({"link.txt": b"outside"}, refused=frozenset({"link.txt"}))
    assert sh("cat", None, "link.txt", tree=tree) == "cat: link.txt: No such file or directory\n"
    assert sh("ls", tree=tree) == ""  # listed by the tree, hidden because it is refused
    assert tree.reads == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("-n", "     1\ta\tb\n     2\t\n     3\t\n     4\t\n     5\tc\n"),
        ("-b", "     1\ta\tb\n\n\n\n     2\tc\n"),
        ("-b -n", "     1\ta\tb\n\n\n\n     2\tc\n"),  # -b overrides -n
        ("-s", "a\tb\n\nc\n"),
        ("-T", "a^Ib\n\n\n\nc\n"),
        ("-sT -n", "     1\ta^Ib\n     2\t\n     3\tc\n"),
    ],
)
def test_cat_options(options: str, expected: str) -> None:
    assert sh("cat", options, "notes.py") == expected


def test_cat_numbers_a_last_line_without_newline() -> None:
    assert sh("cat", "-n", "logs/app.log").endswith("     4\tWARN four")


def test_cat_keeps_carriage_returns_inside_lines() -> None:
    tree = Tree({"crlf.txt": b"a\r\nb\rc\n"})
    assert sh("cat", "-n", "crlf.txt", tree=tree) == "     1\ta\r\n     2\tb\rc\n"


# --- head / tail ---------------------------------------------------------------------------


def _lines(numbers: range) -> str:
    return "".join(f"line {i}\n" for i in numbers)


@pytest.mark.parametrize(
    ("verb", "options", "expected"),
    [
        ("head", None, _lines(range(1, 11))),
        ("head", "-n 3", _lines(range(1, 4))),
        ("head", "-n3", _lines(range(1, 4))),
        ("head", "-n 0", ""),
        ("head", "-n -13", _lines(range(1, 3))),  # all but the last 13
        ("head", "-n 99", LOG.decode()),
        ("head", "-c 8", "line 1\nl"),
        ("head", "-c -100", LOG.decode()[:-100]),
        ("head", "-n 2 -c 3", "lin"),  # the last option wins
        ("head", "-c 3 -n 2", _lines(range(1, 3))),
        ("tail", None, _lines(range(6, 16))),
        ("tail", "-n 2", _lines(range(14, 16))),
        ("tail", "-n -2", _lines(range(14, 16))),
        ("tail", "-n 0", ""),
        ("tail", "-c 4", " 15\n"),
        ("tail", "-c 0", ""),
        ("tail", "-n 100", LOG.decode()),
    ],
)
def test_head_and_tail(verb: str, options: str | None, expected: str) -> None:
    assert sh(verb, options, "log.txt") == expected


def test_tail_of_a_file_without_final_newline() -> None:
    assert sh("tail", "-n 1", "logs/app.log") == "WARN four"


def test_head_cut_inside_a_multibyte_character_is_replaced_not_fatal() -> None:
    tree = Tree({"u.txt": "héllo\n".encode()})
    assert sh("head", "-c 2", "u.txt", tree=tree) == "h\ufffd"


# --- grep ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "pattern", "expected"),
    [
        (None, "ERROR", "ERROR one\n"),
        ("-i", "error", "ERROR one\nerror three\n"),
        ("-n", "o", "1:ERROR one\n2:INFO two\n3:error three\n4:WARN four\n"),
        ("-b", "INFO", "10:INFO two\n"),
        ("-n -b", "four", "4:31:WARN four\n"),
        ("-ni", "^error", "1:ERROR one\n3:error three\n"),
        (None, "nothing", ""),
        (None, "o$", "INFO two\n"),
        (None, "e$", "ERROR one\nerror three\n"),
        (None, "^[A-Z]*$", ""),
        (None, "^[A-Z]* [a-z]*$", "ERROR one\nINFO two\nWARN four\n"),
        (None, "[[:digit:]]", ""),
        (None, "t.o", "INFO two\n"),
        (None, "r*o", "ERROR one\nINFO two\nerror three\nWARN four\n"),
        (None, "-x", ""),  # a pattern may look like an option
    ],
)
def test_grep(options: str | None, pattern: str, expected: str) -> None:
    assert sh("grep", options, "logs/app.log", pattern=pattern) == expected


def test_grep_literal_specials() -> None:
    tree = Tree({"s.txt": b"a.b\naxb\n*star\nx^y\ncost $5\n[x]\n"})
    assert sh("grep", None, "s.txt", pattern="a\\.b", tree=tree) == "a.b\n"
    assert sh("grep", None, "s.txt", pattern="a.b", tree=tree) == "a.b\naxb\n"
    assert sh("grep", None, "s.txt", pattern="*star", tree=tree) == "*star\n"
    assert sh("grep", None, "s.txt", pattern="^*", tree=tree) == "*star\n"
    assert sh("grep", None, "s.txt", pattern="x^y", tree=tree) == "x^y\n"
    assert sh("grep", None, "s.txt", pattern="$5", tree=tree) == "cost $5\n"
    assert sh("grep", None, "s.txt", pattern="\\[x]", tree=tree) == "[x]\n"
    assert sh("grep", None, "s.txt", pattern="[]x]", tree=tree) == "axb\nx^y\n[x]\n"
    assert sh("grep", None, "s.txt", pattern="[^a-z*$ []", tree=tree) == (
        "a.b\nx^y\ncost $5\n[x]\n"
    )


@pytest.mark.parametrize(
    "pattern",
    [
        "\\(a\\)",
        "a\\{2\\}",
        "a\\|b",
        "a\\+",
        "\\1",
        "[abc",
        "[[:nope:]]",
        "[z-a]",
        "x\\",
        "[[.a.]]",
    ],
)
def test_grep_refuses_unsupported_patterns(pattern: str) -> None:
    message = refused("grep", None, "log.txt", pattern=pattern)
    assert message.startswith(f"unsupported grep pattern {pattern!r}: ")


# --- ls ------------------------------------------------------------------------------------


def test_ls_lists_the_root_sorted_without_hidden_entries() -> None:
    assert sh("ls") == "data.bin\ndir.txt\nempty.txt\nlog.txt\nlog.txt.1\nlogs\nnotes.py\n"


def test_ls_a_shows_dot_entries() -> None:
    assert sh("ls", "-a").splitlines()[:3] == [".", "..", ".hidden"]


def test_ls_of_a_subdirectory_and_of_a_file() -> None:
    assert sh("ls", None, "logs") == "app.log\ndeep\n"
    assert sh("ls", None, "./logs/") == "app.log\ndeep\n"
    assert sh("ls", None, "logs/app.log") == "logs/app.log\n"


def test_ls_sort_orders() -> None:
    assert sh("ls", "-t").splitlines()[:3] == ["log.txt", "notes.py", "logs"]
    assert sh("ls", "-u").splitlines()[:3] == ["log.txt", "notes.py", "logs"]
    assert sh("ls", "-S").splitlines()[:2] == ["log.txt", "notes.py"]
    assert sh("ls", "-t -S").splitlines()[:2] == ["log.txt", "notes.py"]
    assert sh("ls", "-S -t").splitlines()[:2] == ["log.txt", "notes.py"]
    assert sh("ls", "-St", "logs") == "app.log\ndeep\n"  # ties fall back to the name


def _when(mtime: float) -> str:
    return datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M")


def test_ls_long_format() -> None:
    assert sh("ls", "-l", "logs") == (f"total 1\n- 40 {_when(T0)} app.log\nd  0 {_when(T0)} deep\n")
    assert sh("ls", "-l", "log.txt") == f"- {len(LOG)} {_when(T0 + 30)} log.txt\n"


def test_ls_recursive() -> None:
    assert sh("ls", "-R", "logs") == "logs:\napp.log\ndeep\n\nlogs/deep:\nx.json\n"
    output = sh("ls", "-R")
    assert output.startswith(".:\ndata.bin\n")
    blocks = [block.splitlines()[0] for block in output.split("\n\n")]
    assert blocks == [".:", "./dir.txt:", "./logs:", "./logs/deep:"]


def test_ls_recursive_with_all_does_not_loop_on_dot_entries() -> None:
    blocks = [block.splitlines()[0] for block in sh("ls", "-Ra", "logs").split("\n\n")]
    assert blocks == ["logs:", "logs/deep:"]


# --- output cap ----------------------------------------------------------------------------


def test_output_is_capped_with_a_marker() -> None:
    big = ("é" * 1000 + "\n").encode() * 600  # ~1.2 MB of two-byte characters
    tree = Tree({"big.log": big})
    output = sh("cat", None, "big.log", tree=tree)
    assert output.endswith(TRUNCATION_MARKER)
    body = output[: -len(TRUNCATION_MARKER)]
    assert len(body.encode()) <= MAX_OUTPUT_BYTES
    assert len(body.encode()) > MAX_OUTPUT_BYTES - 2  # cut at a character boundary
    assert big.decode().startswith(body)


def test_small_output_is_not_marked() -> None:
    assert TRUNCATION_MARKER not in sh("cat", None, "log.txt")


def test_recursive_listing_stops_at_the_cap() -> None:
    entries: dict[str, bytes | None] = {}
    for d in range(40):
        entries[f"d{d:02}"] = None
        for f in range(1200):
            entries[f"d{d:02}/file-with-a-rather-long-name-{f:05}.txt"] = b""

    class CountingTree(Tree):
        calls = 0

        def listdir(self, path: str) -> list[str]:
            self.calls += 1
            return super().listdir(path)

    tree = CountingTree(entries)
    output = sh("ls", "-R", tree=tree)
    assert output.endswith(TRUNCATION_MARKER)
    assert tree.calls < 41  # stopped walking once the cap was reached


def test_ignore_case_folds_before_negating_a_bracket() -> None:
    tree = Tree({"f.txt": b"a\nA\nb\n"})
    assert sh("grep", "-i", "f.txt", pattern="[^a]", tree=tree) == "b\n"
    assert sh("grep", "-i", "f.txt", pattern="[A]", tree=tree) == "a\nA\n"
