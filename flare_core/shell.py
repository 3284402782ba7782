"""Target shell commands (``ls``/``cat``/``head``/``tail``/``grep``/``pwd``), both halves.

Client half (reference §7.1): ``check_shell_args`` validates the arguments and builds the
``ShellCommand``; failures raise ``InvalidArgumentError`` (DECISIONS §4) with the reference's
messages. Server half (§7.2, DECISIONS §17): ``run_shell`` re-parses the options with the
reference's exact option whitelist, enforces the file rules, and executes the command itself
over a read-only ``FileTree`` - no subprocess, no shell - producing what the coreutils
command would print. A missing file is output text, as a real ``cat`` would print it; rule
violations raise ``InvalidArgumentError``. Output is capped at ``MAX_OUTPUT_BYTES``.

Differences from coreutils, by design:
    * ``grep`` patterns are a safe subset of POSIX basic regular expressions - literals,
      ``.``, ``*``, ``^``, ``$``, bracket expressions with ranges and ``[:class:]`` - matched
      by a lazily built DFA in time linear in the input (``regex_dfa``), so no pattern can
      stall the server. Groups, intervals, back-references and GNU escapes raise
      ``InvalidArgumentError``.
    * ``ls -l`` prints ``<type> <size> <YYYY-MM-DD HH:MM> <name>`` (local time) with a
      ``total`` line in KiB: a workspace records no owners, links or permissions. ``-u``
      uses the modification time, as no access time is recorded.
    * Options are split on spaces into separate arguments (``"-n 5"`` is ``-n`` and ``5``).
"""

from __future__ import annotations

import codecs
import collections
import posixpath
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Literal, Protocol

import msgspec

from flare_core.commands import ShellCommand, ShellVerb
from flare_core.errors import InvalidArgumentError
from flare_core.regex_dfa import Matcher, TooMuchWork, compile_pattern

__all__ = [
    "MATCH_WORK_MARKER",
    "MAX_MATCH_WORK",
    "MAX_OUTPUT_BYTES",
    "MAX_PATTERN_CHARS",
    "MAX_SCAN_BYTES",
    "MAX_SCAN_LINES",
    "READ_CHUNK",
    "SCAN_MARKER",
    "TEXT_EXTENSIONS",
    "TRUNCATION_MARKER",
    "FileStat",
    "FileTree",
    "check_shell_args",
    "run_shell",
    "text_extension",
]

MAX_OUTPUT_BYTES = 1024 * 1024
"""The most output (UTF-8 bytes) one shell command returns before ``TRUNCATION_MARKER``."""

TRUNCATION_MARKER = f"\n[output truncated at {MAX_OUTPUT_BYTES} bytes]\n"

READ_CHUNK = 64 * 1024
"""Files are read in pieces of this size, never whole: memory stays bounded whatever the file."""

MAX_SCAN_BYTES = 8 * 1024 * 1024
"""The most bytes of a file one ``cat``/``head``/``tail``/``grep`` reads (issue 10: a 300 MiB
log must not cost gigabytes nor hold a server thread for seconds). Reading stops earlier once
the output is full; when this bound stops it, the output ends with ``SCAN_MARKER``."""

MAX_SCAN_LINES = 250_000
"""The most lines one command splits off a file: each line costs Python work, so a file of
8 MiB of empty lines must not cost 8 million steps."""

SCAN_MARKER = (
    f"\n[input truncated: at most {MAX_SCAN_BYTES} bytes or {MAX_SCAN_LINES} lines of a file"
    " are read]\n"
)

MAX_PATTERN_CHARS = 1024
"""The longest ``grep`` pattern accepted, on every transport (a pattern's compile and match
cost grow with its length)."""

MAX_MATCH_WORK = 2_000_000
"""The most pattern-position steps one ``grep`` may spend building its matcher's masks and DFA
rows (about a second of work, measured with the longest pattern over a file of distinct
characters); beyond it the output ends with ``MATCH_WORK_MARKER``."""

MATCH_WORK_MARKER = "\n[grep stopped: the pattern needs too much work on this file]\n"

TEXT_EXTENSIONS = (".txt", ".log", ".json", ".csv", ".sh", ".config", ".py")
"""The only file types ``cat``/``head``/``tail``/``grep`` may read (a numeric rotation
suffix, as in ``log.txt.1``, is ignored)."""

_EXTENSION_MESSAGE = (
    "this command cannot be applied to file {}. Only files with the following extensions are "
    "permitted: " + ", ".join(TEXT_EXTENSIONS)
)
_TARGET_RE = re.compile(r"[A-Za-z0-9._-]*")
_OPTIONS_RE = re.compile(r"[A-Za-z0-9\- ]*")
_PATH_RE = re.compile(r"[A-Za-z0-9\-._/]*")
_INT_RE = re.compile(r"-?[0-9]+")
_VERBS: dict[str, ShellVerb] = {v: v for v in ("ls", "cat", "head", "tail", "grep", "pwd")}


class FileStat(msgspec.Struct, frozen=True):
    """What ``ls`` needs to know of a workspace entry.

    Attributes:
        kind: ``"file"`` or ``"dir"``.
        size: size in bytes (0 for directories is fine).
        mtime: modification time, epoch seconds.
    """

    kind: Literal["file", "dir"]
    size: int
    mtime: float


class FileTree(Protocol):
    """A site's workspace, read-only. Paths are relative POSIX paths; ``""`` is the root.

    Implementations refuse to resolve anything outside the workspace (symlinks included):
    ``stat`` returns None for such paths, and ``listdir`` may omit them.
    """

    def display_root(self) -> str:
        """What ``pwd`` prints for the workspace root (e.g. ``/workspace/site-1``)."""
        ...

    def stat(self, path: str) -> FileStat | None:
        """The entry at ``path``, or None when it does not exist or is refused."""
        ...

    def listdir(self, path: str) -> list[str]:
        """The names in the directory at ``path`` (any order). Only called on directories."""
        ...

    def read(self, path: str, offset: int = 0, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all when negative) of the file at ``path`` from ``offset``;
        ``b""`` at or past its end. Only called on files ``stat`` accepted."""
        ...


# --- client side (reference §7.1) -------------------------------------------------------------


def text_extension(file: str) -> str:
    """The extension that decides whether a file counts as text.

    A trailing numeric part is ignored, so ``log.txt.1`` gives ``.txt``.

    Args:
        file: the file name or path.

    Returns:
        The extension including its dot, or ``""``.
    """
    parts = file.split(".")
    if parts[-1].isdigit():
        parts.pop()
    return posixpath.splitext(".".join(parts))[1]


def _check_target(target: object) -> str:
    if not target:
        raise InvalidArgumentError("target is required but not specified.")
    if not isinstance(target, str):
        raise InvalidArgumentError("target is not str.")
    if _TARGET_RE.fullmatch(target) is None:
        raise InvalidArgumentError(
            "target must be a string of only valid characters and no spaces."
        )
    return target


def _check_options(options: object) -> str | None:
    if not options:
        return None
    if not isinstance(options, str):
        raise InvalidArgumentError("options is not str.")
    if _OPTIONS_RE.fullmatch(options) is None:
        raise InvalidArgumentError("options must be a string of only valid characters.")
    return options


def _check_path(path: object) -> str:
    if not isinstance(path, str):
        raise InvalidArgumentError("path is not str.")
    if _PATH_RE.fullmatch(path) is None:
        raise InvalidArgumentError(f"unsupported characters in path {path}")
    if path.startswith("/"):
        raise InvalidArgumentError("absolute path is not allowed")
    if ".." in path.split("/"):
        raise InvalidArgumentError(".. in path name is not allowed")
    return path


def _check_file(file: object) -> str:
    checked = _check_path(file)
    if text_extension(checked) not in TEXT_EXTENSIONS:
        raise InvalidArgumentError(_EXTENSION_MESSAGE.format(checked))
    return checked


def _check_pattern_size(pattern: str) -> str:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidArgumentError(
            f"grep pattern is too long ({len(pattern)} characters; at most {MAX_PATTERN_CHARS})"
        )
    return pattern


def check_shell_args(
    verb: str,
    target: object,
    options: object = None,
    path: object = None,
    file: object = None,
    pattern: object = None,
) -> ShellCommand:
    """Validate a shell command's arguments on the client and build the command.

    The checks run in the reference's order: target, options, grep pattern, file presence,
    then the path (``ls``) or file (the others) rules.

    Args:
        verb: ``ls``, ``cat``, ``head``, ``tail``, ``grep`` or ``pwd``.
        target: ``server`` or a client name.
        options: the option string (``ls``, ``cat``, ``head``, ``tail``, ``grep``).
        path: ``ls`` only: the optional path to list.
        file: ``cat``/``head``/``tail``/``grep`` only: the file, required.
        pattern: ``grep`` only: the pattern, required.

    Returns:
        The ``ShellCommand``; its ``path`` carries the ``ls`` path or the file.

    Raises:
        InvalidArgumentError: any argument breaks a rule, with the reference's message; also
            for an unknown verb, or an argument the verb does not take.
    """
    checked_verb = _VERBS.get(verb)
    if checked_verb is None:
        raise InvalidArgumentError(f"unsupported shell command {verb!r}")
    checked_target = _check_target(target)
    if verb == "pwd":
        if options or path or file or pattern:
            raise InvalidArgumentError("this command does not accept extra args")
        return ShellCommand(verb="pwd", target=checked_target)
    checked_options = _check_options(options)
    if verb == "ls":
        if file is not None or pattern is not None:
            raise InvalidArgumentError("ls takes an optional path, not a file or pattern")
        return ShellCommand(
            verb="ls",
            target=checked_target,
            options=checked_options,
            path=_check_path(path) if path else None,
        )
    if path is not None:
        raise InvalidArgumentError(f"{verb} takes a file, not a path")
    checked_pattern: str | None = None
    if verb == "grep":
        if not pattern:
            raise InvalidArgumentError("pattern is required but not specified.")
        if not isinstance(pattern, str):
            raise InvalidArgumentError("pattern is not str.")
        checked_pattern = _check_pattern_size(pattern)
    elif pattern is not None:
        raise InvalidArgumentError(f"{verb} does not take a pattern")
    if not file:
        raise InvalidArgumentError("file is required but not specified.")
    return ShellCommand(
        verb=checked_verb,
        target=checked_target,
        options=checked_options,
        path=_check_file(file),
        pattern=checked_pattern,
    )


# --- server side: argument parsing (reference §7.2) ---------------------------------------------


class _Spec(msgspec.Struct, frozen=True):
    flags: str  # single-letter switches
    valued: str  # single-letter options taking an int


_SPECS = {
    "ls": _Spec(flags="altSRu", valued=""),
    "cat": _Spec(flags="nbsT", valued=""),
    "head": _Spec(flags="", valued="cn"),
    "tail": _Spec(flags="", valued="cn"),
    "grep": _Spec(flags="nib", valued=""),
}


class _Parsed(msgspec.Struct):
    flags: list[str]  # switches in the order given
    values: list[tuple[str, int]]  # valued options in the order given
    positionals: list[str]


def _parse_options(spec: _Spec, tokens: Sequence[str]) -> _Parsed:
    # argparse's short-option rules, as the reference's validators use them.
    parsed = _Parsed(flags=[], values=[], positionals=[])
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "--":
            parsed.positionals.extend(tokens[i:])
            break
        if not token.startswith("-") or token == "-" or _INT_RE.fullmatch(token):
            parsed.positionals.append(token)
            continue
        if token.startswith("--"):
            raise InvalidArgumentError(f"unrecognized arguments: {token}")
        for pos, letter in enumerate(token[1:], start=1):
            if letter in spec.flags:
                parsed.flags.append(letter)
                continue
            if letter not in spec.valued:
                raise InvalidArgumentError(f"unrecognized arguments: {token}")
            value = token[pos + 1 :]
            if not value:
                if i >= len(tokens) or (
                    tokens[i].startswith("-") and not _INT_RE.fullmatch(tokens[i])
                ):
                    raise InvalidArgumentError(f"argument -{letter}: expected one argument")
                value = tokens[i]
                i += 1
            if not _INT_RE.fullmatch(value):
                raise InvalidArgumentError(f"argument -{letter}: invalid int value: '{value}'")
            parsed.values.append((letter, int(value)))
            break
    return parsed


def _check_server_file(file: str, text_only: bool) -> None:
    if _PATH_RE.fullmatch(file) is None:
        raise InvalidArgumentError(f"unsupported file {file}")
    if file.startswith("/"):
        raise InvalidArgumentError("absolute path is not allowed")
    if ".." in file.split("/"):
        raise InvalidArgumentError(".. in path name is not allowed")
    if text_only and text_extension(file) not in TEXT_EXTENSIONS:
        raise InvalidArgumentError(_EXTENSION_MESSAGE.format(file))


def _tree_path(arg: str) -> str:
    # "./a//b/" -> "a/b"; ".." never gets here (refused by the file rules).
    return "/".join(part for part in arg.split("/") if part not in ("", "."))


class _Output:
    """Collects output text, cutting it at the byte cap with a visible marker."""

    def __init__(self, limit: int = MAX_OUTPUT_BYTES) -> None:
        self._parts: list[str] = []
        self._room = limit
        self.full = False

    def write(self, text: str) -> None:
        if self.full or not text:
            return
        data = text.encode("utf-8")
        if len(data) <= self._room:
            self._parts.append(text)
            self._room -= len(data)
            return
        # Cut on a byte boundary; "ignore" drops a multi-byte character split by the cut.
        self._parts.append(data[: self._room].decode("utf-8", "ignore"))
        self._parts.append(TRUNCATION_MARKER)
        self.full = True

    def text(self) -> str:
        return "".join(self._parts)


def run_shell(command: ShellCommand, tree: FileTree) -> str:
    """Execute a shell command over a workspace, as the server does for its targets.

    Args:
        command: the command (its ``target`` was already resolved to ``tree`` by the caller).
        tree: the target site's workspace.

    Returns:
        What the coreutils command would print (a missing file gives e.g.
        ``"cat: x.txt: No such file or directory\\n"``), capped at ``MAX_OUTPUT_BYTES``.

    Raises:
        InvalidArgumentError: the options or file break the reference's rules (unknown
            option, bad option value, not exactly one file, unsupported characters, absolute
            path, ``..``, non-text extension), or an unsupported grep pattern.
    """
    options = command.options or ""
    if _OPTIONS_RE.fullmatch(options) is None:
        raise InvalidArgumentError("options must be a string of only valid characters.")
    tokens = options.split()
    if command.verb == "pwd":
        if tokens or command.path or command.pattern:
            raise InvalidArgumentError("this command does not accept extra args")
        return tree.display_root() + "\n"

    parsed = _parse_options(_SPECS[command.verb], tokens)
    positionals = list(parsed.positionals)
    # The dedicated fields follow the options, as on the reference's command line; they are
    # never read as options, so a grep pattern may start with "-".
    if command.pattern is not None:
        if command.verb != "grep":
            raise InvalidArgumentError(f"{command.verb} does not take a pattern")
        positionals.append(command.pattern)
    if command.path:
        positionals.append(command.path)

    out = _Output()
    if command.verb == "ls":
        if len(positionals) > 1:
            raise InvalidArgumentError(f"unrecognized arguments: {' '.join(positionals[1:])}")
        if positionals:
            _check_server_file(positionals[0], text_only=False)
        _ls(tree, parsed.flags, positionals[0] if positionals else None, out)
        return out.text()

    pattern: str | None = None
    if command.verb == "grep":
        if not positionals:
            raise InvalidArgumentError("the following arguments are required: pattern, file")
        pattern = positionals.pop(0)
    if not positionals:
        raise InvalidArgumentError("the following arguments are required: file")
    if len(positionals) != 1:
        raise InvalidArgumentError("only one file is allowed")
    file = positionals[0]
    _check_server_file(file, text_only=True)

    stat = _file_stat(tree, command.verb, file, out)
    if stat is not None:
        reader = _Reader(tree, _tree_path(file))
        if command.verb == "grep":
            assert pattern is not None
            matcher = compile_pattern(
                _check_pattern_size(pattern), "i" in parsed.flags, MAX_MATCH_WORK
            )
            _grep(reader, matcher, "n" in parsed.flags, "b" in parsed.flags, out)
        elif command.verb == "cat":
            _cat(reader, set(parsed.flags), out)
        else:
            mode, count = parsed.values[-1] if parsed.values else ("n", 10)
            cut = _head if command.verb == "head" else _tail
            cut(reader, stat.size, mode, count, out)
        if reader.cut and not out.full:
            out.write(SCAN_MARKER)
    return out.text()


# --- server side: the commands ---------------------------------------------------------------


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _file_stat(tree: FileTree, verb: str, file: str, out: _Output) -> FileStat | None:
    """The file's stat, or None after writing the error text coreutils would print."""
    stat = tree.stat(_tree_path(file))
    by_name = verb in ("cat", "grep")  # "cat: x: ..." vs "head: cannot open 'x' ..."
    if stat is None:
        if by_name:
            out.write(f"{verb}: {file}: No such file or directory\n")
        else:
            out.write(f"{verb}: cannot open '{file}' for reading: No such file or directory\n")
        return None
    if stat.kind == "dir":
        if by_name:
            out.write(f"{verb}: {file}: Is a directory\n")
        else:
            out.write(f"{verb}: error reading '{file}': Is a directory\n")
        return None
    return stat


class _Reader:
    """Reads one file in ``READ_CHUNK`` pieces, at most ``MAX_SCAN_BYTES`` in all and at most
    ``MAX_SCAN_LINES`` lines.

    ``cut`` is set when a scan bound (not the file's end) stopped a read.
    """

    def __init__(self, tree: FileTree, path: str) -> None:
        self._tree = tree
        self._path = path
        self._budget = MAX_SCAN_BYTES
        self.cut = False

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset``, within what is left of the scan budget."""
        want = min(size, self._budget)
        if want < size:
            self.cut = True
        if want <= 0:
            return b""
        data = self._tree.read(self._path, offset, want)
        self._budget -= len(data)
        return data

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The file's bytes from ``start`` up to ``end`` (its end when None), in pieces."""
        offset = start
        while end is None or offset < end:
            size = READ_CHUNK if end is None else min(READ_CHUNK, end - offset)
            data = self.read(offset, size)
            if not data:
                return
            offset += len(data)
            yield data

    def lines(self) -> Iterator[bytes]:
        """The file's lines, each with its newline; a last line without one is kept as is.

        Split on ``"\\n"`` only (not ``bytes.splitlines``: coreutils ignores ``"\\r"``).
        """
        pending = bytearray()
        lines = 0
        for chunk in self.chunks():
            start = 0
            newline = chunk.find(b"\n")
            while newline >= 0:
                lines += 1
                if lines > MAX_SCAN_LINES:
                    self.cut = True
                    return
                pending += chunk[start : newline + 1]
                yield bytes(pending)
                pending.clear()
                start = newline + 1
                newline = chunk.find(b"\n", start)
            pending += chunk[start:]
        if pending:
            yield bytes(pending)


def _cat(reader: _Reader, flags: set[str], out: _Output) -> None:
    number = 0
    previous_blank = False
    for line in reader.lines():
        blank = line == b"\n"
        if "s" in flags and blank and previous_blank:
            continue
        previous_blank = blank
        if "T" in flags:
            line = line.replace(b"\t", b"^I")
        if ("b" in flags and not blank) or ("n" in flags and "b" not in flags):
            number += 1  # -b numbers non-blank lines, overriding -n
            line = f"{number:>6}\t".encode() + line
        out.write(_decode(line))
        if out.full:
            return


def _head(reader: _Reader, size: int, mode: str, count: int, out: _Output) -> None:
    # A negative count means "all but the last |count|", as in GNU head.
    if mode == "c":
        end = count if count >= 0 else max(0, size + count)
        _write_bytes(reader.chunks(0, end), out)
        return
    if count >= 0:
        for index, line in enumerate(reader.lines()):
            if index >= count or out.full:
                return
            out.write(_decode(line))
        return
    held: collections.deque[bytes] = collections.deque()
    for line in reader.lines():
        held.append(line)
        if len(held) > -count:
            out.write(_decode(held.popleft()))
            if out.full:
                return


def _tail(reader: _Reader, size: int, mode: str, count: int, out: _Output) -> None:
    # GNU tail reads "-n -5" as "-n 5": the last |count| units.
    count = abs(count)
    if count == 0:
        return
    if mode == "c":
        _write_bytes(reader.chunks(max(0, size - count), size), out)
        return
    # Read backwards until the pieces hold ``count`` whole lines (or the file's start); the
    # newline before the last byte of the file does not start a line.
    pieces: list[bytes] = []
    newlines = 0
    start = size
    while start > 0:
        step = min(READ_CHUNK, start)
        data = reader.read(start - step, step)
        if not data:
            break
        if start == size and data.endswith(b"\n"):
            newlines -= 1
        start -= len(data)
        pieces.append(data)
        newlines += data.count(b"\n")
        if newlines >= count:
            break
    kept = b"".join(reversed(pieces))
    lines = kept.split(b"\n")
    last = lines.pop()
    whole = [line + b"\n" for line in lines] + ([last] if last else [])
    _write_bytes(iter(whole[-count:]), out)


def _write_bytes(pieces: Iterator[bytes], out: _Output) -> None:
    # Decode incrementally: a multi-byte character may be split between two pieces.
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    for piece in pieces:
        out.write(decoder.decode(piece))
        if out.full:
            return
    out.write(decoder.decode(b"", final=True))


def _grep(reader: _Reader, matcher: Matcher, number: bool, offset: bool, out: _Output) -> None:
    position = 0
    try:
        for index, raw in enumerate(reader.lines(), start=1):
            text = _decode(raw[:-1] if raw.endswith(b"\n") else raw)
            if matcher.search(text):
                prefix = (f"{index}:" if number else "") + (f"{position}:" if offset else "")
                out.write(prefix + text + "\n")
                if out.full:
                    return
            position += len(raw)
    except TooMuchWork:
        out.write(MATCH_WORK_MARKER)


# --- ls ----------------------------------------------------------------------------------------


class _Entry(msgspec.Struct, frozen=True):
    name: str
    path: str  # tree path
    stat: FileStat


def _ls_order(flags: Sequence[str]) -> Literal["name", "time", "size"]:
    # The last of -t/-S wins, as in coreutils; -u alone sorts by (access) time.
    for letter in reversed(flags):
        if letter == "t":
            return "time"
        if letter == "S":
            return "size"
    if "u" in flags and "l" not in flags:
        return "time"
    return "name"


def _sorted(entries: list[_Entry], order: str) -> list[_Entry]:
    by_name = sorted(entries, key=lambda e: e.name)
    if order == "time":
        return sorted(by_name, key=lambda e: -e.stat.mtime)
    if order == "size":
        return sorted(by_name, key=lambda e: -e.stat.size)
    return by_name


def _when(mtime: float) -> str:
    try:
        return datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return "????-??-?? ??:??"


def _render(entries: list[_Entry], long: bool, total: bool, out: _Output) -> None:
    if not long:
        for entry in entries:
            out.write(entry.name + "\n")
        return
    if total:
        out.write(f"total {sum(-(-e.stat.size // 1024) for e in entries)}\n")
    width = max((len(str(e.stat.size)) for e in entries), default=1)
    for entry in entries:
        kind = "d" if entry.stat.kind == "dir" else "-"
        out.write(f"{kind} {entry.stat.size:>{width}} {_when(entry.stat.mtime)} {entry.name}\n")


def _children(tree: FileTree, path: str, stat: FileStat, all_: bool) -> list[_Entry]:
    entries: list[_Entry] = []
    if all_:
        parent = posixpath.dirname(path)
        parent_stat = tree.stat(parent) if path else stat
        entries.append(_Entry(name=".", path=path, stat=stat))
        entries.append(_Entry(name="..", path=parent, stat=parent_stat or stat))
    for name in tree.listdir(path):
        if name.startswith(".") and not all_:
            continue
        child = f"{path}/{name}" if path else name
        child_stat = tree.stat(child)
        if child_stat is not None:  # refused (e.g. a symlink leaving the workspace): hidden
            entries.append(_Entry(name=name, path=child, stat=child_stat))
    return entries


def _ls(tree: FileTree, flags: list[str], arg: str | None, out: _Output) -> None:
    shown = arg if arg is not None else "."
    root = _tree_path(arg or "")
    stat = tree.stat(root)
    if stat is None:
        out.write(f"ls: cannot access '{shown}': No such file or directory\n")
        return
    long, all_, order = "l" in flags, "a" in flags, _ls_order(flags)
    if stat.kind == "file":
        _render([_Entry(name=shown, path=root, stat=stat)], long, total=False, out=out)
        return
    if "R" not in flags:
        _render(_sorted(_children(tree, root, stat, all_), order), long, total=True, out=out)
        return
    # Depth-first pre-order with "<dir>:" headers and blank lines between blocks (ls -R).
    stack: list[tuple[str, str, FileStat]] = [(shown, root, stat)]
    first = True
    while stack and not out.full:
        label, path, dir_stat = stack.pop()
        entries = _sorted(_children(tree, path, dir_stat, all_), order)
        out.write(("" if first else "\n") + f"{label}:\n")
        first = False
        _render(entries, long, total=True, out=out)
        subdirs = [e for e in entries if e.stat.kind == "dir" and e.name not in (".", "..")]
        base = label.rstrip("/") or "/"
        for entry in reversed(subdirs):
            stack.append((f"{base}/{entry.name}", entry.path, entry.stat))
