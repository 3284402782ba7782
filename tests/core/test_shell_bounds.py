"""Shell commands read files in bounded pieces (issue 10, items 1 and 2).

A 300 MiB log once cost 2 GiB of memory per ``cat``; a 1.2 MB grep pattern held the server for
11 s. These tests pin the bounds: how many bytes a command may read, how long a pattern may
be, how much matching work one grep may spend.
"""

from __future__ import annotations

import pytest

from flare_core.commands import ShellCommand
from flare_core.errors import InvalidArgumentError
from flare_core.shell import (
    MATCH_WORK_MARKER,
    MAX_OUTPUT_BYTES,
    MAX_PATTERN_CHARS,
    MAX_SCAN_BYTES,
    MAX_SCAN_LINES,
    READ_CHUNK,
    SCAN_MARKER,
    TRUNCATION_MARKER,
    FileStat,
    check_shell_args,
    run_shell,
)

BIG = MAX_SCAN_BYTES * 4 // 10 * 10
"""A file four times the scan bound, of whole lines (never materialised: the tree makes its
bytes up on each read)."""


class HugeFile:
    """A tree holding one ``BIG``-byte ``big.log`` of numbered lines; counts what is read."""

    def __init__(self, size: int = BIG) -> None:
        self.size = size
        self.bytes_read = 0
        self.largest_read = 0

    def display_root(self) -> str:
        return "/workspace/server"

    def stat(self, path: str) -> FileStat | None:
        return FileStat("file", self.size, 0.0) if path == "big.log" else None

    def listdir(self, path: str) -> list[str]:
        return ["big.log"]

    def read(self, path: str, offset: int = 0, size: int = -1) -> bytes:
        end = self.size if size < 0 else min(self.size, offset + size)
        count = max(0, end - offset)
        data = (b"abcdefghi\n" * (count // 10 + 2))[offset % 10 : offset % 10 + count]
        self.bytes_read += len(data)
        self.largest_read = max(self.largest_read, len(data))
        return data


def sh(tree: HugeFile, verb: str, options: str | None = None, pattern: str | None = None) -> str:
    command = ShellCommand(
        verb=verb,  # type: ignore[arg-type]
        target="server",
        options=options,
        path="big.log",
        pattern=pattern,
    )
    return run_shell(command, tree)


def test_cat_stops_reading_once_the_output_is_full() -> None:
    tree = HugeFile()
    output = sh(tree, "cat")
    assert output.endswith(TRUNCATION_MARKER)
    assert tree.bytes_read <= MAX_OUTPUT_BYTES + READ_CHUNK
    assert tree.largest_read <= READ_CHUNK


def test_head_reads_only_what_it_prints() -> None:
    tree = HugeFile()
    assert sh(tree, "head", "-n 2") == "abcdefghi\nabcdefghi\n"
    assert tree.bytes_read <= READ_CHUNK


def test_tail_reads_from_the_end() -> None:
    tree = HugeFile()
    assert sh(tree, "tail", "-n 3") == "abcdefghi\n" * 3
    assert tree.bytes_read <= READ_CHUNK
    tree = HugeFile()
    assert sh(tree, "tail", "-c 5") == "fghi\n"
    assert tree.bytes_read == 5


def test_grep_scans_at_most_the_bound_and_says_so() -> None:
    tree = HugeFile()
    output = sh(tree, "grep", pattern="no-such-text")
    assert output == SCAN_MARKER
    assert tree.bytes_read <= min(MAX_SCAN_BYTES, 10 * MAX_SCAN_LINES + READ_CHUNK)
    assert tree.largest_read <= READ_CHUNK


def test_one_endless_line_is_read_up_to_the_byte_bound() -> None:
    class OneLine(HugeFile):
        def read(self, path: str, offset: int = 0, size: int = -1) -> bytes:
            return super().read(path, offset, size).replace(b"\n", b" ")

    tree = OneLine()
    assert sh(tree, "grep", pattern="no-such-text") == SCAN_MARKER
    assert tree.bytes_read == MAX_SCAN_BYTES


def test_cat_squeezing_a_file_of_blank_lines_is_bounded_too() -> None:
    class Blank(HugeFile):
        def read(self, path: str, offset: int = 0, size: int = -1) -> bytes:
            data = super().read(path, offset, size)
            return b"\n" * len(data)

    tree = Blank()
    assert sh(tree, "cat", "-s") == "\n" + SCAN_MARKER
    assert tree.bytes_read <= MAX_SCAN_LINES + READ_CHUNK


@pytest.mark.parametrize("length", [MAX_PATTERN_CHARS + 1, 1_200_000])
def test_overlong_patterns_are_refused_on_both_halves(length: int) -> None:
    pattern = "a" * length
    with pytest.raises(InvalidArgumentError, match="grep pattern is too long"):
        check_shell_args("grep", "server", pattern=pattern, file="log.txt")
    tree = HugeFile()
    with pytest.raises(InvalidArgumentError, match="grep pattern is too long"):
        sh(tree, "grep", pattern=pattern)
    assert tree.bytes_read == 0


def test_the_longest_pattern_is_accepted() -> None:
    assert sh(HugeFile(100), "grep", pattern="a" * MAX_PATTERN_CHARS) == ""


def test_grep_ends_with_a_marker_when_the_work_runs_out() -> None:
    class Distinct(HugeFile):
        def read(self, path: str, offset: int = 0, size: int = -1) -> bytes:
            end = self.size if size < 0 else min(self.size, offset + size)
            text = "".join(chr(0x4E00 + i % 20000) for i in range(offset // 3, end // 3))
            self.bytes_read += end - offset
            return text.encode()

    tree = Distinct(3 * 40_000)
    output = sh(tree, "grep", pattern="[a-z]*x" * (MAX_PATTERN_CHARS // 7))
    assert output == MATCH_WORK_MARKER
